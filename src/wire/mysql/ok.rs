//! OK and EOF packets: building the ones dbmesh answers itself, and reading the status flags
//! out of the ones a backend sends (so the session knows about transactions and autocommit).

use mysql_common::io::ParseBuf;

/// `SERVER_STATUS_IN_TRANS`
pub const STATUS_IN_TRANS: u16 = 0x0001;
/// `SERVER_STATUS_AUTOCOMMIT`
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;
/// `SERVER_MORE_RESULTS_EXISTS`
pub const STATUS_MORE_RESULTS: u16 = 0x0008;
/// `SERVER_STATUS_CURSOR_EXISTS`
pub const STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// An OK packet payload.
pub fn ok_payload(affected_rows: u64, last_insert_id: u64, status: u16, warnings: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(16);
    p.push(0x00);
    put_lenenc_int(&mut p, affected_rows);
    put_lenenc_int(&mut p, last_insert_id);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&warnings.to_le_bytes());
    p
}

/// The packet that ends a result set: an OK with the EOF header when the client asked for
/// `CLIENT_DEPRECATE_EOF`, the classic 5-byte EOF packet otherwise.
pub fn end_of_rows_payload(deprecate_eof: bool, status: u16) -> Vec<u8> {
    if deprecate_eof {
        let mut p = ok_payload(0, 0, status, 0);
        p[0] = 0xFE;
        p
    } else {
        eof_payload(status)
    }
}

/// A classic EOF packet payload.
pub fn eof_payload(status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

/// Is this payload an EOF packet or an OK-as-EOF terminator (header 0xFE)? A text row whose
/// first column is 16 MiB or longer also starts with 0xFE, but is never this short.
pub fn is_terminator(payload: &[u8]) -> bool {
    payload.first() == Some(&0xFE) && payload.len() < 0xFF_FFFF
}

/// Is this a classic 5-byte (or shorter) EOF packet?
pub fn is_classic_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xFE) && payload.len() <= 5
}

/// Status flags of an OK packet (header 0x00 or 0xFE) or classic EOF packet.
pub fn status_flags(payload: &[u8]) -> Option<u16> {
    if is_classic_eof(payload) {
        return payload.get(3..5).map(|s| u16::from_le_bytes([s[0], s[1]]));
    }
    let mut buf = ParseBuf(payload.get(1..)?);
    buf.checked_eat_lenenc_int()?;
    buf.checked_eat_lenenc_int()?;
    buf.checked_eat_u16_le()
}

/// The warning count of an OK packet or classic EOF packet.
pub fn warning_count(payload: &[u8]) -> Option<u16> {
    if is_classic_eof(payload) {
        return payload.get(1..3).map(|s| u16::from_le_bytes([s[0], s[1]]));
    }
    let mut buf = ParseBuf(payload.get(1..)?);
    buf.checked_eat_lenenc_int()?;
    buf.checked_eat_lenenc_int()?;
    buf.checked_eat_u16_le()?;
    buf.checked_eat_u16_le()
}

/// Sets `SERVER_MORE_RESULTS_EXISTS` in an OK, OK-as-EOF or classic EOF packet, in place
/// (nothing else changes); other packets are left alone.
pub fn set_more_results(payload: &mut [u8]) {
    let at = if is_classic_eof(payload) {
        Some(3)
    } else if matches!(payload.first(), Some(0x00 | 0xFE)) {
        let mut buf = ParseBuf(&payload[1..]);
        buf.checked_eat_lenenc_int()
            .and_then(|_| buf.checked_eat_lenenc_int())
            .map(|_| payload.len() - buf.0.len())
    } else {
        None
    };
    if let Some(flags) = at.and_then(|at| payload.get_mut(at..at + 2)) {
        let status = u16::from_le_bytes([flags[0], flags[1]]) | STATUS_MORE_RESULTS;
        flags.copy_from_slice(&status.to_le_bytes());
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(p: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => p.push(n as u8),
        251..=0xFFFF => {
            p.push(0xFC);
            p.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            p.push(0xFD);
            p.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            p.push(0xFE);
            p.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_str(p: &mut Vec<u8>, s: &[u8]) {
    put_lenenc_int(p, s.len() as u64);
    p.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_warning_count_of_ok_and_eof() {
        assert_eq!(
            warning_count(&ok_payload(1, 2, STATUS_AUTOCOMMIT, 3)),
            Some(3)
        );
        assert_eq!(
            warning_count(&ok_payload(1, 2, STATUS_AUTOCOMMIT, 0)),
            Some(0)
        );
        assert_eq!(warning_count(&[0xFE, 2, 0, 2, 0]), Some(2));
    }

    #[test]
    fn reads_status_from_ok_and_eof() {
        let ok = ok_payload(300, 70000, STATUS_IN_TRANS | STATUS_AUTOCOMMIT, 1);
        assert_eq!(status_flags(&ok), Some(3));
        let eof = eof_payload(STATUS_MORE_RESULTS);
        assert_eq!(status_flags(&eof), Some(STATUS_MORE_RESULTS));
        let ok_eof = end_of_rows_payload(true, STATUS_AUTOCOMMIT);
        assert!(is_terminator(&ok_eof));
        assert_eq!(status_flags(&ok_eof), Some(STATUS_AUTOCOMMIT));
    }

    #[test]
    fn sets_more_results_in_oks_and_eofs_only() {
        for mut p in [
            ok_payload(300, 70000, STATUS_AUTOCOMMIT, 1),
            end_of_rows_payload(true, STATUS_AUTOCOMMIT),
            eof_payload(STATUS_AUTOCOMMIT),
        ] {
            let before = p.clone();
            set_more_results(&mut p);
            assert_eq!(
                status_flags(&p),
                Some(STATUS_AUTOCOMMIT | STATUS_MORE_RESULTS)
            );
            assert_eq!(p.len(), before.len());
        }
        let mut err = vec![0xFF, 0x10, 0x04, b'#'];
        set_more_results(&mut err);
        assert_eq!(err, [0xFF, 0x10, 0x04, b'#']);
    }

    #[test]
    fn lenenc_boundaries() {
        for (n, len) in [(250u64, 1), (251, 3), (65535, 3), (65536, 4), (1 << 24, 9)] {
            let mut p = Vec::new();
            put_lenenc_int(&mut p, n);
            assert_eq!(p.len(), len, "{n}");
            assert_eq!(ParseBuf(&p).eat_lenenc_int(), n);
        }
    }
}

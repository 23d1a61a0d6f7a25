//! Text result sets that dbmesh builds itself (SHOW DATABASES today; PREVIEW and admin
//! statements later). Column definitions are written by hand: `mysql_common`'s
//! `Column::serialize` puts column_length before character_set, the wrong way round.

use super::ok::{end_of_rows_payload, put_lenenc_int, put_lenenc_str};
use super::packet::PacketWriter;
use tokio::io::AsyncWrite;

/// `MYSQL_TYPE_VAR_STRING`
pub const TYPE_VAR_STRING: u8 = 0xFD;
/// `MYSQL_TYPE_LONGLONG`
pub const TYPE_LONGLONG: u8 = 0x08;
/// utf8mb4_general_ci
pub const UTF8MB4_GENERAL_CI: u16 = 45;
/// binary
pub const BINARY: u16 = 63;

/// One column of a result set dbmesh produces.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub column_type: u8,
    pub charset: u16,
    pub length: u32,
    pub flags: u16,
}

impl ColumnDef {
    /// A VARCHAR column in utf8mb4.
    pub fn text(name: &str, max_chars: u32) -> Self {
        ColumnDef {
            name: name.to_string(),
            column_type: TYPE_VAR_STRING,
            charset: UTF8MB4_GENERAL_CI,
            length: max_chars * 4,
            flags: 0,
        }
    }

    /// A BIGINT column.
    pub fn bigint(name: &str) -> Self {
        ColumnDef {
            name: name.to_string(),
            column_type: TYPE_LONGLONG,
            charset: BINARY,
            length: 20,
            flags: 0x0001 | 0x0080, // NOT_NULL | BINARY
        }
    }

    /// The protocol-41 column definition payload.
    pub fn payload(&self) -> Vec<u8> {
        self.payload_with(false)
    }

    /// The column definition payload for a client that negotiated MariaDB's
    /// `MARIADB_CLIENT_EXTENDED_METADATA` (`extended_metadata`): its definitions carry one
    /// more field after `org_name`, the extended type information, here empty. The
    /// `mariadb` client rejects a result without it as a malformed packet.
    pub fn payload_with(&self, extended_metadata: bool) -> Vec<u8> {
        let mut p = Vec::with_capacity(32 + 2 * self.name.len());
        put_lenenc_str(&mut p, b"def");
        put_lenenc_str(&mut p, b""); // schema
        put_lenenc_str(&mut p, b""); // table
        put_lenenc_str(&mut p, b""); // org_table
        put_lenenc_str(&mut p, self.name.as_bytes());
        put_lenenc_str(&mut p, self.name.as_bytes()); // org_name
        if extended_metadata {
            put_lenenc_str(&mut p, b""); // extended type information: none
        }
        p.push(0x0C);
        p.extend_from_slice(&self.charset.to_le_bytes());
        p.extend_from_slice(&self.length.to_le_bytes());
        p.push(self.column_type);
        p.extend_from_slice(&self.flags.to_le_bytes());
        p.push(0); // decimals
        p.extend_from_slice(&[0, 0]);
        p
    }
}

/// How the client reads result sets: the capabilities it negotiated that change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultFormat {
    /// `CLIENT_DEPRECATE_EOF`: no EOF after the column definitions, an OK ends the rows.
    pub deprecate_eof: bool,
    /// MariaDB's `MARIADB_CLIENT_EXTENDED_METADATA` (see [`ColumnDef::payload_with`]).
    pub extended_metadata: bool,
}

/// Writes a complete text result set: column count, definitions, [EOF], rows, terminator.
/// `None` values are SQL NULL.
pub fn write_text_resultset<W: AsyncWrite + Unpin>(
    w: &mut PacketWriter<W>,
    seq: &mut u8,
    format: ResultFormat,
    status: u16,
    columns: &[ColumnDef],
    rows: &[Vec<Option<String>>],
) {
    let deprecate_eof = format.deprecate_eof;
    let mut count = Vec::new();
    put_lenenc_int(&mut count, columns.len() as u64);
    w.write_packet(seq, &count);
    for c in columns {
        w.write_packet(seq, &c.payload_with(format.extended_metadata));
    }
    if !deprecate_eof {
        w.write_packet(seq, &super::ok::eof_payload(status));
    }
    let mut row_buf = Vec::new();
    for row in rows {
        row_buf.clear();
        for v in row {
            match v {
                Some(s) => put_lenenc_str(&mut row_buf, s.as_bytes()),
                None => row_buf.push(0xFB),
            }
        }
        w.write_packet(seq, &row_buf);
    }
    w.write_packet(seq, &end_of_rows_payload(deprecate_eof, status));
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::Column;

    #[test]
    fn column_definition_parses_back_with_charset_before_length() {
        let def = ColumnDef::text("Database", 64);
        let payload = def.payload();
        let col: Column = ParseBuf(&payload).parse(()).unwrap();
        assert_eq!(col.name_str(), "Database");
        assert_eq!(col.character_set(), UTF8MB4_GENERAL_CI);
        assert_eq!(col.column_length(), 256);
        assert_eq!(col.column_type() as u8, TYPE_VAR_STRING);
    }

    #[test]
    fn extended_metadata_adds_an_empty_type_information_field() {
        let def = ColumnDef::bigint("n");
        let plain = def.payload();
        let extended = def.payload_with(true);
        // Everything up to org_name, then a zero-length string, then the fixed fields.
        let fixed = plain.iter().position(|&b| b == 0x0C).unwrap();
        assert_eq!(extended.len(), plain.len() + 1);
        assert_eq!(&extended[..fixed], &plain[..fixed]);
        assert_eq!(extended[fixed], 0);
        assert_eq!(&extended[fixed + 1..], &plain[fixed..]);
    }
}

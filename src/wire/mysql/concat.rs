//! Concatenating the responses of several units into the one response the client expects,
//! decided packet by packet as they stream past (no I/O here: [`fanout`](super::fanout)
//! feeds it).
//!
//! Result sets: the column count and definitions of the first unit that returns rows are
//! the client's; every unit's row packets pass through as they are (text or binary rows
//! alike: each unit runs the same kind of command); the other units' headers and every
//! terminator are dropped, and one terminator with the session's status ends the result.
//! OKs: affected rows and warnings are summed (or, for copies of one write to a broadcast
//! table, the first unit's are kept), the first non-zero last-insert-id kept, and one OK
//! goes out at the end. Its info text is the units' summed too (`Rows matched: 3  Changed:
//! 2  Warnings: 0`, which drivers read for an UPDATE's changed rows; `Records: 4
//! Duplicates: 0  Warnings: 0` for a multi-row INSERT split into single-row ones, which
//! the server answers without info). Errors: the first one is what the client gets, after
//! whatever rows already went out (an ERR in place of the terminator is legal MySQL).
//!
//! The header is held back until the first row (or the end), so that a unit failing
//! before any row leaves the client with a clean ERR rather than a half-written result.

use mysql_common::io::ParseBuf;

use super::ok::{is_classic_eof, ok_payload, put_lenenc_str};
use super::response::{ResponseKind, ResponseTracker, Section, Step};

/// What to do with one packet of a unit's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Relay it to the client (after [`Concat::take_header`]).
    Forward,
    /// Drop it.
    Skip,
}

/// How the OKs of several units become the client's one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OkMerge {
    /// Reported instead of the backends' last-insert-id: a key dbmesh generated.
    pub last_insert_id: Option<u64>,
    /// The units are copies of one write (to broadcast tables): the client gets the first
    /// unit's counts, not their sum, as ShardingSphere does.
    pub copies: bool,
    /// Rows of the client's `INSERT ... VALUES` when there are several: the server reports
    /// `Records: n  Duplicates: d` for such a statement, but not for the one-row INSERTs
    /// it may be split into, so dbmesh counts those itself.
    pub insert_rows: usize,
}

/// A unit's part in the client's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Nothing seen yet.
    Undecided,
    /// Its header is the client's; its rows go through.
    HeaderAndRows,
    /// Its rows go through.
    Rows,
    /// Nothing of it goes through.
    Discard,
}

/// The merged response of several units.
#[derive(Debug)]
pub struct Concat {
    deprecate_eof: bool,
    merge: OkMerge,
    /// An OK was counted already.
    counted_ok: bool,
    /// Column count of the first result set: the client's.
    columns: Option<u64>,
    /// The first result set's column count and definitions until they are sent.
    header: Vec<Vec<u8>>,
    header_sent: bool,
    affected_rows: u64,
    last_insert_id: u64,
    warnings: u32,
    /// The units' info counts summed by label, in the first unit's order (`Warnings`
    /// is replaced by the summed warnings at the end).
    info: Vec<(String, u64)>,
    /// The ERR payload the client gets.
    error: Option<Vec<u8>>,
    tracker: ResponseTracker,
    role: Role,
    /// Result sets seen in the current unit (only the first one counts).
    results_in_unit: usize,
}

impl Concat {
    pub fn new(deprecate_eof: bool, merge: OkMerge) -> Concat {
        Concat {
            deprecate_eof,
            merge,
            counted_ok: false,
            columns: None,
            header: Vec::new(),
            header_sent: false,
            affected_rows: 0,
            last_insert_id: 0,
            warnings: 0,
            info: Vec::new(),
            error: None,
            tracker: ResponseTracker::new(ResponseKind::Query, deprecate_eof),
            role: Role::Undecided,
            results_in_unit: 0,
        }
    }

    /// Starts reading the next unit's response.
    pub fn start_unit(&mut self) {
        self.tracker = ResponseTracker::new(ResponseKind::Query, self.deprecate_eof);
        self.role = Role::Undecided;
        self.results_in_unit = 0;
    }

    /// Has the current unit's response ended?
    pub fn unit_done(&self) -> bool {
        self.tracker.is_done()
    }

    /// The tracker of the current unit (status flags, errors).
    pub fn tracker(&self) -> &ResponseTracker {
        &self.tracker
    }

    /// Has any unit failed (or dbmesh given up on one)?
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Records an error of dbmesh's own (a lost backend, a refused LOCAL INFILE); the first
    /// error is the one the client gets.
    pub fn fail(&mut self, err_payload: Vec<u8>) {
        if self.error.is_none() {
            self.error = Some(err_payload);
        }
    }

    /// Decides on the first frame's payload of the next packet of the current unit.
    pub fn on_packet(&mut self, p: &[u8]) -> (Action, Step) {
        let section = self.tracker.section();
        let step = self.tracker.on_packet(p);
        if self.tracker.error && step == Step::Done && p.first() == Some(&0xFF) {
            self.fail(p.to_vec());
            return (Action::Skip, step);
        }
        let action = match section {
            Section::Header => self.on_header(p, step),
            Section::Columns => {
                if self.role == Role::HeaderAndRows && !self.header_sent {
                    self.header.push(p.to_vec());
                }
                Action::Skip
            }
            Section::Rows => {
                let is_row = self.tracker.section() == Section::Rows && step == Step::More;
                if is_row {
                    let passes = matches!(self.role, Role::HeaderAndRows | Role::Rows);
                    if passes && self.error.is_none() {
                        Action::Forward
                    } else {
                        Action::Skip
                    }
                } else {
                    self.warnings += u32::from(terminator_warnings(p));
                    Action::Skip
                }
            }
            Section::Other => Action::Skip,
        };
        (action, step)
    }

    fn on_header(&mut self, p: &[u8], step: Step) -> Action {
        match p.first() {
            Some(0x00) => {
                if let Some(ok) = parse_ok(p).filter(|_| !(self.merge.copies && self.counted_ok)) {
                    self.counted_ok = true;
                    self.affected_rows += ok.affected_rows;
                    if self.last_insert_id == 0 {
                        self.last_insert_id = ok.last_insert_id;
                    }
                    self.warnings += u32::from(ok.warnings);
                    self.add_info(p, ok.affected_rows);
                }
            }
            _ if step == Step::LocalInfile => {}
            _ => {
                let count = ParseBuf(p).checked_eat_lenenc_int().unwrap_or(0);
                self.results_in_unit += 1;
                self.role = if self.results_in_unit > 1 || self.error.is_some() {
                    Role::Discard
                } else {
                    match self.columns {
                        None => {
                            self.columns = Some(count);
                            self.header.push(p.to_vec());
                            Role::HeaderAndRows
                        }
                        Some(c) if c == count => Role::Rows,
                        Some(c) => {
                            self.fail(
                                super::err::MysqlError::new(
                                    super::err::code::ER_UNKNOWN_ERROR,
                                    "HY000",
                                    format!("dbmesh: the data nodes returned results of different shapes ({c} and {count} columns)"),
                                )
                                .payload(),
                            );
                            Role::Discard
                        }
                    }
                };
            }
        }
        Action::Skip
    }

    /// Adds the counts of a unit's OK info (`Records: 2  Duplicates: 0  Warnings: 0`).
    /// A one-row INSERT of a split multi-row one has none: it counts as one record, a
    /// duplicate unless it affected exactly one row (IGNORE skipped it, REPLACE or
    /// ON DUPLICATE KEY UPDATE replaced or updated a row).
    fn add_info(&mut self, ok: &[u8], affected_rows: u64) {
        let text = ok_info(ok);
        let counts = match parse_info(&text) {
            Some(counts) => counts,
            None if text.is_empty() && self.merge.insert_rows > 1 => vec![
                ("Records".to_string(), 1),
                ("Duplicates".to_string(), u64::from(affected_rows != 1)),
                ("Warnings".to_string(), 0),
            ],
            None => return,
        };
        for (label, n) in counts {
            match self.info.iter_mut().find(|(l, _)| *l == label) {
                Some((_, sum)) => *sum += n,
                None => self.info.push((label, n)),
            }
        }
    }

    /// The last-insert-id the client's OK reports (0 when it gets an error or rows).
    pub fn last_insert_id(&self) -> u64 {
        if self.error.is_some() || self.columns.is_some() {
            return 0;
        }
        self.merge.last_insert_id.unwrap_or(self.last_insert_id)
    }

    /// The held-back header, once: to be written before the first forwarded row.
    pub fn take_header(&mut self) -> Option<Vec<Vec<u8>>> {
        if self.header_sent || self.header.is_empty() {
            return None;
        }
        self.header_sent = true;
        Some(std::mem::take(&mut self.header))
    }

    /// The packets that end the client's response, after every unit: the error, or the
    /// header (if no row made it go out yet) and one terminator, or one OK. `status` is the
    /// session's (with `SERVER_MORE_RESULTS_EXISTS` when a multi-statement goes on).
    pub fn finish(&mut self, status: u16) -> Vec<Vec<u8>> {
        let warnings = u16::try_from(self.warnings).unwrap_or(u16::MAX);
        if let Some(err) = self.error.take() {
            return vec![err];
        }
        if self.columns.is_some() {
            let mut out = self.take_header().unwrap_or_default();
            out.push(end_of_rows(self.deprecate_eof, status, warnings));
            return out;
        }
        let mut ok = ok_payload(self.affected_rows, self.last_insert_id(), status, warnings);
        if !self.info.is_empty() {
            let text: Vec<String> = self
                .info
                .iter()
                .map(|(label, n)| {
                    let n = if label == "Warnings" {
                        u64::from(warnings)
                    } else {
                        *n
                    };
                    format!("{label}: {n}")
                })
                .collect();
            put_lenenc_str(&mut ok, text.join("  ").as_bytes());
        }
        vec![ok]
    }
}

/// The info text of an OK packet: after the status flags and warnings, a length-encoded
/// string (as MySQL and MariaDB send it without `CLIENT_SESSION_TRACK`); empty if none.
fn ok_info(p: &[u8]) -> String {
    let mut b = ParseBuf(p.get(1..).unwrap_or_default());
    let rest = (|| {
        b.checked_eat_lenenc_int()?;
        b.checked_eat_lenenc_int()?;
        b.checked_eat_u16_le()?;
        b.checked_eat_u16_le()?;
        if b.0.is_empty() {
            return Some(&[][..]);
        }
        b.checked_eat_lenenc_str()
    })();
    String::from_utf8_lossy(rest.unwrap_or_default()).into_owned()
}

/// `Label: n  Label: n ...` (the server's `Records: 2  Duplicates: 0  Warnings: 0` and
/// `Rows matched: 3  Changed: 2  Warnings: 0`) as (label, n) pairs; `None` for any other
/// text, which dbmesh does not merge.
fn parse_info(text: &str) -> Option<Vec<(String, u64)>> {
    if text.is_empty() {
        return None;
    }
    text.split("  ")
        .map(|part| {
            let (label, n) = part.split_once(": ")?;
            Some((label.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}

/// The fields of an OK packet dbmesh sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkFields {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// Parses an OK packet (header 0x00 or 0xFE) of protocol 4.1.
pub fn parse_ok(p: &[u8]) -> Option<OkFields> {
    let mut b = ParseBuf(p.get(1..)?);
    Some(OkFields {
        affected_rows: b.checked_eat_lenenc_int()?,
        last_insert_id: b.checked_eat_lenenc_int()?,
        status: b.checked_eat_u16_le()?,
        warnings: b.checked_eat_u16_le()?,
    })
}

/// Warnings of a result set terminator (classic EOF or OK-as-EOF).
fn terminator_warnings(p: &[u8]) -> u16 {
    if is_classic_eof(p) {
        p.get(1..3).map_or(0, |w| u16::from_le_bytes([w[0], w[1]]))
    } else {
        parse_ok(p).map_or(0, |ok| ok.warnings)
    }
}

/// The terminator of a result set, with warnings.
fn end_of_rows(deprecate_eof: bool, status: u16, warnings: u16) -> Vec<u8> {
    if deprecate_eof {
        let mut p = ok_payload(0, 0, status, warnings);
        p[0] = 0xFE;
        p
    } else {
        let mut p = vec![0xFE];
        p.extend_from_slice(&warnings.to_le_bytes());
        p.extend_from_slice(&status.to_le_bytes());
        p
    }
}

/// The column-count packet of a result with `n` columns.
#[cfg(test)]
fn column_count(n: u64) -> Vec<u8> {
    let mut p = Vec::new();
    super::ok::put_lenenc_int(&mut p, n);
    p
}

#[cfg(test)]
mod tests {
    use super::super::ok::{end_of_rows_payload, eof_payload, STATUS_AUTOCOMMIT};
    use super::super::resultset::ColumnDef;
    use super::*;

    fn col(name: &str) -> Vec<u8> {
        ColumnDef::text(name, 10).payload()
    }

    fn row(v: &str) -> Vec<u8> {
        let mut p = Vec::new();
        super::super::ok::put_lenenc_str(&mut p, v.as_bytes());
        p
    }

    /// Feeds one unit's packets; returns the ones forwarded (headers included).
    fn feed(c: &mut Concat, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        c.start_unit();
        let mut out = Vec::new();
        for p in packets {
            let (action, _) = c.on_packet(p);
            if action == Action::Forward {
                if let Some(h) = c.take_header() {
                    out.extend(h);
                }
                out.push(p.clone());
            }
        }
        assert!(c.unit_done());
        out
    }

    fn result(deprecate_eof: bool, rows: &[&str], warnings: u16) -> Vec<Vec<u8>> {
        let mut v = vec![column_count(1), col("id")];
        if !deprecate_eof {
            v.push(eof_payload(STATUS_AUTOCOMMIT));
        }
        v.extend(rows.iter().map(|r| row(r)));
        let mut end = end_of_rows_payload(deprecate_eof, STATUS_AUTOCOMMIT);
        if deprecate_eof {
            end = ok_payload(0, 0, STATUS_AUTOCOMMIT, warnings);
            end[0] = 0xFE;
        } else {
            end[1..3].copy_from_slice(&warnings.to_le_bytes());
        }
        v.push(end);
        v
    }

    #[test]
    fn concatenates_rows_under_the_first_units_header() {
        for deprecate_eof in [true, false] {
            let mut c = Concat::new(deprecate_eof, OkMerge::default());
            let first = feed(&mut c, &result(deprecate_eof, &["1", "2"], 1));
            let header_len = if deprecate_eof { 2 } else { 3 };
            assert_eq!(first.len(), header_len + 2);
            assert_eq!(first[0], column_count(1));
            let second = feed(&mut c, &result(deprecate_eof, &["3"], 2));
            assert_eq!(second, vec![row("3")]);
            let end = c.finish(STATUS_AUTOCOMMIT);
            assert_eq!(end, vec![end_of_rows(deprecate_eof, STATUS_AUTOCOMMIT, 3)]);
        }
    }

    #[test]
    fn empty_results_still_send_the_header_and_one_terminator() {
        let mut c = Concat::new(true, OkMerge::default());
        assert!(feed(&mut c, &result(true, &[], 0)).is_empty());
        assert!(feed(&mut c, &result(true, &[], 0)).is_empty());
        let end = c.finish(STATUS_AUTOCOMMIT);
        assert_eq!(end.len(), 3);
        assert_eq!(end[0], column_count(1));
    }

    #[test]
    fn sums_oks_and_keeps_the_first_last_insert_id_unless_overridden() {
        let mut c = Concat::new(true, OkMerge::default());
        feed(&mut c, &[ok_payload(2, 0, STATUS_AUTOCOMMIT, 1)]);
        feed(&mut c, &[ok_payload(3, 17, STATUS_AUTOCOMMIT, 0)]);
        feed(&mut c, &[ok_payload(1, 20, STATUS_AUTOCOMMIT, 0)]);
        let end = c.finish(STATUS_AUTOCOMMIT);
        let ok = parse_ok(&end[0]).unwrap();
        assert_eq!(
            (ok.affected_rows, ok.last_insert_id, ok.warnings),
            (6, 17, 1)
        );
        let generated = OkMerge {
            last_insert_id: Some(99),
            ..OkMerge::default()
        };
        let mut c = Concat::new(true, generated);
        feed(&mut c, &[ok_payload(1, 5, STATUS_AUTOCOMMIT, 0)]);
        let ok = parse_ok(&c.finish(STATUS_AUTOCOMMIT)[0]).unwrap();
        assert_eq!(ok.last_insert_id, 99);
    }

    fn ok_with_info(affected: u64, warnings: u16, info: &str) -> Vec<u8> {
        let mut p = ok_payload(affected, 0, STATUS_AUTOCOMMIT, warnings);
        if !info.is_empty() {
            super::super::ok::put_lenenc_str(&mut p, info.as_bytes());
        }
        p
    }

    #[test]
    fn sums_the_info_of_updates() {
        let mut c = Concat::new(true, OkMerge::default());
        feed(
            &mut c,
            &[ok_with_info(
                1,
                0,
                "Rows matched: 2  Changed: 1  Warnings: 0",
            )],
        );
        feed(
            &mut c,
            &[ok_with_info(
                1,
                1,
                "Rows matched: 1  Changed: 1  Warnings: 1",
            )],
        );
        let end = c.finish(STATUS_AUTOCOMMIT);
        assert_eq!(ok_info(&end[0]), "Rows matched: 3  Changed: 2  Warnings: 1");
        assert_eq!(parse_ok(&end[0]).unwrap().affected_rows, 2);
    }

    #[test]
    fn counts_the_records_of_a_multi_row_insert_split_into_single_rows() {
        let merge = OkMerge {
            insert_rows: 4,
            ..OkMerge::default()
        };
        let mut c = Concat::new(false, merge);
        feed(&mut c, &[ok_with_info(1, 0, "")]);
        // INSERT IGNORE skipped a duplicate: no row affected, one warning.
        feed(&mut c, &[ok_with_info(0, 1, "")]);
        feed(
            &mut c,
            &[ok_with_info(2, 0, "Records: 2  Duplicates: 0  Warnings: 0")],
        );
        let end = c.finish(STATUS_AUTOCOMMIT);
        assert_eq!(ok_info(&end[0]), "Records: 4  Duplicates: 1  Warnings: 1");
    }

    #[test]
    fn oks_without_info_stay_without() {
        let mut c = Concat::new(true, OkMerge::default());
        feed(&mut c, &[ok_with_info(3, 0, "")]);
        feed(&mut c, &[ok_with_info(1, 0, "")]);
        let end = c.finish(STATUS_AUTOCOMMIT);
        assert_eq!(end[0], ok_payload(4, 0, STATUS_AUTOCOMMIT, 0));
        // Text dbmesh cannot add up is dropped rather than repeated.
        let mut c = Concat::new(true, OkMerge::default());
        feed(&mut c, &[ok_with_info(1, 0, "something else")]);
        assert_eq!(ok_info(&c.finish(STATUS_AUTOCOMMIT)[0]), "");
    }

    #[test]
    fn copies_of_a_broadcast_write_count_once() {
        let copies = OkMerge {
            copies: true,
            ..OkMerge::default()
        };
        let mut c = Concat::new(true, copies);
        feed(&mut c, &[ok_payload(1, 0, STATUS_AUTOCOMMIT, 0)]);
        feed(&mut c, &[ok_payload(1, 0, STATUS_AUTOCOMMIT, 0)]);
        let ok = parse_ok(&c.finish(STATUS_AUTOCOMMIT)[0]).unwrap();
        assert_eq!(ok.affected_rows, 1);
    }

    #[test]
    fn an_error_before_any_row_leaves_only_the_error() {
        let mut c = Concat::new(true, OkMerge::default());
        let err = super::super::err::MysqlError::new(1146, "42S02", "no table").payload();
        let first = feed(&mut c, &result(true, &[], 0));
        assert!(first.is_empty());
        feed(&mut c, std::slice::from_ref(&err));
        assert!(feed(&mut c, &result(true, &["9"], 0)).is_empty());
        assert_eq!(c.finish(STATUS_AUTOCOMMIT), vec![err]);
    }

    #[test]
    fn an_error_after_rows_replaces_the_terminator() {
        let mut c = Concat::new(false, OkMerge::default());
        let first = feed(&mut c, &result(false, &["1"], 0));
        assert_eq!(first.len(), 4);
        let err = super::super::err::MysqlError::new(1317, "70100", "interrupted").payload();
        let mut second = result(false, &["2"], 0);
        second.pop();
        second.push(err.clone());
        // Rows of the failing unit that came before its error still go through.
        assert_eq!(feed(&mut c, &second), vec![row("2")]);
        assert_eq!(c.finish(STATUS_AUTOCOMMIT), vec![err]);
    }

    #[test]
    fn results_of_different_widths_are_an_error() {
        let mut c = Concat::new(true, OkMerge::default());
        feed(&mut c, &result(true, &["1"], 0));
        let wide = vec![
            column_count(2),
            col("a"),
            col("b"),
            row("x"),
            end_of_rows_payload(true, 2),
        ];
        assert!(feed(&mut c, &wide).is_empty());
        let end = c.finish(STATUS_AUTOCOMMIT);
        assert_eq!(end[0][0], 0xFF);
    }
}

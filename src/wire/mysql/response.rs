//! Where a backend's response to one command ends.
//!
//! dbmesh forwards responses without decoding rows, but it must know where each response ends,
//! whether more result sets follow, and what status flags the server reported. The
//! [`ResponseTracker`] is fed the first frame of every logical packet and answers exactly that;
//! the relay (forwarding) and internal commands (discarding) share it.

use super::ok::{
    is_classic_eof, is_terminator, status_flags, STATUS_CURSOR_EXISTS, STATUS_MORE_RESULTS,
};
use mysql_common::io::ParseBuf;

/// Which command the response answers; each has its own packet grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// COM_QUERY / COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request, or result sets (text or
    /// binary rows), possibly several in a row.
    Query,
    /// COM_STMT_PREPARE: PREPARE_OK, parameter and column definitions.
    Prepare,
    /// COM_FIELD_LIST: column definitions up to a terminator.
    FieldList,
    /// COM_STMT_FETCH: rows up to a terminator.
    Fetch,
    /// Exactly one packet (OK, ERR, EOF or a string): COM_STMT_RESET, COM_SET_OPTION,
    /// COM_RESET_CONNECTION, COM_STATISTICS, COM_PING.
    Single,
}

/// What the tracker says after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More packets belong to this response.
    More,
    /// The server asks for a local file (`LOAD DATA LOCAL INFILE`); the client must send it.
    LocalInfile,
    /// The response is complete.
    Done,
}

/// Where in a response the tracker is: what the next packet can be. The fan-out uses it to
/// decide, packet by packet, what of each unit's response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The first packet of a result: OK, ERR, LOCAL INFILE request or a column count.
    Header,
    /// Column definitions (and, without `CLIENT_DEPRECATE_EOF`, the EOF after them).
    Columns,
    /// Rows, up to the terminator (or an ERR).
    Rows,
    /// Anything else (prepare and field-list responses, or the response is over).
    Other,
}

/// The PREPARE_OK header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub columns: u16,
    pub params: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    Params(u64),
    ParamsEof,
    PrepareColumns(u64),
    PrepareColumnsEof,
    FieldList,
    Done,
}

/// Follows one response packet by packet.
#[derive(Debug)]
pub struct ResponseTracker {
    kind: ResponseKind,
    deprecate_eof: bool,
    state: State,
    /// Status flags of the last OK/EOF seen.
    pub status: Option<u16>,
    /// Set when the response ended with an ERR packet.
    pub error: bool,
    /// The errno of that ERR packet (for the error metrics).
    pub error_code: Option<u16>,
    /// The PREPARE_OK of a COM_STMT_PREPARE response.
    pub prepare: Option<PrepareOk>,
    /// Affected rows and last insert id of the last OK packet.
    pub last_ok: Option<(u64, u64)>,
    /// Some OK / EOF of the response counted warnings (`SHOW WARNINGS` would list them).
    pub warnings: bool,
}

impl ResponseTracker {
    pub fn new(kind: ResponseKind, deprecate_eof: bool) -> Self {
        ResponseTracker {
            kind,
            deprecate_eof,
            state: match kind {
                ResponseKind::Fetch => State::Rows,
                ResponseKind::FieldList => State::FieldList,
                _ => State::Start,
            },
            status: None,
            error: false,
            error_code: None,
            prepare: None,
            last_ok: None,
            warnings: false,
        }
    }

    /// Notes the status flags and warning count of an OK / EOF packet.
    fn on_status(&mut self, p: &[u8]) {
        self.status = status_flags(p);
        if super::ok::warning_count(p).is_some_and(|w| w > 0) {
            self.warnings = true;
        }
    }

    pub fn kind(&self) -> ResponseKind {
        self.kind
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// What the next packet belongs to.
    pub fn section(&self) -> Section {
        match self.state {
            State::Start => Section::Header,
            State::Columns(_) | State::ColumnsEof => Section::Columns,
            State::Rows => Section::Rows,
            _ => Section::Other,
        }
    }

    /// Feeds the payload of the first frame of the next logical packet.
    pub fn on_packet(&mut self, p: &[u8]) -> Step {
        let first = p.first().copied().unwrap_or(0);
        if first == 0xFF && self.state != State::Done && !self.in_definitions() {
            self.error = true;
            self.error_code = p.get(1..3).map(|c| u16::from_le_bytes([c[0], c[1]]));
            self.state = State::Done;
            return Step::Done;
        }
        self.state = match (self.state, self.kind) {
            (State::Done, _) => State::Done,
            (State::Start, ResponseKind::Single) => {
                if first == 0x00 || is_classic_eof(p) {
                    self.on_status(p);
                }
                State::Done
            }
            (State::Start, ResponseKind::Prepare) => match parse_prepare_ok(p) {
                Some(ok) => {
                    self.prepare = Some(ok);
                    self.after_prepare_params(ok, ok.params > 0)
                }
                None => State::Done,
            },
            (State::Start, _) => match first {
                0x00 => {
                    self.on_ok(p);
                    self.after_result()
                }
                0xFB => return Step::LocalInfile,
                _ => match ParseBuf(p).checked_eat_lenenc_int() {
                    Some(0) | None => State::Done,
                    Some(n) => State::Columns(n),
                },
            },
            (State::Columns(n), _) => {
                if n > 1 {
                    State::Columns(n - 1)
                } else if self.deprecate_eof {
                    State::Rows
                } else {
                    State::ColumnsEof
                }
            }
            (State::ColumnsEof, _) => {
                self.on_status(p);
                if self.status.unwrap_or(0) & STATUS_CURSOR_EXISTS != 0 {
                    State::Done
                } else {
                    State::Rows
                }
            }
            (State::Rows, _) => {
                if is_terminator(p) {
                    self.on_status(p);
                    if self.kind == ResponseKind::Fetch {
                        State::Done
                    } else {
                        self.after_result()
                    }
                } else {
                    State::Rows
                }
            }
            (State::Params(n), _) => {
                if n > 1 {
                    State::Params(n - 1)
                } else if !self.deprecate_eof {
                    State::ParamsEof
                } else {
                    self.after_prepare_params(self.prepare.unwrap(), false)
                }
            }
            (State::ParamsEof, _) => self.after_prepare_params(self.prepare.unwrap(), false),
            (State::PrepareColumns(n), _) => {
                if n > 1 {
                    State::PrepareColumns(n - 1)
                } else if !self.deprecate_eof {
                    State::PrepareColumnsEof
                } else {
                    State::Done
                }
            }
            (State::PrepareColumnsEof, _) => State::Done,
            (State::FieldList, _) => {
                if is_terminator(p) {
                    self.on_status(p);
                    State::Done
                } else {
                    State::FieldList
                }
            }
        };
        if self.state == State::Done {
            Step::Done
        } else {
            Step::More
        }
    }

    /// Inside column/parameter definitions a leading 0xFF cannot occur (they start with the
    /// length-encoded catalog "def"), so 0xFF there is not an error marker either way; only
    /// the states that may legitimately carry ERR treat it as one.
    fn in_definitions(&self) -> bool {
        matches!(
            self.state,
            State::Columns(_) | State::Params(_) | State::PrepareColumns(_)
        )
    }

    fn on_ok(&mut self, p: &[u8]) {
        self.on_status(p);
        let mut b = ParseBuf(&p[1..]);
        if let (Some(a), Some(i)) = (b.checked_eat_lenenc_int(), b.checked_eat_lenenc_int()) {
            self.last_ok = Some((a, i));
        }
    }

    fn after_result(&self) -> State {
        if self.status.unwrap_or(0) & STATUS_MORE_RESULTS != 0 {
            State::Start
        } else {
            State::Done
        }
    }

    fn after_prepare_params(&self, ok: PrepareOk, params_pending: bool) -> State {
        if params_pending {
            State::Params(u64::from(ok.params))
        } else if ok.columns > 0 {
            State::PrepareColumns(u64::from(ok.columns))
        } else {
            State::Done
        }
    }
}

/// Parses a PREPARE_OK packet (`0x00, stmt_id u32, columns u16, params u16, 0, warnings u16`).
pub fn parse_prepare_ok(p: &[u8]) -> Option<PrepareOk> {
    if p.first() != Some(&0x00) || p.len() < 9 {
        return None;
    }
    Some(PrepareOk {
        statement_id: u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
        columns: u16::from_le_bytes([p[5], p[6]]),
        params: u16::from_le_bytes([p[7], p[8]]),
    })
}

#[cfg(test)]
mod tests {
    use super::super::ok::{end_of_rows_payload, eof_payload, ok_payload, STATUS_AUTOCOMMIT};
    use super::*;

    fn col() -> Vec<u8> {
        super::super::resultset::ColumnDef::text("c", 10).payload()
    }

    fn feed(t: &mut ResponseTracker, packets: &[Vec<u8>]) -> Vec<Step> {
        packets.iter().map(|p| t.on_packet(p)).collect()
    }

    #[test]
    fn text_result_with_classic_eof_ends_after_second_eof() {
        let mut t = ResponseTracker::new(ResponseKind::Query, false);
        let steps = feed(
            &mut t,
            &[
                vec![2],
                col(),
                col(),
                eof_payload(STATUS_AUTOCOMMIT),
                vec![1, b'a', 1, b'b'],
                eof_payload(STATUS_AUTOCOMMIT),
            ],
        );
        assert_eq!(steps.last(), Some(&Step::Done));
        assert!(steps[..5].iter().all(|s| *s == Step::More));
        assert_eq!(t.status, Some(STATUS_AUTOCOMMIT));
    }

    #[test]
    fn multi_results_continue_while_more_results_flag_is_set() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        let more = STATUS_MORE_RESULTS | STATUS_AUTOCOMMIT;
        let steps = feed(
            &mut t,
            &[
                vec![1],
                col(),
                vec![1, b'1'],
                end_of_rows_payload(true, more),
                ok_payload(1, 0, more, 0),
                vec![1],
                col(),
                end_of_rows_payload(true, STATUS_AUTOCOMMIT),
            ],
        );
        assert_eq!(
            steps,
            vec![
                Step::More,
                Step::More,
                Step::More,
                Step::More,
                Step::More,
                Step::More,
                Step::More,
                Step::Done
            ]
        );
    }

    #[test]
    fn error_mid_rows_ends_the_response() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        feed(&mut t, &[vec![1], col(), vec![1, b'x']]);
        assert_eq!(t.on_packet(&[0xFF, 0x10, 0x04]), Step::Done);
        assert!(t.error);
    }

    #[test]
    fn local_infile_request_is_reported() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        assert_eq!(t.on_packet(b"\xFB/tmp/x.csv"), Step::LocalInfile);
        assert_eq!(t.on_packet(&ok_payload(3, 0, 2, 0)), Step::Done);
        assert_eq!(t.last_ok, Some((3, 0)));
    }

    #[test]
    fn prepare_with_params_and_columns_without_deprecate_eof() {
        let mut t = ResponseTracker::new(ResponseKind::Prepare, false);
        let ok = [0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
        let steps = feed(
            &mut t,
            &[
                ok.to_vec(),
                col(),
                col(),
                eof_payload(2),
                col(),
                eof_payload(2),
            ],
        );
        assert_eq!(steps.last(), Some(&Step::Done));
        assert_eq!(steps.iter().filter(|s| **s == Step::Done).count(), 1);
        assert_eq!(
            t.prepare,
            Some(PrepareOk {
                statement_id: 7,
                columns: 1,
                params: 2
            })
        );
    }

    #[test]
    fn prepare_without_params_or_columns_is_one_packet() {
        let mut t = ResponseTracker::new(ResponseKind::Prepare, true);
        assert_eq!(
            t.on_packet(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Step::Done
        );
    }

    #[test]
    fn cursor_response_ends_after_column_eof() {
        let mut t = ResponseTracker::new(ResponseKind::Query, false);
        let steps = feed(&mut t, &[vec![1], col(), eof_payload(STATUS_CURSOR_EXISTS)]);
        assert_eq!(steps.last(), Some(&Step::Done));
    }

    #[test]
    fn field_list_ends_at_terminator() {
        let mut t = ResponseTracker::new(ResponseKind::FieldList, false);
        assert_eq!(t.on_packet(&col()), Step::More);
        assert_eq!(t.on_packet(&eof_payload(2)), Step::Done);
    }
}

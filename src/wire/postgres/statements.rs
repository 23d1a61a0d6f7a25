//! Named prepared statements of one client session.
//!
//! Statement names are kept as the client chose them on the backend, and every Parse a
//! client sends is remembered. When a backend connection that has not seen a statement is
//! asked to Bind or Describe it (after a reconnect today, after multiplexing later), the
//! remembered Parse is sent first and its ParseComplete is swallowed, so the client never
//! notices that its connection changed.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::message::cstr;

/// One ParseComplete the backend owes, and to whom.
#[derive(Debug)]
struct PendingParse {
    /// The statement to forget if the Parse is skipped; empty for the unnamed statement and
    /// for a Parse that cannot create anything (its name is taken).
    name: String,
    injected: bool,
    /// The Sync (or Query) the Parse was sent before, numbered from 0: its ReadyForQuery
    /// tells whether the Parse was skipped.
    sync: u64,
}

/// The session's statements and the bookkeeping of responses in flight.
#[derive(Default)]
pub struct Statements {
    /// Statement name → the client's Parse message, as sent.
    parses: HashMap<String, Bytes>,
    pending: VecDeque<PendingParse>,
    /// Syncs and Queries forwarded to the backend so far.
    syncs_sent: u64,
    /// ReadyForQuery messages received so far.
    readies: u64,
}

impl Statements {
    /// Records a Parse the client sends (its whole message) and returns the statement name.
    pub fn on_parse(&mut self, message: &[u8]) -> Option<String> {
        let name = String::from_utf8_lossy(parse_statement(message)?).into_owned();
        // A name already in use: the backend refuses the Parse (42P05) and the existing
        // statement stays, so there is nothing to record or to forget.
        let creates = !name.is_empty() && !self.parses.contains_key(&name);
        if creates {
            self.parses
                .insert(name.clone(), Bytes::copy_from_slice(message));
        }
        self.pending.push_back(PendingParse {
            name: if creates { name.clone() } else { String::new() },
            injected: false,
            sync: self.syncs_sent,
        });
        Some(name)
    }

    /// The SQL of prepared statement `name` (for the statement metrics).
    pub fn query_of(&self, name: &str) -> Option<&[u8]> {
        self.parses.get(name).and_then(|p| parse_query(p))
    }

    /// The remembered Parse for `name`, to send on a connection that lacks it; the
    /// ParseComplete it causes is marked for swallowing.
    pub fn inject(&mut self, name: &str) -> Option<Bytes> {
        let parse = self.parses.get(name)?.clone();
        self.pending.push_back(PendingParse {
            name: name.to_string(),
            injected: true,
            sync: self.syncs_sent,
        });
        Some(parse)
    }

    /// A ParseComplete arrived: true when dbmesh caused it and the client must not see it.
    pub fn on_parse_complete(&mut self) -> bool {
        self.pending.pop_front().is_some_and(|p| p.injected)
    }

    /// A Sync or Query went to the backend: a ReadyForQuery will answer it.
    pub fn on_sync(&mut self) {
        self.syncs_sent += 1;
    }

    /// ReadyForQuery: Parses sent before the Sync it answers that are still pending were
    /// skipped after an error, so those statements do not exist. (Parses pipelined after
    /// that Sync are still on their way.) Returns their names, to forget on the backend
    /// connection too.
    pub fn on_ready(&mut self) -> Vec<String> {
        let answered = self.readies;
        self.readies += 1;
        let mut failed = Vec::new();
        while self.pending.front().is_some_and(|p| p.sync <= answered) {
            let p = self.pending.pop_front().expect("checked");
            if !p.name.is_empty() {
                failed.push(p.name);
            }
        }
        for name in &failed {
            self.parses.remove(name);
        }
        failed
    }

    pub fn close(&mut self, name: &str) {
        self.parses.remove(name);
    }

    pub fn knows(&self, name: &str) -> bool {
        self.parses.contains_key(name)
    }

    pub fn clear(&mut self) {
        self.parses.clear();
        self.pending.clear();
    }
}

/// The statement name a Parse creates (`P`, len, statement, query, ...).
pub fn parse_statement(message: &[u8]) -> Option<&[u8]> {
    cstr(message.get(5..)?).map(|(s, _)| s)
}

/// The query text of a Parse.
pub fn parse_query(message: &[u8]) -> Option<&[u8]> {
    let (_, rest) = cstr(message.get(5..)?)?;
    cstr(rest).map(|(q, _)| q)
}

/// The statement name a Bind refers to (`B`, len, portal, statement, ...).
pub fn bind_statement(message: &[u8]) -> Option<&[u8]> {
    let (_, rest) = cstr(message.get(5..)?)?;
    cstr(rest).map(|(s, _)| s)
}

/// For Describe and Close: the kind byte (`S` statement / `P` portal) and the name.
pub fn target(message: &[u8]) -> Option<(u8, &[u8])> {
    let kind = *message.get(5)?;
    cstr(message.get(6..)?).map(|(n, _)| (kind, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_msg(name: &str) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        postgres_protocol::message::frontend::parse(name, "SELECT 1", std::iter::empty(), &mut b)
            .unwrap();
        b.to_vec()
    }

    #[test]
    fn injected_parse_completes_are_swallowed_in_order() {
        let mut s = Statements::default();
        s.on_parse(&parse_msg("a"));
        assert!(s.inject("a").is_some());
        s.on_parse(&parse_msg(""));
        assert!(!s.on_parse_complete());
        assert!(s.on_parse_complete());
        assert!(!s.on_parse_complete());
        s.on_sync();
        assert!(s.on_ready().is_empty());
    }

    #[test]
    fn parses_skipped_after_an_error_are_forgotten_at_ready() {
        let mut s = Statements::default();
        s.on_parse(&parse_msg("bad"));
        s.on_sync();
        assert_eq!(s.on_ready(), vec!["bad".to_string()]);
        assert!(!s.knows("bad"));
    }

    #[test]
    fn parses_pipelined_after_a_sync_survive_its_ready() {
        let mut s = Statements::default();
        s.on_sync();
        s.on_parse(&parse_msg("next"));
        s.on_sync();
        assert!(s.on_ready().is_empty(), "the first Sync's ReadyForQuery");
        assert!(s.knows("next"));
        assert!(!s.on_parse_complete());
        assert!(s.on_ready().is_empty());
        assert!(s.knows("next"));
    }

    #[test]
    fn a_refused_duplicate_parse_keeps_the_existing_statement() {
        let mut s = Statements::default();
        s.on_parse(&parse_msg("s1"));
        s.on_sync();
        assert!(!s.on_parse_complete());
        s.on_ready();
        let mut dup = bytes::BytesMut::new();
        postgres_protocol::message::frontend::parse("s1", "SELECT 2", std::iter::empty(), &mut dup)
            .unwrap();
        s.on_parse(&dup);
        s.on_sync();
        assert!(s.on_ready().is_empty());
        assert_eq!(s.inject("s1").as_deref(), Some(&parse_msg("s1")[..]));
        assert_eq!(parse_query(&dup), Some(&b"SELECT 2"[..]));
    }

    #[test]
    fn reads_names_from_bind_describe_and_close() {
        // Bind: 'B', length, portal "portal", statement "stmt", no formats/params/results.
        let body = b"portal\0stmt\0\0\0\0\0\0\0";
        let mut b = vec![b'B'];
        b.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        b.extend_from_slice(body);
        assert_eq!(bind_statement(&b), Some(&b"stmt"[..]));
        let mut d = bytes::BytesMut::new();
        postgres_protocol::message::frontend::describe(b'S', "s1", &mut d).unwrap();
        assert_eq!(target(&d), Some((b'S', &b"s1"[..])));
    }
}

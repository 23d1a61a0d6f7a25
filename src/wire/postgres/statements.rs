//! Named prepared statements of one client session in the single-data-source pump, under
//! backend names of dbmesh's own.
//!
//! With transaction pooling a session's next transaction may run on another backend
//! connection, one that other sessions used before. So, as pgbouncer 1.21 and PgDog do, a
//! client's statement name never reaches the backend: the statement is prepared there as
//! `__dbmesh_<hash of query and parameter types>`, and Parse, Bind, Describe and Close are
//! rewritten. Two sessions' statements of the same name cannot clash, and the same SQL is
//! prepared once per backend connection and shared by every session that uses it.
//!
//! Every Parse a client sends is remembered. When a connection that lacks a statement is
//! asked to Bind or Describe it, the remembered Parse goes first and its ParseComplete is
//! swallowed. A client's Parse of SQL that the connection already has prepared is answered
//! by the backend with the ParseComplete of an empty statement dbmesh parses and closes at
//! once (its CloseComplete swallowed), so answers stay in order without dbmesh writing any
//! itself. A client's Close of a statement only forgets the name: the backend statement
//! stays for others, and the client gets the CloseComplete of a Close of a statement that
//! does not exist. Past [`MAX_PREPARED`] statements on a connection the least recently used
//! is closed (CloseComplete swallowed).
//!
//! The unnamed statement and portals are forwarded as they are: they live within one Sync
//! batch, and the pump never changes connections inside one.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use bytes::{BufMut, Bytes, BytesMut};

use super::message::cstr;
use super::prepared_cache::{PreparedCache, MAX_PREPARED};

/// A statement dbmesh parses and closes itself, for the ParseComplete or CloseComplete the
/// client is owed: no client statement is ever prepared under this name.
const PLACEHOLDER: &str = "__dbmesh_placeholder";

/// One client statement: its backend name and the Parse that creates it there.
#[derive(Debug, Clone)]
struct Named {
    backend: String,
    parse: Bytes,
}

/// One Parse sent to the backend, whose ParseComplete is owed.
#[derive(Debug, Clone)]
struct PendingParse {
    /// The client statement to forget if the Parse is skipped ("" for none).
    forget: String,
    /// The backend statement it creates, gone if it is skipped ("" for none).
    creates: String,
    injected: bool,
    /// The Sync (or Query) the Parse was sent before, numbered from 0: its ReadyForQuery
    /// tells whether the Parse was skipped.
    sync: u64,
}

/// One Close sent to the backend, whose CloseComplete is owed.
#[derive(Debug, Clone)]
struct PendingClose {
    injected: bool,
    sync: u64,
}

/// The session's statements and the bookkeeping of responses in flight. Cloned to send a
/// request again on another connection as if for the first time (`frontend/resend.rs`).
#[derive(Default, Clone)]
pub struct Statements {
    named: HashMap<String, Named>,
    parses: VecDeque<PendingParse>,
    closes: VecDeque<PendingClose>,
    /// Syncs and Queries forwarded to the backend so far.
    syncs_sent: u64,
    /// ReadyForQuery messages received so far.
    readies: u64,
}

impl Statements {
    /// A client's Parse: written to `out` as the backend should see it. Returns the
    /// client's statement name.
    pub fn on_parse(&mut self, msg: &[u8], out: &mut BytesMut, cache: &mut PreparedCache) {
        let Some(name) = parse_statement(msg).map(|n| String::from_utf8_lossy(n).into_owned())
        else {
            out.extend_from_slice(msg);
            return;
        };
        if name.is_empty() {
            self.parse_sent(String::new(), String::new(), false);
            out.extend_from_slice(msg);
            return;
        }
        if let Some(existing) = self.ensure(&name, out, cache) {
            // The name is taken: the backend refuses the Parse (42P05) and the existing
            // statement stays, as it would without dbmesh.
            self.parse_sent(String::new(), String::new(), false);
            write_renamed(out, msg, 5, name.len(), &existing);
            return;
        }
        let backend = backend_name(&msg[5 + name.len() + 1..]);
        let mut parse = BytesMut::new();
        write_renamed(&mut parse, msg, 5, name.len(), &backend);
        let parse = parse.freeze();
        if cache.contains(&backend) {
            cache.touch(&backend);
            self.parse_sent(name.clone(), String::new(), false);
            placeholder_parse(out);
            self.close_sent(true);
            placeholder_close(out);
        } else {
            self.parse_sent(name.clone(), backend.clone(), false);
            out.extend_from_slice(&parse);
            cache.insert(backend.clone());
            self.evict(&backend, out, cache);
        }
        self.named.insert(name, Named { backend, parse });
    }

    /// A client's Bind: the statement it names is prepared on this connection first if
    /// need be, and the Bind renamed.
    pub fn on_bind(&mut self, msg: &[u8], out: &mut BytesMut, cache: &mut PreparedCache) {
        let Some((portal, _)) = msg.get(5..).and_then(cstr) else {
            out.extend_from_slice(msg);
            return;
        };
        let at = 5 + portal.len() + 1;
        let statement = bind_statement(msg).map(|s| String::from_utf8_lossy(s).into_owned());
        match statement.and_then(|s| Some((s.len(), self.ensure(&s, out, cache)?))) {
            Some((len, backend)) => write_renamed(out, msg, at, len, &backend),
            None => out.extend_from_slice(msg),
        }
    }

    /// A client's Describe: of a statement, renamed (and prepared first if need be).
    pub fn on_describe(&mut self, msg: &[u8], out: &mut BytesMut, cache: &mut PreparedCache) {
        match target(msg) {
            Some((b'S', name)) if !name.is_empty() => {
                let name = String::from_utf8_lossy(name).into_owned();
                match self.ensure(&name, out, cache) {
                    Some(backend) => write_renamed(out, msg, 6, name.len(), &backend),
                    None => out.extend_from_slice(msg),
                }
            }
            _ => out.extend_from_slice(msg),
        }
    }

    /// A client's Close: of a statement, the name is forgotten and the backend statement
    /// stays (for the session's other names and other sessions); of a portal, forwarded.
    pub fn on_close(&mut self, msg: &[u8], out: &mut BytesMut) {
        self.close_sent(false);
        match target(msg) {
            Some((b'S', name)) if !name.is_empty() => {
                self.named.remove(String::from_utf8_lossy(name).as_ref());
                placeholder_close(out);
            }
            _ => out.extend_from_slice(msg),
        }
    }

    /// The backend name of client statement `name`, after writing its Parse to `out` if
    /// the connection lacks it; `None` for a statement the session does not have.
    fn ensure(
        &mut self,
        name: &str,
        out: &mut BytesMut,
        cache: &mut PreparedCache,
    ) -> Option<String> {
        let named = self.named.get(name)?.clone();
        if cache.contains(&named.backend) {
            cache.touch(&named.backend);
        } else {
            self.parse_sent(String::new(), named.backend.clone(), true);
            out.extend_from_slice(&named.parse);
            cache.insert(named.backend.clone());
            self.evict(&named.backend, out, cache);
        }
        Some(named.backend)
    }

    /// Closes the least recently used statements past the bound (never `keep`, just used).
    fn evict(&mut self, keep: &str, out: &mut BytesMut, cache: &mut PreparedCache) {
        for victim in cache.evict_over(MAX_PREPARED) {
            if victim == keep {
                cache.insert(victim);
                continue;
            }
            self.close_sent(true);
            write_close(out, &victim);
        }
    }

    fn parse_sent(&mut self, forget: String, creates: String, injected: bool) {
        self.parses.push_back(PendingParse {
            forget,
            creates,
            injected,
            sync: self.syncs_sent,
        });
    }

    fn close_sent(&mut self, injected: bool) {
        self.closes.push_back(PendingClose {
            injected,
            sync: self.syncs_sent,
        });
    }

    /// The SQL of prepared statement `name` (for the statement metrics).
    pub fn query_of(&self, name: &str) -> Option<&[u8]> {
        self.named.get(name).and_then(|p| parse_query(&p.parse))
    }

    /// A ParseComplete arrived: true when dbmesh caused it and the client must not see it.
    pub fn on_parse_complete(&mut self) -> bool {
        self.parses.pop_front().is_some_and(|p| p.injected)
    }

    /// A CloseComplete arrived: true when dbmesh caused it and the client must not see it.
    pub fn on_close_complete(&mut self) -> bool {
        self.closes.pop_front().is_some_and(|c| c.injected)
    }

    /// A Sync or Query went to the backend: a ReadyForQuery will answer it.
    pub fn on_sync(&mut self) {
        self.syncs_sent += 1;
    }

    /// ReadyForQuery: Parses and Closes sent before the Sync it answers that are still
    /// pending were skipped after an error, so those statements do not exist (on the
    /// connection, and for the client if it was its own Parse). Messages pipelined after
    /// that Sync are still on their way.
    pub fn on_ready(&mut self, cache: &mut PreparedCache) {
        let answered = self.readies;
        self.readies += 1;
        while self.parses.front().is_some_and(|p| p.sync <= answered) {
            let p = self.parses.pop_front().expect("checked");
            if !p.creates.is_empty() {
                cache.remove(&p.creates);
            }
            if !p.forget.is_empty() {
                self.named.remove(&p.forget);
            }
        }
        while self.closes.front().is_some_and(|c| c.sync <= answered) {
            self.closes.pop_front();
        }
    }

    /// The backend dropped every prepared statement (`DISCARD ALL`, `DEALLOCATE ALL`): the
    /// client's are gone too.
    pub fn clear(&mut self) {
        self.named.clear();
    }

    /// The connection changed with nothing in flight: responses owed by the old one will
    /// not come.
    pub fn connection_changed(&mut self) {
        self.parses.clear();
        self.closes.clear();
        self.readies = self.syncs_sent;
    }
}

/// `__dbmesh_` and 128 bits of hash of a Parse's query and parameter types: equal SQL gets
/// the same backend statement, on any connection.
fn backend_name(query_and_types: &[u8]) -> String {
    let hash = |seed: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        query_and_types.hash(&mut h);
        h.finish()
    };
    format!("__dbmesh_{:016x}{:016x}", hash(0), hash(1))
}

/// Writes `msg` with the `len`-byte name at `at` replaced by `name`.
fn write_renamed(out: &mut BytesMut, msg: &[u8], at: usize, len: usize, name: &str) {
    let total = msg.len() - len + name.len();
    out.put_u8(msg[0]);
    out.put_i32((total - 1) as i32);
    out.extend_from_slice(&msg[5..at]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&msg[at + len..]);
}

fn write_close(out: &mut BytesMut, name: &str) {
    postgres_protocol::message::frontend::close(b'S', name, out).expect("no NUL in the name");
}

fn placeholder_parse(out: &mut BytesMut) {
    postgres_protocol::message::frontend::parse(PLACEHOLDER, "", std::iter::empty(), out)
        .expect("no NUL in the name");
}

fn placeholder_close(out: &mut BytesMut) {
    write_close(out, PLACEHOLDER);
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
    use postgres_protocol::message::frontend;

    fn parse_msg(name: &str, sql: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        frontend::parse(name, sql, std::iter::empty(), &mut b).unwrap();
        b.to_vec()
    }

    fn bind_msg(statement: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        frontend::bind(
            "",
            statement,
            std::iter::empty::<i16>(),
            std::iter::empty::<Option<&[u8]>>(),
            |v, buf| {
                buf.extend_from_slice(v.unwrap());
                Ok(postgres_protocol::IsNull::No)
            },
            Some(1),
            &mut b,
        )
        .map_err(|_| ())
        .unwrap();
        b.to_vec()
    }

    /// The messages in `out`, as (tag, name) with the name each carries.
    fn names(out: &[u8]) -> Vec<(char, String)> {
        let mut at = 0;
        let mut v = Vec::new();
        while at < out.len() {
            let len = i32::from_be_bytes(out[at + 1..at + 5].try_into().unwrap()) as usize;
            let msg = &out[at..at + 1 + len];
            let name = match msg[0] {
                b'P' => parse_statement(msg),
                b'B' => bind_statement(msg),
                _ => target(msg).map(|(_, n)| n),
            };
            v.push((
                msg[0] as char,
                String::from_utf8_lossy(name.unwrap()).into(),
            ));
            at += 1 + len;
        }
        v
    }

    #[test]
    fn renames_a_statement_in_parse_and_bind() {
        let (mut s, mut cache, mut out) = (
            Statements::default(),
            PreparedCache::default(),
            BytesMut::new(),
        );
        s.on_parse(&parse_msg("s1", "SELECT 1"), &mut out, &mut cache);
        s.on_bind(&bind_msg("s1"), &mut out, &mut cache);
        let n = names(&out);
        assert_eq!(n.len(), 2);
        assert!(n[0].1.starts_with("__dbmesh_"), "{n:?}");
        assert_eq!(n[0].1, n[1].1);
        assert!(cache.contains(&n[0].1));
        // The rewritten Parse still carries the query.
        assert_eq!(parse_query(&out), Some(&b"SELECT 1"[..]));
        assert!(!s.on_parse_complete(), "the client's own ParseComplete");
    }

    #[test]
    fn same_sql_on_a_connection_that_has_it_is_answered_by_a_placeholder() {
        let mut cache = PreparedCache::default();
        let mut a = Statements::default();
        let mut out = BytesMut::new();
        a.on_parse(&parse_msg("s1", "SELECT 1"), &mut out, &mut cache);
        let shared = names(&out)[0].1.clone();
        // Another session, same SQL, same name: no clash, no second Parse of it.
        let mut b = Statements::default();
        let mut out = BytesMut::new();
        b.on_parse(&parse_msg("s1", "SELECT 1"), &mut out, &mut cache);
        assert_eq!(
            names(&out),
            vec![('P', PLACEHOLDER.into()), ('C', PLACEHOLDER.into())]
        );
        assert!(
            !b.on_parse_complete(),
            "relayed as the client's ParseComplete"
        );
        assert!(
            b.on_close_complete(),
            "the placeholder's CloseComplete is swallowed"
        );
        let mut out = BytesMut::new();
        b.on_bind(&bind_msg("s1"), &mut out, &mut cache);
        assert_eq!(names(&out), vec![('B', shared)]);
    }

    #[test]
    fn same_name_different_sql_gets_different_backend_statements() {
        let mut cache = PreparedCache::default();
        let (mut a, mut b) = (Statements::default(), Statements::default());
        let (mut oa, mut ob) = (BytesMut::new(), BytesMut::new());
        a.on_parse(&parse_msg("s1", "SELECT 1"), &mut oa, &mut cache);
        b.on_parse(&parse_msg("s1", "SELECT 2"), &mut ob, &mut cache);
        assert_ne!(names(&oa)[0].1, names(&ob)[0].1);
    }

    #[test]
    fn a_new_connection_gets_the_parse_before_the_bind_and_its_answer_is_swallowed() {
        let mut s = Statements::default();
        let mut out = BytesMut::new();
        s.on_parse(
            &parse_msg("s1", "SELECT 1"),
            &mut out,
            &mut PreparedCache::default(),
        );
        s.on_sync();
        assert!(!s.on_parse_complete());
        s.on_ready(&mut PreparedCache::default());
        s.connection_changed();
        let mut fresh = PreparedCache::default();
        let mut out = BytesMut::new();
        s.on_bind(&bind_msg("s1"), &mut out, &mut fresh);
        let n = names(&out);
        assert_eq!(n.iter().map(|m| m.0).collect::<String>(), "PB");
        assert!(s.on_parse_complete(), "injected");
        assert!(fresh.contains(&n[0].1));
    }

    #[test]
    fn closing_forgets_the_name_and_answers_with_a_placeholder_close() {
        let (mut s, mut cache, mut out) = (
            Statements::default(),
            PreparedCache::default(),
            BytesMut::new(),
        );
        s.on_parse(&parse_msg("s1", "SELECT 1"), &mut out, &mut cache);
        let mut out = BytesMut::new();
        let mut close = BytesMut::new();
        frontend::close(b'S', "s1", &mut close).unwrap();
        s.on_close(&close, &mut out);
        assert_eq!(names(&out), vec![('C', PLACEHOLDER.into())]);
        assert!(!s.on_close_complete(), "the client's CloseComplete");
        assert_eq!(cache.len(), 1, "the backend statement stays for others");
        let mut out = BytesMut::new();
        s.on_bind(&bind_msg("s1"), &mut out, &mut cache);
        assert_eq!(
            names(&out),
            vec![('B', "s1".into())],
            "unknown: the backend says 26000"
        );
    }

    #[test]
    fn parses_skipped_after_an_error_are_forgotten_at_ready() {
        let (mut s, mut cache, mut out) = (
            Statements::default(),
            PreparedCache::default(),
            BytesMut::new(),
        );
        s.on_parse(&parse_msg("bad", "SELEC 1"), &mut out, &mut cache);
        s.on_sync();
        s.on_ready(&mut cache);
        assert!(s.query_of("bad").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn an_injected_parse_skipped_after_an_error_keeps_the_clients_statement() {
        let (mut s, mut cache, mut out) = (
            Statements::default(),
            PreparedCache::default(),
            BytesMut::new(),
        );
        s.on_parse(&parse_msg("s1", "SELECT 1"), &mut out, &mut cache);
        s.on_sync();
        s.on_parse_complete();
        s.on_ready(&mut cache);
        let mut fresh = PreparedCache::default();
        s.on_bind(&bind_msg("s1"), &mut out, &mut fresh);
        s.on_sync();
        s.on_ready(&mut fresh);
        assert!(fresh.is_empty(), "the skipped Parse created nothing there");
        assert!(
            s.query_of("s1").is_some(),
            "but the client's statement exists"
        );
    }

    #[test]
    fn parses_pipelined_after_a_sync_survive_its_ready() {
        let (mut s, mut cache, mut out) = (
            Statements::default(),
            PreparedCache::default(),
            BytesMut::new(),
        );
        s.on_sync();
        s.on_parse(&parse_msg("next", "SELECT 1"), &mut out, &mut cache);
        s.on_sync();
        s.on_ready(&mut cache);
        assert!(s.query_of("next").is_some());
        assert!(!s.on_parse_complete());
        s.on_ready(&mut cache);
        assert!(s.query_of("next").is_some());
    }

    #[test]
    fn a_duplicate_parse_goes_to_the_existing_backend_statement_to_fail_there() {
        let (mut s, mut cache, mut out) = (
            Statements::default(),
            PreparedCache::default(),
            BytesMut::new(),
        );
        s.on_parse(&parse_msg("s1", "SELECT 1"), &mut out, &mut cache);
        let first = names(&out)[0].1.clone();
        assert!(!s.on_parse_complete());
        let mut out = BytesMut::new();
        s.on_parse(&parse_msg("s1", "SELECT 2"), &mut out, &mut cache);
        assert_eq!(names(&out), vec![('P', first)]);
        assert_eq!(parse_query(&out), Some(&b"SELECT 2"[..]));
        s.on_sync();
        s.on_ready(&mut cache);
        assert_eq!(
            s.query_of("s1"),
            Some(&b"SELECT 1"[..]),
            "the existing one stays"
        );
    }

    #[test]
    fn past_the_bound_the_least_recently_used_is_closed_and_swallowed() {
        let (mut s, mut cache) = (Statements::default(), PreparedCache::default());
        for i in 0..MAX_PREPARED {
            s.on_parse(
                &parse_msg(&format!("s{i}"), &format!("SELECT {i}")),
                &mut BytesMut::new(),
                &mut cache,
            );
        }
        let mut out = BytesMut::new();
        s.on_parse(&parse_msg("last", "SELECT 'last'"), &mut out, &mut cache);
        let n = names(&out);
        assert_eq!(n.iter().map(|m| m.0).collect::<String>(), "PC");
        assert_eq!(cache.len(), MAX_PREPARED);
        assert!(
            s.on_close_complete(),
            "the eviction's CloseComplete is swallowed"
        );
    }

    #[test]
    fn reads_names_from_bind_describe_and_close() {
        // Bind: 'B', length, portal "portal", statement "stmt", no formats/params/results.
        let body = b"portal\0stmt\0\0\0\0\0\0\0";
        let mut b = vec![b'B'];
        b.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        b.extend_from_slice(body);
        assert_eq!(bind_statement(&b), Some(&b"stmt"[..]));
        let mut d = BytesMut::new();
        frontend::describe(b'S', "s1", &mut d).unwrap();
        assert_eq!(target(&d), Some((b'S', &b"s1"[..])));
        let mut out = BytesMut::new();
        write_renamed(&mut out, &b, 12, 4, "other_name");
        assert_eq!(bind_statement(&out), Some(&b"other_name"[..]));
        assert_eq!(out.len(), b.len() + 6);
    }
}

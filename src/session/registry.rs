//! Every live client session, protocol-neutral, for `SHOW DBMESH SESSIONS`.
//!
//! The registry's map is locked only when a session starts or ends and when an admin lists
//! the sessions. On the hot path a session touches only its own [`SessionInfo`]: the state
//! and statement start are atomics, and the statement text sits behind the session's own
//! mutex, which nobody else contends for but a `SHOW DBMESH SESSIONS` reader. The text is
//! cut to [`MAX_STATEMENT_CHARS`] and its buffer is reused, so recording a statement
//! does not allocate once the session has run one of that length.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How much of the current statement a session keeps for `SHOW DBMESH SESSIONS`.
pub const MAX_STATEMENT_CHARS: usize = 256;

/// What a session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the client, outside a transaction.
    Idle,
    /// Waiting for the client, inside a transaction.
    InTransaction,
    /// Running a statement.
    Active,
}

impl SessionState {
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::InTransaction => "in transaction",
            SessionState::Active => "active",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => SessionState::InTransaction,
            2 => SessionState::Active,
            _ => SessionState::Idle,
        }
    }
}

/// One session as others may see it.
#[derive(Debug)]
pub struct SessionInfo {
    /// The connection id (MySQL connection id, PostgreSQL backend pid), unique across both.
    pub id: u32,
    /// `mysql` or `postgres`.
    pub protocol: &'static str,
    /// The client's address.
    pub client: String,
    /// Unix time in ms the session logged in.
    pub connected_ms: u64,
    /// The login name (MySQL's COM_CHANGE_USER changes it).
    user: Mutex<String>,
    state: AtomicU8,
    /// Unix time in ms the current (or last) statement started; 0 = none yet.
    statement_ms: AtomicU64,
    statement: Mutex<String>,
    database: Mutex<Option<String>>,
}

/// A reading of a [`SessionInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: u32,
    pub user: String,
    pub protocol: &'static str,
    pub client: String,
    pub database: Option<String>,
    pub state: SessionState,
    /// The current statement when active, else the last one (`None` before the first).
    pub statement: Option<String>,
    /// Unix time in ms that statement started.
    pub statement_ms: Option<u64>,
    pub connected_ms: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl SessionInfo {
    /// A statement starts (`sql` is its text, or a command name such as `COM_PING`).
    pub fn begin_statement(&self, sql: &str) {
        {
            let mut s = self.statement.lock().unwrap();
            s.clear();
            let cut = sql
                .char_indices()
                .nth(MAX_STATEMENT_CHARS)
                .map_or(sql.len(), |(i, _)| i);
            s.push_str(sql[..cut].trim());
        }
        self.statement_ms.store(now_ms(), Ordering::Relaxed);
        self.state
            .store(SessionState::Active as u8, Ordering::Relaxed);
    }

    /// [`begin_statement`](Self::begin_statement) from the statement's bytes as the client
    /// sent them: only the start is looked at (a multi-megabyte INSERT is not scanned), and
    /// bytes that are not UTF-8 are shown as U+FFFD.
    pub fn begin_statement_bytes(&self, sql: &[u8]) {
        let head = &sql[..sql.len().min(MAX_STATEMENT_CHARS * 4)];
        self.begin_statement(&String::from_utf8_lossy(head));
    }

    /// The statement whose text was recorded (by a Parse) runs now: a PostgreSQL Bind or
    /// Execute arrives as a message of its own, after the Parse's.
    pub fn mark_active(&self) {
        self.state
            .store(SessionState::Active as u8, Ordering::Relaxed);
    }

    /// The statement ended; the session waits for its client, in a transaction or not.
    pub fn end_statement(&self, in_transaction: bool) {
        let state = if in_transaction {
            SessionState::InTransaction
        } else {
            SessionState::Idle
        };
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// COM_CHANGE_USER logged the session in as `user`.
    pub fn set_user(&self, user: &str) {
        *self.user.lock().unwrap() = user.to_string();
    }

    /// The session's logical database changed.
    pub fn set_database(&self, database: Option<&str>) {
        let mut d = self.database.lock().unwrap();
        if d.as_deref() != database {
            *d = database.map(str::to_string);
        }
    }

    fn row(&self) -> SessionRow {
        let statement = self.statement.lock().unwrap();
        let started = self.statement_ms.load(Ordering::Relaxed);
        SessionRow {
            id: self.id,
            user: self.user.lock().unwrap().clone(),
            protocol: self.protocol,
            client: self.client.clone(),
            database: self.database.lock().unwrap().clone(),
            state: SessionState::from_u8(self.state.load(Ordering::Relaxed)),
            statement: (started != 0).then(|| statement.clone()),
            statement_ms: (started != 0).then_some(started),
            connected_ms: self.connected_ms,
        }
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: Mutex<BTreeMap<u32, Arc<SessionInfo>>>,
}

/// Keeps a session listed while it lives; dropping it removes the session, however the
/// connection ends.
#[derive(Debug)]
pub struct Registered {
    info: Arc<SessionInfo>,
    registry: Arc<SessionRegistry>,
}

impl std::ops::Deref for Registered {
    type Target = SessionInfo;
    fn deref(&self) -> &SessionInfo {
        &self.info
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.sessions.lock().unwrap().remove(&self.info.id);
    }
}

impl SessionRegistry {
    /// Lists a session that just logged in.
    pub fn register(
        self: &Arc<Self>,
        id: u32,
        user: &str,
        protocol: &'static str,
        client: &str,
        database: Option<&str>,
    ) -> Registered {
        let info = Arc::new(SessionInfo {
            id,
            user: Mutex::new(user.to_string()),
            protocol,
            client: client.to_string(),
            connected_ms: now_ms(),
            state: AtomicU8::new(SessionState::Idle as u8),
            statement_ms: AtomicU64::new(0),
            statement: Mutex::new(String::new()),
            database: Mutex::new(database.map(str::to_string)),
        });
        self.sessions.lock().unwrap().insert(id, info.clone());
        Registered {
            info,
            registry: self.clone(),
        }
    }

    /// Every live session, by id.
    pub fn rows(&self) -> Vec<SessionRow> {
        let sessions: Vec<Arc<SessionInfo>> =
            self.sessions.lock().unwrap().values().cloned().collect();
        sessions.iter().map(|s| s.row()).collect()
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_listed_until_its_guard_drops() {
        let registry = Arc::new(SessionRegistry::default());
        let s = registry.register(7, "app", "mysql", "127.0.0.1", Some("shop"));
        let rows = registry.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, SessionState::Idle);
        assert_eq!(rows[0].statement, None);
        assert_eq!(rows[0].database.as_deref(), Some("shop"));
        s.begin_statement("  SELECT 1  ");
        let row = &registry.rows()[0];
        assert_eq!(row.state, SessionState::Active);
        assert_eq!(row.statement.as_deref(), Some("SELECT 1"));
        s.end_statement(true);
        assert_eq!(registry.rows()[0].state, SessionState::InTransaction);
        drop(s);
        assert!(registry.is_empty());
    }

    #[test]
    fn statement_bytes_are_read_only_at_the_start_and_need_not_be_utf8() {
        let registry = Arc::new(SessionRegistry::default());
        let s = registry.register(2, "app", "mysql", "::1", None);
        let mut big = b"INSERT \xff ".to_vec();
        big.resize(10_000_000, b'x');
        s.begin_statement_bytes(&big);
        let row = &registry.rows()[0];
        let shown = row.statement.as_ref().unwrap();
        assert!(shown.starts_with("INSERT \u{fffd} x"), "{shown}");
        assert_eq!(shown.chars().count(), MAX_STATEMENT_CHARS);
    }

    #[test]
    fn long_statements_are_cut_on_a_character_boundary() {
        let registry = Arc::new(SessionRegistry::default());
        let s = registry.register(1, "app", "postgres", "::1", None);
        let long = "é".repeat(MAX_STATEMENT_CHARS + 10);
        s.begin_statement(&long);
        let row = &registry.rows()[0];
        assert_eq!(
            row.statement.as_ref().unwrap().chars().count(),
            MAX_STATEMENT_CHARS
        );
    }
}

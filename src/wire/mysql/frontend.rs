//! One client connection: the session state and the loop of commands (the handshake is in
//! `login.rs`, COM_QUERY in `query.rs`, relaying to a backend in `forward.rs`). Each command is answered by
//! dbmesh itself (USE, SHOW DATABASES, PING, ...) or routed to a backend connection whose
//! response is relayed untouched.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};
use tokio::net::TcpStream;
use tracing::{debug, info_span, Instrument};

use super::backend::BackendConn;
use super::err::{code, MysqlError};
use super::ok::{ok_payload, STATUS_AUTOCOMMIT, STATUS_IN_TRANS, STATUS_MORE_RESULTS};
use super::packet::{PacketError, PacketReader, PacketWriter};
use super::prepared::PreparedStatement;
use super::response::ResponseKind;
use super::resultset::{write_text_resultset, ColumnDef, ResultFormat};
use super::sharded_txn::ShardedTxn;
use crate::admin::metrics::{
    self as m, ConnectionMetrics, Protocol, RouteKind, StatementTimer, TxnOutcome,
};
use crate::config::BackendKind;
use crate::error::Error;
use crate::execute::pool::Lease;
use crate::execute::{Cluster, DataSource};
use crate::server::Runtime;
use crate::session::registry::Registered;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::wire::stream::{ReadHalf, Stream, WriteHalf};

pub(crate) const COM_QUIT: u8 = 0x01;
pub(crate) const COM_INIT_DB: u8 = 0x02;
pub(crate) const COM_QUERY: u8 = 0x03;
pub(crate) const COM_FIELD_LIST: u8 = 0x04;
pub(crate) const COM_STATISTICS: u8 = 0x09;
pub(crate) const COM_PING: u8 = 0x0E;
pub(crate) const COM_CHANGE_USER: u8 = 0x11;
pub(crate) const COM_STMT_PREPARE: u8 = 0x16;
pub(crate) const COM_STMT_EXECUTE: u8 = 0x17;
pub(crate) const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub(crate) const COM_STMT_CLOSE: u8 = 0x19;
pub(crate) const COM_STMT_RESET: u8 = 0x1A;
pub(crate) const COM_SET_OPTION: u8 = 0x1B;
pub(crate) const COM_STMT_FETCH: u8 = 0x1C;
pub(crate) const COM_RESET_CONNECTION: u8 = 0x1F;

/// The client is gone or broke the protocol: stop serving this connection.
#[derive(Debug)]
pub(crate) struct Fatal;

/// A backend connection held by this session, with its pool slot.
pub(crate) struct Held {
    pub ds: Arc<DataSource>,
    pub conn: BackendConn,
    pub lease: Lease<BackendConn>,
    /// It has joined the session's transaction over sharded data sources (see
    /// `sharded_txn.rs`): it ran the BEGIN and the savepoints so far.
    pub joined: bool,
}

/// Serves one client until it quits or breaks the protocol.
pub async fn serve_client(stream: TcpStream, rt: Arc<Runtime>, shutdown: Shutdown) {
    let id = rt.next_connection_id();
    let peer = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let span = info_span!("mysql", conn = id, peer = %peer);
    async move {
        let _ = stream.set_nodelay(true);
        let metrics = ConnectionMetrics::open(Protocol::Mysql);
        let login = ClientConn::handshake(rt, id, peer, Stream::Plain(stream), (shutdown, metrics));
        let Ok(Some(mut client)) = tokio::time::timeout(crate::server::LOGIN_TIMEOUT, login).await
        else {
            return;
        };
        client.run().await;
        client.close().await;
    }
    .instrument(span)
    .await
}

pub(crate) struct ClientConn {
    pub rt: Arc<Runtime>,
    /// The cluster this session's statements run on: the runtime's, taken again before a
    /// command when a reload happened and no transaction is open, so a transaction
    /// finishes on the configuration it began with (`refresh_cluster`).
    pub cluster: Arc<Cluster>,
    /// The runtime's reload generation `cluster` was taken at.
    pub generation: u64,
    /// This session in `SHOW DBMESH SESSIONS`; `None` until logged in.
    pub info: Option<Registered>,
    pub reader: PacketReader<ReadHalf>,
    pub writer: PacketWriter<WriteHalf>,
    pub connection_id: u32,
    pub nonce: [u8; 20],
    pub capabilities: CapabilityFlags,
    pub mariadb_capabilities: mysql_common::constants::MariadbCapabilities,
    pub collation: u8,
    pub session: Session,
    pub backends: Vec<Held>,
    pub statements: HashMap<u32, PreparedStatement>,
    pub next_statement_id: u32,
    /// Next sequence id towards the client within the current command.
    pub seq: u8,
    /// The client connection is TLS.
    pub over_tls: bool,
    /// Signalled by another connection's `KILL CONNECTION <our id>`.
    pub killed: Arc<tokio::sync::Notify>,
    /// The backend thread `KILL QUERY <our id>` currently targets.
    pub kill_thread: Option<u32>,
    /// The transaction dbmesh runs over several data sources of a sharded database, from
    /// BEGIN to COMMIT / ROLLBACK; `None` otherwise (and always for unsharded databases).
    pub txn: Option<ShardedTxn>,
    /// The last non-zero last-insert-id an OK gave the client (`last_insert_id.rs`).
    pub last_insert_id: u64,
    /// The client may send several statements in one COM_QUERY (`CLIENT_MULTI_STATEMENTS`
    /// at login, or COM_SET_OPTION since).
    pub multi_statements: bool,
    /// A statement of a multi-statement COM_QUERY that is not the last one is running: its
    /// response's final OK / EOF must say `SERVER_MORE_RESULTS_EXISTS`
    /// (`multi_statement.rs`).
    pub more_results: bool,
    /// Tells the command loop the proxy is shutting down (graceful shutdown).
    pub shutdown: Shutdown,
    pub metrics: ConnectionMetrics,
    /// How the statement running now was routed (sharded plans set it), for the metrics.
    pub route: RouteKind,
    /// The statement running now sent the client an error (metrics: transaction outcome).
    pub statement_failed: bool,
    /// Read/write splitting over a data source's replicas (`read_write.rs`).
    pub read_write: super::read_write::ReadWriteSession,
    /// State that keeps the session on its backend connections (`pinning.rs`).
    pub pins: super::pinning::Pins,
    /// The last forwarded statement left something a follow-up may ask its connection
    /// about, so it is kept until the next statement ran (`multiplex.rs`).
    pub keep_for_next: bool,
}

impl ClientConn {
    /// The command loop.
    async fn run(&mut self) {
        loop {
            let read = tokio::select! {
                r = self.reader.read_packet_seq(0) => r,
                _ = self.killed.notified() => {
                    self.seq = 0;
                    let e = MysqlError::new(code::ER_CONNECTION_KILLED, "70100", "Connection was killed");
                    self.writer.write_packet(&mut self.seq, &e.payload());
                    let _ = self.writer.flush().await;
                    return;
                }
                // Shutting down: a session outside a transaction just closes, as mysqld
                // does; one inside a transaction closes when it ends (below).
                _ = self.shutdown.started(), if !self.in_transaction() => return,
            };
            let pkt = match read {
                Ok(p) => p,
                Err(e) => {
                    if let Some(err) = packet_error_reply(&e) {
                        self.seq = 1;
                        self.writer.write_packet(&mut self.seq, &err.payload());
                        let _ = self.writer.flush().await;
                    }
                    return;
                }
            };
            self.seq = 1;
            let Some(&command) = pkt.payload.first() else {
                self.send_error(&Error::Malformed("empty command packet".into()));
                let _ = self.writer.flush().await;
                return;
            };
            if command == COM_QUIT {
                return;
            }
            self.refresh_cluster();
            if let Some(info) = &self.info {
                let executed = (command == COM_STMT_EXECUTE)
                    .then(|| pkt.payload.get(1..5))
                    .flatten()
                    .and_then(|id| {
                        self.statements
                            .get(&u32::from_le_bytes(id.try_into().ok()?))
                    });
                match executed {
                    Some(statement) => info.begin_statement_bytes(&statement.sql),
                    None => match command_text(pkt.payload[0]) {
                        Some(name) => info.begin_statement(name),
                        None => info.begin_statement_bytes(&pkt.payload[1..]),
                    },
                }
            }
            let timer = match command {
                COM_QUERY => Some(StatementTimer::start(&pkt.payload[1..])),
                COM_STMT_EXECUTE => Some(self.execute_timer(&pkt.payload)),
                _ => None,
            };
            let span = match &timer {
                Some(t) => tracing::debug_span!("statement", r#type = t.kind()),
                None => tracing::trace_span!("command", command),
            };
            let in_txn = self.in_transaction();
            let sharded_txn = self.txn.is_some();
            self.route = RouteKind::Single;
            self.statement_failed = false;
            // Whatever route a statement takes (one backend, a fan-out, a merge), what it
            // does to connection-bound state decides whether the session may be released.
            let pin_sql = (command == COM_QUERY && self.multiplexing())
                .then(|| String::from_utf8_lossy(&pkt.payload[1..]).into_owned());
            let outcome = self.command(command, pkt.payload).instrument(span).await;
            if let Some(sql) = pin_sql {
                self.pins.note_statement(&sql, !self.statement_failed);
            }
            if outcome.is_ok() {
                self.release_backends();
            }
            if let Some(t) = timer {
                self.statement_done(t, in_txn, sharded_txn);
            }
            if let Some(info) = &self.info {
                info.end_statement(self.session.in_transaction);
                info.set_database(self.session.database.as_deref());
            }
            if outcome.is_err() || self.writer.flush().await.is_err() {
                return;
            }
            self.metrics
                .bytes(self.reader.received(), self.writer.sent());
            if self.shutdown.is_shutdown() && !self.in_transaction() {
                return;
            }
        }
    }

    /// One command, answered by dbmesh or routed.
    async fn command(&mut self, command: u8, payload: bytes::BytesMut) -> Result<(), Fatal> {
        match command {
            COM_QUERY => self.com_query(payload).await,
            COM_INIT_DB => {
                let db = String::from_utf8_lossy(&payload[1..]).into_owned();
                self.use_database(&db);
                Ok(())
            }
            COM_PING => {
                self.send_ok();
                Ok(())
            }
            COM_FIELD_LIST => self.forward_routed(&payload, ResponseKind::FieldList).await,
            COM_STATISTICS => self.forward_routed(&payload, ResponseKind::Single).await,
            COM_SET_OPTION => self.set_option(&payload).await,
            COM_STMT_PREPARE => self.stmt_prepare(&payload).await,
            COM_STMT_EXECUTE => self.stmt_execute(payload).await,
            COM_STMT_SEND_LONG_DATA => self.stmt_send_long_data(payload).await,
            COM_STMT_CLOSE => self.stmt_close(&payload).await,
            COM_STMT_RESET => self.stmt_reset(payload).await,
            COM_STMT_FETCH => self.stmt_fetch(payload).await,
            COM_RESET_CONNECTION => self.reset_connection().await,
            COM_CHANGE_USER => self.change_user(&payload).await,
            other => {
                self.send_error(&Error::UnknownCommand(other));
                Ok(())
            }
        }
    }

    /// In a transaction: the backend's (passthrough) or dbmesh's over several data sources.
    pub(crate) fn in_transaction(&self) -> bool {
        self.session.in_transaction || self.txn.is_some()
    }

    /// The timer of a COM_STMT_EXECUTE, typed by its prepared statement's SQL.
    fn execute_timer(&self, payload: &[u8]) -> StatementTimer {
        let sql = super::prepared::statement_id(payload)
            .and_then(|id| self.statements.get(&id))
            .map(|s| s.sql.as_slice())
            .unwrap_or_default();
        StatementTimer::start(sql)
    }

    /// A statement ended: statement metrics, and the transaction it ended, if any.
    fn statement_done(&mut self, timer: StatementTimer, was_in_txn: bool, sharded_txn: bool) {
        let kind = timer.kind();
        let database = self.session.database.as_deref().unwrap_or("");
        let slow = self.rt.config().server.slow_statement;
        timer.finish(Protocol::Mysql, database, self.route, slow);
        if was_in_txn && !self.in_transaction() {
            let txn_type = match (sharded_txn, self.session.database.as_deref()) {
                (true, Some(db)) => {
                    let configured = self.rt.config().databases.get(db).map(|d| d.transaction);
                    self.session
                        .transaction_type
                        .or(configured)
                        .map_or("local", txn_type_label)
                }
                _ => "single",
            };
            let outcome = TxnOutcome::of(kind, self.statement_failed);
            m::transaction(Protocol::Mysql, txn_type, outcome);
        }
    }

    /// Outside a transaction, moves the session to the configuration a reload installed:
    /// later statements route by its rules, and connections held to data sources it no
    /// longer has (removed, or whose URL or pool size changed) are closed. Inside a
    /// transaction the session stays on the cluster the transaction began with.
    fn refresh_cluster(&mut self) {
        let generation = self.rt.generation();
        if generation == self.generation || self.session.in_transaction || self.txn.is_some() {
            return;
        }
        let cluster = self.rt.cluster();
        if let Some(db) = &self.session.database {
            if !cluster.databases.contains_key(db) {
                // The reload removed this session's database: it keeps serving the
                // session on the configuration it has, until the client leaves or USEs
                // another one.
                return;
            }
        }
        self.generation = generation;
        self.cluster = cluster;
        let cluster = self.cluster.clone();
        let current = |held: &Held| {
            cluster
                .data_sources()
                .any(|(_, ds)| Arc::ptr_eq(ds, &held.ds))
        };
        for i in (0..self.backends.len()).rev() {
            if !current(&self.backends[i]) {
                debug!(data_source = %self.backends[i].ds.name, "configuration reloaded: closing the connection to a data source that changed");
                self.drop_backend(i);
            }
        }
        if self.kill_thread.is_some() && self.backends.is_empty() {
            self.kill_thread = None;
        }
    }

    /// Gives healthy backend connections back to their pools, reset to a clean session.
    async fn close(mut self) {
        self.rt.mysql_kill.unregister(self.connection_id);
        self.writer.shutdown().await;
        for mut held in self.backends.drain(..) {
            if held.conn.healthy && held.conn.reset().await.is_ok() {
                let profile = held.conn.profile;
                held.ds.mysql.give_back(held.lease, held.conn, profile);
            }
        }
    }

    // ---- answers dbmesh gives itself ----

    pub(crate) fn status_flags(&self) -> u16 {
        let mut s = 0;
        if self.session.autocommit {
            s |= STATUS_AUTOCOMMIT;
        }
        if self.session.in_transaction {
            s |= STATUS_IN_TRANS;
        }
        if self.more_results {
            s |= STATUS_MORE_RESULTS;
        }
        s
    }

    pub(crate) fn send_ok(&mut self) {
        let p = ok_payload(0, 0, self.status_flags(), 0);
        self.writer.write_packet(&mut self.seq, &p);
    }

    pub(crate) fn send_error(&mut self, e: &Error) {
        let e = MysqlError::from(e);
        self.send_mysql_error(&e);
    }

    /// Sends an error already in wire form (a backend's, or one naming a data source).
    pub(crate) fn send_mysql_error(&mut self, e: &MysqlError) {
        m::mysql_error(e.code);
        self.statement_failed = true;
        self.writer.write_packet(&mut self.seq, &e.payload());
    }

    pub(crate) fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// How this client reads the result sets dbmesh builds itself.
    pub(crate) fn result_format(&self) -> ResultFormat {
        ResultFormat {
            deprecate_eof: self.deprecate_eof(),
            extended_metadata: self
                .mariadb_capabilities
                .contains(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA),
        }
    }

    /// May this session's user use logical database `db`, and is it a MySQL one?
    pub(crate) fn check_database(&self, db: &str) -> Result<(), Error> {
        let Some(logical) = self.cluster.databases.get(db) else {
            return Err(Error::UnknownDatabase(db.to_string()));
        };
        if !self.session.user.may_use(db) {
            return Err(Error::DatabaseAccessDenied {
                user: self.session.user.name.clone(),
                host: self.session.host.clone(),
                database: db.to_string(),
            });
        }
        if logical.config.backend != BackendKind::Mysql {
            return Err(Error::WrongProtocol {
                database: db.to_string(),
                backend: "PostgreSQL".into(),
            });
        }
        Ok(())
    }

    /// `USE db` / COM_INIT_DB: switches the logical database.
    pub(super) fn use_database(&mut self, db: &str) {
        match self.check_database(db) {
            Ok(()) => {
                self.session.database = Some(db.to_string());
                self.send_ok();
            }
            Err(e) => self.send_error(&e),
        }
    }

    /// `SHOW DATABASES`: the logical databases this user may use.
    pub(super) fn show_databases(&mut self) {
        let rows: Vec<Vec<Option<String>>> = self
            .cluster
            .databases
            .iter()
            .filter(|(name, db)| {
                db.config.backend == BackendKind::Mysql && self.session.user.may_use(name)
            })
            .map(|(name, _)| vec![Some(name.clone())])
            .collect();
        let status = self.status_flags();
        let format = self.result_format();
        write_text_resultset(
            &mut self.writer,
            &mut self.seq,
            format,
            status,
            &[ColumnDef::text("Database", 64)],
            &rows,
        );
    }
}

/// Turns a framing failure into the ERR packet the client gets before the connection closes
/// (none when the client simply went away).
pub(super) fn packet_error_reply(e: &PacketError) -> Option<MysqlError> {
    match e {
        PacketError::Closed | PacketError::Io(_) => None,
        PacketError::TooLarge { .. } => Some(MysqlError::new(
            code::ER_NET_PACKET_TOO_LARGE,
            "08S01",
            format!("Got a packet bigger than 'max_allowed_packet' bytes ({e})"),
        )),
        PacketError::Sequence { .. } => Some(MysqlError::new(
            code::ER_NET_PACKETS_OUT_OF_ORDER,
            "08S01",
            format!("Got packets out of order ({e})"),
        )),
    }
}

/// What `SHOW DBMESH SESSIONS` shows of a command without SQL text: its name (`None` for
/// COM_QUERY and COM_STMT_PREPARE, which show their SQL).
fn command_text(command: u8) -> Option<&'static str> {
    let name = match command {
        COM_QUERY | COM_STMT_PREPARE => return None,
        COM_INIT_DB => "COM_INIT_DB",
        COM_PING => "COM_PING",
        COM_FIELD_LIST => "COM_FIELD_LIST",
        COM_STATISTICS => "COM_STATISTICS",
        COM_STMT_EXECUTE => "COM_STMT_EXECUTE",
        COM_STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
        COM_STMT_CLOSE => "COM_STMT_CLOSE",
        COM_STMT_RESET => "COM_STMT_RESET",
        COM_STMT_FETCH => "COM_STMT_FETCH",
        COM_SET_OPTION => "COM_SET_OPTION",
        COM_RESET_CONNECTION => "COM_RESET_CONNECTION",
        COM_CHANGE_USER => "COM_CHANGE_USER",
        _ => "command",
    };
    Some(name)
}

/// The `type` label of a sharded database's transactions.
fn txn_type_label(t: crate::config::TransactionType) -> &'static str {
    match t {
        crate::config::TransactionType::Local => "local",
        crate::config::TransactionType::Xa => "xa",
        crate::config::TransactionType::Saga => "saga",
    }
}

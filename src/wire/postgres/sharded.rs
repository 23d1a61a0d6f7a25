//! A PostgreSQL client session on a logical database with sharding rules.
//!
//! Where the single-data-source pump forwards bytes both ways, a sharded session works
//! request by request: it reads one client message, decides what runs where (through the
//! [`ShardRouter`]), sends the units to the backend connections of the data sources
//! involved, and streams the answers back as one response. The pieces live in their own
//! files:
//!
//! - `sharded_simple.rs`: simple Query, split into statements;
//! - `sharded_extended.rs`: Parse / Bind / Describe / Execute / Close / Sync / Flush;
//! - `passthrough.rs`: statements that name no sharded table, relayed message by message
//!   to the default data source;
//! - `fanout.rs`: running a plan's units and combining their results;
//! - `sharded_txn.rs`: transactions over several data sources (local semantics);
//! - `shard_backends.rs`: the session's connection per data source;
//! - `shard_reads.rs`: reads on the data sources' standbys (read/write splitting).
//!
//! A connection the server closes while the session is idle outside a transaction is
//! dropped before the next message and replaced when next needed (its SETs replayed, its
//! passthrough statements prepared again), so the client does not notice; one lost during
//! a statement or inside a transaction ends the session with FATAL 08006, as when
//! PostgreSQL itself goes away.
//!
//! Under `pool_mode = "transaction"` the session gives every connection back between
//! transactions (before it reads the next message, when none is buffered) and takes them
//! again as statements need them, except a connection with passthrough statements prepared
//! on it (their names are the client's, so it cannot serve another session). A statement
//! that may bind the session to a connection (`pinning.rs`) keeps them all until the
//! session ends.
//!
//! The transaction status the client sees is the session's own: `T` / `E` inside a
//! transaction dbmesh tracks, otherwise the backends' (so a transaction the router does not
//! recognise still shows as the backend reports it).

use std::sync::Arc;

use bytes::BytesMut;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use tracing::{debug, warn, Instrument};

use super::backend::{PgBackendConn, StartupParams};
use super::checkout::{HeldBackend, MAX_BACKEND_MESSAGE};
use super::error::{error_response, from_error, SessionError, Severity};
use super::frontend::Batch;
use super::message::{frame_at, MessageError, MessageReader, MessageWriter, FLUSH_THRESHOLD};
use super::passthrough::Passthrough;
use super::pinning::may_pin;
use super::shard_backends::Backends;
use super::shard_reads::ShardReads;
use super::sharded_extended::Extended;
use super::sharded_txn::Txn;
use crate::admin::metrics::{
    self as m, statement_type, ConnectionMetrics, Protocol, RouteKind, StatementTimer, TxnOutcome,
};
use crate::config::PoolMode;
use crate::error::Error;
use crate::execute::LogicalDatabase;
use crate::route::shard::ShardRouter;
use crate::server::Runtime;
use crate::session::registry::Registered;
use crate::session::Session;
use crate::shutdown::Shutdown;

/// Why a request could not be finished: the client went away, or a backend connection
/// broke (the client is told, and disconnected, as when PostgreSQL itself goes away).
#[derive(Debug)]
pub enum Broken {
    Client,
    Backend { data_source: String, cause: String },
}

/// How a statement ended for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The client got an ErrorResponse.
    Failed,
}

pub type ClientReader = MessageReader<crate::wire::stream::ReadHalf>;
pub type ClientWriter = MessageWriter<crate::wire::stream::WriteHalf>;

/// One client's sharded session.
pub struct ShardedSession {
    pub(super) rt: Arc<Runtime>,
    /// The session in `SHOW DBMESH SESSIONS`.
    pub(super) info: Option<Registered>,
    /// The logical database's name, to find it again after a reload.
    pub(super) database: String,
    /// The runtime's reload generation `router` (and the backends' database) came from.
    pub(super) generation: u64,
    pub(super) router: Arc<ShardRouter>,
    pub(super) reader: ClientReader,
    pub(super) writer: ClientWriter,
    pub(super) session: Session,
    pub(super) backends: Backends,
    /// The transaction dbmesh runs over the data sources, if one is open.
    pub(super) txn: Option<Txn>,
    pub(super) ext: Extended,
    pub(super) pass: Passthrough,
    /// Read/write splitting over the data sources' standbys.
    pub(super) reads: ShardReads,
    shutdown: Shutdown,
    metrics: ConnectionMetrics,
    /// How the statement running now was routed (`run_plan` sets it), for the metrics.
    pub(super) route: RouteKind,
    /// The extended-protocol batch being read, for the statement metrics.
    batch: Batch,
    /// A statement may have created state bound to a backend connection (`pinning.rs`):
    /// under transaction pooling the session then keeps its connections until it ends.
    pinned: bool,
}

/// What start-up hands over to a sharded session.
pub struct Started {
    /// The session in `SHOW DBMESH SESSIONS`.
    pub info: Option<Registered>,
    pub rt: Arc<Runtime>,
    pub db: Arc<LogicalDatabase>,
    pub router: Arc<ShardRouter>,
    pub reader: ClientReader,
    pub writer: ClientWriter,
    pub key: (i32, i32),
    pub session: Session,
    pub params: StartupParams,
    /// The connection start-up opened to the default data source.
    pub default: HeldBackend,
    pub shutdown: Shutdown,
    pub metrics: ConnectionMetrics,
}

/// Serves a client of a sharded database until it leaves, then returns its connections.
pub async fn serve(started: Started) {
    let rt = started.rt.clone();
    let database = started.db.config.name.clone();
    let backends = Backends::new(
        started.rt,
        started.db,
        started.params,
        started.key,
        started.default,
    );
    let mut s = ShardedSession {
        generation: rt.generation(),
        rt,
        info: started.info,
        database,
        router: started.router,
        reader: started.reader,
        writer: started.writer,
        session: started.session,
        backends,
        txn: None,
        ext: Extended::default(),
        pass: Passthrough::default(),
        reads: ShardReads::default(),
        shutdown: started.shutdown,
        metrics: started.metrics,
        route: RouteKind::Single,
        batch: Batch::default(),
        pinned: false,
    };
    s.serve().await;
    s.writer.shutdown().await;
    s.backends.release().await;
}

impl ShardedSession {
    async fn serve(&mut self) {
        loop {
            let more = matches!(frame_at(&self.reader.buf, 0, self.reader.max), Ok(Some(_)));
            if !more && self.may_release() {
                self.before_release_reads().await;
                self.backends.release_all().await;
            }
            let idle = self.idle_outside_transaction();
            let read = tokio::select! {
                r = self.reader.read_message() => r,
                // Shutting down: an idle session ends now; one in a transaction once the
                // transaction has ended (below).
                _ = self.shutdown.started(), if idle => {
                    super::frontend::terminate(&mut self.writer).await;
                    return;
                }
            };
            let (tag, msg) = match read {
                Ok(m) => m,
                Err(MessageError::Closed) | Err(MessageError::Io(_)) => return,
                Err(e) => {
                    self.fatal("08P01", &format!("invalid message from client: {e}"))
                        .await;
                    return;
                }
            };
            if let Err(lost) = self.check_backends() {
                self.lost(lost).await;
                return;
            }
            self.refresh_cluster().await;
            if let (Some(info), b'Q' | b'P') = (&self.info, tag) {
                let text = if tag == b'Q' {
                    msg.get(5..msg.len().saturating_sub(1))
                } else {
                    super::statements::parse_query(&msg)
                };
                info.begin_statement_bytes(text.unwrap_or_default());
            }
            if matches!(tag, b'Q' | b'P') {
                let text = if tag == b'Q' {
                    msg.get(5..msg.len().saturating_sub(1))
                } else {
                    super::statements::parse_query(&msg)
                };
                self.pinned |= may_pin(text.unwrap_or_default());
                self.reads.saw_statement(text.unwrap_or_default());
            }
            if let (Some(info), b'B' | b'E') = (&self.info, tag) {
                info.mark_active();
            }
            let timer = self.statement_starts(tag, &msg);
            let txn_before = self.txn.as_ref().map(|t| t.failed);
            self.route = RouteKind::Single;
            let step = match tag {
                b'X' => return,
                // After an extended-protocol error everything up to Sync is skipped, a
                // Query included, as PostgreSQL does.
                b'Q' if self.skipping() => Ok(()),
                b'Q' => {
                    // A simple query replaces the unnamed statement.
                    self.pass.unnamed_waiting = false;
                    let kind = timer.as_ref().map_or("other", StatementTimer::kind);
                    let span = tracing::debug_span!("statement", r#type = kind);
                    self.simple_query(&msg).instrument(span).await
                }
                b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H' => self.extended(tag, &msg).await,
                // CopyData / CopyDone / CopyFail outside a COPY are ignored, as PostgreSQL does.
                b'd' | b'c' | b'f' => Ok(()),
                b'F' => {
                    self.writer
                        .write(&SessionError::Unsupported("the function call message").response());
                    self.write_ready();
                    Ok(())
                }
                _ => {
                    self.fatal(
                        "08P01",
                        &format!("invalid frontend message type {}", tag as char),
                    )
                    .await;
                    return;
                }
            };
            if let Some(timer) = timer {
                self.statement_done(timer, txn_before);
            }
            // An extended-protocol statement runs until its Sync: Parse, Bind, Describe
            // and Execute are messages of their own.
            if let (Some(info), false) = (
                &self.info,
                matches!(tag, b'P' | b'B' | b'D' | b'E' | b'C' | b'H'),
            ) {
                info.end_statement(self.status() != b'I');
            }
            match step {
                Ok(()) => {}
                Err(Broken::Client) => return,
                Err(lost) => {
                    self.lost(lost).await;
                    return;
                }
            }
            // Answer a pipelined batch in as few writes as possible.
            let more = matches!(frame_at(&self.reader.buf, 0, self.reader.max), Ok(Some(_)));
            if (!more || self.writer.pending() >= FLUSH_THRESHOLD)
                && self.writer.flush().await.is_err()
            {
                return;
            }
            self.metrics
                .bytes(self.reader.received(), self.writer.sent());
            if !more && self.shutdown.is_shutdown() && self.idle_outside_transaction() {
                let _ = self.writer.flush().await;
                super::frontend::terminate(&mut self.writer).await;
                return;
            }
        }
    }

    /// Under transaction pooling, between transactions: the session may give its
    /// connections back (`Backends::release_all`) when nothing is in flight and no
    /// statement may have bound it to them.
    fn may_release(&self) -> bool {
        self.rt.config().server.pool_mode == PoolMode::Transaction
            && self.idle_outside_transaction()
            && !self.skipping()
            && !self.pinned
            && !self.pass.unnamed_waiting
    }

    /// No transaction open and no extended-protocol batch half sent.
    fn idle_outside_transaction(&self) -> bool {
        self.txn.is_none()
            && self.backends.status() == b'I'
            && !self.pass.unsynced
            && !self.batch.is_open()
    }

    /// The timer of the statement a client message completes: a Query, or the Sync that
    /// ends an extended-protocol batch (timed from the batch's first message).
    fn statement_starts(&mut self, tag: u8, msg: &[u8]) -> Option<StatementTimer> {
        match tag {
            b'Q' => {
                let sql = msg.get(5..msg.len().saturating_sub(1)).unwrap_or_default();
                Some(StatementTimer::start(sql))
            }
            b'P' => {
                let kind = super::statements::parse_query(msg).map_or("other", statement_type);
                self.batch.runs(kind);
                None
            }
            b'E' => {
                self.batch.executes();
                None
            }
            b'B' | b'D' | b'C' | b'H' => {
                self.batch.message();
                None
            }
            b'S' => self.batch.synced(),
            _ => None,
        }
    }

    /// A statement ended: statement metrics, and the transaction it ended, if any.
    fn statement_done(&mut self, timer: StatementTimer, txn_before: Option<bool>) {
        let kind = timer.kind();
        let database = self.session.database.as_deref().unwrap_or("");
        let slow = self.backends.runtime().config().server.slow_statement;
        timer.finish(Protocol::Postgres, database, self.route, slow);
        if let (Some(failed), None) = (txn_before, &self.txn) {
            let configured = self.backends.database().config.transaction;
            let txn_type = match self.session.transaction_type.unwrap_or(configured) {
                crate::config::TransactionType::Local => "local",
                crate::config::TransactionType::Xa => "xa",
                crate::config::TransactionType::Saga => "saga",
            };
            m::transaction(Protocol::Postgres, txn_type, TxnOutcome::of(kind, failed));
        }
    }

    /// A backend's ErrorResponse goes to the client: counted, and an open transaction
    /// has failed.
    pub(super) fn relay_error(&mut self, msg: &[u8]) {
        super::error::count_backend_error(msg);
        self.writer.write_raw(msg);
        self.mark_failed();
    }

    /// Between statements, outside a transaction and with no batch open, moves the session
    /// to the configuration a reload installed: its router (new statements are planned by
    /// the new rules; statements prepared before keep the router they were prepared with)
    /// and its data sources. A database the reload removed, or that no longer has sharding
    /// rules, keeps serving this session as it was until the client disconnects.
    async fn refresh_cluster(&mut self) {
        let generation = self.rt.generation();
        if generation == self.generation
            || self.txn.is_some()
            || self.pass.unsynced
            || self.backends.status() != b'I'
        {
            return;
        }
        self.generation = generation;
        let cluster = self.rt.cluster();
        let Some(db) = cluster.databases.get(&self.database) else {
            return;
        };
        let Some(router) = db.router.clone() else {
            return;
        };
        if Arc::ptr_eq(&router, &self.router) {
            return;
        }
        self.router = router;
        self.backends.switch_database(db.clone()).await;
    }

    /// Before a message: connections the server closed while the session sat idle are
    /// dropped when nothing is lost with them (outside a transaction, no client batch
    /// open there); any other is the end of the session.
    fn check_backends(&mut self) -> Result<(), Broken> {
        if self.pass.unsynced {
            return Ok(());
        }
        for (ds, cause) in self.backends.closed_by_server() {
            let idle = self.txn.is_none();
            match self.backends.get(&ds) {
                Some(conn) if idle && conn.tx_status == b'I' => {
                    debug!(data_source = %ds, "idle backend connection closed: {cause}");
                    self.backends.drop_connection(&ds);
                }
                _ => {
                    return Err(Broken::Backend {
                        data_source: ds,
                        cause,
                    })
                }
            }
        }
        Ok(())
    }

    /// The session ends: the client is told when a backend connection was lost.
    async fn lost(&mut self, broken: Broken) {
        if let Broken::Backend { data_source, cause } = broken {
            warn!(%data_source, "backend connection lost: {cause}");
            let e = Error::BackendLost { data_source, cause };
            self.writer.write(&from_error(Severity::Fatal, &e));
            let _ = self.writer.flush().await;
        }
    }

    async fn fatal(&mut self, code: &str, message: &str) {
        self.writer
            .write(&error_response(Severity::Fatal, code, message));
        let _ = self.writer.flush().await;
    }

    /// The transaction status to report: the session's transaction if dbmesh runs one,
    /// else what the backends report.
    pub(super) fn status(&self) -> u8 {
        match &self.txn {
            Some(t) if t.failed => b'E',
            Some(_) => b'T',
            None => self.backends.status(),
        }
    }

    pub(super) fn write_ready(&mut self) {
        let status = TransactionStatus::try_from(self.status()).unwrap_or(TransactionStatus::Idle);
        self.writer.write(&ReadyForQuery::new(status));
    }

    /// Reports one of dbmesh's errors for the current statement.
    pub(super) fn fail(&mut self, e: &Error) -> Outcome {
        debug!("statement failed: {e}");
        self.writer.write(&from_error(Severity::Error, e));
        self.mark_failed();
        Outcome::Failed
    }

    /// Reports a PostgreSQL session error for the current statement.
    pub(super) fn fail_session(&mut self, e: SessionError) -> Outcome {
        self.writer.write(&e.response());
        self.mark_failed();
        Outcome::Failed
    }

    /// An error reached the client: an open transaction has failed.
    pub(super) fn mark_failed(&mut self) {
        if let Some(t) = &mut self.txn {
            t.failed = true;
        }
    }
}

/// Writes what `conn` has buffered to its server.
pub(super) async fn send(conn: &mut PgBackendConn, data_source: &str) -> Result<(), Broken> {
    conn.healthy = false;
    conn.writer.flush().await.map_err(|e| Broken::Backend {
        data_source: data_source.to_string(),
        cause: e.to_string(),
    })
}

/// The next message from a backend. What the client has been sent so far is flushed first
/// when nothing more is buffered from the backend (so rows stream as they arrive), or when
/// it is large.
pub(super) async fn next_message(
    conn: &mut PgBackendConn,
    data_source: &str,
    client: &mut ClientWriter,
) -> Result<(u8, BytesMut), Broken> {
    let buffered = matches!(
        frame_at(&conn.reader.buf, 0, MAX_BACKEND_MESSAGE),
        Ok(Some(_))
    );
    if client.pending() >= FLUSH_THRESHOLD || (!buffered && client.pending() > 0) {
        client.flush().await.map_err(|_| Broken::Client)?;
    }
    conn.reader.read_message().await.map_err(|e| {
        conn.healthy = false;
        Broken::Backend {
            data_source: data_source.to_string(),
            cause: e.to_string(),
        }
    })
}

/// The tag of a CommandComplete message.
pub(super) fn command_tag(msg: &[u8]) -> &str {
    let body = msg.get(5..).unwrap_or_default();
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    std::str::from_utf8(&body[..end]).unwrap_or_default()
}

/// After a backend sent CopyInResponse (already relayed): the client's CopyData goes to
/// the backend until CopyDone or CopyFail. Flush and Sync are ignored meanwhile, as
/// PostgreSQL does; any other message aborts the copy.
pub(super) async fn copy_in(
    client_in: &mut ClientReader,
    client_out: &mut ClientWriter,
    conn: &mut PgBackendConn,
    data_source: &str,
) -> Result<(), Broken> {
    client_out.flush().await.map_err(|_| Broken::Client)?;
    let lost = |e: std::io::Error| Broken::Backend {
        data_source: data_source.to_string(),
        cause: e.to_string(),
    };
    loop {
        let (tag, msg) = match client_in.read_message().await {
            Ok(m) => m,
            Err(_) => {
                // The client is gone: end the COPY so the connection is not stuck in it.
                let _ = postgres_protocol::message::frontend::copy_fail(
                    "client disconnected",
                    &mut conn.writer.buf,
                );
                let _ = conn.writer.flush().await;
                return Err(Broken::Client);
            }
        };
        match tag {
            b'd' => {
                conn.writer.write_raw(&msg);
                if conn.writer.pending() >= FLUSH_THRESHOLD {
                    conn.writer.flush().await.map_err(lost)?;
                }
            }
            b'c' | b'f' => {
                conn.writer.write_raw(&msg);
                return conn.writer.flush().await.map_err(lost);
            }
            b'H' | b'S' => {}
            other => {
                let _ = postgres_protocol::message::frontend::copy_fail(
                    &format!("unexpected message type 0x{other:02x} during COPY from stdin"),
                    &mut conn.writer.buf,
                );
                return conn.writer.flush().await.map_err(lost);
            }
        }
    }
}

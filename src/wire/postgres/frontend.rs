//! One PostgreSQL client connection: start-up and authentication, then a full-duplex pump
//! between the client and its backend connection.
//!
//! The pump forwards messages in both directions as bytes. It looks inside only a few: Parse,
//! Bind, Describe and Close (to remember named statements and prepare them again on a new
//! backend connection), Query (to record session SETs), Sync/ReadyForQuery (to know when the
//! backend is idle and the transaction status), and ParseComplete (to swallow the ones dbmesh
//! caused itself). Rows and everything else pass through untouched, in as few writes as the
//! backend's reads allow.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, ParameterStatus, SecretKey, Startup,
};
use pgwire::messages::{DecodeContext, Message};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info_span, warn, Instrument};

use super::auth::{self, AuthFailure};
use super::backend::StartupParams;
use super::cancel::CancelTarget;
use super::checkout::{checkout, HeldBackend, MAX_BACKEND_MESSAGE};
use super::error::{error_response, from_error, Severity};
use super::message::{
    frame_at, read_startup_unbuffered, MessageReader, MessageWriter, FLUSH_THRESHOLD,
};
use super::sharded::Started;
use super::statements::{bind_statement, parse_query, parse_statement, target, Statements};
use crate::admin::metrics::{
    self as m, statement_type, ConnectionMetrics, Protocol, RouteKind, StatementTimer, TxnOutcome,
};
use crate::config::{BackendKind, PostgresAuthMethod, UserConfig};
use crate::error::Error;
use crate::execute::DataSource;
use crate::server::Runtime;
use crate::session::registry::Registered;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::sql::{classify, StatementKind};
use crate::wire::stream::{ReadHalf, Stream, WriteHalf};

mod admin_pump;
#[path = "read_write.rs"]
mod read_write;

const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;
const CANCEL_REQUEST: i32 = 80877102;
/// Start-up packets are small; anything larger is not a PostgreSQL client.
const MAX_STARTUP: usize = 10_000;

/// Stop serving this client (it left, or it must be disconnected).
#[derive(Debug)]
struct Close;

struct PgClient {
    rt: Arc<Runtime>,
    reader: MessageReader<ReadHalf>,
    writer: MessageWriter<WriteHalf>,
    key: (i32, i32),
    session: Session,
    params: StartupParams,
    data_source: Arc<DataSource>,
    backend: Option<HeldBackend>,
    statements: Statements,
    /// Queries and Syncs forwarded whose ReadyForQuery has not come back yet.
    pending_syncs: u32,
    /// Extended-protocol messages forwarded since the last Sync.
    unsynced: bool,
    /// dbmesh failed an extended-protocol message itself: skip to Sync, as PostgreSQL does.
    skip_until_sync: bool,
    tx_status: u8,
    shutdown: Shutdown,
    metrics: ConnectionMetrics,
    /// One entry per Query / Sync / FunctionCall forwarded, finished at its
    /// ReadyForQuery: the statement's timer, `None` for a batch that executed nothing
    /// (a driver's Parse / Describe / Sync round trip is not a statement).
    requests: VecDeque<Option<StatementTimer>>,
    /// The extended-protocol batch being sent (see [`Batch`]).
    batch: Batch,
    /// This session in `SHOW DBMESH SESSIONS`.
    info: Option<Registered>,
    /// The runtime's reload generation `data_source` was chosen at.
    generation: u64,
    /// Admin statements the client prepared, answered by dbmesh (`admin_pump.rs`).
    admin: admin_pump::AdminPump,
    /// Which of the data source's primary and replicas runs the next request (`read_write.rs`).
    read_write: read_write::PgReadWrite,
}

/// Serves one client until it terminates or breaks the protocol.
pub async fn serve_client(stream: TcpStream, rt: Arc<Runtime>, shutdown: Shutdown) {
    let id = rt.next_connection_id() as i32;
    let peer = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let span = info_span!("postgres", conn = id, peer = %peer);
    async move {
        let _ = stream.set_nodelay(true);
        let metrics = ConnectionMetrics::open(Protocol::Postgres);
        let login = PgClient::start(rt, id, peer, Stream::Plain(stream), (shutdown, metrics));
        if let Ok(Some(client)) = tokio::time::timeout(crate::server::LOGIN_TIMEOUT, login).await {
            match client.into_sharded() {
                Ok(started) => super::sharded::serve(started).await,
                Err(mut client) => {
                    client.pump().await;
                    client.close().await;
                }
            }
        }
    }
    .instrument(span)
    .await
}

impl PgClient {
    /// Start-up: TLS negotiation (GSS encryption declined), cancel requests, the startup
    /// packet, authentication, the backend connection, and the parameters the client sees.
    async fn start(
        rt: Arc<Runtime>,
        id: i32,
        peer: String,
        mut stream: Stream,
        (shutdown, metrics): (Shutdown, ConnectionMetrics),
    ) -> Option<PgClient> {
        // Until TLS is settled the connection is read message by message, unbuffered.
        let mut startup = loop {
            let mut msg = match read_startup_unbuffered(&mut stream, MAX_STARTUP).await {
                Ok(m) => m,
                Err(e) => {
                    debug!("start-up failed: {e}");
                    fatal(
                        &mut MessageWriter::new(&mut stream),
                        "08P01",
                        "invalid startup packet",
                    )
                    .await;
                    return None;
                }
            };
            let code = i32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
            match code {
                SSL_REQUEST if stream.is_tls() => {
                    let mut writer = MessageWriter::new(&mut stream);
                    fatal(&mut writer, "08P01", "SSLRequest over a TLS connection").await;
                    return None;
                }
                SSL_REQUEST if rt.config().server.tls.is_some() => {
                    let config = rt.config();
                    let tls = config.server.tls.as_ref().expect("checked");
                    stream.write_all(b"S").await.ok()?;
                    stream = match stream.accept_tls(&tls.acceptor()).await {
                        Ok(s) => s,
                        Err(e) => {
                            debug!("TLS handshake failed: {e}");
                            return None;
                        }
                    };
                }
                SSL_REQUEST | GSSENC_REQUEST => {
                    // Not offered: 'N', and the client continues in plain text (or gives up).
                    stream.write_all(b"N").await.ok()?;
                }
                CANCEL_REQUEST if msg.len() == 16 => {
                    let pid = i32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
                    let secret = i32::from_be_bytes([msg[12], msg[13], msg[14], msg[15]]);
                    rt.pg_cancel.cancel(pid, secret).await;
                    return None;
                }
                _ => {
                    let mut writer = MessageWriter::new(&mut stream);
                    if code >> 16 != 3 {
                        fatal(
                            &mut writer,
                            "0A000",
                            &format!(
                                "unsupported frontend protocol {}.{}: dbmesh supports 3.0",
                                code >> 16,
                                code & 0xFFFF
                            ),
                        )
                        .await;
                        return None;
                    }
                    let ctx = DecodeContext::default();
                    match Startup::decode(&mut msg, &ctx) {
                        Ok(Some(s)) => break s,
                        _ => {
                            fatal(&mut writer, "08P01", "invalid startup packet").await;
                            return None;
                        }
                    }
                }
            }
        };
        let over_tls = stream.is_tls();
        let (r, w) = stream.into_split();
        let max = rt.config().server.max_packet_size as usize;
        let mut reader = MessageReader::new(r, max);
        let mut writer = MessageWriter::new(w);
        if startup.protocol_number_minor > 0 {
            negotiate_protocol_version(&mut writer, &startup);
        }
        let user_name = startup.parameters.get("user").cloned().unwrap_or_default();
        let database = startup
            .parameters
            .get("database")
            .filter(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| user_name.clone());
        startup.parameters.retain(|k, _| !k.starts_with("_pq_."));

        // Unknown users go through the same exchange with a password nobody knows, so the
        // answer does not tell which user names exist.
        let user = rt
            .config()
            .users
            .iter()
            .find(|u| u.name == user_name)
            .cloned();
        if user.as_ref().is_some_and(|u| u.require_tls) && !over_tls {
            // Refused before the password, as pg_hba.conf's `hostssl` lines do.
            let e = Error::TlsRequired {
                user: user_name,
                host: peer,
            };
            send_fatal(&mut writer, &e).await;
            return None;
        }
        let auth_user = user.clone().unwrap_or_else(|| unknown_user(&user_name));
        match auth::authenticate(&mut reader, &mut writer, &auth_user, &rt.pg_scram).await {
            Ok(()) if user.is_some() => {}
            Ok(()) | Err(AuthFailure::Denied) => {
                let e = Error::AccessDenied {
                    user: user_name,
                    host: peer,
                    using_password: true,
                };
                send_fatal(&mut writer, &e).await;
                return None;
            }
            Err(AuthFailure::Io(e)) => {
                debug!("authentication aborted: {e}");
                return None;
            }
        }
        let user = Arc::new(user.expect("checked above"));
        let mut session = Session::new(user, Some(database.clone()), peer);
        let rt_generation = rt.generation();
        let data_source = match check_database(&rt, &session, &database) {
            Ok(ds) => ds,
            Err(e) => {
                send_fatal(&mut writer, &e).await;
                return None;
            }
        };
        session.database = Some(database);
        let mut client = PgClient {
            rt,
            reader,
            writer,
            key: (id, rand::random()),
            session,
            params: StartupParams::from_client(&startup.parameters),
            data_source,
            backend: None,
            statements: Statements::default(),
            pending_syncs: 0,
            unsynced: false,
            skip_until_sync: false,
            tx_status: b'I',
            shutdown,
            metrics,
            requests: VecDeque::new(),
            batch: Batch::default(),
            info: None,
            generation: rt_generation,
            admin: Default::default(),
            read_write: Default::default(),
        };
        if let Err(e) = client.connect_at_start().await {
            send_fatal(&mut client.writer, &e).await;
            return None;
        }
        let conn = &client.backend.as_ref().expect("just connected").conn;
        client.writer.write(&Authentication::Ok);
        for (name, value) in &conn.parameters {
            client
                .writer
                .write(&ParameterStatus::new(name.clone(), value.clone()));
        }
        client.writer.write(&BackendKeyData::new(
            client.key.0,
            SecretKey::I32(client.key.1),
        ));
        client.tx_status = conn.tx_status;
        client.info = Some(client.rt.sessions.register(
            id as u32,
            &client.session.user.name,
            "postgres",
            &client.session.host,
            client.session.database.as_deref(),
        ));
        client.write_ready();
        client.writer.flush().await.ok()?;
        Some(client)
    }

    /// A client of a database with sharding rules is served by a sharded session (see
    /// `sharded.rs`) instead of the pump; it takes over the connection start-up opened.
    #[allow(clippy::result_large_err)]
    fn into_sharded(mut self) -> Result<Started, PgClient> {
        let db = self
            .session
            .database
            .as_ref()
            .and_then(|name| self.rt.cluster().databases.get(name).cloned());
        let Some((db, router)) = db.and_then(|db| db.router.clone().map(|r| (db, r))) else {
            return Err(self);
        };
        let Some(default) = self.backend.take() else {
            return Err(self);
        };
        Ok(Started {
            info: self.info,
            rt: self.rt,
            db,
            router,
            reader: self.reader,
            writer: self.writer,
            key: self.key,
            session: self.session,
            params: self.params,
            default,
            shutdown: self.shutdown,
            metrics: self.metrics,
        })
    }

    /// The full-duplex loop: whatever side has data is processed, until the client leaves.
    async fn pump(&mut self) {
        loop {
            let idle = self.idle_outside_transaction();
            let backend = &mut self.backend;
            let event = tokio::select! {
                _ = self.shutdown.started(), if idle => Event::Shutdown,
                r = self.reader.fill() => Event::Client(r.is_ok()),
                r = async {
                    match backend {
                        Some(b) => b.conn.reader.fill().await,
                        None => std::future::pending().await,
                    }
                } => Event::Backend(r.map_err(|e| e.to_string())),
            };
            let step = match event {
                Event::Shutdown => {
                    terminate(&mut self.writer).await;
                    return;
                }
                Event::Client(false) => return,
                Event::Client(true) => self.on_client_data().await,
                Event::Backend(Ok(())) => self.on_backend_data().await,
                Event::Backend(Err(cause)) => self.on_backend_lost(cause).await,
            };
            if step.is_err() {
                return;
            }
            self.metrics
                .bytes(self.reader.received(), self.writer.sent());
            // Shutting down: close once the transaction (if any) has ended.
            if self.shutdown.is_shutdown() && self.idle_outside_transaction() {
                terminate(&mut self.writer).await;
                return;
            }
        }
    }

    /// Nothing in flight and no transaction open: the session may close without loss.
    fn idle_outside_transaction(&self) -> bool {
        self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I'
    }

    /// Forwards the client's complete messages, with the bookkeeping they need.
    async fn on_client_data(&mut self) -> Result<(), Close> {
        self.refresh_data_source().await;
        loop {
            let frame = match frame_at(&self.reader.buf, 0, self.reader.max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    fatal(
                        &mut self.writer,
                        "08P01",
                        &format!("invalid message from client: {e}"),
                    )
                    .await;
                    return Err(Close);
                }
            };
            let tag = frame.tag;
            if !matches!(
                tag,
                b'Q' | b'P'
                    | b'B'
                    | b'E'
                    | b'D'
                    | b'C'
                    | b'S'
                    | b'H'
                    | b'F'
                    | b'd'
                    | b'c'
                    | b'f'
                    | b'X'
            ) {
                fatal(
                    &mut self.writer,
                    "08P01",
                    &format!("invalid frontend message type {}", tag as char),
                )
                .await;
                return Err(Close);
            }
            if tag == b'X' {
                return Err(Close);
            }
            if self.skip_until_sync {
                self.reader.buf.advance(frame.total_len);
                if tag == b'S' {
                    self.skip_until_sync = false;
                    self.write_ready();
                }
                continue;
            }
            if self.admin_message(tag, frame.total_len).await? {
                continue;
            }
            self.route_read_write(tag, frame.total_len).await?;
            if self.backend.is_none() {
                if let Err(e) = self.connect_backend().await {
                    self.reader.buf.advance(frame.total_len);
                    self.writer.write(&from_error(Severity::Error, &e));
                    match tag {
                        b'Q' | b'S' | b'F' => self.write_ready(),
                        _ => self.skip_until_sync = true,
                    }
                    continue;
                }
            }
            let msg = self.reader.buf.split_to(frame.total_len);
            self.forward_client_message(tag, &msg);
        }
        if let Some(b) = &mut self.backend {
            if b.conn.writer.pending() > 0 && b.conn.writer.flush().await.is_err() {
                b.conn.healthy = false;
            }
        }
        if self.writer.pending() > 0 {
            self.writer.flush().await.map_err(|_| Close)?;
        }
        Ok(())
    }

    fn forward_client_message(&mut self, tag: u8, msg: &[u8]) {
        let held = self.backend.as_mut().expect("connected before forwarding");
        let conn = &mut held.conn;
        match tag {
            b'P' => {
                // Re-using a name that exists (on an earlier backend connection) must fail
                // as it would have there: bring the existing statement over first.
                let name = parse_statement(msg).map(String::from_utf8_lossy);
                if let Some(name) = name.filter(|n| !n.is_empty()) {
                    if self.statements.knows(&name) && !conn.prepared.contains(name.as_ref()) {
                        if let Some(parse) = self.statements.inject(&name) {
                            conn.writer.write_raw(&parse);
                            conn.prepared.insert(name.into_owned());
                        }
                    }
                }
                if let Some(q) = parse_query(msg) {
                    self.batch.runs(statement_type(q));
                    if let Some(info) = &self.info {
                        info.begin_statement_bytes(q);
                    }
                }
                if let Some(name) = self.statements.on_parse(msg) {
                    if !name.is_empty() {
                        conn.prepared.insert(name);
                    }
                }
                // A SET sent with the extended protocol (psycopg, node-postgres and JDBC
                // send every statement so) changes the session like a simple-query one.
                if let Some(sql) = parse_query(msg).and_then(|q| std::str::from_utf8(q).ok()) {
                    if classify(sql) == StatementKind::SessionSet {
                        self.session.record_set(sql);
                        conn.applied_session_state = self.session.set_statement_count();
                    }
                }
                self.unsynced = true;
            }
            b'B' | b'D' => {
                let name = if tag == b'B' {
                    bind_statement(msg)
                } else {
                    target(msg).filter(|(k, _)| *k == b'S').map(|(_, n)| n)
                };
                if let Some(name) = name.filter(|n| !n.is_empty()) {
                    let name = String::from_utf8_lossy(name);
                    if tag == b'B' {
                        let query = self.statements.query_of(&name);
                        self.batch
                            .runs(query.map(statement_type).unwrap_or("other"));
                        if let (Some(info), Some(q)) = (&self.info, query) {
                            info.begin_statement_bytes(q);
                        }
                    }
                    if !conn.prepared.contains(name.as_ref()) {
                        if let Some(parse) = self.statements.inject(&name) {
                            conn.writer.write_raw(&parse);
                            conn.prepared.insert(name.into_owned());
                        }
                    }
                }
                self.unsynced = true;
            }
            b'C' => {
                if let Some((b'S', name)) = target(msg) {
                    let name = String::from_utf8_lossy(name);
                    self.statements.close(&name);
                    conn.prepared.remove(name.as_ref());
                }
                self.unsynced = true;
            }
            b'E' | b'H' => {
                if tag == b'E' {
                    self.batch.executes();
                    if let Some(info) = &self.info {
                        info.mark_active();
                    }
                }
                self.unsynced = true;
            }
            b'S' => {
                self.requests.push_back(self.batch.synced());
                self.pending_syncs += 1;
                self.statements.on_sync();
                self.unsynced = false;
            }
            b'Q' | b'F' => {
                self.pending_syncs += 1;
                self.statements.on_sync();
                let sql = msg.get(5..msg.len().saturating_sub(1)).unwrap_or_default();
                let kind = if tag == b'Q' {
                    statement_type(sql)
                } else {
                    "other"
                };
                self.requests
                    .push_back(Some(StatementTimer::started_at(Instant::now(), kind)));
                if tag == b'Q' {
                    let sql = msg.get(5..msg.len().saturating_sub(1)).unwrap_or_default();
                    if let Some(info) = &self.info {
                        info.begin_statement_bytes(sql);
                    }
                    if let Ok(StatementKind::SessionSet) = std::str::from_utf8(sql).map(classify) {
                        self.session.record_set(&String::from_utf8_lossy(sql));
                        conn.applied_session_state = self.session.set_statement_count();
                    }
                }
            }
            _ => {}
        }
        conn.writer.write_raw(msg);
    }

    /// Relays the backend's complete messages to the client.
    async fn on_backend_data(&mut self) -> Result<(), Close> {
        let held = self
            .backend
            .as_mut()
            .expect("data from a connected backend");
        let buf = &mut held.conn.reader.buf;
        let mut at = 0;
        let mut run = 0;
        loop {
            let frame = match frame_at(buf, at, MAX_BACKEND_MESSAGE) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    held.conn.healthy = false;
                    let cause = e.to_string();
                    return self.on_backend_lost(cause).await;
                }
            };
            let idle = self.pending_syncs == 0 && !self.unsynced;
            let swallow = match frame.tag {
                b'1' => self.statements.on_parse_complete(),
                b'Z' => {
                    let before = self.tx_status;
                    self.read_write.relay_status(&mut buf[at + 5], before);
                    self.tx_status = buf[at + 5];
                    if let Some(Some(t)) = self.requests.front() {
                        let ds = &self.data_source;
                        m::backend_round_trip(&ds.database, &ds.name, t.elapsed());
                    }
                    request_done(
                        &mut self.requests,
                        &self.rt,
                        &self.session,
                        before,
                        self.tx_status,
                    );
                    if let Some(info) = &self.info {
                        info.end_statement(self.tx_status != b'I');
                    }
                    self.pending_syncs = self.pending_syncs.saturating_sub(1);
                    for name in self.statements.on_ready() {
                        held.conn.prepared.remove(&name);
                    }
                    false
                }
                // An error nobody asked for (the server is terminating an idle connection):
                // keep it from the client; the end of the stream follows.
                b'E' if idle => {
                    held.conn.healthy = false;
                    true
                }
                b'E' => {
                    super::error::count_backend_error(&buf[at..at + frame.total_len]);
                    false
                }
                _ => false,
            };
            if swallow {
                self.writer.write_raw(&buf[run..at]);
                run = at + frame.total_len;
            }
            at += frame.total_len;
        }
        self.writer.write_raw(&buf[run..at]);
        buf.advance(at);
        held.conn.tx_status = self.tx_status;
        self.session.in_transaction = self.tx_status != b'I';
        if self.writer.pending() >= FLUSH_THRESHOLD || held.conn.reader.buf.is_empty() {
            self.writer.flush().await.map_err(|_| Close)?;
        }
        Ok(())
    }

    /// Between statements, outside a transaction, follows a reload that gave the session's
    /// database another default data source (a changed URL or pool size): the connection
    /// to the old one goes back to its pool, and the next message opens one to the new one
    /// (named statements are prepared there again on use, as after a lost connection).
    async fn refresh_data_source(&mut self) {
        let generation = self.rt.generation();
        let idle = self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I';
        if generation == self.generation || !idle {
            return;
        }
        self.generation = generation;
        let cluster = self.rt.cluster();
        let Some(db) = self
            .session
            .database
            .as_ref()
            .and_then(|name| cluster.databases.get(name))
        else {
            return;
        };
        let ds = db.default_data_source();
        if Arc::ptr_eq(ds, &self.data_source) {
            return;
        }
        self.release_read_write().await;
        let old = std::mem::replace(&mut self.data_source, ds.clone());
        if let Some(held) = self.backend.take() {
            debug!(data_source = %old.name, "configuration reloaded: leaving a data source that changed");
            held.release(&old).await;
        }
    }

    /// The backend connection ended. Between statements and outside a transaction nothing is
    /// lost: the next statement gets a new connection. Otherwise the client must know.
    async fn on_backend_lost(&mut self, cause: String) -> Result<(), Close> {
        let idle = self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I';
        self.backend = None;
        if idle {
            debug!(data_source = %self.data_source.name, "idle backend connection closed: {cause}");
            return Ok(());
        }
        warn!(data_source = %self.data_source.name, "backend connection lost: {cause}");
        let e = Error::BackendLost {
            data_source: self.data_source.name.clone(),
            cause,
        };
        send_fatal(&mut self.writer, &e).await;
        Err(Close)
    }

    /// Takes a connection for the session's data source (pooled, or new), replays the
    /// session's SETs on it, and points cancel requests at it.
    async fn connect_backend(&mut self) -> Result<(), Error> {
        let held = checkout(
            &self.rt.config().server,
            &self.data_source,
            &self.params,
            &self.session,
        )
        .await?;
        self.rt
            .pg_cancel
            .register(self.key.0, CancelTarget::of(self.key.1, &held.conn));
        self.backend = Some(held);
        Ok(())
    }

    fn write_ready(&mut self) {
        let status = TransactionStatus::try_from(self.tx_status).unwrap_or(TransactionStatus::Idle);
        self.writer.write(&ReadyForQuery::new(status));
    }

    /// Returns a clean backend connection to its pool.
    async fn close(mut self) {
        self.rt.pg_cancel.unregister(self.key.0);
        self.writer.shutdown().await;
        self.release_read_write().await;
        if let Some(mut held) = self.backend.take() {
            let idle = self.pending_syncs == 0 && !self.unsynced;
            if idle && held.conn.healthy && held.conn.reset().await.is_ok() {
                let profile = held.conn.profile;
                self.data_source
                    .postgres
                    .give_back(held.lease, held.conn, profile);
            }
        }
    }
}

/// An extended-protocol batch (messages up to Sync) as the statement metrics see it: when
/// its first message came, the statement type of what it runs (from its Parse, or the
/// named statement its Bind names), and whether it executes anything.
#[derive(Debug, Default)]
pub(super) struct Batch {
    started: Option<Instant>,
    kind: Option<&'static str>,
    executes: bool,
}

impl Batch {
    /// Any message of the batch: the batch has started.
    pub(super) fn message(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    /// A Parse or Bind: the batch runs a statement of type `kind`.
    pub(super) fn runs(&mut self, kind: &'static str) {
        self.message();
        self.kind = Some(kind);
    }

    /// An Execute.
    pub(super) fn executes(&mut self) {
        self.message();
        self.executes = true;
    }

    /// Whether a batch is open (messages sent, no Sync yet).
    pub(super) fn is_open(&self) -> bool {
        self.started.is_some()
    }

    /// The Sync: the batch's timer if it executed something; a new batch begins.
    pub(super) fn synced(&mut self) -> Option<StatementTimer> {
        let batch = std::mem::take(self);
        let started = batch.started.unwrap_or_else(Instant::now);
        batch
            .executes
            .then(|| StatementTimer::started_at(started, batch.kind.unwrap_or("other")))
    }
}

/// A ReadyForQuery came back: the request it answers is done (statement metrics), and a
/// transaction ended if the status went back to idle.
fn request_done(
    requests: &mut VecDeque<Option<StatementTimer>>,
    rt: &Runtime,
    session: &Session,
    before: u8,
    after: u8,
) {
    let Some(Some(timer)) = requests.pop_front() else {
        return;
    };
    let kind = timer.kind();
    let database = session.database.as_deref().unwrap_or("");
    timer.finish(
        Protocol::Postgres,
        database,
        RouteKind::Single,
        rt.config().server.slow_statement,
    );
    if before != b'I' && after == b'I' {
        let outcome = TxnOutcome::of(kind, before == b'E');
        m::transaction(Protocol::Postgres, "single", outcome);
    }
}

enum Event {
    /// The proxy is shutting down and this session is idle outside a transaction.
    Shutdown,
    Client(bool),
    Backend(Result<(), String>),
}

/// May the session's user use `database`, and is it a PostgreSQL one? Returns where its
/// statements go.
fn check_database(
    rt: &Runtime,
    session: &Session,
    database: &str,
) -> Result<Arc<DataSource>, Error> {
    let Some(logical) = rt.cluster().databases.get(database).cloned() else {
        return Err(Error::UnknownDatabase(database.to_string()));
    };
    if !session.user.may_use(database) {
        return Err(Error::DatabaseAccessDenied {
            user: session.user.name.clone(),
            host: session.host.clone(),
            database: database.to_string(),
        });
    }
    if logical.config.backend != BackendKind::Postgres {
        return Err(Error::WrongProtocol {
            database: database.to_string(),
            backend: "MySQL".into(),
        });
    }
    let route = crate::route::plan(session, &rt.cluster(), BackendKind::Postgres)?;
    Ok(route.data_source)
}

fn unknown_user(name: &str) -> UserConfig {
    UserConfig {
        name: name.to_string(),
        password: format!("{:032x}", rand::random::<u128>()),
        databases: Vec::new(),
        mysql_auth_plugin: None,
        postgres_auth: PostgresAuthMethod::ScramSha256,
        admin: false,
        require_tls: false,
    }
}

/// NegotiateProtocolVersion: dbmesh speaks 3.0 and none of the `_pq_` options.
fn negotiate_protocol_version<W: AsyncWrite + Unpin>(
    writer: &mut MessageWriter<W>,
    startup: &Startup,
) {
    let options: Vec<&String> = startup
        .parameters
        .keys()
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    let mut body = BytesMut::new();
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&(options.len() as i32).to_be_bytes());
    for o in options {
        body.extend_from_slice(o.as_bytes());
        body.extend_from_slice(&[0]);
    }
    writer.write_raw(b"v");
    writer.write_raw(&((body.len() + 4) as i32).to_be_bytes());
    writer.write_raw(&body);
}

/// Graceful shutdown of an idle session: FATAL 57P01 admin_shutdown, as PostgreSQL sends
/// on a smart or fast shutdown, then the connection closes.
pub(super) async fn terminate<W: AsyncWrite + Unpin>(writer: &mut MessageWriter<W>) {
    fatal(
        writer,
        "57P01",
        "terminating connection due to administrator command",
    )
    .await;
}

async fn fatal<W: AsyncWrite + Unpin>(writer: &mut MessageWriter<W>, code: &str, message: &str) {
    writer.write(&error_response(Severity::Fatal, code, message));
    let _ = writer.flush().await;
}

async fn send_fatal<W: AsyncWrite + Unpin>(writer: &mut MessageWriter<W>, e: &Error) {
    writer.write(&from_error(Severity::Fatal, e));
    let _ = writer.flush().await;
}

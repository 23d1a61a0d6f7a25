//! One client connection: handshake, then a loop of commands. Each command is answered by
//! dbmesh itself (USE, SHOW DATABASES, PING, ...) or routed to a backend connection whose
//! response is relayed untouched.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};
use tokio::net::TcpStream;
use tracing::{debug, info_span, warn, Instrument};

use super::auth;
use super::backend::BackendConn;
use super::err::{code, MysqlError};
use super::handshake::{self, AuthIo};
use super::kill::KillTarget;
use super::ok::{ok_payload, STATUS_AUTOCOMMIT, STATUS_IN_TRANS, STATUS_MORE_RESULTS};
use super::packet::{read_packet_unbuffered, Packet, PacketError, PacketReader, PacketWriter};
use super::prepared::PreparedStatement;
use super::relay::{relay, RelayEnd, RelayError};
use super::response::{ResponseKind, ResponseTracker};
use super::resultset::{write_text_resultset, ColumnDef, ResultFormat};
use super::sharded_txn::ShardedTxn;
use crate::admin::metrics::{
    self as m, ConnectionMetrics, Protocol, RouteKind, StatementTimer, TxnOutcome,
};
use crate::config::{BackendKind, UserConfig};
use crate::error::Error;
use crate::execute::pool::Lease;
use crate::execute::{Cluster, DataSource};
use crate::server::Runtime;
use crate::session::registry::Registered;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::sql::{classify, StatementKind};
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
}

impl ClientConn {
    async fn handshake(
        rt: Arc<Runtime>,
        connection_id: u32,
        peer: String,
        mut stream: Stream,
        (shutdown, metrics): (Shutdown, ConnectionMetrics),
    ) -> Option<ClientConn> {
        let nonce = auth::new_nonce();
        let mut info = rt.mysql.clone();
        let config = rt.config();
        let tls = config.server.tls.as_ref();
        if tls.is_some() {
            info.capabilities |= CapabilityFlags::CLIENT_SSL;
        }
        let max = rt.config().server.max_packet_size as usize;
        let mut seq = 0u8;
        let mut greeting = PacketWriter::new(&mut stream);
        greeting.write_packet(&mut seq, &handshake::greeting(&info, connection_id, &nonce));
        greeting.flush().await.ok()?;

        // Until TLS is settled the connection is read packet by packet, unbuffered.
        let mut first = read_in_sequence(&mut stream, max, seq).await;
        if let (Some(tls), Ok(pkt)) = (tls, &first) {
            if handshake::is_ssl_request(&pkt.payload) {
                seq = pkt.seq.wrapping_add(1);
                stream = match stream.accept_tls(&tls.acceptor()).await {
                    Ok(s) => s,
                    Err(e) => {
                        debug!("TLS handshake failed: {e}");
                        return None;
                    }
                };
                first = read_in_sequence(&mut stream, max, seq).await;
            }
        }
        let over_tls = stream.is_tls();
        let (r, w) = stream.into_split();
        let mut reader = PacketReader::new(r, max);
        let mut writer = PacketWriter::new(w);
        let hello = match first {
            Ok(pkt) => handshake::parse_hello(&pkt.payload),
            Err(e) => {
                debug!("handshake failed: {e}");
                let err = packet_error_reply(&e);
                if let Some(err) = err {
                    writer.write_packet(&mut seq, &err.payload());
                    let _ = writer.flush().await;
                }
                return None;
            }
        };
        seq = seq.wrapping_add(1);
        let Some(hello) =
            hello.filter(|h| h.capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41))
        else {
            let err = MysqlError::new(code::ER_HANDSHAKE_ERROR, "08S01", "Bad handshake");
            writer.write_packet(&mut seq, &err.payload());
            let _ = writer.flush().await;
            return None;
        };
        let capabilities = hello.capabilities & info.capabilities;
        let user = rt
            .config()
            .users
            .iter()
            .find(|u| u.name == hello.user)
            .cloned();
        let mut io = AuthIo {
            reader: &mut reader,
            writer: &mut writer,
            seq: &mut seq,
        };
        let ok = match &user {
            Some(u) => handshake::authenticate(
                &mut io,
                &rt.auth,
                u,
                info.auth_plugin,
                &nonce,
                &hello.plugin,
                hello.auth_data.clone(),
                over_tls,
            )
            .await
            .ok()?,
            None => false,
        };
        let generation = rt.generation();
        let mut conn = ClientConn {
            cluster: rt.cluster(),
            generation,
            info: None,
            rt: rt.clone(),
            reader,
            writer,
            connection_id,
            nonce,
            capabilities,
            mariadb_capabilities: hello.mariadb_capabilities & info.mariadb_capabilities,
            collation: hello.collation,
            session: Session::new(
                Arc::new(
                    user.clone()
                        .unwrap_or_else(|| placeholder_user(&hello.user)),
                ),
                None,
                peer.clone(),
            ),
            backends: Vec::new(),
            statements: HashMap::new(),
            next_statement_id: 1,
            seq,
            over_tls,
            killed: Arc::new(tokio::sync::Notify::new()),
            kill_thread: None,
            txn: None,
            last_insert_id: 0,
            multi_statements: capabilities.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
            more_results: false,
            shutdown,
            metrics,
            route: RouteKind::Single,
            statement_failed: false,
            read_write: Default::default(),
        };
        if !ok {
            conn.send_error(&Error::AccessDenied {
                user: hello.user.clone(),
                host: peer,
                using_password: !hello.auth_data.is_empty(),
            });
            let _ = conn.writer.flush().await;
            return None;
        }
        if conn.session.user.require_tls && !over_tls {
            conn.send_error(&Error::TlsRequired {
                user: hello.user.clone(),
                host: peer,
            });
            let _ = conn.writer.flush().await;
            return None;
        }
        if let Some(db) = &hello.database {
            if let Err(e) = conn.check_database(db) {
                conn.send_error(&e);
                let _ = conn.writer.flush().await;
                return None;
            }
            conn.session.database = Some(db.clone());
        }
        conn.killed = rt.mysql_kill.register(connection_id, &hello.user);
        conn.info = Some(rt.sessions.register(
            connection_id,
            &hello.user,
            "mysql",
            &conn.session.host,
            hello.database.as_deref(),
        ));
        conn.send_ok();
        conn.writer.flush().await.ok()?;
        tracing::debug!(user = %hello.user, db = ?hello.database, "authenticated");
        Some(conn)
    }

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
            let outcome = self.command(command, pkt.payload).instrument(span).await;
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
    fn use_database(&mut self, db: &str) {
        match self.check_database(db) {
            Ok(()) => {
                self.session.database = Some(db.to_string());
                self.send_ok();
            }
            Err(e) => self.send_error(&e),
        }
    }

    /// `SHOW DATABASES`: the logical databases this user may use.
    fn show_databases(&mut self) {
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

    // ---- statements ----

    async fn com_query(&mut self, payload: bytes::BytesMut) -> Result<(), Fatal> {
        match self.split_multi_statement(&payload) {
            Some(statements) => self.run_multi_statement(statements).await,
            None => self.one_query(payload).await,
        }
    }

    /// COM_SET_OPTION: forwarded to the default data source; dbmesh notes whether
    /// multi-statements are now on (option 0) or off (1).
    async fn set_option(&mut self, payload: &[u8]) -> Result<(), Fatal> {
        let answered = self
            .forward_routed_index(payload, ResponseKind::Single)
            .await?;
        if let Some((_, Some(tracker))) = answered {
            match payload.get(1..3) {
                Some([0, 0]) if !tracker.error => self.multi_statements = true,
                Some([1, 0]) if !tracker.error => self.multi_statements = false,
                _ => {}
            }
        }
        Ok(())
    }

    /// One statement (or a multi-statement string passed through whole).
    pub(crate) async fn one_query(&mut self, payload: bytes::BytesMut) -> Result<(), Fatal> {
        if let Some(parsed) = std::str::from_utf8(&payload[1..])
            .ok()
            .and_then(crate::txn::session_statement::parse)
        {
            self.set_transaction_type(parsed);
            return Ok(());
        }
        let kind = std::str::from_utf8(&payload[1..])
            .map(classify)
            .unwrap_or(StatementKind::Other);
        match kind {
            StatementKind::Use(db) => {
                self.use_database(&db);
                Ok(())
            }
            StatementKind::ShowDatabases => {
                self.show_databases();
                Ok(())
            }
            StatementKind::Kill { query_only, id } => self.kill(query_only, id).await,
            // MySQL's SET LOCAL is a synonym of SET SESSION.
            StatementKind::SessionSet | StatementKind::SetLocal => {
                let Some(index) = self
                    .forward_routed_index(&payload, ResponseKind::Query)
                    .await?
                else {
                    return Ok(());
                };
                if let Some(tracker) = index.1 {
                    if !tracker.error {
                        let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
                        self.session.record_set(&sql);
                        // It already ran on this backend connection.
                        if let Some(held) = self.backends.get_mut(index.0) {
                            held.conn.applied_session_state = self.session.set_statement_count();
                        }
                        if self.backends.len() > 1 {
                            // A sharded session: the others follow now, not at their next
                            // statement (`SET autocommit = 1` commits there too).
                            self.replay_on_held_backends().await;
                        }
                    }
                }
                Ok(())
            }
            StatementKind::Preview(sql) => {
                self.preview(&sql);
                Ok(())
            }
            StatementKind::Admin => {
                let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
                self.admin(&sql).await;
                Ok(())
            }
            StatementKind::Other => self.query_routed(payload).await,
        }
    }

    /// A statement dbmesh does not answer itself: to the default data source as sent, or,
    /// on a database with sharding rules, wherever its plan says.
    async fn query_routed(&mut self, payload: bytes::BytesMut) -> Result<(), Fatal> {
        let route = match crate::route::plan(&self.session, &self.cluster, BackendKind::Mysql) {
            Ok(r) => r,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        if let Some(router) = route.database.router.clone() {
            return self.query_sharded(route.database, router, &payload).await;
        }
        let command = super::replica_retry::ReadCommand::Payload(&payload);
        let ran = self
            .run_routed(&route.data_source, &payload[1..], command)
            .await?;
        if let Some((index, false, tracker)) = ran {
            if !tracker.error {
                self.note_write(index, &route.data_source, &payload[1..])
                    .await;
            }
        }
        Ok(())
    }

    /// Routes the command by the session and relays the backend's response.
    pub(crate) async fn forward_routed(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<(), Fatal> {
        self.forward_routed_index(payload, kind).await.map(|_| ())
    }

    /// Like `forward_routed`, also returning which backend ran it and the response summary
    /// (`None` when dbmesh answered with its own error instead).
    async fn forward_routed_index(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Option<(usize, Option<ResponseTracker>)>, Fatal> {
        let route = match crate::route::plan(&self.session, &self.cluster, BackendKind::Mysql) {
            Ok(r) => r,
            Err(e) => {
                self.send_error(&e);
                return Ok(None);
            }
        };
        let index = match self.backend_for(&route.data_source).await {
            Ok(i) => i,
            Err(e) => {
                self.send_error(&e);
                return Ok(None);
            }
        };
        let tracker = self.forward(index, payload, kind, None).await?;
        Ok(Some((index, tracker)))
    }

    /// Sends `payload` to backend `index` and relays the response, streaming a LOCAL INFILE
    /// from the client when asked. Returns the response summary, or `None` when the backend
    /// broke (the client then got an ERR naming the data source).
    pub(crate) async fn forward(
        &mut self,
        index: usize,
        payload: &[u8],
        kind: ResponseKind,
        prepare_id: Option<u32>,
    ) -> Result<Option<ResponseTracker>, Fatal> {
        self.point_kill_at(index);
        let held = &mut self.backends[index];
        let mut tracker = ResponseTracker::new(kind, held.conn.deprecate_eof());
        let started = std::time::Instant::now();
        let sent = held.conn.send_command(payload).await;
        let mut result = match sent {
            Ok(()) => {
                relay(
                    &mut held.conn,
                    &mut self.writer,
                    &mut self.seq,
                    &mut tracker,
                    prepare_id,
                    self.more_results,
                )
                .await
            }
            Err(e) => Err(RelayError::Backend(match e {
                super::backend::BackendError::Packet(p) => p,
                other => PacketError::Io(std::io::Error::other(other.to_string())),
            })),
        };
        loop {
            match result {
                Ok(RelayEnd::Done) => break,
                Ok(RelayEnd::LocalInfile) => {
                    if self.stream_local_infile(index).await.is_err() {
                        return Err(Fatal);
                    }
                    let held = &mut self.backends[index];
                    result = relay(
                        &mut held.conn,
                        &mut self.writer,
                        &mut self.seq,
                        &mut tracker,
                        None,
                        self.more_results,
                    )
                    .await;
                }
                Err(RelayError::Client(_)) => {
                    self.backends[index].conn.healthy = false;
                    self.drop_backend(index);
                    return Err(Fatal);
                }
                Err(RelayError::Backend(e)) => {
                    let ds = self.backends[index].ds.name.clone();
                    let replica = self.backends[index].ds.replica.is_some();
                    warn!(data_source = %ds, "backend connection lost: {e}");
                    self.drop_backend(index);
                    if !replica {
                        // A replica holds no transaction of the session.
                        self.session.in_transaction = false;
                    }
                    self.send_error(&Error::BackendLost {
                        data_source: ds,
                        cause: e.to_string(),
                    });
                    return Ok(None);
                }
            }
        }
        let ds = &self.backends[index].ds;
        m::backend_round_trip(&ds.database, &ds.name, started.elapsed());
        if let Some(errno) = tracker.error_code {
            m::mysql_error(errno);
            self.statement_failed = true;
        }
        // The session's transaction lives on the primary; a replica's flags say nothing of it.
        if let Some(status) = tracker.status.filter(|_| ds.replica.is_none()) {
            self.session.in_transaction = status & STATUS_IN_TRANS != 0;
            self.session.autocommit = status & STATUS_AUTOCOMMIT != 0;
        }
        if let Some((_, id)) = tracker.last_ok {
            self.note_last_insert_id(id);
        }
        Ok(Some(tracker))
    }

    /// Keeps `KILL QUERY <our id>` pointed at the backend connection about to run a
    /// statement (it changes rarely: a new connection, a statement on another data source).
    pub(crate) fn point_kill_at(&mut self, index: usize) {
        let held = &self.backends[index];
        if self.kill_thread != Some(held.conn.connection_id) {
            self.kill_thread = Some(held.conn.connection_id);
            self.rt.mysql_kill.set_target(
                self.connection_id,
                KillTarget {
                    url: held.ds.url.clone(),
                    thread_id: held.conn.connection_id,
                },
            );
        }
    }

    /// Copies the client's LOCAL INFILE packets to the backend up to the empty packet.
    async fn stream_local_infile(&mut self, index: usize) -> Result<(), Fatal> {
        self.writer.flush().await.map_err(|_| Fatal)?;
        loop {
            let pkt = self
                .reader
                .read_packet_seq(self.seq)
                .await
                .map_err(|_| Fatal)?;
            self.seq = pkt.seq.wrapping_add(1);
            let held = &mut self.backends[index];
            held.conn.queue_continuation(&pkt.payload);
            if (pkt.payload.is_empty()
                || held.conn.writer.pending() >= super::packet::FLUSH_THRESHOLD)
                && held.conn.flush().await.is_err()
            {
                // The relay that follows reports the lost backend.
                return Ok(());
            }
            if pkt.payload.is_empty() {
                return Ok(());
            }
        }
    }
}

/// Turns a framing failure into the ERR packet the client gets before the connection closes
/// (none when the client simply went away).
/// The next connection-phase packet, which must carry sequence id `expected`.
async fn read_in_sequence(
    stream: &mut Stream,
    max: usize,
    expected: u8,
) -> Result<Packet, PacketError> {
    let pkt = read_packet_unbuffered(stream, max).await?;
    if pkt.seq != expected {
        return Err(PacketError::Sequence {
            got: pkt.seq,
            expected,
        });
    }
    Ok(pkt)
}

fn packet_error_reply(e: &PacketError) -> Option<MysqlError> {
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

fn placeholder_user(name: &str) -> UserConfig {
    UserConfig {
        name: name.to_string(),
        password: String::new(),
        databases: Vec::new(),
        mysql_auth_plugin: None,
        postgres_auth: Default::default(),
        admin: false,
        require_tls: false,
    }
}

/// The `type` label of a sharded database's transactions.
fn txn_type_label(t: crate::config::TransactionType) -> &'static str {
    match t {
        crate::config::TransactionType::Local => "local",
        crate::config::TransactionType::Xa => "xa",
        crate::config::TransactionType::Saga => "saga",
    }
}

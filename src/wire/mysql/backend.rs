//! dbmesh as a MySQL *client*: one connection to a backend MariaDB/MySQL server.
//!
//! A backend connection is opened with the capability flags and collation of the client it
//! serves (its "profile"), so the backend's result packets are already in the format that
//! client expects and can be forwarded byte for byte.

use std::collections::HashMap;
use std::time::Duration;

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::wire::stream::{ReadHalf, Stream, WriteHalf};

use super::auth::{self, CACHING_SHA2, FAST_AUTH_SUCCESS, NATIVE, PERFORM_FULL_AUTH};
use super::err::MysqlError;
use super::packet::{read_packet_unbuffered, PacketError, PacketReader, PacketWriter};
use super::response::{ResponseKind, ResponseTracker, Section, Step};
use crate::config::DataSourceUrl;

/// Why a backend connection failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Packet(#[from] PacketError),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(MysqlError),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError::Packet(PacketError::Io(e))
    }
}

/// Which format-affecting options a backend connection was opened with. Pooled connections
/// are only handed to clients with the same profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    pub capabilities: u32,
    /// MariaDB extended capabilities (only ever [`MARIADB_PROFILE_CAPABILITIES`]).
    pub mariadb_capabilities: u32,
    pub collation: u8,
}

/// MariaDB extended capabilities dbmesh passes through: extended type metadata only adds a
/// field to column definitions, which are forwarded untouched. Progress reports, metadata
/// caching and bulk operations change the response grammar and are not offered.
pub const MARIADB_PROFILE_CAPABILITIES: MariadbCapabilities =
    MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA;

/// Capability flags a client may choose that change the bytes a server sends, and that dbmesh
/// therefore requests from the backend exactly as the client asked.
pub const PROFILE_CAPABILITIES: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
        | CapabilityFlags::CLIENT_ODBC.bits()
        | CapabilityFlags::CLIENT_LOCAL_FILES.bits()
        | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// Flags dbmesh always needs from a backend.
const BASE_CAPABILITIES: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits(),
);

/// Where and how to connect.
pub struct ConnectOptions<'a> {
    pub url: &'a DataSourceUrl,
    pub profile: Profile,
    pub connect_timeout: Duration,
    pub max_packet: u32,
}

/// An authenticated connection to a backend server.
pub struct BackendConn {
    pub(crate) reader: PacketReader<ReadHalf>,
    pub(crate) writer: PacketWriter<WriteHalf>,
    pub profile: Profile,
    pub capabilities: CapabilityFlags,
    /// The backend's thread id (for KILL).
    pub connection_id: u32,
    pub server_version: String,
    pub default_collation: u8,
    /// The MariaDB extended capabilities the server offered (empty for MySQL).
    pub server_mariadb_capabilities: MariadbCapabilities,
    /// Status flags of the last OK/EOF the backend sent.
    pub status: u16,
    /// Prepared SQL → this backend's statement id (shared by the sessions it serves).
    pub prepared: super::statement_cache::StatementCache,
    /// Client statement id of a sharded statement → (unit SQL → this backend's statement
    /// id). A sharded statement runs different SQL per data node, so one client statement
    /// can be several backend statements on one connection.
    pub unit_statements: HashMap<u32, HashMap<String, u32>>,
    /// The session SET statements this connection ran, in order (a session's recorded
    /// ones, see `backends.rs`): a checkout prefers a connection whose list equals the
    /// session's, and one whose list is a prefix of it only runs the rest.
    pub applied_sets: Vec<String>,
    /// What `LAST_INSERT_ID()` answers on this connection (the last non-zero id of an OK
    /// it sent, or the one dbmesh set): brought to the session's on checkout.
    pub last_insert_id: u64,
    /// Sequence id the backend expects next within the current command.
    pub(crate) next_seq: u8,
    /// False once an i/o error left the connection in an unknown state.
    pub healthy: bool,
    /// When the last command was sent.
    pub last_used: std::time::Instant,
}

impl BackendConn {
    /// Connects and authenticates.
    pub async fn connect(opts: ConnectOptions<'_>) -> Result<BackendConn, BackendError> {
        let t = opts.connect_timeout;
        tokio::time::timeout(t, Self::connect_inner(opts))
            .await
            .map_err(|_| BackendError::Timeout(t))?
    }

    async fn connect_inner(opts: ConnectOptions<'_>) -> Result<BackendConn, BackendError> {
        let url = opts.url;
        let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
        tcp.set_nodelay(true)?;
        let mut stream = Stream::Plain(tcp);
        let greeting = read_packet_unbuffered(&mut stream, opts.max_packet as usize + 1024).await?;
        if greeting.payload.first() == Some(&0xFF) {
            return Err(BackendError::Server(parse_err(&greeting.payload)));
        }
        let hs: HandshakePacket<'_> = ParseBuf(&greeting.payload)
            .parse(())
            .map_err(|e| BackendError::Protocol(format!("bad server greeting: {e}")))?;
        let server_caps = hs.capabilities();
        if !server_caps
            .contains(CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_PLUGIN_AUTH)
        {
            return Err(BackendError::Protocol(
                "server lacks protocol 4.1 or pluggable authentication".into(),
            ));
        }
        let wanted = CapabilityFlags::from_bits_truncate(opts.profile.capabilities)
            & PROFILE_CAPABILITIES
            | BASE_CAPABILITIES;
        let mut caps = wanted & server_caps;
        // A MariaDB server clears CLIENT_MYSQL (= CLIENT_LONG_PASSWORD) and offers extended
        // capabilities; they are used when the client also cleared it.
        let server_mariadb = if server_caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
            MariadbCapabilities::empty()
        } else {
            hs.mariadb_ext_capabilities()
        };
        let mariadb = MariadbCapabilities::from_bits_truncate(opts.profile.mariadb_capabilities)
            & MARIADB_PROFILE_CAPABILITIES
            & server_mariadb;
        let mut nonce = hs.nonce();
        let mut plugin = hs
            .auth_plugin_name_ref()
            .map(|p| p.to_vec())
            .unwrap_or_else(|| NATIVE.to_vec());
        let version = hs.server_version_str().into_owned();
        let connection_id = hs.connection_id();
        let default_collation = hs.default_collation();
        if plugin != NATIVE && plugin != CACHING_SHA2 {
            // Answer with native; the server will switch us to what it wants.
            plugin = NATIVE.to_vec();
        }
        let mut seq = greeting.seq.wrapping_add(1);
        if let Some(tls) = &url.tls {
            if server_caps.contains(CapabilityFlags::CLIENT_SSL) {
                // The SSL request: the first 32 bytes of a handshake response.
                caps |= CapabilityFlags::CLIENT_SSL;
                let mut request = Vec::with_capacity(36);
                request.extend_from_slice(&[32, 0, 0, seq]);
                request.extend_from_slice(&caps.bits().to_le_bytes());
                request.extend_from_slice(&opts.max_packet.to_le_bytes());
                request.push(opts.profile.collation);
                request.extend_from_slice(&[0u8; 19]);
                request.extend_from_slice(&mariadb.bits().to_le_bytes());
                stream.write_all(&request).await?;
                seq = seq.wrapping_add(1);
                stream = stream.connect_tls(tls).await.map_err(|e| {
                    BackendError::Protocol(format!("TLS handshake with {}: {e}", url.host))
                })?;
            } else if tls.mode.required() {
                return Err(BackendError::Protocol(format!(
                    "{}:{} does not offer TLS, which the data source URL requires",
                    url.host, url.port
                )));
            }
        }
        let over_tls = stream.is_tls();
        let (r, w) = stream.into_split();
        let mut reader = PacketReader::new(r, opts.max_packet as usize + 1024);
        let mut writer = PacketWriter::new(w);
        let password = url.password.as_str();
        let response = scramble_for(&plugin, &nonce, password);
        let db = (!url.database.is_empty()).then_some(url.database.as_bytes());
        let hr = HandshakeResponse::new(
            Some(response.as_slice()),
            hs.server_version_parsed().unwrap_or((8, 0, 0)),
            Some(url.user.as_bytes()),
            db,
            Some(AuthPlugin::from_bytes(&plugin)),
            caps,
            None,
            opts.max_packet,
        )
        .with_mariadb_ext_capabilities(mariadb);
        let mut out = Vec::new();
        mysql_common::proto::MySerialize::serialize(&hr, &mut out);
        // `HandshakeResponse::new` picks a collation from the server version; the backend must
        // use the client's (capabilities u32, max packet u32, then the collation byte).
        out[8] = opts.profile.collation;
        writer.write_packet(&mut seq, &out);
        writer.flush().await?;

        let status = loop {
            let pkt = reader.read_packet().await?;
            seq = pkt.seq.wrapping_add(1);
            let p = &pkt.payload[..];
            match p.first() {
                Some(0x00) => break super::ok::status_flags(p).unwrap_or(0),
                Some(0xFF) => return Err(BackendError::Server(parse_err(p))),
                Some(0xFE) => {
                    // Auth switch: plugin name, NUL, new nonce (NUL-terminated for MySQL's own).
                    let rest = &p[1..];
                    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
                    plugin = rest[..end].to_vec();
                    let mut data = rest.get(end + 1..).unwrap_or(&[]).to_vec();
                    if data.last() == Some(&0) {
                        data.pop();
                    }
                    nonce = data;
                    if plugin != NATIVE && plugin != CACHING_SHA2 {
                        return Err(BackendError::Protocol(format!(
                            "backend wants authentication plugin '{}', which dbmesh does not support",
                            String::from_utf8_lossy(&plugin)
                        )));
                    }
                    let resp = scramble_for(&plugin, &nonce, password);
                    writer.write_packet(&mut seq, &resp);
                    writer.flush().await?;
                }
                Some(0x01) if plugin == CACHING_SHA2 => match p.get(1) {
                    Some(&FAST_AUTH_SUCCESS) => {}
                    Some(&PERFORM_FULL_AUTH) if over_tls => {
                        // Over TLS the password goes in clear, as MySQL clients do.
                        let mut plain = password.as_bytes().to_vec();
                        plain.push(0);
                        writer.write_packet(&mut seq, &plain);
                        writer.flush().await?;
                    }
                    Some(&PERFORM_FULL_AUTH) => {
                        writer.write_packet(&mut seq, &[auth::REQUEST_PUBLIC_KEY]);
                        writer.flush().await?;
                    }
                    _ => {
                        // The public key we asked for.
                        let pem = &p[1..];
                        let mut plain = password.as_bytes().to_vec();
                        plain.push(0);
                        let block = mysql_common::crypto::encrypt(
                            &auth::xor_with_nonce(&plain, &nonce),
                            pem,
                        )
                        .map_err(|e| BackendError::Protocol(format!("RSA encryption: {e}")))?;
                        writer.write_packet(&mut seq, &block);
                        writer.flush().await?;
                    }
                },
                _ => {
                    return Err(BackendError::Protocol(format!(
                        "unexpected packet 0x{:02x} during authentication",
                        p.first().copied().unwrap_or(0)
                    )))
                }
            }
        };
        Ok(BackendConn {
            reader,
            writer,
            profile: opts.profile,
            capabilities: caps,
            connection_id,
            server_version: version,
            default_collation,
            server_mariadb_capabilities: server_mariadb,
            status,
            prepared: Default::default(),
            unit_statements: HashMap::new(),
            applied_sets: Vec::new(),
            last_insert_id: 0,
            next_seq: 0,
            healthy: true,
            last_used: std::time::Instant::now(),
        })
    }

    /// Was this connection closed by the server while it sat idle? Only connections idle for
    /// a while are probed, so the hot path pays nothing.
    pub fn closed_while_idle(&mut self) -> bool {
        self.last_used.elapsed() >= std::time::Duration::from_secs(1) && self.reader.peer_gone()
    }

    pub fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// Starts a command: writes `payload` with sequence id 0 and flushes.
    pub async fn send_command(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        let mut seq = 0;
        self.writer.write_packet(&mut seq, payload);
        self.next_seq = seq;
        self.last_used = std::time::Instant::now();
        self.writer.flush().await.map_err(|e| {
            self.healthy = false;
            e.into()
        })
    }

    /// Queues a command that has no response (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE)
    /// without flushing: it goes out with the next command.
    pub fn queue_command(&mut self, payload: &[u8]) {
        let mut seq = 0;
        self.writer.write_packet(&mut seq, payload);
    }

    /// Sends a packet that continues the current command (LOCAL INFILE data).
    pub fn queue_continuation(&mut self, payload: &[u8]) {
        let mut seq = self.next_seq;
        self.writer.write_packet(&mut seq, payload);
        self.next_seq = seq;
    }

    pub async fn flush(&mut self) -> Result<(), BackendError> {
        self.writer.flush().await.map_err(|e| {
            self.healthy = false;
            e.into()
        })
    }

    /// Runs a command whose response dbmesh consumes itself, returning the tracker (status,
    /// PREPARE_OK, ...) or the backend's error.
    pub async fn run_internal(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Result<ResponseTracker, MysqlError>, BackendError> {
        self.send_command(payload).await?;
        self.read_internal(kind).await
    }

    /// Reads the response to a command already sent (see [`run_internal`](Self::run_internal)),
    /// so that one command can be sent to several backends before any answer is read.
    pub async fn read_internal(
        &mut self,
        kind: ResponseKind,
    ) -> Result<Result<ResponseTracker, MysqlError>, BackendError> {
        let mut tracker = ResponseTracker::new(kind, self.deprecate_eof());
        let mut err = None;
        loop {
            let pkt = match self.reader.read_packet().await {
                Ok(p) => p,
                Err(e) => {
                    self.healthy = false;
                    return Err(e.into());
                }
            };
            self.next_seq = pkt.seq.wrapping_add(1);
            if pkt.payload.first() == Some(&0xFF) {
                err = Some(parse_err(&pkt.payload));
            }
            match tracker.on_packet(&pkt.payload) {
                Step::More => {}
                Step::Done => break,
                Step::LocalInfile => {
                    // Never for statements dbmesh issues itself; refuse the file.
                    self.queue_continuation(&[]);
                    self.flush().await?;
                }
            }
        }
        if let Some(s) = tracker.status {
            self.status = s;
        }
        Ok(match err {
            Some(e) => Err(e),
            None => Ok(tracker),
        })
    }

    /// Runs a statement for dbmesh's own purposes (session replay), discarding any rows.
    pub async fn query_internal(
        &mut self,
        sql: &str,
    ) -> Result<Result<(), MysqlError>, BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03);
        payload.extend_from_slice(sql.as_bytes());
        Ok(self
            .run_internal(&payload, ResponseKind::Query)
            .await?
            .map(|_| ()))
    }

    /// Runs a query for dbmesh's own purposes and returns the first column of each row, as
    /// text (NULLs left out): a listing such as `SHOW COLUMNS`. Rows are few and small.
    pub async fn query_first_column(
        &mut self,
        sql: &str,
    ) -> Result<Result<Vec<String>, MysqlError>, BackendError> {
        Ok(self.query_columns(sql, &[0]).await?.map(|rows| {
            rows.into_iter()
                .filter_map(|mut row| row.pop().flatten())
                .collect()
        }))
    }

    /// Runs a query for dbmesh's own purposes and returns the columns `columns` (0-based)
    /// of each row as text, `None` for NULL: e.g. the replication threads and
    /// `Seconds_Behind_Master` of `SHOW SLAVE STATUS` for the replica health monitor. Rows
    /// are few and small.
    pub async fn query_columns(
        &mut self,
        sql: &str,
        columns: &[usize],
    ) -> Result<Result<Vec<Vec<Option<String>>>, MysqlError>, BackendError> {
        self.query_text_rows(sql, |row| {
            columns.iter().map(|&c| text_row_column(row, c)).collect()
        })
        .await
    }

    /// Runs a query for dbmesh's own purposes and returns every column of each row as
    /// bytes, `None` for NULL: the XA control connection's queries (`XA RECOVER`, the
    /// transaction log table) over TLS. Rows are few and small.
    pub async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<Result<Vec<Vec<Option<Vec<u8>>>>, MysqlError>, BackendError> {
        self.query_text_rows(sql, text_row_values).await
    }

    /// Runs `sql` (COM_QUERY) and maps each text-protocol row payload with `row`.
    async fn query_text_rows<T>(
        &mut self,
        sql: &str,
        mut row: impl FnMut(&[u8]) -> T,
    ) -> Result<Result<Vec<T>, MysqlError>, BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03);
        payload.extend_from_slice(sql.as_bytes());
        self.send_command(&payload).await?;
        let mut tracker = ResponseTracker::new(ResponseKind::Query, self.deprecate_eof());
        let mut values = Vec::new();
        let mut err = None;
        loop {
            let pkt = match self.reader.read_packet().await {
                Ok(p) => p,
                Err(e) => {
                    self.healthy = false;
                    return Err(e.into());
                }
            };
            self.next_seq = pkt.seq.wrapping_add(1);
            if pkt.payload.first() == Some(&0xFF) {
                err = Some(parse_err(&pkt.payload));
            }
            let in_rows = tracker.section() == Section::Rows;
            let step = tracker.on_packet(&pkt.payload);
            if in_rows && step == Step::More && tracker.section() == Section::Rows {
                values.push(row(&pkt.payload));
            }
            match step {
                Step::More => {}
                Step::Done => break,
                Step::LocalInfile => {
                    self.queue_continuation(&[]);
                    self.flush().await?;
                }
            }
        }
        if let Some(s) = tracker.status {
            self.status = s;
        }
        Ok(match err {
            Some(e) => Err(e),
            None => Ok(values),
        })
    }

    /// COM_QUIT: a polite goodbye, so the server does not count an aborted connection.
    pub async fn quit(&mut self) {
        let _ = self.send_command(&[0x01]).await;
        self.healthy = false;
    }

    /// COM_RESET_CONNECTION: back to a fresh session (used before returning to the pool).
    pub async fn reset(&mut self) -> Result<(), BackendError> {
        match self.run_internal(&[0x1F], ResponseKind::Single).await? {
            Ok(_) => {
                self.prepared.clear();
                self.unit_statements.clear();
                self.applied_sets.clear();
                self.last_insert_id = 0;
                Ok(())
            }
            Err(e) => Err(BackendError::Server(e)),
        }
    }
}

/// The auth response for a plugin.
fn scramble_for(plugin: &[u8], nonce: &[u8], password: &str) -> Vec<u8> {
    if plugin == CACHING_SHA2 {
        auth::sha2_response(nonce, password)
    } else {
        auth::native_response(nonce, password)
    }
}

/// Column `column` of a text-protocol row: `None` for NULL (0xFB) or a short row.
fn text_row_column(row: &[u8], column: usize) -> Option<String> {
    let mut buf = ParseBuf(row);
    for _ in 0..column {
        if buf.0.first() == Some(&0xFB) {
            buf.skip(1);
        } else {
            buf.checked_eat_lenenc_str()?;
        }
    }
    if buf.0.first() == Some(&0xFB) {
        return None;
    }
    buf.checked_eat_lenenc_str()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Every value of a text-protocol row: length-encoded strings to the end of the payload,
/// 0xFB for NULL.
fn text_row_values(row: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut buf = ParseBuf(row);
    let mut values = Vec::new();
    while !buf.0.is_empty() {
        if buf.0.first() == Some(&0xFB) {
            buf.skip(1);
            values.push(None);
        } else {
            match buf.checked_eat_lenenc_str() {
                Some(v) => values.push(Some(v.to_vec())),
                None => break,
            }
        }
    }
    values
}

/// Decodes an ERR packet payload.
pub fn parse_err(p: &[u8]) -> MysqlError {
    let code = p
        .get(1..3)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .unwrap_or(0);
    let (state, msg) = if p.get(3) == Some(&b'#') && p.len() >= 9 {
        (String::from_utf8_lossy(&p[4..9]).into_owned(), &p[9..])
    } else {
        ("HY000".to_string(), p.get(3..).unwrap_or(&[]))
    };
    MysqlError::new(code, &state, String::from_utf8_lossy(msg))
}

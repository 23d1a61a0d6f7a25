//! dbmesh as a PostgreSQL *client*: one connection to a backend server, authenticated with
//! trust, cleartext, md5 or SCRAM-SHA-256, started with the client's session parameters.

use std::time::Duration;

use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::stream::{ReadHalf, Stream, WriteHalf};

use super::message::{MessageError, MessageReader, MessageWriter};
use super::prepared_cache::PreparedCache;
use crate::config::DataSourceUrl;

/// Why a backend connection failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Message(#[from] MessageError),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError::Message(MessageError::Io(e))
    }
}

/// Startup parameters that never follow the client to a backend: the backend's user and
/// database come from the data source, and replication connections are not proxied.
const NOT_FORWARDED: &[&str] = &["user", "database", "replication"];

/// The client's startup parameters a backend connection is opened with. Pooled connections
/// are only reused for the same parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StartupParams(pub Vec<(String, String)>);

impl StartupParams {
    pub fn from_client(params: &std::collections::BTreeMap<String, String>) -> StartupParams {
        StartupParams(
            params
                .iter()
                .filter(|(k, _)| !NOT_FORWARDED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// A compact key for pool matching.
    pub fn profile(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
}

/// An authenticated, ready connection to a PostgreSQL backend.
pub struct PgBackendConn {
    pub reader: MessageReader<ReadHalf>,
    pub writer: MessageWriter<WriteHalf>,
    pub profile: u64,
    /// The start-up parameters it was opened with (`profile` is their hash): the pool's
    /// upkeep opens warm connections like it.
    pub params: StartupParams,
    /// ParameterStatus values the server reported at start-up.
    pub parameters: Vec<(String, String)>,
    pub process_id: i32,
    pub secret_key: i32,
    pub host: String,
    pub port: u16,
    /// Named statements prepared on this connection: backend names in the single-source
    /// pump (`statements.rs`), the client's names in a sharded session.
    pub prepared: PreparedCache,
    /// Which session state (recorded SETs) this connection has applied: the
    /// `checkout::state_key` of the SETs, 0 for none (a fresh connection).
    pub applied_state: u64,
    /// Transaction status from the last ReadyForQuery.
    pub tx_status: u8,
    pub healthy: bool,
    /// The database's `datcollate`, asked the first time a cross-shard merge needs it.
    pub datcollate: Option<String>,
}

impl PgBackendConn {
    pub async fn connect(
        url: &DataSourceUrl,
        params: &StartupParams,
        timeout: Duration,
        max_message: usize,
    ) -> Result<PgBackendConn, BackendError> {
        tokio::time::timeout(timeout, Self::connect_inner(url, params, max_message))
            .await
            .map_err(|_| BackendError::Timeout(timeout))?
    }

    async fn connect_inner(
        url: &DataSourceUrl,
        params: &StartupParams,
        max_message: usize,
    ) -> Result<PgBackendConn, BackendError> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
        tcp.set_nodelay(true)?;
        let mut stream = Stream::Plain(tcp);
        if let Some(tls) = &url.tls {
            // SSLRequest; the server answers one byte, 'S' to go on with TLS or 'N'.
            stream
                .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
                .await?;
            let mut answer = [0u8; 1];
            stream.read_exact(&mut answer).await?;
            match answer[0] {
                b'S' => {
                    stream = stream.connect_tls(tls).await.map_err(|e| {
                        BackendError::Protocol(format!("TLS handshake with {}: {e}", url.host))
                    })?;
                }
                b'N' if !tls.mode.required() => {}
                b'N' => {
                    return Err(BackendError::Protocol(format!(
                        "{}:{} does not offer TLS, which the data source URL requires",
                        url.host, url.port
                    )))
                }
                other => {
                    return Err(BackendError::Protocol(format!(
                        "unexpected answer 0x{other:02x} to SSLRequest"
                    )))
                }
            }
        }
        let (r, w) = stream.into_split();
        let mut reader = MessageReader::new(r, max_message);
        let mut writer = MessageWriter::new(w);

        let mut startup: Vec<(&str, &str)> = vec![
            ("user", url.user.as_str()),
            ("database", url.database.as_str()),
        ];
        startup.extend(params.0.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        frontend::startup_message(startup.iter().copied(), &mut writer.buf)?;
        writer.flush().await?;

        let mut scram: Option<ScramSha256> = None;
        let mut parameters = Vec::new();
        let (mut pid, mut secret) = (0, 0);
        loop {
            let (_, mut msg) = reader.read_message().await?;
            let parsed = backend::Message::parse(&mut msg)?
                .ok_or_else(|| BackendError::Protocol("truncated message".into()))?;
            match parsed {
                backend::Message::AuthenticationOk => {}
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(url.password.as_bytes(), &mut writer.buf)?;
                    writer.flush().await?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        url.user.as_bytes(),
                        url.password.as_bytes(),
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut writer.buf)?;
                    writer.flush().await?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut found = false;
                    while let Some(m) = mechanisms.next()? {
                        found |= m == "SCRAM-SHA-256";
                    }
                    if !found {
                        return Err(BackendError::Protocol(
                            "backend offers no SCRAM-SHA-256".into(),
                        ));
                    }
                    let s =
                        ScramSha256::new(url.password.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut writer.buf)?;
                    writer.flush().await?;
                    scram = Some(s);
                }
                backend::Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| {
                        BackendError::Protocol("SASL continue before start".into())
                    })?;
                    s.update(body.data())?;
                    frontend::sasl_response(s.message(), &mut writer.buf)?;
                    writer.flush().await?;
                }
                backend::Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| BackendError::Protocol("SASL final before start".into()))?;
                    s.finish(body.data())?;
                }
                backend::Message::ParameterStatus(body) => {
                    parameters.push((body.name()?.to_string(), body.value()?.to_string()));
                }
                backend::Message::BackendKeyData(body) => {
                    pid = body.process_id();
                    secret = body.secret_key();
                }
                backend::Message::ReadyForQuery(body) => {
                    return Ok(PgBackendConn {
                        reader,
                        writer,
                        profile: params.profile(),
                        params: params.clone(),
                        parameters,
                        process_id: pid,
                        secret_key: secret,
                        host: url.host.clone(),
                        port: url.port,
                        prepared: PreparedCache::default(),
                        applied_state: 0,
                        tx_status: body.status(),
                        healthy: true,
                        datcollate: None,
                    });
                }
                backend::Message::ErrorResponse(body) => {
                    let (code, message) = error_fields(&body);
                    return Err(BackendError::Server { code, message });
                }
                backend::Message::NoticeResponse(_) => {}
                _ => {
                    return Err(BackendError::Protocol(
                        "unexpected message during start-up".into(),
                    ));
                }
            }
        }
    }

    /// Runs a simple query for dbmesh's own purposes (session replay, reset), discarding
    /// results; returns the server's error, if any.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Option<(String, String)>, BackendError> {
        self.own_query(sql, |_, _| {}).await
    }

    /// Runs a query for dbmesh and returns the text of its first column, row by row (the
    /// column listing of a table). `Ok(Err(..))` is the server's error (code, message); the
    /// connection is still fine then.
    pub async fn query_first_column(
        &mut self,
        sql: &str,
    ) -> Result<Result<Vec<String>, (String, String)>, BackendError> {
        let mut values = Vec::new();
        let error = self
            .own_query(sql, |tag, msg| {
                if tag == b'D' {
                    if let Some(text) = first_value(msg) {
                        values.push(String::from_utf8_lossy(text).into_owned());
                    }
                }
            })
            .await?;
        Ok(match error {
            Some(e) => Err(e),
            None => Ok(values),
        })
    }

    /// Runs a one-row, one-column boolean query for dbmesh (the pinning probe). Messages the
    /// server may send at any time to a client that listens or gets notices
    /// (NotificationResponse, NoticeResponse, ParameterStatus) are handed to `relay`, as
    /// they belong to the client.
    pub async fn query_bool(
        &mut self,
        sql: &str,
        mut relay: impl FnMut(&[u8]),
    ) -> Result<bool, BackendError> {
        let mut value = None;
        let error = self
            .own_query(sql, |tag, msg| match tag {
                b'D' => value = first_value(msg).map(|v| v == b"t"),
                b'A' | b'N' | b'S' => relay(msg),
                _ => {}
            })
            .await?;
        match (error, value) {
            (Some((code, message)), _) => Err(BackendError::Server { code, message }),
            (None, Some(v)) => Ok(v),
            (None, None) => Err(BackendError::Protocol(format!("no row from {sql}"))),
        }
    }

    /// Sends simple query `sql` and reads its answer up to ReadyForQuery, handing every
    /// message but ErrorResponse and ReadyForQuery to `each` (tag, whole message); returns
    /// the server's error (code, message), if any.
    async fn own_query(
        &mut self,
        sql: &str,
        mut each: impl FnMut(u8, &[u8]),
    ) -> Result<Option<(String, String)>, BackendError> {
        frontend::query(sql, &mut self.writer.buf)?;
        self.writer
            .flush()
            .await
            .inspect_err(|_| self.healthy = false)?;
        let mut error = None;
        loop {
            let (tag, mut msg) = self
                .reader
                .read_message()
                .await
                .inspect_err(|_| self.healthy = false)?;
            match tag {
                b'Z' => {
                    self.tx_status = msg[5];
                    return Ok(error);
                }
                b'E' => {
                    if let Some(backend::Message::ErrorResponse(body)) =
                        backend::Message::parse(&mut msg)?
                    {
                        error = Some(error_fields(&body));
                    }
                }
                _ => each(tag, &msg),
            }
        }
    }

    /// Brings the connection back to a fresh session before it returns to the pool.
    pub async fn reset(&mut self) -> Result<(), BackendError> {
        if self.tx_status != b'I' {
            self.simple_query("ROLLBACK").await?;
        }
        match self.simple_query("DISCARD ALL").await? {
            None => {
                self.prepared.clear();
                self.applied_state = 0;
                Ok(())
            }
            Some((code, message)) => Err(BackendError::Server { code, message }),
        }
    }
}

/// The first value of DataRow message `msg` (tag, length, column count, the value's
/// length, its bytes); `None` for NULL or a short message.
fn first_value(msg: &[u8]) -> Option<&[u8]> {
    let len = i32::from_be_bytes(msg.get(7..11)?.try_into().ok()?);
    msg.get(11..11 + usize::try_from(len).ok()?)
}

/// SQLSTATE and message of an ErrorResponse.
pub fn error_fields(body: &backend::ErrorResponseBody) -> (String, String) {
    let mut code = String::new();
    let mut message = String::new();
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        match f.type_() {
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

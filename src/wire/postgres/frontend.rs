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
use super::checkout::state_key;
use super::checkout::{checkout, checkout_for_resend, HeldBackend, MAX_BACKEND_MESSAGE};
use super::error::{error_response, from_error, Severity};
use super::message::{
    frame_at, read_startup_unbuffered, MessageReader, MessageWriter, FLUSH_THRESHOLD,
};
use super::pinning::{may_pin, session_reset, SessionReset, PROBE};
use super::sharded::Started;
use super::statements::{bind_statement, parse_query, Statements};
use crate::admin::metrics::{
    self as m, statement_type, ConnectionMetrics, Protocol, RouteKind, StatementTimer, TxnOutcome,
};
use crate::config::{BackendKind, PoolMode, PostgresAuthMethod, UserConfig};
use crate::error::Error;
use crate::execute::DataSource;
use crate::server::Runtime;
use crate::session::registry::Registered;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::sql::{classify, StatementKind};
use crate::wire::stream::{ReadHalf, Stream, WriteHalf};

mod admin_pump;
mod backend_link;
mod pump;
mod read_write;
mod resend;
mod startup;

pub(super) use pump::Batch;

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
    /// A statement may have created state bound to the backend connection: before it is
    /// released, the backend is asked (`pinning.rs`).
    maybe_pinned: bool,
    /// The client parsed the unnamed statement and has not executed anything since: it
    /// may still Describe or Bind it in a later batch (libpq's `PQprepare(conn, "", ..)`,
    /// psql's `\gdesc`), so the connection that has it stays with the session until an
    /// Execute or a simple Query (which replaces it) comes.
    unnamed_statement_waiting: bool,
    /// Admin statements the client prepared, answered by dbmesh (`admin_pump.rs`).
    admin: admin_pump::AdminPump,
    /// Which of the data source's primary and replicas runs the next request (`read_write.rs`).
    read_write: read_write::PgReadWrite,
    /// The requests in flight, kept to send again should their connection break before
    /// answering (`resend.rs`).
    resend: resend::Resend,
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

    fn write_ready(&mut self) {
        let status = TransactionStatus::try_from(self.tx_status).unwrap_or(TransactionStatus::Idle);
        self.writer.write(&ReadyForQuery::new(status));
    }
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

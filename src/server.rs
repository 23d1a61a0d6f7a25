//! The running proxy: the runtime shared by every connection, and the listeners.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use mysql_common::constants::CapabilityFlags;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{BackendKind, Config, MysqlAuthPlugin};
use crate::execute::Cluster;
use crate::session::registry::SessionRegistry;
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::txn::Coordinator;
use crate::wire::mysql::auth::AuthState;
use crate::wire::mysql::backend::{
    BackendConn, ConnectOptions, Profile, MARIADB_PROFILE_CAPABILITIES, PROFILE_CAPABILITIES,
};
use crate::wire::mysql::handshake::{ServerInfo, SERVER_CAPABILITIES};
use crate::wire::mysql::kill::KillRegistry;
use crate::wire::postgres::auth::ScramCache;
use crate::wire::postgres::cancel::CancelRegistry;

/// How long a client may take from connecting to being logged in (MySQL's
/// `connect_timeout` default); a client that stalls is disconnected.
pub const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Version announced to MySQL clients when no backend could be asked at start-up.
const FALLBACK_MYSQL_VERSION: &str = "8.0.36-dbmesh";

/// Everything a connection needs: the configuration, the data sources and their pools.
///
/// The configuration and the cluster built from it are swapped whole by a reload
/// (`admin::reload`); a session reads them through [`Runtime::config`] and
/// [`Runtime::cluster`], a lock-free snapshot it keeps as long as it needs one state
/// (a statement, a transaction).
pub struct Runtime {
    config: ArcSwap<Config>,
    cluster: ArcSwap<Cluster>,
    /// Bumped by every reload that took effect, so sessions notice a new snapshot with one
    /// atomic load.
    generation: AtomicU64,
    /// Reloads run one at a time.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// Live client sessions, for `SHOW DBMESH SESSIONS`.
    pub sessions: Arc<SessionRegistry>,
    /// Unix time in ms the runtime was built.
    pub started_ms: u64,
    /// What the MySQL listener tells clients about itself.
    pub mysql: ServerInfo,
    pub auth: AuthState,
    /// MySQL client connections, for `KILL`.
    pub mysql_kill: KillRegistry,
    /// PostgreSQL cancel keys of connected clients.
    pub pg_cancel: CancelRegistry,
    /// SCRAM keys derived for PostgreSQL logins.
    pub pg_scram: ScramCache,
    /// The XA coordinator: global transaction ids, the transaction log, recovery.
    pub xa: Arc<Coordinator>,
    connection_ids: AtomicU32,
}

impl Runtime {
    /// Builds the runtime. The MySQL greeting copies the first MySQL data source's version,
    /// capabilities and collation, so clients see the dialect they really talk to; when that
    /// backend is down dbmesh still starts, with defaults.
    pub async fn new(config: Config) -> Arc<Runtime> {
        let cluster = Cluster::new(&config);
        let mysql = probe_mysql(&config).await;
        let uses_sha2 = config.server.mysql_auth_plugin == MysqlAuthPlugin::CachingSha2Password
            || config
                .users
                .iter()
                .any(|u| u.mysql_auth_plugin == Some(MysqlAuthPlugin::CachingSha2Password));
        let xa = Coordinator::new(&config);
        let runtime = Arc::new(Runtime {
            xa,
            auth: AuthState::new(config.server.rsa_private_key.clone()),
            config: ArcSwap::from_pointee(config),
            cluster: ArcSwap::from_pointee(cluster),
            generation: AtomicU64::new(0),
            reload_lock: tokio::sync::Mutex::new(()),
            sessions: Arc::new(SessionRegistry::default()),
            started_ms: crate::session::registry::now_ms(),
            mysql,
            mysql_kill: KillRegistry::default(),
            pg_cancel: CancelRegistry::default(),
            pg_scram: ScramCache::default(),
            connection_ids: AtomicU32::new(1),
        });
        if uses_sha2 {
            // Load or generate the RSA key now rather than during some client's first login.
            let rt = runtime.clone();
            tokio::spawn(async move {
                if let Err(e) = rt.auth.rsa().await {
                    warn!("caching_sha2_password full authentication will fail: {e}");
                }
            });
        }
        runtime
    }

    /// The running configuration (a snapshot: a reload does not change it under the caller).
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The running cluster (a snapshot, like [`Runtime::config`]).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.load_full()
    }

    /// How many reloads took effect so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Puts a reloaded configuration and its cluster in place: statements that start from
    /// now on see them.
    pub(crate) fn install(&self, config: Config, cluster: Cluster) {
        self.cluster.store(Arc::new(cluster));
        self.config.store(Arc::new(config));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A fresh id for a client connection (MySQL's connection id).
    pub fn next_connection_id(&self) -> u32 {
        self.connection_ids.fetch_add(1, Ordering::Relaxed)
    }
}

async fn probe_mysql(config: &Config) -> ServerInfo {
    let mut info = ServerInfo {
        version: FALLBACK_MYSQL_VERSION.to_string(),
        capabilities: SERVER_CAPABILITIES | PROFILE_CAPABILITIES,
        mariadb_capabilities: mysql_common::constants::MariadbCapabilities::empty(),
        collation: 45,
        auth_plugin: config.server.mysql_auth_plugin,
    };
    let first = config
        .databases
        .values()
        .filter(|db| db.backend == BackendKind::Mysql)
        .find_map(|db| db.data_sources.get(&db.default_data_source));
    if let Some(ds) = first {
        let probe = BackendConn::connect(ConnectOptions {
            url: &ds.url,
            profile: Profile {
                capabilities: PROFILE_CAPABILITIES.bits(),
                mariadb_capabilities: MARIADB_PROFILE_CAPABILITIES.bits(),
                collation: 45,
            },
            connect_timeout: config.server.connect_timeout,
            max_packet: config.server.max_packet_size,
        })
        .await;
        match probe {
            Ok(mut conn) => {
                conn.quit().await;
                info.version = conn.server_version.clone();
                info.capabilities =
                    SERVER_CAPABILITIES | (conn.capabilities & PROFILE_CAPABILITIES);
                info.collation = conn.default_collation;
                info.mariadb_capabilities =
                    conn.server_mariadb_capabilities & MARIADB_PROFILE_CAPABILITIES;
                if !conn.server_mariadb_capabilities.is_empty() {
                    // Speak as the MariaDB server we front: CLIENT_MYSQL cleared.
                    info.capabilities
                        .remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
                }
            }
            Err(e) => {
                warn!(data_source = %ds.name, url = %ds.url, "could not reach backend at start-up, announcing defaults: {e}")
            }
        }
    }
    // Compression is not offered; TLS is dbmesh's own business (the frontend announces
    // CLIENT_SSL when `server.tls_cert` is set), whatever the backend offers.
    info.capabilities &= !(CapabilityFlags::CLIENT_COMPRESS | CapabilityFlags::CLIENT_SSL);
    if let Some(v) = &config.server.mysql_server_version {
        info.version = v.clone();
    }
    info
}

/// A started proxy: its bound addresses, and the handle that stops it.
pub struct Server {
    pub runtime: Arc<Runtime>,
    pub mysql_addr: Option<SocketAddr>,
    pub postgres_addr: Option<SocketAddr>,
    /// The admin HTTP endpoint (`/metrics`, `/health`, `/ready`), when configured.
    pub admin_addr: Option<SocketAddr>,
    shutdown: ShutdownSignal,
    tasks: Vec<JoinHandle<()>>,
    recovery: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds the configured listeners and starts accepting. A listen port of 0 binds an
    /// ephemeral port (tests read it from `mysql_addr`).
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let runtime = Runtime::new(config).await;
        let shutdown = ShutdownSignal::new();
        let mut tasks = Vec::new();
        let recovery = Some(start_xa_recovery(&runtime));
        let mut mysql_addr = None;
        let config = runtime.config();
        if let Some(addr) = config.server.mysql_listen {
            let listener = TcpListener::bind(addr).await?;
            let bound = listener.local_addr()?;
            info!(%bound, "MySQL listener ready");
            mysql_addr = Some(bound);
            let task = accept(listener, runtime.clone(), &shutdown, Protocol::Mysql);
            tasks.push(tokio::spawn(task));
        }
        if let Some(interval) = config.server.config_watch {
            let watch =
                crate::admin::reload::watch_files(runtime.clone(), interval, shutdown.subscribe());
            tasks.push(tokio::spawn(watch));
        }
        let mut postgres_addr = None;
        if let Some(addr) = config.server.postgres_listen {
            let listener = TcpListener::bind(addr).await?;
            let bound = listener.local_addr()?;
            info!(%bound, "PostgreSQL listener ready");
            postgres_addr = Some(bound);
            let task = accept(listener, runtime.clone(), &shutdown, Protocol::Postgres);
            tasks.push(tokio::spawn(task));
        }
        let mut admin_addr = None;
        if let Some(addr) = config.server.admin_listen {
            let (bound, task) =
                crate::admin::start(addr, runtime.clone(), shutdown.subscribe()).await?;
            admin_addr = Some(bound);
            tasks.push(task);
        }
        Ok(Server {
            runtime,
            mysql_addr,
            postgres_addr,
            admin_addr,
            shutdown,
            tasks,
            recovery,
        })
    }

    /// Graceful shutdown: stops accepting, closes sessions idle outside a transaction, lets
    /// sessions in a transaction finish it (each closes when its transaction ends), and
    /// returns when all are closed or `server.shutdown_timeout_ms` has passed, whichever
    /// comes first. Connections still open then are closed when the runtime ends.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(recovery) = self.recovery.take() {
            recovery.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let deadline = self.runtime.config().server.shutdown_timeout;
        if self.shutdown.drained(deadline).await {
            info!("every client connection closed");
        } else {
            warn!(
                timeout_ms = deadline.as_millis() as u64,
                "shutdown deadline passed with client connections open; closing them"
            );
        }
    }
}

/// Starts XA recovery. A pass runs while some database has XA or SAGA transactions, the
/// file has a `[transaction]` table, or a session chose XA / SAGA (or the log holds what
/// an earlier process left) (read from the current configuration each time, so a
/// reload is followed): it resolves what an earlier crash left prepared, then keeps
/// watching (and renewing this instance's lease in a shared log).
fn start_xa_recovery(runtime: &Arc<Runtime>) -> JoinHandle<()> {
    let weak = Arc::downgrade(runtime);
    let targets = move || {
        let runtime = weak.upgrade()?;
        let config = runtime.config();
        // A transaction type chosen by `SET dbmesh_transaction_type` alone counts too.
        let wanted = config.transaction.configured
            || config
                .databases
                .values()
                .any(|db| db.transaction != crate::config::TransactionType::Local)
            || runtime.xa.has_work();
        if !wanted {
            return None;
        }
        let urls = config
            .databases
            .values()
            .flat_map(|db| {
                db.data_sources
                    .iter()
                    .map(|(name, ds)| (format!("{}.{name}", db.name), ds.url.clone()))
            })
            .collect();
        Some((urls, config.server.connect_timeout))
    };
    crate::txn::recovery::spawn(runtime.xa.clone(), targets)
}

/// Which frontend a listener serves.
#[derive(Clone, Copy)]
enum Protocol {
    Mysql,
    Postgres,
}

/// The accept loop of one listener; each connection gets its own [`Shutdown`], so the
/// server can wait for it. Returns (dropping the listener: new connections are refused)
/// when the shutdown starts.
fn accept(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    signal: &ShutdownSignal,
    protocol: Protocol,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let connections = signal.subscribe();
    let mut stopped = signal.subscribe();
    async move { accept_loop(listener, runtime, connections, &mut stopped, protocol).await }
}

async fn accept_loop(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    connections: Shutdown,
    stopped: &mut Shutdown,
    protocol: Protocol,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let rt = runtime.clone();
                    let shutdown = connections.clone();
                    match protocol {
                        Protocol::Mysql => tokio::spawn(crate::wire::mysql::serve_client(stream, rt, shutdown)),
                        Protocol::Postgres => tokio::spawn(crate::wire::postgres::serve_client(stream, rt, shutdown)),
                    };
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stopped.started() => return,
        }
    }
}

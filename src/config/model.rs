//! The validated configuration the rest of the proxy works with.
//!
//! Everything here has been checked: listen addresses parse, every data source
//! URL matches its database's backend, every name refers to something defined,
//! passwords have been read from the environment and relative paths are resolved
//! against the config file's directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::data_source_url::DataSourceUrl;
use super::rules::ShardingRules;

/// A loaded, validated `dbmesh.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from, as given.
    pub path: PathBuf,
    /// `[server]`: listeners and protocol-wide settings.
    pub server: ServerConfig,
    /// `[[users]]`: the accounts clients log in with.
    pub users: Vec<UserConfig>,
    /// `[databases.<name>]`: the logical databases clients see, by name.
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// `[transaction]`: how XA transactions are identified, logged and recovered.
    pub transaction: TransactionConfig,
}

impl Config {
    /// The user called `name`, if configured.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// `[server]`: where the proxy listens and how it speaks the protocols.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// MySQL protocol listener; at least one of this and `postgres_listen` is set.
    pub mysql_listen: Option<SocketAddr>,
    /// PostgreSQL protocol listener.
    pub postgres_listen: Option<SocketAddr>,
    /// HTTP listener for `/metrics` and `/health`.
    pub admin_listen: Option<SocketAddr>,
    /// Version string announced in the MySQL handshake; `None` = probe a backend at startup.
    pub mysql_server_version: Option<String>,
    /// Auth plugin offered to MySQL clients unless a user overrides it.
    pub mysql_auth_plugin: MysqlAuthPlugin,
    /// PEM private key for `caching_sha2_password` full authentication, resolved against the config file's directory; the file exists.
    pub rsa_private_key: Option<PathBuf>,
    /// PEM public key matching `rsa_private_key`, resolved the same way; the file exists.
    pub rsa_public_key: Option<PathBuf>,
    /// Largest MySQL packet (or PostgreSQL message) accepted, in bytes.
    pub max_packet_size: u32,
    /// How long to wait for a backend TCP connect + handshake.
    pub connect_timeout: Duration,
    /// How long a statement waits for a free pooled backend connection.
    pub checkout_timeout: Duration,
    /// Tokio worker threads; `None` = one per CPU.
    pub worker_threads: Option<usize>,
    /// Replaces the `worker_id` of every SNOWFLAKE key generator in the rule files, so
    /// dbmesh instances sharing rule files (sidecars) generate distinct keys.
    pub snowflake_worker_id: Option<u16>,
    /// Log filter (e.g. `info` or `dbmesh=debug`); `None` = `RUST_LOG` or the binary's default.
    pub log_level: Option<String>,
    /// `tls_cert` / `tls_key` / `tls_min_version`: TLS offered to clients of both
    /// listeners; `None` = plain TCP only (clients asking for TLS are told no).
    pub tls: Option<crate::tls::ServerTls>,
    /// How log lines are written: human-readable text or one JSON object per line.
    pub log_format: LogFormat,
    /// Statements taking at least this long are logged (with their route) at WARN;
    /// `None` = no slow-statement log.
    pub slow_statement: Option<Duration>,
    /// After SIGTERM / SIGINT, how long open transactions may take to finish before every
    /// connection is closed.
    pub shutdown_timeout: Duration,
    /// Whether a session gives its backend connections back to the pool between
    /// transactions (`"transaction"`, the default) or keeps them until it disconnects
    /// (`"session"`). See docs/pooling.md.
    pub pool_mode: PoolMode,
    /// `pool_check_idle_ms`: a pooled connection idle for longer than this is pinged on
    /// checkout (and replaced when dead); one used more recently is trusted, so
    /// multiplexing does not cost a round trip per statement.
    pub pool_check_idle: Duration,
    /// How often to look for changes of the config file and its rule files, reloading
    /// when one changed; `None` = never (reload on SIGHUP or `RELOAD DBMESH CONFIG`).
    pub config_watch: Option<Duration>,
}

impl ServerConfig {
    /// `max_packet_size` when not set: 64 MiB.
    pub const DEFAULT_MAX_PACKET_SIZE: u32 = 64 * 1024 * 1024;
    /// Smallest accepted `max_packet_size`.
    pub const MIN_MAX_PACKET_SIZE: u32 = 1024;
    /// `connect_timeout_ms` when not set.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(5_000);
    /// `checkout_timeout_ms` when not set.
    pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(10_000);
    /// `pool_check_idle_ms` when not set.
    pub const DEFAULT_POOL_CHECK_IDLE: Duration = Duration::from_millis(1_000);
    /// `shutdown_timeout_ms` when not set.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(30_000);
}

/// `[server] pool_mode`: how long a client session keeps a backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// Between transactions (and statements outside one) a session that holds no state
    /// bound to its connection gives the connection back; its next statement may run on
    /// another one, brought to the session's state first. Many clients share few backend
    /// connections (multiplexing).
    #[default]
    Transaction,
    /// A session keeps each backend connection it used until it disconnects.
    Session,
}

impl PoolMode {
    /// Every mode, in the order listed in error messages.
    pub const ALL: [PoolMode; 2] = [PoolMode::Transaction, PoolMode::Session];

    /// The mode's name in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// `[server] log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event, spans as `conn{...}:statement{...}` prefixes.
    #[default]
    Text,
    /// One JSON object per line, with the current span and its parents (for log shippers).
    Json,
}

impl LogFormat {
    /// Every format, in the order listed in error messages.
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// The format's name in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    /// The format called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// `[transaction]`: the XA coordinator of this dbmesh instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionConfig {
    /// Names this instance in every global transaction id it creates, so recovery can tell
    /// whose prepared branches it finds; `None` = derived at start-up (see `txn::instance`).
    /// At most [`TransactionConfig::MAX_INSTANCE_ID`] characters of `[A-Za-z0-9_]`.
    pub instance_id: Option<String>,
    /// Where commit decisions are written before the second phase.
    pub log: TxnLogConfig,
    /// How often recovery scans the data sources for prepared branches.
    pub recovery_interval: Duration,
    /// How long an instance's lease in a table log lasts without renewal; an instance
    /// whose lease has run out is dead and its branches are resolved by others.
    pub lease: Duration,
    /// After how long a prepared branch whose owner this instance cannot judge (not in
    /// its log) is resolved anyway; `None` = never.
    pub orphan_timeout: Option<Duration>,
    /// Whether the file had a `[transaction]` table (recovery then runs even when no
    /// database is XA by default).
    pub configured: bool,
}

impl TransactionConfig {
    /// Longest instance id: it must fit MySQL's 64-byte gtrid with the rest of the id.
    pub const MAX_INSTANCE_ID: usize = 24;
    /// `recovery_interval_ms` when not set.
    pub const DEFAULT_RECOVERY_INTERVAL: Duration = Duration::from_millis(10_000);
    /// `lease_ms` when not set.
    pub const DEFAULT_LEASE: Duration = Duration::from_millis(30_000);
}

/// Where the XA transaction log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnLogConfig {
    /// A local append-only file, fsynced per decision; `None` = `dbmesh-xa-<instance>.log`
    /// next to the config file.
    File(Option<PathBuf>),
    /// Tables in a data source, shared by every instance that names it.
    Table {
        /// The logical database and data source (`log_data_source = "db.ds"`).
        database: String,
        data_source: String,
    },
}

/// PostgreSQL password authentication method (as named in `pg_hba.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostgresAuthMethod {
    /// `scram-sha-256`: salted challenge-response; the password never crosses the wire.
    #[default]
    ScramSha256,
    /// `md5`: legacy salted MD5 hash.
    Md5,
    /// `password`: the password in clear text (use only over TLS or loopback).
    Cleartext,
}

impl PostgresAuthMethod {
    /// Every method, in the order listed in error messages.
    pub const ALL: [PostgresAuthMethod; 3] = [
        PostgresAuthMethod::ScramSha256,
        PostgresAuthMethod::Md5,
        PostgresAuthMethod::Cleartext,
    ];

    /// The method's name in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            PostgresAuthMethod::ScramSha256 => "scram-sha-256",
            PostgresAuthMethod::Md5 => "md5",
            PostgresAuthMethod::Cleartext => "password",
        }
    }

    /// The method called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// MySQL authentication plugin offered in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlAuthPlugin {
    /// `mysql_native_password` (SHA-1 scramble); works with every client.
    MysqlNativePassword,
    /// `caching_sha2_password` (MySQL 8 default); needs TLS or an RSA key pair for the first login.
    CachingSha2Password,
}

impl MysqlAuthPlugin {
    /// Every plugin, in the order listed in error messages.
    pub const ALL: [MysqlAuthPlugin; 2] = [
        MysqlAuthPlugin::MysqlNativePassword,
        MysqlAuthPlugin::CachingSha2Password,
    ];

    /// The plugin's name on the wire and in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            MysqlAuthPlugin::MysqlNativePassword => "mysql_native_password",
            MysqlAuthPlugin::CachingSha2Password => "caching_sha2_password",
        }
    }

    /// The plugin called `name`, if it is one we support.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// `[[users]]`: an account clients log in to the proxy with.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// Clear-text password, already read from the environment if the file referred to one.
    pub password: String,
    /// Logical databases this user may use; `"*"` means all of them.
    pub databases: Vec<String>,
    /// Overrides `server.mysql_auth_plugin` for this user.
    pub mysql_auth_plugin: Option<MysqlAuthPlugin>,
    /// How this user proves the password to the PostgreSQL listener.
    pub postgres_auth: PostgresAuthMethod,
    /// May run admin statements.
    pub admin: bool,
    /// Logins over plain TCP are refused; only TLS connections may log in as this user.
    pub require_tls: bool,
}

impl UserConfig {
    /// Whether this user may use the logical database `database` (`"*"` allows all).
    pub fn may_use(&self, database: &str) -> bool {
        self.databases.iter().any(|d| d == "*" || d == database)
    }
}

/// Which protocol a logical database and its data sources speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Postgres,
}

impl BackendKind {
    /// Every backend, in the order listed in error messages.
    pub const ALL: [BackendKind; 2] = [BackendKind::Mysql, BackendKind::Postgres];

    /// The name used for `backend = "…"` and as the URL scheme.
    pub fn name(&self) -> &'static str {
        match self {
            BackendKind::Mysql => "mysql",
            BackendKind::Postgres => "postgres",
        }
    }

    /// Port used when a data source URL names none.
    pub fn default_port(&self) -> u16 {
        match self {
            BackendKind::Mysql => 3306,
            BackendKind::Postgres => 5432,
        }
    }

    /// The backend called `name` in a `backend = "…"` setting.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// How transactions spanning several data sources are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionType {
    /// One local transaction per data source, committed one after another (no atomicity across shards).
    Local,
    /// Two-phase commit with XA.
    Xa,
    /// Compensating transactions (not implemented yet: refused by validation).
    Saga,
}

impl TransactionType {
    /// Every type, in the order listed in error messages.
    pub const ALL: [TransactionType; 3] = [
        TransactionType::Local,
        TransactionType::Xa,
        TransactionType::Saga,
    ];

    /// The name used in `transaction = "…"`.
    pub fn name(&self) -> &'static str {
        match self {
            TransactionType::Local => "LOCAL",
            TransactionType::Xa => "XA",
            TransactionType::Saga => "SAGA",
        }
    }

    /// The type called `name` in a `transaction = "…"` setting.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// `[databases.<name>]`: a logical database, as applications see it.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The name clients `USE` / connect to.
    pub name: String,
    /// Protocol of every data source behind it.
    pub backend: BackendKind,
    /// Data source that receives statements no sharding rule routes elsewhere.
    pub default_data_source: String,
    /// Sharding rule files, resolved against the config file's directory; each exists.
    pub rules: Vec<PathBuf>,
    /// How multi-data-source transactions are run.
    pub transaction: TransactionType,
    /// The real databases behind this logical one, by name; never empty.
    pub data_sources: BTreeMap<String, DataSourceConfig>,
    /// The sharding rules of all `rules` files, merged and validated against
    /// `data_sources`; `None` when the database lists no rule files.
    pub sharding: Option<ShardingRules>,
}

/// `[databases.<db>.data_sources.<name>]`: one real backend database and its pool.
#[derive(Debug, Clone)]
pub struct DataSourceConfig {
    /// The data source's name, as used in sharding rules (`ds_0`).
    pub name: String,
    /// Where it is and how to log in.
    pub url: DataSourceUrl,
    /// Pool size limit (of the primary, and of each replica).
    pub max_connections: u32,
    /// `min_connections`, `idle_timeout_ms`, `max_lifetime_ms`: how the pool keeps its
    /// idle connections (of the primary, and of each replica).
    pub pool: PoolSettings,
    /// `[[...replicas]]`: read-only copies of `url` that take reads; empty = the data
    /// source is its primary alone.
    pub replicas: Vec<ReplicaConfig>,
    /// How reads are spread over `replicas`; meaningless without them.
    pub read_write: ReadWriteConfig,
}

impl DataSourceConfig {
    /// `max_connections` when not set.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 32;
}

/// How a data source's pool keeps connections it does not lend right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections kept open even when idle (warm), topped up by the pool's reaper.
    pub min_connections: u32,
    /// An idle connection unused for this long is closed.
    pub idle_timeout: Duration,
    /// A connection older than this is closed when it comes back, never lent again, so
    /// server-side leaks and stale settings do not live for ever.
    pub max_lifetime: Duration,
}

impl PoolSettings {
    /// `idle_timeout_ms` when not set: 5 minutes.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_millis(300_000);
    /// `max_lifetime_ms` when not set: 30 minutes.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_millis(1_800_000);
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            min_connections: 0,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_lifetime: Self::DEFAULT_MAX_LIFETIME,
        }
    }
}

/// One replica of a data source's primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    pub url: DataSourceUrl,
    /// Share of reads under `load_balancer = "WEIGHT"`; greater than 0.
    pub weight: u32,
}

/// How a data source with replicas splits reads from writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWriteConfig {
    pub load_balancer: LoadBalancer,
    pub transactional_read: TransactionalRead,
    /// A replica whose replication lag passes this is ejected until it catches up.
    pub max_replica_lag: Duration,
    /// How often each replica's connectivity and lag are checked.
    pub health_check_interval: Duration,
    /// After a session's write, how long a read waits on a replica for that write to
    /// arrive before it runs on the primary instead; `None` (the default) = reads do not
    /// wait (MariaDB only; it costs a `SELECT @@last_gtid` after each write, see
    /// docs/configuration.md).
    pub read_your_writes_timeout: Option<Duration>,
}

impl Default for ReadWriteConfig {
    fn default() -> Self {
        ReadWriteConfig {
            load_balancer: LoadBalancer::RoundRobin,
            transactional_read: TransactionalRead::Primary,
            max_replica_lag: Self::DEFAULT_MAX_REPLICA_LAG,
            health_check_interval: Self::DEFAULT_HEALTH_CHECK_INTERVAL,
            read_your_writes_timeout: None,
        }
    }
}

impl ReadWriteConfig {
    /// `max_replica_lag_ms` when not set.
    pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_millis(10_000);
    /// `health_check_interval_ms` when not set.
    pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(1_000);
}

/// Which replica takes the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancer {
    /// Each admitted replica in turn.
    RoundRobin,
    /// A uniformly random admitted replica.
    Random,
    /// A random admitted replica, in proportion to its `weight`.
    Weight,
    /// The admitted replica with the fewest connections in use.
    LeastActive,
}

impl LoadBalancer {
    /// Every balancer, in the order listed in error messages.
    pub const ALL: [LoadBalancer; 4] = [
        LoadBalancer::RoundRobin,
        LoadBalancer::Random,
        LoadBalancer::Weight,
        LoadBalancer::LeastActive,
    ];

    /// The name used in `load_balancer = "…"`.
    pub fn name(&self) -> &'static str {
        match self {
            LoadBalancer::RoundRobin => "ROUND_ROBIN",
            LoadBalancer::Random => "RANDOM",
            LoadBalancer::Weight => "WEIGHT",
            LoadBalancer::LeastActive => "LEAST_ACTIVE",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// Where reads inside an explicit transaction go (ShardingSphere's transactional read
/// query strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionalRead {
    /// To the primary, with the transaction's writes (sees them; the safe default).
    Primary,
    /// To one replica, the same for the whole transaction.
    Fixed,
    /// To any replica, chosen per statement by the load balancer.
    Dynamic,
}

impl TransactionalRead {
    /// Every strategy, in the order listed in error messages.
    pub const ALL: [TransactionalRead; 3] = [
        TransactionalRead::Primary,
        TransactionalRead::Fixed,
        TransactionalRead::Dynamic,
    ];

    /// The name used in `transactional_read = "…"`.
    pub fn name(&self) -> &'static str {
        match self {
            TransactionalRead::Primary => "PRIMARY",
            TransactionalRead::Fixed => "FIXED",
            TransactionalRead::Dynamic => "DYNAMIC",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(databases: &[&str]) -> UserConfig {
        UserConfig {
            name: "app".into(),
            password: "x".into(),
            databases: databases.iter().map(|d| d.to_string()).collect(),
            mysql_auth_plugin: None,
            postgres_auth: PostgresAuthMethod::default(),
            admin: false,
            require_tls: false,
        }
    }

    #[test]
    fn user_may_use_only_listed_databases() {
        let u = user(&["shop"]);
        assert!(u.may_use("shop"));
        assert!(!u.may_use("shop_pg"));
        assert!(!u.may_use("SHOP"));
    }

    #[test]
    fn star_lets_a_user_use_every_database() {
        assert!(user(&["*"]).may_use("anything"));
        assert!(!user(&[]).may_use("shop"));
    }

    #[test]
    fn enum_names_round_trip() {
        for p in MysqlAuthPlugin::ALL {
            assert_eq!(MysqlAuthPlugin::from_name(p.name()), Some(p));
        }
        for b in BackendKind::ALL {
            assert_eq!(BackendKind::from_name(b.name()), Some(b));
        }
        for t in TransactionType::ALL {
            assert_eq!(TransactionType::from_name(t.name()), Some(t));
        }
        for b in LoadBalancer::ALL {
            assert_eq!(LoadBalancer::from_name(b.name()), Some(b));
        }
        for t in TransactionalRead::ALL {
            assert_eq!(TransactionalRead::from_name(t.name()), Some(t));
        }
        assert_eq!(BackendKind::from_name("oracle"), None);
    }
}

//! The config file as serde sees it: plain data mirroring the TOML keys,
//! with spans kept so validation can name the line of every value.
//!
//! Enumerations (`backend`, `transaction`, auth plugins) stay strings here so
//! that a bad value is one validation problem among many rather than a
//! deserialization failure that hides everything else.

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub mysql_listen: Option<Spanned<String>>,
    pub postgres_listen: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    pub mysql_server_version: Option<Spanned<String>>,
    pub mysql_auth_plugin: Option<Spanned<String>>,
    pub rsa_private_key: Option<Spanned<String>>,
    pub rsa_public_key: Option<Spanned<String>>,
    pub max_packet_size: Option<Spanned<u32>>,
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub checkout_timeout_ms: Option<Spanned<u64>>,
    pub worker_threads: Option<Spanned<usize>>,
    pub snowflake_worker_id: Option<Spanned<i64>>,
    pub log_level: Option<Spanned<String>>,
    // TLS towards clients (docs/tls.md).
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub tls_min_version: Option<Spanned<String>>,
    // Operations: logs, slow statements, shutdown.
    pub log_format: Option<Spanned<String>>,
    pub slow_statement_ms: Option<Spanned<u64>>,
    pub shutdown_timeout_ms: Option<Spanned<u64>>,
    pub config_watch_ms: Option<Spanned<u64>>,
    // Pooling (docs/pooling.md).
    pub pool_mode: Option<Spanned<String>>,
    pub pool_check_idle_ms: Option<Spanned<u64>>,
}

/// `[transaction]`: the XA coordinator's instance id, transaction log and recovery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransaction {
    pub instance_id: Option<Spanned<String>>,
    pub log: Option<Spanned<String>>,
    pub log_path: Option<Spanned<String>>,
    pub log_data_source: Option<Spanned<String>>,
    pub recovery_interval_ms: Option<Spanned<u64>>,
    pub lease_ms: Option<Spanned<u64>>,
    pub orphan_timeout_ms: Option<Spanned<u64>>,
}

/// One `[[users]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub name: Spanned<String>,
    pub password: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub databases: Vec<Spanned<String>>,
    pub mysql_auth_plugin: Option<Spanned<String>>,
    pub postgres_auth: Option<Spanned<String>>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub require_tls: bool,
}

/// One `[databases.<name>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub backend: Spanned<String>,
    pub default_data_source: Option<Spanned<String>>,
    #[serde(default)]
    pub rules: Vec<Spanned<String>>,
    pub transaction: Option<Spanned<String>>,
    /// Read entry by entry as [`RawDataSource`] (see `document.rs`), so that one
    /// broken data source does not hide problems in its siblings.
    #[allow(dead_code)]
    pub data_sources: Option<IgnoredAny>,
}

/// One `[databases.<db>.data_sources.<name>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataSource {
    pub url: Spanned<String>,
    pub password_env: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<u32>>,
    // Pool upkeep (docs/pooling.md).
    pub min_connections: Option<Spanned<u32>>,
    pub idle_timeout_ms: Option<Spanned<u64>>,
    pub max_lifetime_ms: Option<Spanned<u64>>,
    // Read/write splitting (docs/configuration.md#replicas-and-readwrite-splitting).
    #[serde(default)]
    pub replicas: Vec<RawReplica>,
    pub load_balancer: Option<Spanned<String>>,
    pub transactional_read: Option<Spanned<String>>,
    pub max_replica_lag_ms: Option<Spanned<u64>>,
    pub health_check_interval_ms: Option<Spanned<u64>>,
    pub read_your_writes_timeout_ms: Option<Spanned<u64>>,
}

/// One `[[databases.<db>.data_sources.<name>.replicas]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplica {
    pub url: Spanned<String>,
    pub password_env: Option<Spanned<String>>,
    pub weight: Option<Spanned<u32>>,
}

//! Shared helpers for integration tests: unique databases on the real servers, an in-process
//! dbmesh on an ephemeral port, and the path of the dbmesh binary for tests that need a
//! separate process (RSS measurements, restarts).
//!
//! Servers: MariaDB at 127.0.0.1:3306 (root, no password) and PostgreSQL at 127.0.0.1:5432
//! (postgres, trust), as `integration/setup/services.sh` leaves them. Override with
//! `DBMESH_TEST_MYSQL_PORT` / `DBMESH_TEST_PG_PORT`.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

pub use dbmesh;

mod admin;
mod bank;
mod forwarder;
mod merge_compare;
mod merge_dataset;
mod mysql;
mod mysql_raw;
mod postgres;
mod postgres_raw;
mod process;
mod replica_mariadb;
mod replica_postgres;
mod sharded;
mod sharded_pg;
mod temp_mariadb;
mod temp_postgres;
mod tls;
mod tls_mariadb;
mod tls_postgres;

pub use admin::*;
pub use bank::*;
pub use forwarder::*;
pub use merge_compare::*;
pub use merge_dataset::*;
pub use mysql::*;
pub use mysql_raw::*;
pub use postgres::*;
pub use postgres_raw::*;
pub use process::*;
pub use replica_mariadb::*;
pub use replica_postgres::*;
pub use sharded::*;
pub use sharded_pg::*;
pub use temp_mariadb::*;
pub use temp_postgres::*;
pub use tls::*;
pub use tls_mariadb::*;
pub use tls_postgres::*;

/// The application user every test config defines.
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app-secret";

/// A name no other test (or earlier run) uses: `prefix_<pid>_<counter>_<random>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos:x}", std::process::id())
}

/// dbmesh running inside the test process.
pub struct Proxy {
    pub server: dbmesh::Server,
}

impl Proxy {
    /// Parses `toml` (relative paths resolve against the integration crate) and starts it.
    pub async fn start(toml: &str) -> Proxy {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test.toml");
        let config = match dbmesh::config::parse(toml, &path) {
            Ok(c) => c,
            Err(e) => panic!("test config is invalid:\n{e}\n---\n{toml}"),
        };
        let server = dbmesh::Server::start(config).await.expect("proxy starts");
        Proxy { server }
    }

    pub fn mysql_port(&self) -> u16 {
        self.server.mysql_addr.expect("mysql listener").port()
    }

    /// mysql_async options for `user` through the proxy into logical database `db`.
    pub fn mysql_opts(&self, user: &str, password: &str, db: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.mysql_port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(db.map(str::to_string))
            .prefer_socket(false)
            .into()
    }

    /// Options for the standard `app` user.
    pub fn app_opts(&self, db: &str) -> mysql_async::Opts {
        self.mysql_opts(APP_USER, APP_PASSWORD, Some(db))
    }
}

impl Proxy {
    pub fn postgres_port(&self) -> u16 {
        self.server.postgres_addr.expect("postgres listener").port()
    }

    /// A tokio-postgres / libpq connection string through the proxy.
    pub fn pg_dsn(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
            self.postgres_port()
        )
    }
}

/// A config with one logical database `logical` of `backend` ("mysql" or "postgres") on data
/// source `ds_0` = `url`, user `app`/`app-secret`, and that protocol's listener on an
/// ephemeral port. `extra` is appended verbatim.
pub fn single_source_config(backend: &str, logical: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
{backend}_listen = "127.0.0.1:0"
connect_timeout_ms = 2000
checkout_timeout_ms = 5000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{logical}"]

[databases.{logical}]
backend = "{backend}"
default_data_source = "ds_0"

[databases.{logical}.data_sources.ds_0]
url = "{url}"
max_connections = 64
{extra}
"#
    )
}

//! Shared helpers for integration tests: unique databases on the real servers, an in-process
//! dbmesh on an ephemeral port, and the path of the dbmesh binary for tests that need a
//! separate process (RSS measurements, restarts).
//!
//! Servers: MariaDB at 127.0.0.1:3306 (root, no password) and PostgreSQL at 127.0.0.1:5432
//! (postgres, trust), as `integration/setup/services.sh` leaves them. Override with
//! `DBMESH_TEST_MYSQL_PORT` / `DBMESH_TEST_PG_PORT`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub use dbmesh;

/// The application user every test config defines.
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app-secret";

pub fn mysql_port() -> u16 {
    std::env::var("DBMESH_TEST_MYSQL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3306)
}

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

/// Runs SQL on the MariaDB test server with the `mariadb` CLI (for setup and teardown, also
/// from `Drop`, where no async runtime is available).
pub fn mariadb_exec(sql: &str) {
    let out = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            "-uroot",
            &format!("-P{}", mysql_port()),
            "-e",
            sql,
        ])
        .output()
        .expect("the mariadb client is installed");
    assert!(
        out.status.success(),
        "mariadb -e {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A physical MariaDB database created for one test and dropped when it ends.
pub struct MysqlDatabase {
    pub name: String,
}

impl MysqlDatabase {
    pub fn create(prefix: &str) -> MysqlDatabase {
        let name = unique_name(prefix);
        mariadb_exec(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ));
        MysqlDatabase { name }
    }

    /// `mysql://root@127.0.0.1:3306/<name>`, as a data source URL.
    pub fn url(&self) -> String {
        format!("mysql://root:@127.0.0.1:{}/{}", mysql_port(), self.name)
    }

    /// mysql_async options for a direct connection (the reference in differential tests).
    pub fn direct_opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(mysql_port())
            .user(Some("root"))
            .db_name(Some(self.name.clone()))
            .into()
    }
}

impl Drop for MysqlDatabase {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                "-uroot",
                &format!("-P{}", mysql_port()),
                "-e",
                &format!("DROP DATABASE IF EXISTS `{}`", self.name),
            ])
            .output();
    }
}

/// A config with one MySQL logical database `logical` on data source `ds_0` = `url`, user
/// `app`/`app-secret`, and a MySQL listener on an ephemeral port. `extra` is appended
/// verbatim (more users, server keys under a later `[server]`-free section, ...).
pub fn mysql_config(logical: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
connect_timeout_ms = 2000
checkout_timeout_ms = 5000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{logical}"]

[databases.{logical}]
backend = "mysql"
default_data_source = "ds_0"

[databases.{logical}.data_sources.ds_0]
url = "{url}"
max_connections = 64
{extra}
"#
    )
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

/// The dbmesh binary, built on first use (tests that need a separate process).
pub fn dbmesh_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--bin", "dbmesh"])
                .current_dir(&root)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the dbmesh binary failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target.join("debug").join("dbmesh")
        })
        .clone()
}

/// Resident set size of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (for configs of separately spawned processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

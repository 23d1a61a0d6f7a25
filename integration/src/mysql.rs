//! MariaDB test databases and configs, and error helpers for mysql_async results.

use crate::unique_name;
use std::process::Command;

pub fn mysql_port() -> u16 {
    std::env::var("DBMESH_TEST_MYSQL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3306)
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
    crate::single_source_config("mysql", logical, url, extra)
}

/// Error code and message of an ERR packet payload.
pub fn err_code(payload: &[u8]) -> Option<(u16, String)> {
    (payload.first() == Some(&0xFF) && payload.len() >= 3).then(|| {
        let code = u16::from_le_bytes([payload[1], payload[2]]);
        let msg = if payload.get(3) == Some(&b'#') {
            &payload[9.min(payload.len())..]
        } else {
            &payload[3..]
        };
        (code, String::from_utf8_lossy(msg).into_owned())
    })
}

/// The error code and message of a `mysql_async` server error; panics on any other outcome.
pub fn server_error<T: std::fmt::Debug>(r: Result<T, mysql_async::Error>) -> (u16, String, String) {
    match r {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

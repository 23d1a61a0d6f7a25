//! A MariaDB server of a test's own: installed into a temp dir (root with an empty
//! password), on a free port, started with the caller's extra options and killed when
//! dropped. The shared MariaDB is never reconfigured. Used by the TLS and the
//! read/write-splitting tests.

use std::process::{Child, Command, Stdio};

use crate::{free_port, TempDir};

pub struct TempMariadb {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl TempMariadb {
    /// Installs a fresh data directory, starts `mariadbd` with `extra` options, and
    /// returns once it answers queries.
    pub async fn start(name: &str, extra: &[String]) -> TempMariadb {
        let dir = TempDir::new(name);
        let data = dir.path.join("data");
        // A tmpdir of its own: a starting mariadbd deletes the `#sql*` files it finds in
        // its tmpdir, which would be the temporary tables of servers bootstrapping beside
        // it in a shared /tmp (tests start several at once).
        let tmp = dir.path.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let install = crate::run_program(
            "mariadb-install-db",
            &[
                "--no-defaults".to_string(),
                format!("--datadir={}", data.display()),
                format!("--tmpdir={}", tmp.display()),
                "--auth-root-authentication-method=normal".to_string(),
                "--user=root".to_string(),
                "--skip-test-db".to_string(),
            ],
            &[],
        )
        .await;
        assert!(
            install.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path.join("err.log")).unwrap();
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.path.join("sock").display()))
            .arg(format!("--pid-file={}", dir.path.join("pid").display()))
            .arg("--user=root")
            .arg("--innodb-buffer-pool-size=16M")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mariadbd starts");
        let mut server = TempMariadb { child, port, dir };
        for _ in 0..600 {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("mariadbd exited with {status}:\n{}", server.log());
            }
            if let Ok(conn) = mysql_async::Conn::new(server.root_opts(None)).await {
                let _ = conn.disconnect().await;
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("mariadbd did not start:\n{}", server.log());
    }

    /// Options for root over plain TCP.
    pub fn root_opts(&self, db: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .db_name(db.map(str::to_string))
            .prefer_socket(false)
            .into()
    }

    /// Stops the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("err.log")).unwrap_or_default()
    }
}

impl Drop for TempMariadb {
    fn drop(&mut self) {
        self.kill();
    }
}

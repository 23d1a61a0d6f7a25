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
    /// The caller's options, for [`TempMariadb::restart`].
    extra: Vec<String>,
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
        let child = spawn(&dir, port, extra);
        let mut server = TempMariadb {
            child,
            port,
            dir,
            extra: extra.to_vec(),
        };
        server.wait_ready().await;
        server
    }

    /// Starts the server again on the same data directory and port (after
    /// [`kill`](Self::kill), as a crashed server is restarted), once it answers queries.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.dir, self.port, &self.extra);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("mariadbd exited with {status}:\n{}", self.log());
            }
            if let Ok(conn) = mysql_async::Conn::new(self.root_opts(None)).await {
                let _ = conn.disconnect().await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("mariadbd did not start:\n{}", self.log());
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

/// Starts `mariadbd` on the data directory in `dir` (its error log appended to
/// `err.log`, so a restart keeps the first run's).
fn spawn(dir: &TempDir, port: u16, extra: &[String]) -> Child {
    let data = dir.path.join("data");
    let tmp = dir.path.join("tmp");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path.join("err.log"))
        .unwrap();
    Command::new("/usr/sbin/mariadbd")
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
        .expect("mariadbd starts")
}

//! MariaDB servers for read/write splitting tests: a primary with a binary log and GTID
//! replicas of it, each installed into its own temp dir on its own port, started by the
//! test and killed when dropped. The shared MariaDB (no binlog) is never touched.

use std::process::{Child, Command, Stdio};

use mysql_async::prelude::Queryable;

use crate::{free_port, TempDir};

pub struct ReplicationMariadb {
    child: Child,
    pub port: u16,
    pub server_id: u32,
    dir: TempDir,
}

impl ReplicationMariadb {
    /// A server with binary logging on (a primary; a replica logs too, harmlessly).
    pub async fn start(server_id: u32) -> ReplicationMariadb {
        let dir = TempDir::new(&format!("mariadb_repl_{server_id}"));
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
            .arg(format!("--server-id={server_id}"))
            .arg(format!("--log-bin={}", dir.path.join("binlog").display()))
            .arg("--binlog-format=ROW")
            .arg("--innodb-buffer-pool-size=16M")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mariadbd starts");
        let mut server = ReplicationMariadb {
            child,
            port,
            server_id,
            dir,
        };
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

    /// Makes this server a GTID replica of `primary` (from the primary's first
    /// transaction) and starts replicating.
    pub async fn replicate_from(&self, primary: &ReplicationMariadb) {
        let mut conn = self.root().await;
        conn.query_drop(format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
            primary.port
        ))
        .await
        .unwrap();
        conn.query_drop("START SLAVE").await.unwrap();
        conn.disconnect().await.unwrap();
    }

    /// A root connection (plain TCP).
    pub async fn root(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.root_opts(None)).await.unwrap()
    }

    pub fn root_opts(&self, db: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .db_name(db.map(str::to_string))
            .prefer_socket(false)
            .into()
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (a crashed primary).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("err.log")).unwrap_or_default()
    }
}

impl Drop for ReplicationMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

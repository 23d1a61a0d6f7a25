//! MariaDB servers for read/write splitting tests: a primary with a binary log and GTID
//! replicas of it, each a [`TempMariadb`] (own temp dir and port, killed when dropped).
//! The shared MariaDB (no binlog) is never touched.

use mysql_async::prelude::Queryable;

use crate::TempMariadb;

pub struct ReplicationMariadb {
    server: TempMariadb,
    pub port: u16,
    pub server_id: u32,
}

impl ReplicationMariadb {
    /// A server with binary logging on (a primary; a replica logs too, harmlessly).
    pub async fn start(server_id: u32) -> ReplicationMariadb {
        let server = TempMariadb::start(
            &format!("mariadb_repl_{server_id}"),
            &[
                format!("--server-id={server_id}"),
                // A bare name: the binary log goes into the data directory.
                "--log-bin=binlog".to_string(),
                "--binlog-format=ROW".to_string(),
            ],
        )
        .await;
        ReplicationMariadb {
            port: server.port,
            server,
            server_id,
        }
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
        self.server.root_opts(db)
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (a crashed primary).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}

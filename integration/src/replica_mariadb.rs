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

impl ReplicationMariadb {
    /// Holds this replica's SQL thread `seconds` behind its primary (`MASTER_DELAY`; 0
    /// lets it catch up).
    pub async fn set_delay(&self, seconds: u32) {
        let mut conn = self.root().await;
        conn.query_drop("STOP SLAVE").await.unwrap();
        conn.query_drop(format!("CHANGE MASTER TO MASTER_DELAY = {seconds}"))
            .await
            .unwrap();
        conn.query_drop("START SLAVE").await.unwrap();
        conn.disconnect().await.unwrap();
    }

    /// The first column of `sql`'s first row, run directly on this server as root (-1 when
    /// it fails or returns nothing: e.g. a table not replicated yet).
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.root().await;
        let n = conn
            .query_first::<i64, _>(sql)
            .await
            .ok()
            .flatten()
            .unwrap_or(-1);
        let _ = conn.disconnect().await;
        n
    }
}

/// Polls `check` every 100 ms until it holds, for up to a minute (replication and health
/// checks are asynchronous; the bound only keeps a broken setup from hanging the suite).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

/// The `health` column of data source `name`'s row in `SHOW DBMESH DATA SOURCES`.
pub async fn data_source_health(admin: &mut mysql_async::Conn, name: &str) -> String {
    let rows: Vec<mysql_async::Row> = admin.query("SHOW DBMESH DATA SOURCES").await.unwrap();
    rows.into_iter()
        .find(|r| r.get::<String, _>("data_source").as_deref() == Some(name))
        .and_then(|r| r.get::<String, _>("health"))
        .unwrap_or_else(|| panic!("no row for data source {name}"))
}

//! Read/write splitting on a sharded MySQL database: a temp MariaDB primary (server_id 1)
//! with a GTID replica (server_id 2) holds two physical databases, one per shard; each
//! shard's data source (`ds_0`, `ds_1`) lists the replica's copy of its database as its
//! replica, so each data source has a replica group of its own (the same data source per
//! shard layout as two separate pairs). `@@server_id` tells where a statement ran and
//! `DATABASE()` which shard.

use dbmesh_integration::*;
use mysql_async::prelude::Queryable;

const PRIMARY_ID: u32 = 1;
const REPLICA_ID: u32 = 2;

const RULES: &str = r#"
[tables.t_order]
nodes             = "ds_${0..1}.t_order"
database_strategy = { column = "user_id", algorithm = "by_user" }

[algorithms.by_user]
type       = "INLINE"
expression = "ds_${user_id % 2}"
"#;

/// The pair with the two shard databases and `t_order` in each, replicated.
struct Shards {
    primary: ReplicationMariadb,
    replica: ReplicationMariadb,
    dbs: [String; 2],
    rules: TempDir,
}

impl Shards {
    async fn start() -> Shards {
        let primary = ReplicationMariadb::start(PRIMARY_ID).await;
        let replica = ReplicationMariadb::start(REPLICA_ID).await;
        replica.replicate_from(&primary).await;
        let dbs = [unique_name("rws0"), unique_name("rws1")];
        let mut root = primary.root().await;
        for db in &dbs {
            root.query_drop(format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
            root.query_drop(format!(
                "CREATE TABLE {db}.t_order (order_id BIGINT PRIMARY KEY, user_id INT NOT NULL, amount INT)"
            ))
            .await
            .unwrap();
        }
        root.disconnect().await.unwrap();
        for db in &dbs {
            let sql = format!("SELECT COUNT(*) FROM {db}.t_order");
            eventually("the shard table reaches the replica", || async {
                replica.count(&sql).await == 0
            })
            .await;
        }
        let rules = TempDir::new("rws_rules");
        std::fs::write(rules.path.join("rules.toml"), RULES).unwrap();
        Shards {
            primary,
            replica,
            dbs,
            rules,
        }
    }

    /// A dbmesh config serving the shards as logical database `shop`; `keys` go into each
    /// data source's table.
    fn config(&self, keys: &str) -> String {
        let mut sources = String::new();
        for (i, db) in self.dbs.iter().enumerate() {
            sources.push_str(&format!(
                "[databases.shop.data_sources.ds_{i}]\nurl = \"{}\"\nmax_connections = 16\n{keys}\n\
                 [[databases.shop.data_sources.ds_{i}.replicas]]\nurl = \"{}\"\n\n",
                self.primary.url(db),
                self.replica.url(db),
            ));
        }
        format!(
            r#"
[server]
mysql_listen = "127.0.0.1:0"
connect_timeout_ms = 2000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["shop"]

[[users]]
name = "ops"
password = "ops-secret"
admin = true
databases = ["*"]

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"
rules = ["{}"]

{sources}"#,
            self.rules.path.join("rules.toml").display()
        )
    }

    /// Waits until both shards' rows reach the replica.
    async fn replicated(&self, rows: i64) {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM {}.t_order) + (SELECT COUNT(*) FROM {}.t_order)",
            self.dbs[0], self.dbs[1]
        );
        eventually("the writes reach the replica", || async {
            self.replica.count(&sql).await == rows
        })
        .await;
    }
}

/// (server_id, shard database) of every row `sql` returns, as COM_QUERY.
async fn where_ran(conn: &mut mysql_async::Conn, sql: &str) -> Vec<(u32, String)> {
    conn.query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The same through a prepared statement (COM_STMT_PREPARE / COM_STMT_EXECUTE).
async fn where_ran_prepared(
    conn: &mut mysql_async::Conn,
    sql: &str,
    params: impl Into<mysql_async::Params> + Send,
) -> Vec<(u32, String)> {
    conn.exec(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_reads_run_on_each_shards_replica_and_writes_on_its_primary() {
    let shards = Shards::start().await;
    let proxy = Proxy::start(&shards.config("")).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let [db0, db1] = shards.dbs.clone();

    // Writes go to each shard's primary (they reach the replica by replication only).
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 0, 10), (2, 1, 20), (3, 2, 30)",
    )
    .await
    .unwrap();
    assert_eq!(
        shards
            .primary
            .count(&format!("SELECT COUNT(*) FROM {db0}.t_order"))
            .await,
        2
    );
    shards.replicated(3).await;

    // A single-shard read, COM_QUERY and prepared: that shard's replica.
    let one_shard = "SELECT @@server_id, DATABASE() FROM t_order WHERE user_id = 1";
    assert_eq!(
        where_ran(&mut conn, one_shard).await,
        [(REPLICA_ID, db1.clone())]
    );
    assert_eq!(
        where_ran_prepared(
            &mut conn,
            "SELECT @@server_id, DATABASE() FROM t_order WHERE user_id = ?",
            (1,)
        )
        .await,
        [(REPLICA_ID, db1.clone())]
    );
    // A fan-out (concatenated) and a merged (ORDER BY) read: every shard from its replica.
    let mut all = where_ran(&mut conn, "SELECT @@server_id, DATABASE() FROM t_order").await;
    all.sort();
    assert_eq!(
        all,
        [
            (REPLICA_ID, db0.clone()),
            (REPLICA_ID, db0.clone()),
            (REPLICA_ID, db1.clone())
        ]
    );
    let ordered = where_ran(
        &mut conn,
        "SELECT @@server_id AS s, DATABASE() AS d FROM t_order ORDER BY order_id",
    )
    .await;
    assert_eq!(
        ordered,
        [
            (REPLICA_ID, db0.clone()),
            (REPLICA_ID, db1.clone()),
            (REPLICA_ID, db0.clone())
        ]
    );
    let mut prepared_all = where_ran_prepared(
        &mut conn,
        "SELECT @@server_id, DATABASE() FROM t_order WHERE amount > ?",
        (0,),
    )
    .await;
    prepared_all.sort();
    assert_eq!(
        prepared_all,
        [
            (REPLICA_ID, db0.clone()),
            (REPLICA_ID, db0.clone()),
            (REPLICA_ID, db1.clone())
        ]
    );

    // Locking reads and the primary hint: the primaries.
    let mut locked = where_ran(
        &mut conn,
        "SELECT @@server_id, DATABASE() FROM t_order FOR UPDATE",
    )
    .await;
    locked.sort();
    assert_eq!(
        locked,
        [
            (PRIMARY_ID, db0.clone()),
            (PRIMARY_ID, db0.clone()),
            (PRIMARY_ID, db1.clone())
        ]
    );
    assert_eq!(
        where_ran(
            &mut conn,
            "/* dbmesh: primary */ SELECT @@server_id, DATABASE() FROM t_order WHERE user_id = 1"
        )
        .await,
        [(PRIMARY_ID, db1.clone())]
    );

    // In a transaction over the shards everything runs on the primaries, and the
    // transaction reads its own uncommitted write.
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (4, 3, 40)")
        .await
        .unwrap();
    let mut in_txn = where_ran(&mut conn, "SELECT @@server_id, DATABASE() FROM t_order").await;
    in_txn.sort();
    assert_eq!(
        in_txn,
        [
            (PRIMARY_ID, db0.clone()),
            (PRIMARY_ID, db0.clone()),
            (PRIMARY_ID, db1.clone()),
            (PRIMARY_ID, db1.clone())
        ]
    );
    assert_eq!(
        where_ran_prepared(
            &mut conn,
            "SELECT @@server_id, DATABASE() FROM t_order WHERE user_id = ?",
            (3,)
        )
        .await,
        [(PRIMARY_ID, db1.clone())]
    );
    conn.query_drop("COMMIT").await.unwrap();
    shards.replicated(4).await;
    assert_eq!(
        where_ran(&mut conn, one_shard).await,
        [(REPLICA_ID, db1.clone())]
    );

    conn.disconnect().await.unwrap();
    proxy.server.stop().await;
}

/// Read-your-writes per data source: after a write on `ds_1` (held back on the replica by
/// MASTER_DELAY), a read of `ds_1` falls back to its primary and sees the write, while a
/// read of `ds_0`, which the session did not write, still runs on `ds_0`'s replica. Without
/// read-your-writes the same read shows the replica's stale data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_read_your_writes_waits_for_the_write_on_that_shard_only() {
    let shards = Shards::start().await;
    let [db0, db1] = shards.dbs.clone();
    // A row on ds_0 written directly, so that reads of ds_0 report where they ran.
    let mut root = shards.primary.root().await;
    root.query_drop(format!("INSERT INTO {db0}.t_order VALUES (100, 0, 0)"))
        .await
        .unwrap();
    root.disconnect().await.unwrap();
    shards.replicated(1).await;
    let ryw = Proxy::start(&shards.config(
        "max_replica_lag_ms = 86400000\nread_your_writes_timeout_ms = 300\nhealth_check_interval_ms = 100\n",
    ))
    .await;
    let plain = Proxy::start(
        &shards.config("max_replica_lag_ms = 86400000\nhealth_check_interval_ms = 100\n"),
    )
    .await;
    let mut conn = mysql_async::Conn::new(ryw.app_opts("shop")).await.unwrap();
    let mut stale = mysql_async::Conn::new(plain.app_opts("shop"))
        .await
        .unwrap();

    // The replica keeps up: the read waits for the write there and sees it.
    conn.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 1, 10)")
        .await
        .unwrap();
    let seen: Vec<(u32, i64)> = conn
        .query("SELECT @@server_id, COUNT(*) FROM t_order WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(seen, [(REPLICA_ID, 1)]);
    shards.replicated(2).await;

    shards.replica.set_delay(3600).await;
    conn.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (2, 1, 20)")
        .await
        .unwrap();
    let seen: Vec<(u32, String, i64)> = conn
        .query("SELECT @@server_id, DATABASE(), COUNT(*) FROM t_order WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(seen, [(PRIMARY_ID, db1.clone(), 2)], "ds_1: the primary");
    let seen: Vec<(u32, String, i64)> = conn
        .exec(
            "SELECT @@server_id, DATABASE(), COUNT(*) FROM t_order WHERE user_id = ?",
            (1,),
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        [(PRIMARY_ID, db1.clone(), 2)],
        "prepared: the primary"
    );
    assert_eq!(
        where_ran(
            &mut conn,
            "SELECT @@server_id, DATABASE() FROM t_order WHERE user_id = 0"
        )
        .await,
        [(REPLICA_ID, db0.clone())],
        "ds_0, not written by the session: its replica, without waiting"
    );

    // Without read-your-writes the delayed replica serves the read, without the write.
    stale
        .query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (3, 1, 30)")
        .await
        .unwrap();
    let seen: Vec<(u32, i64)> = stale
        .query("SELECT @@server_id, COUNT(*) FROM t_order WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(seen, [(REPLICA_ID, 1)], "stale: only the first write");

    shards.replica.set_delay(0).await;
    shards.replicated(4).await;
    let seen: Vec<(u32, i64)> = conn
        .query("SELECT @@server_id, COUNT(*) FROM t_order WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(seen, [(REPLICA_ID, 3)]);

    conn.disconnect().await.unwrap();
    stale.disconnect().await.unwrap();
    ryw.server.stop().await;
    plain.server.stop().await;
}

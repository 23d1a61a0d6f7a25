//! Read/write splitting on a sharded PostgreSQL database: a temp PostgreSQL primary with a
//! streaming hot standby (`pg_basebackup -R`) holds two databases, one per shard; each
//! shard's data source (`ds_0`, `ds_1`) lists the standby's copy of its database as its
//! replica, so each data source has a replica group of its own. `inet_server_port()` tells
//! on which server a statement ran and `current_database()` which shard.

use std::time::Duration;

use dbmesh_integration::*;
use tokio_postgres::{Client, SimpleQueryMessage};

const RULES: &str = r#"
[tables.t_order]
nodes             = "ds_${0..1}.t_order"
database_strategy = { column = "user_id", algorithm = "by_user" }

[algorithms.by_user]
type       = "INLINE"
expression = "ds_${user_id % 2}"
"#;

/// Polls `check` every 100 ms until it holds, for up to a minute (replication and health
/// checks are asynchronous; the bound only keeps a broken setup from hanging the suite).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

/// The primary and its standby with the two shard databases and `t_order` in each.
struct Shards {
    primary: TempPostgres,
    standby: TempPostgres,
    dbs: [String; 2],
    rules: TempDir,
}

impl Shards {
    async fn start(standby_conf: &str) -> Shards {
        let primary = start_pg_primary().await;
        let dbs = [unique_name("rwps0"), unique_name("rwps1")];
        let setup = primary.connect("postgres").await;
        for db in &dbs {
            setup
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
        }
        // The standby starts first and replays the tables' creation: a standby that has
        // replayed no transaction yet has no replay timestamp, so its lag is unknown.
        let standby = start_pg_standby(&primary, standby_conf).await;
        for db in &dbs {
            primary
                .connect(db)
                .await
                .batch_execute(
                    "CREATE TABLE t_order (order_id bigint PRIMARY KEY, user_id int NOT NULL, amount int)",
                )
                .await
                .unwrap();
        }
        let rules = TempDir::new("rwps_rules");
        std::fs::write(rules.path.join("rules.toml"), RULES).unwrap();
        let shards = Shards {
            primary,
            standby,
            dbs,
            rules,
        };
        shards.replicated(0).await;
        shards
    }

    /// A dbmesh config serving the shards as logical database `shop`; `server` goes into
    /// `[server]`, `keys` into each data source's table.
    fn config(&self, server: &str, keys: &str) -> String {
        let mut sources = String::new();
        for (i, db) in self.dbs.iter().enumerate() {
            sources.push_str(&format!(
                "[databases.shop.data_sources.ds_{i}]\nurl = \"{}\"\nmax_connections = 16\n\
                 health_check_interval_ms = 100\n{keys}\n\
                 [[databases.shop.data_sources.ds_{i}.replicas]]\nurl = \"{}\"\n\n",
                self.primary.url(db),
                self.standby.url(db),
            ));
        }
        format!(
            r#"
[server]
postgres_listen = "127.0.0.1:0"
connect_timeout_ms = 2000
{server}

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
backend = "postgres"
default_data_source = "ds_0"
rules = ["{}"]

{sources}"#,
            self.rules.path.join("rules.toml").display()
        )
    }

    /// Rows of both shards on `server` (-1 while it cannot tell).
    async fn rows_on(server: &TempPostgres, dbs: &[String; 2]) -> i64 {
        let mut total = 0;
        for db in dbs {
            let Ok(client) = pg_connect(&server.dsn(db)).await else {
                return -1;
            };
            match client.query_one("SELECT count(*) FROM t_order", &[]).await {
                Ok(r) => total += r.get::<_, i64>(0),
                Err(_) => return -1,
            }
        }
        total
    }

    /// Waits until the standby holds `rows` rows over both shards.
    async fn replicated(&self, rows: i64) {
        eventually("the rows reach the standby", || async {
            Self::rows_on(&self.standby, &self.dbs).await == rows
        })
        .await;
    }

    /// Sets the standby's `recovery_min_apply_delay` (a reload applies it).
    async fn set_delay(&self, delay: &str) {
        let c = self.standby.connect("postgres").await;
        // Two Query messages: ALTER SYSTEM cannot run in the implicit transaction of one.
        c.batch_execute(&format!(
            "ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'"
        ))
        .await
        .unwrap();
        c.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    }
}

async fn connect_app(proxy: &Proxy) -> Client {
    pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap()
}

/// (port, database) of every row a simple query returns (its first two columns).
async fn where_ran(client: &Client, sql: &str) -> Vec<(u16, String)> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((
                row.get(0).unwrap().parse().unwrap(),
                row.get(1).unwrap().to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// The same through the extended protocol: `sql` answers an int4 port and a text database.
async fn where_ran_extended(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<(u16, String)> {
    client
        .query(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| (r.get::<_, i32>(0) as u16, r.get(1)))
        .collect()
}

/// (port, database, rows) of user `user`'s orders, through the extended protocol.
async fn probe(client: &Client, user: i32) -> (u16, String, i64) {
    let sql = "SELECT inet_server_port(), current_database()::text, count(*) FROM t_order WHERE user_id = $1 GROUP BY 1, 2";
    let r = client
        .query_one(sql, &[&user])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (r.get::<_, i32>(0) as u16, r.get(1), r.get(2))
}

fn sorted(mut v: Vec<(u16, String)>) -> Vec<(u16, String)> {
    v.sort();
    v
}

/// The `pool_in_use` of `data_source` in `SHOW DBMESH DATA SOURCES`.
async fn in_use(admin: &Client, data_source: &str) -> String {
    for m in admin
        .simple_query("SHOW DBMESH DATA SOURCES")
        .await
        .unwrap()
    {
        if let SimpleQueryMessage::Row(r) = m {
            if r.get("data_source") == Some(data_source) {
                return r.get("pool_in_use").unwrap().to_string();
            }
        }
    }
    panic!("no row for {data_source}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_reads_run_on_each_shards_standby_and_writes_on_its_primary() {
    let shards = Shards::start("").await;
    let (p, s) = (shards.primary.port, shards.standby.port);
    let [db0, db1] = shards.dbs.clone();
    for pool_mode in ["transaction", "session"] {
        let proxy = Proxy::start(&shards.config(
            &format!("pool_mode = \"{pool_mode}\""),
            "max_replica_lag_ms = 30000",
        ))
        .await;
        let conn = connect_app(&proxy).await;
        let admin = pg_connect(&proxy.pg_dsn("ops", "ops-secret", "shop"))
            .await
            .unwrap();
        conn.batch_execute("DELETE FROM t_order").await.unwrap();

        // Writes go to each shard's primary (they reach the standby by replication only).
        conn.batch_execute(
            "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 0, 10), (2, 1, 20), (3, 2, 30)",
        )
        .await
        .unwrap();
        assert_eq!(
            Shards::rows_on(&shards.primary, &shards.dbs).await,
            3,
            "{pool_mode}"
        );
        shards.replicated(3).await;

        // A single-shard read, simple and extended: that shard's standby.
        let one_shard =
            "SELECT inet_server_port(), current_database() FROM t_order WHERE user_id = 1";
        assert_eq!(where_ran(&conn, one_shard).await, [(s, db1.clone())]);
        let extended =
            "SELECT inet_server_port(), current_database()::text FROM t_order WHERE user_id = $1";
        assert_eq!(
            where_ran_extended(&conn, extended, &[&1i32]).await,
            [(s, db1.clone())]
        );
        // A fan-out and a merged (ORDER BY) read: every shard from its standby.
        let every = vec![(s, db0.clone()), (s, db0.clone()), (s, db1.clone())];
        assert_eq!(
            sorted(
                where_ran(
                    &conn,
                    "SELECT inet_server_port(), current_database() FROM t_order"
                )
                .await
            ),
            every
        );
        assert_eq!(
            where_ran(
                &conn,
                "SELECT inet_server_port() AS at, current_database() AS db FROM t_order ORDER BY order_id"
            )
            .await,
            [(s, db0.clone()), (s, db1.clone()), (s, db0.clone())]
        );
        assert_eq!(
            sorted(
                where_ran_extended(
                    &conn,
                    "SELECT inet_server_port(), current_database()::text FROM t_order WHERE amount > $1",
                    &[&0i32]
                )
                .await
            ),
            every
        );
        // Under transaction pooling the standby's connections went back to its pool once
        // the read ended; a session-pooled client keeps them.
        for replica in ["ds_0.replica_0", "ds_1.replica_0"] {
            if pool_mode == "transaction" {
                eventually("the standby's connections go back to its pool", || async {
                    in_use(&admin, replica).await == "0"
                })
                .await;
            } else {
                assert_eq!(in_use(&admin, replica).await, "1", "{replica}");
            }
        }

        // Locking reads and the primary hint: the primaries.
        assert_eq!(
            sorted(
                where_ran(
                    &conn,
                    "SELECT inet_server_port(), current_database() FROM t_order FOR UPDATE"
                )
                .await
            ),
            vec![(p, db0.clone()), (p, db0.clone()), (p, db1.clone())]
        );
        assert_eq!(
            where_ran(
                &conn,
                "/* dbmesh: primary */ SELECT inet_server_port(), current_database() FROM t_order WHERE user_id = 1"
            )
            .await,
            [(p, db1.clone())]
        );

        // A named statement runs wherever its read goes: the standby, the primary inside a
        // transaction, the standby again after it.
        let prepared = conn.prepare(extended).await.unwrap();
        let run = |user: i32| {
            let (conn, prepared) = (&conn, &prepared);
            async move {
                conn.query(prepared, &[&user])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.get::<_, i32>(0) as u16, r.get::<_, String>(1)))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(run(1).await, [(s, db1.clone())]);

        // In a transaction over the shards everything runs on the primaries, and the
        // transaction reads its own uncommitted write.
        conn.batch_execute("BEGIN").await.unwrap();
        conn.batch_execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (4, 3, 40)")
            .await
            .unwrap();
        assert_eq!(
            sorted(
                where_ran(
                    &conn,
                    "SELECT inet_server_port(), current_database() FROM t_order"
                )
                .await
            ),
            vec![
                (p, db0.clone()),
                (p, db0.clone()),
                (p, db1.clone()),
                (p, db1.clone())
            ]
        );
        assert_eq!(run(3).await, [(p, db1.clone())]);
        conn.batch_execute("COMMIT").await.unwrap();
        shards.replicated(4).await;
        assert_eq!(run(3).await, [(s, db1.clone())]);

        // Session SETs follow the session onto the standby's connections.
        conn.batch_execute("SET application_name = 'rwps_check'")
            .await
            .unwrap();
        assert_eq!(
            where_ran(
                &conn,
                "SELECT inet_server_port(), current_setting('application_name') FROM t_order WHERE user_id = 0 AND order_id = 1"
            )
            .await,
            [(s, "rwps_check".to_string())]
        );

        // An error on a standby leaves the session usable.
        let e = conn
            .simple_query("SELECT 1 / (amount - amount) FROM t_order WHERE user_id = 1")
            .await
            .unwrap_err();
        assert_eq!(pg_sqlstate(&e), "22012", "{e:?}");
        assert_eq!(where_ran(&conn, one_shard).await, [(s, db1.clone())]);

        // A temporary table pins the session's reads to the primaries, where it exists.
        conn.batch_execute("CREATE TEMP TABLE scratch (x int)")
            .await
            .unwrap();
        assert_eq!(where_ran(&conn, one_shard).await, [(p, db1.clone())]);
        assert_eq!(run(1).await, [(p, db1.clone())]);
        drop(conn);
    }
}

/// Read-your-writes per shard primary, both ways: with the standby applying each
/// transaction 2 s late, a read after a write waits there and sees it; with it an hour
/// late, a read of the written shard runs on its primary while a read of the other shard
/// stays on the standby; without read-your-writes the same read is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_read_your_writes_waits_for_the_write_on_that_shard_only() {
    let shards = Shards::start("recovery_min_apply_delay = '2s'").await;
    let (p, s) = (shards.primary.port, shards.standby.port);
    let [db0, db1] = shards.dbs.clone();
    let keys = "max_replica_lag_ms = 86400000";
    // Transaction pooling: the write's position is taken before its connection goes back.
    let waits = Proxy::start(&shards.config(
        "pool_mode = \"transaction\"",
        &format!("{keys}\nread_your_writes_timeout_ms = 30000"),
    ))
    .await;
    let conn = connect_app(&waits).await;
    conn.batch_execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (100, 0, 0)")
        .await
        .unwrap();
    shards.replicated(1).await;
    for i in 0..2i64 {
        conn.batch_execute(&format!(
            "INSERT INTO t_order (order_id, user_id, amount) VALUES ({}, 1, 0)",
            10 + i
        ))
        .await
        .unwrap();
        let seen = conn
            .simple_query("SELECT inet_server_port(), count(*) FROM t_order WHERE user_id = 1")
            .await
            .unwrap();
        let row = seen
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string()))
                }
                _ => None,
            })
            .unwrap();
        // Each round adds two rows of user 1; the read sees the round's first.
        assert_eq!(row, (s.to_string(), (2 * i + 1).to_string()), "write {i}");
        // The extended protocol too.
        conn.execute(
            "INSERT INTO t_order (order_id, user_id, amount) VALUES ($1, $2, 0)",
            &[&(20 + i), &1i32],
        )
        .await
        .unwrap();
        let n: i64 = conn
            .query_one(
                "SELECT count(*) FROM t_order WHERE user_id = $1 AND order_id = $2",
                &[&1i32, &(20 + i)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "extended write {i} is visible");
    }
    drop(conn);
    shards.replicated(5).await;

    shards.set_delay("1h").await;
    let short =
        Proxy::start(&shards.config("", &format!("{keys}\nread_your_writes_timeout_ms = 300")))
            .await;
    let plain = Proxy::start(&shards.config("", keys)).await;
    let conn = connect_app(&short).await;
    let stale = connect_app(&plain).await;
    conn.batch_execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (30, 1, 0)")
        .await
        .unwrap();
    assert_eq!(
        probe(&conn, 1).await,
        (p, db1.clone(), 5),
        "ds_1: the primary"
    );
    assert_eq!(
        probe(&conn, 0).await,
        (s, db0.clone(), 1),
        "ds_0, not written by the session: its standby"
    );
    // Without read-your-writes the late standby serves the read, without the write.
    stale
        .batch_execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (31, 1, 0)")
        .await
        .unwrap();
    assert_eq!(probe(&stale, 1).await, (s, db1.clone(), 4), "stale");

    shards.set_delay("0").await;
    shards.replicated(7).await;
    assert_eq!(probe(&conn, 1).await, (s, db1.clone(), 6));
}

/// A standby that goes away during a read of a sharded session ends that session with
/// FATAL 08006 naming the standby; it is ejected, and reads go to the primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_lost_during_a_read_ends_the_session_naming_it() {
    let mut shards = Shards::start("").await;
    let (p, s) = (shards.primary.port, shards.standby.port);
    let db1 = shards.dbs[1].clone();
    let proxy = Proxy::start(&shards.config("", "max_replica_lag_ms = 30000")).await;
    let conn = connect_app(&proxy).await;
    let one_shard = "SELECT inet_server_port(), current_database() FROM t_order WHERE user_id = 1";
    conn.batch_execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 1, 0)")
        .await
        .unwrap();
    shards.replicated(1).await;
    assert_eq!(where_ran(&conn, one_shard).await, [(s, db1.clone())]);

    let reading = tokio::spawn(async move {
        conn.simple_query("SELECT pg_sleep(60), inet_server_port() FROM t_order WHERE user_id = 1")
            .await
    });
    let watch = shards.standby.connect("postgres").await;
    eventually("the read runs on the standby", || async {
        let n: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n == 1
    })
    .await;
    drop(watch);
    shards.standby.stop();
    let e = reading.await.unwrap().unwrap_err();
    assert_eq!(pg_sqlstate(&e), "08006", "{e:?}");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(message.contains("ds_1.replica_0"), "{message}");

    let late = connect_app(&proxy).await;
    assert_eq!(where_ran(&late, one_shard).await, [(p, db1)]);
}

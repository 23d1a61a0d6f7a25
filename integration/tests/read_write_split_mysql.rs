//! Read/write splitting on the MySQL listener against a real GTID replica: a temp MariaDB
//! primary (server_id 1, binary log) and a temp MariaDB replica of it (server_id 2), each
//! on its own port and data dir. `@@server_id` tells where each statement ran.

use std::time::Duration;

use dbmesh_integration::*;
use mysql_async::prelude::Queryable;

const PRIMARY_ID: u32 = 1;
const REPLICA_ID: u32 = 2;

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

async fn server_id(conn: &mut mysql_async::Conn, sql: &str) -> u32 {
    conn.query_first::<u32, _>(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap()
}

/// The replica's row of `SHOW DBMESH DATA SOURCES`: (health, last_error, lag_ms).
async fn replica_row(admin: &mut mysql_async::Conn) -> (String, Option<String>, Option<String>) {
    let rows: Vec<mysql_async::Row> = admin.query("SHOW DBMESH DATA SOURCES").await.unwrap();
    let row = rows
        .into_iter()
        .find(|r| r.get::<String, _>("data_source").as_deref() == Some("ds_0.replica_0"))
        .expect("the replica has a row");
    assert_eq!(row.get::<String, _>("role").as_deref(), Some("replica"));
    (
        row.get::<String, _>("health").unwrap(),
        row.get::<Option<String>, _>("last_error").unwrap(),
        row.get::<Option<String>, _>("lag_ms").unwrap(),
    )
}

/// Polls the replica's row until `check` holds (bounded like [`eventually`]).
async fn wait_for_replica(
    admin: &mut mysql_async::Conn,
    what: &str,
    check: impl Fn(&(String, Option<String>, Option<String>)) -> bool,
) {
    for _ in 0..600 {
        if check(&replica_row(admin).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}: {:?}", replica_row(admin).await);
}

/// `COUNT(*)` of `t` and the server that counted.
async fn count_and_server(conn: &mut mysql_async::Conn) -> Option<(i64, u32)> {
    conn.query_first("SELECT COUNT(*), @@server_id FROM t")
        .await
        .unwrap()
}

async fn replicated_rows(replica: &ReplicationMariadb, db: &str) -> i64 {
    let mut conn = replica.root().await;
    let n = conn
        .query_first::<i64, _>(format!("SELECT COUNT(*) FROM {db}.t"))
        .await
        .ok()
        .flatten()
        .unwrap_or(-1);
    let _ = conn.disconnect().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_replica_and_everything_else_to_the_primary() {
    let mut primary = ReplicationMariadb::start(PRIMARY_ID).await;
    let replica = ReplicationMariadb::start(REPLICA_ID).await;
    replica.replicate_from(&primary).await;
    let db = unique_name("rw");
    let mut root = primary.root().await;
    root.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    root.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, written_on INT)"
    ))
    .await
    .unwrap();
    root.disconnect().await.unwrap();
    eventually("the table reaches the replica", || async {
        replicated_rows(&replica, &db).await == 0
    })
    .await;

    let extra = format!(
        "max_replica_lag_ms = 3000\nhealth_check_interval_ms = 100\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n\
         [[users]]\nname = \"ops\"\npassword = \"ops-secret\"\nadmin = true\ndatabases = [\"*\"]\n",
        replica.url(&db)
    );
    let proxy = Proxy::start(&mysql_config("shop", &primary.url(&db), &extra)).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let mut admin = mysql_async::Conn::new(proxy.mysql_opts("ops", "ops-secret", None))
        .await
        .unwrap();

    // A plain read runs on the replica; the primary hint, locking reads and
    // session-bound functions on the primary.
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, REPLICA_ID);
    assert_eq!(
        server_id(&mut conn, "/* dbmesh: primary */ SELECT @@server_id").await,
        PRIMARY_ID
    );
    // A write runs on the primary (it stores the server it ran on) and reaches the
    // replica by replication only.
    conn.query_drop("INSERT INTO t VALUES (1, @@server_id)")
        .await
        .unwrap();
    assert_eq!(
        server_id(
            &mut conn,
            "SELECT @@server_id FROM t WHERE id = 1 FOR UPDATE"
        )
        .await,
        PRIMARY_ID
    );
    assert_eq!(
        server_id(&mut conn, "SELECT @@server_id FROM t LOCK IN SHARE MODE").await,
        PRIMARY_ID
    );
    eventually("the insert reaches the replica", || async {
        replicated_rows(&replica, &db).await == 1
    })
    .await;
    assert_eq!(
        server_id(&mut conn, "SELECT written_on FROM t WHERE id = 1").await,
        PRIMARY_ID,
        "the row was written on the primary"
    );
    assert_eq!(
        server_id(&mut conn, "SELECT @@server_id FROM t WHERE id = 1").await,
        REPLICA_ID
    );

    // Inside an explicit transaction every statement runs on the primary
    // (transactional_read = PRIMARY, the default).
    conn.query_drop("BEGIN").await.unwrap();
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, PRIMARY_ID);
    conn.query_drop("INSERT INTO t VALUES (2, @@server_id)")
        .await
        .unwrap();
    let in_txn: i64 = conn
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_txn, 2, "the transaction reads its own write");
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, REPLICA_ID);

    // Session SETs follow the session onto the replica connection.
    conn.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    let (mode, id): (String, u32) = conn
        .query_first("SELECT @@session.sql_mode, @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((mode.as_str(), id), ("ANSI_QUOTES", REPLICA_ID));

    // A stopped replica is ejected: reads go to the primary; restarted, it is admitted again.
    let (health, _, _) = replica_row(&mut admin).await;
    assert_eq!(health, "up");
    let mut replica_root = replica.root().await;
    replica_root.query_drop("STOP SLAVE").await.unwrap();
    wait_for_replica(&mut admin, "the stopped replica is ejected", |r| {
        r.0 == "ejected"
    })
    .await;
    let (_, reason, _) = replica_row(&mut admin).await;
    assert!(
        reason.as_deref().unwrap_or("").contains("not replicating"),
        "{reason:?}"
    );
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, PRIMARY_ID);
    replica_root.query_drop("START SLAVE").await.unwrap();
    wait_for_replica(&mut admin, "the restarted replica is admitted", |r| {
        r.0 == "up"
    })
    .await;
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, REPLICA_ID);

    // A replica lagging past max_replica_lag_ms is ejected, and admitted once caught up.
    replica_root.query_drop("STOP SLAVE").await.unwrap();
    replica_root
        .query_drop("CHANGE MASTER TO MASTER_DELAY = 3600")
        .await
        .unwrap();
    replica_root.query_drop("START SLAVE").await.unwrap();
    conn.query_drop("INSERT INTO t VALUES (3, @@server_id)")
        .await
        .unwrap();
    wait_for_replica(
        &mut admin,
        "the lagging replica is ejected",
        |(health, reason, _)| {
            health == "ejected"
                && reason
                    .as_deref()
                    .is_some_and(|r| r.contains("exceeds max_replica_lag_ms"))
        },
    )
    .await;
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, PRIMARY_ID);
    replica_root.query_drop("STOP SLAVE").await.unwrap();
    replica_root
        .query_drop("CHANGE MASTER TO MASTER_DELAY = 0")
        .await
        .unwrap();
    replica_root.query_drop("START SLAVE").await.unwrap();
    wait_for_replica(&mut admin, "the caught-up replica is admitted", |r| {
        r.0 == "up"
    })
    .await;
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, REPLICA_ID);
    eventually("the replica catches up on every write", || async {
        replicated_rows(&replica, &db).await == 3
    })
    .await;

    // With the primary down, writes fail naming the data source; reads go on on the
    // replica, which keeps what it received.
    primary.kill();
    for _ in 0..2 {
        // The first write finds the held connection broken, the second cannot connect.
        let (_, _, message) = server_error(conn.query_drop("INSERT INTO t VALUES (4, 0)").await);
        assert!(message.contains("data source 'ds_0'"), "{message}");
    }
    for _ in 0..600 {
        let status: Option<mysql_async::Row> =
            replica_root.query_first("SHOW SLAVE STATUS").await.unwrap();
        let io: String = status.unwrap().get("Slave_IO_Running").unwrap();
        if io != "Yes" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give the monitor (every 100 ms) time to see the cut-off replica: it must stay in.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (health, reason, _) = replica_row(&mut admin).await;
    assert_eq!(health, "up", "{reason:?}");
    assert_eq!(server_id(&mut conn, "SELECT @@server_id").await, REPLICA_ID);
    let n: i64 = conn
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 3);

    replica_root.disconnect().await.unwrap();
    conn.disconnect().await.unwrap();
    admin.disconnect().await.unwrap();
    proxy.server.stop().await;
}

/// With `read_your_writes_timeout_ms`, a read after the session's write waits on the
/// replica for that write's GTID; when it does not arrive in time (a replica held back
/// with MASTER_DELAY), the read runs on the primary and still sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_write_sees_it_waiting_on_the_replica_or_on_the_primary() {
    let primary = ReplicationMariadb::start(PRIMARY_ID).await;
    let replica = ReplicationMariadb::start(REPLICA_ID).await;
    replica.replicate_from(&primary).await;
    let db = unique_name("ryw");
    let mut root = primary.root().await;
    root.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    root.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, written_on INT)"
    ))
    .await
    .unwrap();
    root.disconnect().await.unwrap();
    eventually("the table reaches the replica", || async {
        replicated_rows(&replica, &db).await == 0
    })
    .await;
    let extra = format!(
        "max_replica_lag_ms = 86400000\nhealth_check_interval_ms = 100\nread_your_writes_timeout_ms = 300\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n",
        replica.url(&db)
    );
    let proxy = Proxy::start(&mysql_config("shop", &primary.url(&db), &extra)).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();

    // The replica keeps up: the read waits for the write there and sees it.
    conn.query_drop("INSERT INTO t VALUES (1, @@server_id)")
        .await
        .unwrap();
    assert_eq!(count_and_server(&mut conn).await, Some((1, REPLICA_ID)));

    // The replica is held back an hour: the read gives up waiting and runs on the primary.
    let mut replica_root = replica.root().await;
    replica_root.query_drop("STOP SLAVE").await.unwrap();
    replica_root
        .query_drop("CHANGE MASTER TO MASTER_DELAY = 3600")
        .await
        .unwrap();
    replica_root.query_drop("START SLAVE").await.unwrap();
    conn.query_drop("INSERT INTO t VALUES (2, @@server_id)")
        .await
        .unwrap();
    assert_eq!(count_and_server(&mut conn).await, Some((2, PRIMARY_ID)));
    assert_eq!(
        replicated_rows(&replica, &db).await,
        1,
        "the replica is behind"
    );

    replica_root.query_drop("STOP SLAVE").await.unwrap();
    replica_root
        .query_drop("CHANGE MASTER TO MASTER_DELAY = 0")
        .await
        .unwrap();
    replica_root.query_drop("START SLAVE").await.unwrap();
    eventually("the replica catches up", || async {
        replicated_rows(&replica, &db).await == 2
    })
    .await;
    assert_eq!(count_and_server(&mut conn).await, Some((2, REPLICA_ID)));

    replica_root.disconnect().await.unwrap();
    conn.disconnect().await.unwrap();
    proxy.server.stop().await;
}

/// `transactional_read = "FIXED"`: reads inside a transaction go to a replica (the same
/// one throughout), its writes and locking reads to the primary, and the transaction
/// commits there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_transactional_reads_run_on_a_replica_and_writes_on_the_primary() {
    let primary = ReplicationMariadb::start(PRIMARY_ID).await;
    let replica = ReplicationMariadb::start(REPLICA_ID).await;
    replica.replicate_from(&primary).await;
    let db = unique_name("rwtx");
    let mut root = primary.root().await;
    root.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    root.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, written_on INT)"
    ))
    .await
    .unwrap();
    root.disconnect().await.unwrap();
    eventually("the table reaches the replica", || async {
        replicated_rows(&replica, &db).await == 0
    })
    .await;
    let extra = format!(
        "transactional_read = \"FIXED\"\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n",
        replica.url(&db)
    );
    let proxy = Proxy::start(&mysql_config("shop", &primary.url(&db), &extra)).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();

    let mut txn = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .unwrap();
    let id: Option<u32> = txn.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(REPLICA_ID));
    txn.query_drop("INSERT INTO t VALUES (1, @@server_id)")
        .await
        .unwrap();
    let locked: Option<u32> = txn
        .query_first("SELECT @@server_id FROM t WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    assert_eq!(
        locked,
        Some(PRIMARY_ID),
        "a locking read runs with the writes"
    );
    let id: Option<u32> = txn.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(REPLICA_ID));
    txn.commit().await.unwrap();

    let mut direct = primary.root().await;
    let written: Option<u32> = direct
        .query_first(format!("SELECT written_on FROM {db}.t WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(written, Some(PRIMARY_ID), "committed on the primary");
    direct.disconnect().await.unwrap();
    conn.disconnect().await.unwrap();
    proxy.server.stop().await;
}

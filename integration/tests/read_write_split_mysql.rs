//! Read/write splitting on the MySQL listener against a real GTID replica: a temp MariaDB
//! primary (server_id 1, binary log) and a temp MariaDB replica of it (server_id 2), each
//! on its own port and data dir. `@@server_id` tells where each statement ran.

use std::time::Duration;

use dbmesh_integration::*;
use mysql_async::prelude::Queryable;

const PRIMARY_ID: u32 = 1;
const REPLICA_ID: u32 = 2;

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

/// Prepared statements follow the same rules as COM_QUERY: an execute of a plain read runs
/// on the replica (the statement is prepared there on first use), writes, locking reads,
/// hinted reads and everything in a transaction on the primary. `@@port` tells the two
/// servers apart as well as `@@server_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_reads_go_to_the_replica_and_prepared_writes_to_the_primary() {
    let primary = ReplicationMariadb::start(PRIMARY_ID).await;
    let replica = ReplicationMariadb::start(REPLICA_ID).await;
    replica.replicate_from(&primary).await;
    let db = unique_name("rwps");
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
        "[[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n",
        replica.url(&db)
    );
    let proxy = Proxy::start(&mysql_config("shop", &primary.url(&db), &extra)).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let (primary_port, replica_port) = (primary.port, replica.port);

    let probe = "SELECT @@server_id, @@port FROM DUAL WHERE ? = 1";
    let at: Option<(u32, u16)> = conn.exec_first(probe, (1,)).await.unwrap();
    assert_eq!(at, Some((REPLICA_ID, replica_port)));
    // The same statement again (now prepared on the replica connection), and with the
    // primary hint, on the primary.
    let at: Option<(u32, u16)> = conn.exec_first(probe, (1,)).await.unwrap();
    assert_eq!(at, Some((REPLICA_ID, replica_port)));
    let at: Option<(u32, u16)> = conn
        .exec_first(format!("/* dbmesh: primary */ {probe}"), (1,))
        .await
        .unwrap();
    assert_eq!(at, Some((PRIMARY_ID, primary_port)));

    conn.exec_drop("INSERT INTO t VALUES (?, @@server_id)", (1,))
        .await
        .unwrap();
    let locked: Option<u32> = conn
        .exec_first("SELECT @@server_id FROM t WHERE id = ? FOR UPDATE", (1,))
        .await
        .unwrap();
    assert_eq!(locked, Some(PRIMARY_ID));
    eventually("the insert reaches the replica", || async {
        replicated_rows(&replica, &db).await == 1
    })
    .await;
    let row: Option<(u32, u32)> = conn
        .exec_first("SELECT written_on, @@server_id FROM t WHERE id = ?", (1,))
        .await
        .unwrap();
    assert_eq!(
        row,
        Some((PRIMARY_ID, REPLICA_ID)),
        "written on the primary, read on the replica"
    );

    // In a transaction (transactional_read = PRIMARY) executes run on the primary and see
    // the transaction's own write.
    conn.query_drop("BEGIN").await.unwrap();
    conn.exec_drop("INSERT INTO t VALUES (?, @@server_id)", (2,))
        .await
        .unwrap();
    let in_txn: Option<(i64, u32)> = conn
        .exec_first("SELECT COUNT(*), @@server_id FROM t WHERE id > ?", (0,))
        .await
        .unwrap();
    assert_eq!(in_txn, Some((2, PRIMARY_ID)));
    conn.query_drop("COMMIT").await.unwrap();
    let at: Option<(u32, u16)> = conn.exec_first(probe, (1,)).await.unwrap();
    assert_eq!(at, Some((REPLICA_ID, replica_port)));

    conn.disconnect().await.unwrap();
    proxy.server.stop().await;
}

/// A replica held back with MASTER_DELAY, seen through two proxies on the same pair: with
/// read-your-writes a read (COM_QUERY or prepared) after the session's write falls back to
/// the primary and sees the write; without it the replica answers with stale data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_replica_serves_stale_reads_unless_read_your_writes_is_on() {
    let primary = ReplicationMariadb::start(PRIMARY_ID).await;
    let replica = ReplicationMariadb::start(REPLICA_ID).await;
    replica.replicate_from(&primary).await;
    let db = unique_name("stale");
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
    let config = |ryw: &str| {
        let extra = format!(
            "max_replica_lag_ms = 86400000\nhealth_check_interval_ms = 100\n{ryw}\
             [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n",
            replica.url(&db)
        );
        mysql_config("shop", &primary.url(&db), &extra)
    };
    let with_ryw = Proxy::start(&config("read_your_writes_timeout_ms = 300\n")).await;
    let without = Proxy::start(&config("")).await;
    let mut ryw = mysql_async::Conn::new(with_ryw.app_opts("shop"))
        .await
        .unwrap();
    let mut plain = mysql_async::Conn::new(without.app_opts("shop"))
        .await
        .unwrap();

    replica.set_delay(3600).await;
    plain
        .query_drop("INSERT INTO t VALUES (1, @@server_id)")
        .await
        .unwrap();
    assert_eq!(
        count_and_server(&mut plain).await,
        Some((0, REPLICA_ID)),
        "without read-your-writes: the replica, without the write"
    );
    let prepared: Option<(i64, u32)> = plain
        .exec_first("SELECT COUNT(*), @@server_id FROM t WHERE id > ?", (0,))
        .await
        .unwrap();
    assert_eq!(prepared, Some((0, REPLICA_ID)));

    ryw.query_drop("INSERT INTO t VALUES (2, @@server_id)")
        .await
        .unwrap();
    assert_eq!(
        count_and_server(&mut ryw).await,
        Some((2, PRIMARY_ID)),
        "with read-your-writes: the primary, with the write"
    );
    ryw.exec_drop("INSERT INTO t VALUES (?, @@server_id)", (3,))
        .await
        .unwrap();
    let prepared: Option<(i64, u32)> = ryw
        .exec_first("SELECT COUNT(*), @@server_id FROM t WHERE id > ?", (0,))
        .await
        .unwrap();
    assert_eq!(prepared, Some((3, PRIMARY_ID)));
    assert_eq!(
        replicated_rows(&replica, &db).await,
        0,
        "the replica is behind"
    );

    replica.set_delay(0).await;
    eventually("the replica catches up", || async {
        replicated_rows(&replica, &db).await == 3
    })
    .await;
    let prepared: Option<(i64, u32)> = ryw
        .exec_first("SELECT COUNT(*), @@server_id FROM t WHERE id > ?", (0,))
        .await
        .unwrap();
    assert_eq!(
        prepared,
        Some((3, REPLICA_ID)),
        "caught up: the replica again"
    );
    assert_eq!(count_and_server(&mut plain).await, Some((3, REPLICA_ID)));

    ryw.disconnect().await.unwrap();
    plain.disconnect().await.unwrap();
    with_ryw.server.stop().await;
    without.server.stop().await;
}

/// What one read of the load in [`killing_the_replica_under_read_load_reruns_reads_elsewhere`]
/// came to.
#[derive(Debug)]
enum ReadOutcome {
    /// It answered; the server it ran on.
    Ran(u32),
    /// It failed before any of its result arrived: what read/write splitting must prevent.
    FailedBeforeResult(String),
    /// It failed after part of its result had arrived (possible only for a read already
    /// streaming when its replica died).
    FailedWhileStreaming(String),
}

/// One read as COM_QUERY (`prepared` false) or COM_STMT_EXECUTE, told apart by whether
/// its result had started when it failed.
async fn probe_read(conn: &mut mysql_async::Conn, prepared: bool) -> ReadOutcome {
    let sql = "SELECT @@server_id FROM t WHERE id > 0 LIMIT 1";
    if prepared {
        // exec_iter returns once the column definitions have arrived.
        let mut result = match conn.exec_iter(sql, ()).await {
            Ok(r) => r,
            Err(e) => return ReadOutcome::FailedBeforeResult(e.to_string()),
        };
        match result.collect::<u32>().await {
            Ok(ids) => ReadOutcome::Ran(ids[0]),
            Err(e) => ReadOutcome::FailedWhileStreaming(e.to_string()),
        }
    } else {
        let mut result = match conn.query_iter(sql).await {
            Ok(r) => r,
            Err(e) => return ReadOutcome::FailedBeforeResult(e.to_string()),
        };
        match result.collect::<u32>().await {
            Ok(ids) => ReadOutcome::Ran(ids[0]),
            Err(e) => ReadOutcome::FailedWhileStreaming(e.to_string()),
        }
    }
}

/// A replica killed (its mariadbd SIGKILLed) while clients read through dbmesh: every read
/// whose replica connection broke before its result started is run again on the primary,
/// so no client sees an error; a read that was already streaming rows from the replica
/// ends with 2013 naming the replica after those rows (it cannot be taken back). The
/// replica is ejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_replica_under_read_load_reruns_reads_elsewhere() {
    let primary = ReplicationMariadb::start(PRIMARY_ID).await;
    let mut replica = ReplicationMariadb::start(REPLICA_ID).await;
    replica.replicate_from(&primary).await;
    let db = unique_name("rwkill");
    let mut root = primary.root().await;
    root.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    root.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, written_on INT)"
    ))
    .await
    .unwrap();
    // The sequence engine's tables need a current database.
    root.query_drop(format!("USE {db}")).await.unwrap();
    root.query_drop("INSERT INTO t SELECT seq, 1 FROM seq_1_to_2000")
        .await
        .unwrap();
    root.disconnect().await.unwrap();
    eventually("the rows reach the replica", || async {
        replicated_rows(&replica, &db).await == 2000
    })
    .await;
    // The monitor checks rarely: ejection here is the read path's doing.
    let extra = format!(
        "health_check_interval_ms = 60000\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n\
         [[users]]\nname = \"ops\"\npassword = \"ops-secret\"\nadmin = true\ndatabases = [\"*\"]\n",
        replica.url(&db)
    );
    let proxy = Proxy::start(&mysql_config("shop", &primary.url(&db), &extra)).await;
    let mut admin = mysql_async::Conn::new(proxy.mysql_opts("ops", "ops-secret", None))
        .await
        .unwrap();

    // Concurrent load: four clients, half prepared, reading in a bounded loop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replica_reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut load = Vec::new();
    for client in 0..4 {
        let opts = proxy.app_opts("shop");
        let stop = stop.clone();
        let replica_reads = replica_reads.clone();
        load.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut outcomes = Vec::new();
            for _ in 0..20_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let outcome = probe_read(&mut conn, client % 2 == 1).await;
                if matches!(outcome, ReadOutcome::Ran(REPLICA_ID)) {
                    replica_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                outcomes.push(outcome);
            }
            let _ = conn.disconnect().await;
            outcomes
        }));
    }
    // Some load has run on the replica before the kill (on a busy machine the clients may
    // take a while to log in).
    eventually("the load reads on the replica", || async {
        replica_reads.load(std::sync::atomic::Ordering::Relaxed) > 0
    })
    .await;

    // A read stuck on the replica when it dies: it has sent nothing yet (SLEEP), so it
    // runs again on the primary.
    let mut sleeper = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    assert_eq!(
        server_id(&mut sleeper, "SELECT @@server_id").await,
        REPLICA_ID
    );
    let sleeping = tokio::spawn(async move {
        let id: Option<(i64, u32)> = sleeper
            .query_first("SELECT SLEEP(3), @@server_id")
            .await
            .unwrap();
        (sleeper, id)
    });
    // A read streaming a large result from the replica when it dies: the client has read
    // its first row and stopped reading, so the rest waits in the replica's socket.
    let mut streamer = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<u32>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let streaming = tokio::spawn(async move {
        let outcome = {
            let mut result = streamer
                .query_iter("SELECT @@server_id, REPEAT('x', 2000) FROM t a, t b LIMIT 2000000")
                .await
                .unwrap();
            let first: (u32, String) = result
                .next()
                .await
                .unwrap()
                .map(mysql_async::from_row)
                .unwrap();
            first_tx.send(first.0).unwrap();
            go_rx.await.unwrap();
            let mut rows = 1usize;
            loop {
                match result.next().await {
                    Ok(Some(_)) => rows += 1,
                    Ok(None) => break Ok(rows),
                    Err(e) => break Err((rows, e)),
                }
            }
        };
        (streamer, outcome)
    });
    assert_eq!(
        first_rx.await.unwrap(),
        REPLICA_ID,
        "streaming from the replica"
    );

    // The sleeping read has reached the replica; some load has run there.
    let sleeping_sql =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(3)%'";
    eventually("the sleeping read runs on the replica", || async {
        replica.count(sleeping_sql).await == 1
    })
    .await;
    replica.kill();
    go_tx.send(()).unwrap();

    let (mut sleeper, slept) = sleeping.await.unwrap();
    assert_eq!(slept, Some((0, PRIMARY_ID)), "re-run on the primary");
    let (mut streamer, streamed) = streaming.await.unwrap();
    match streamed {
        Err((rows, mysql_async::Error::Server(e))) => {
            assert_eq!(e.code, 2013, "{e:?}");
            assert!(e.message.contains("ds_0.replica_0"), "{}", e.message);
            assert!(rows >= 1);
        }
        other => panic!("the streaming read must end with the lost replica's error: {other:?}"),
    }
    // Some more reads after the kill, then stop the load.
    let mut after: mysql_async::Conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    for prepared in [false, true, false, true] {
        match probe_read(&mut after, prepared).await {
            ReadOutcome::Ran(id) => assert_eq!(id, PRIMARY_ID),
            other => panic!("{other:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut on_replica = 0;
    let mut on_primary = 0;
    for task in load {
        for outcome in task.await.unwrap() {
            match outcome {
                ReadOutcome::Ran(REPLICA_ID) => on_replica += 1,
                ReadOutcome::Ran(_) => on_primary += 1,
                // Each row of these reads is a few bytes: their result goes out whole.
                ReadOutcome::FailedBeforeResult(e) => {
                    panic!("a read failed before its result: {e}")
                }
                ReadOutcome::FailedWhileStreaming(e) => {
                    panic!("a read failed while streaming: {e}")
                }
            }
        }
    }
    assert!(
        on_replica > 0 && on_primary > 0,
        "{on_replica} / {on_primary}"
    );
    assert_eq!(
        data_source_health(&mut admin, "ds_0.replica_0").await,
        "ejected"
    );
    // The connections that saw errors are still usable.
    assert_eq!(
        server_id(&mut streamer, "SELECT @@server_id").await,
        PRIMARY_ID
    );
    assert_eq!(
        server_id(&mut sleeper, "SELECT @@server_id").await,
        PRIMARY_ID
    );

    for conn in [sleeper, streamer, after, admin] {
        let _ = conn.disconnect().await;
    }
    proxy.server.stop().await;
}

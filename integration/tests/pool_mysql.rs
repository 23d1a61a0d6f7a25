//! Multiplexing under `pool_mode = "transaction"` (docs/pooling.md): many clients share few
//! backend connections, session state follows a session to whichever connection serves it,
//! a checkout that times out is error 1040 and leaves the session usable, no slot leaks
//! after errors, kills and disconnects, and `pool_mode = "session"` keeps a session on its
//! connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbmesh_integration::{mysql_config, server_error, MysqlDatabase, Proxy};
use mysql_async::prelude::*;
use mysql_async::Conn;

/// A proxy for one MySQL database `shop` with `max_connections = max` and `extra_server`
/// lines in `[server]`, `extra_ds` lines in the data source.
async fn proxy(db: &MysqlDatabase, max: u32, extra_server: &str, extra_ds: &str) -> Proxy {
    let config = mysql_config("shop", &db.url(), extra_ds)
        .replace("max_connections = 64", &format!("max_connections = {max}"))
        .replace(
            "checkout_timeout_ms = 5000",
            &format!("checkout_timeout_ms = 120000\n{extra_server}"),
        );
    Proxy::start(&config).await
}

/// The pool counters of `shop.ds_0`.
fn pool_stats(proxy: &Proxy) -> dbmesh_integration::dbmesh::execute::pool::PoolStats {
    proxy.server.runtime.cluster().databases["shop"].data_sources["ds_0"]
        .mysql
        .stats()
}

/// Waits until no connection of `shop.ds_0` is checked out (sessions give them back when
/// their statement or transaction ends, or the proxy notices the client left); panics with
/// the counters after a generous bound.
async fn wait_until_nothing_in_use(proxy: &Proxy) {
    for _ in 0..600 {
        if pool_stats(proxy).in_use == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("connections still checked out: {:?}", pool_stats(proxy));
}

const CLIENTS: usize = 1000;
const MAX_BACKEND: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_connected_clients_share_twenty_backend_connections() {
    let db = MysqlDatabase::create("pool_mux");
    let proxy = Arc::new(proxy(&db, MAX_BACKEND, "", "").await);
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (client INT PRIMARY KEY, v INT NOT NULL)")
        .await
        .unwrap();

    // Count the real backend connections on the physical database while clients run.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (done, peak) = (done.clone(), peak.clone());
        let (opts, name, direct_id) = (db.direct_opts(), db.name.clone(), direct.id());
        tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            let sql = format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{name}' \
                 AND ID NOT IN (CONNECTION_ID(), {direct_id})"
            );
            while !done.load(Ordering::Relaxed) {
                let n: Option<usize> = conn.query_first(&sql).await.unwrap();
                peak.fetch_max(n.unwrap(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Every client is connected before any runs a statement: with session pooling the
    // 21st would wait for ever.
    let connected = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    // Connects in waves: a storm of 1,000 simultaneous TCP connects overflows the
    // listener's accept queue on a small test machine, and a client whose handshake ACK
    // was dropped there waits for ever for the greeting.
    let connecting = Arc::new(tokio::sync::Semaphore::new(50));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (proxy, connected, connecting) =
                (proxy.clone(), connected.clone(), connecting.clone());
            tokio::spawn(async move {
                let conn = {
                    let _turn = connecting.acquire().await.unwrap();
                    Conn::new(proxy.app_opts("shop")).await
                };
                // A client that could not connect still arrives, so the others go on.
                connected.wait().await;
                let mut conn = conn?;
                let echoed: Option<i64> = conn.query_first(format!("SELECT {i}")).await?;
                assert_eq!(echoed, Some(i as i64));
                conn.exec_drop("INSERT INTO t VALUES (?, ?)", (i, i))
                    .await?;
                // A short transaction.
                let mut tx = conn.start_transaction(Default::default()).await?;
                tx.exec_drop("UPDATE t SET v = v + 1 WHERE client = ?", (i,))
                    .await?;
                let v: Option<i64> = tx
                    .exec_first("SELECT v FROM t WHERE client = ?", (i,))
                    .await?;
                assert_eq!(v, Some(i as i64 + 1));
                tx.commit().await?;
                // A prepared statement executed again after the connection went back.
                let stmt = conn.prep("SELECT v * ? FROM t WHERE client = ?").await?;
                for k in 1..=2i64 {
                    let v: Option<i64> = conn.exec_first(&stmt, (k, i)).await?;
                    assert_eq!(v, Some((i as i64 + 1) * k));
                }
                conn.disconnect().await?;
                Ok::<_, mysql_async::Error>(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        if let Err(e) = c.await.unwrap() {
            failures.push(format!("client {i}: {e}"));
        }
    }
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let sum: Option<i64> = direct.query_first("SELECT SUM(v) FROM t").await.unwrap();
    let expected: i64 = (0..CLIENTS as i64).map(|i| i + 1).sum();
    assert_eq!(sum, Some(expected));
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak <= MAX_BACKEND as usize,
        "backend saw {peak} connections from dbmesh"
    );
    assert!(peak > 0, "the watcher never saw a dbmesh connection");
    wait_until_nothing_in_use(&proxy).await;
    assert!(pool_stats(&proxy).idle <= MAX_BACKEND as usize);
}

/// What a session sees of its own state.
async fn state(conn: &mut Conn) -> (String, String, Option<i64>, u64) {
    let (mode, collation, v): (String, String, Option<i64>) = conn
        .query_first("SELECT @@session.sql_mode, @@collation_connection, @v")
        .await
        .unwrap()
        .unwrap();
    let id: u64 = conn
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    (mode, collation, v, id)
}

#[tokio::test]
async fn session_state_follows_the_session_to_a_new_backend_connection() {
    let db = MysqlDatabase::create("pool_state");
    // Every connection is closed when it comes back: each statement runs on a new one.
    let proxy = proxy(&db, 4, "", "max_lifetime_ms = 1").await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    conn.query_drop("SET @@session.sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    conn.query_drop("SET NAMES utf8mb4 COLLATE utf8mb4_bin")
        .await
        .unwrap();
    conn.query_drop("SET @v = 42").await.unwrap();
    conn.query_drop("INSERT INTO t (v) VALUES (1), (2)")
        .await
        .unwrap();
    let inserted = conn.last_insert_id().unwrap();
    let stmt = conn.prep("SELECT ? + v FROM t WHERE id = ?").await.unwrap();

    let mut ids = std::collections::HashSet::new();
    for round in 0..3 {
        let id: u64 = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        ids.insert(id);
        let (mode, collation, v, last_id) = state(&mut conn).await;
        assert_eq!(mode, "ANSI_QUOTES", "round {round}");
        assert_eq!(collation, "utf8mb4_bin");
        assert_eq!(v, Some(42));
        assert_eq!(last_id, inserted);
        let sum: Option<i64> = conn.exec_first(&stmt, (10, inserted)).await.unwrap();
        assert_eq!(sum, Some(11));
    }
    assert!(
        ids.len() > 1,
        "every statement ran on backend connection {ids:?}"
    );
    wait_until_nothing_in_use(&proxy).await;
}

#[tokio::test]
async fn two_sessions_alternating_on_one_connection_keep_their_own_state() {
    let db = MysqlDatabase::create("pool_alt");
    let proxy = proxy(&db, 1, "", "").await;
    let mut a = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let mut b = Conn::new(proxy.app_opts("shop")).await.unwrap();
    a.query_drop("SET @@session.sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    a.query_drop("SET @v = 1").await.unwrap();
    b.query_drop("SET @@session.sql_mode = 'NO_ZERO_DATE'")
        .await
        .unwrap();
    let a_stmt = a.prep("SELECT ? * 2").await.unwrap();
    let b_stmt = b.prep("SELECT ? * 2").await.unwrap();
    for round in 0..3i64 {
        let (mode, v): (String, Option<i64>) = a
            .query_first("SELECT @@sql_mode, @v")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (mode.as_str(), v),
            ("ANSI_QUOTES", Some(1)),
            "round {round}"
        );
        let (mode, v): (String, Option<i64>) = b
            .query_first("SELECT @@sql_mode, @v")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((mode.as_str(), v), ("NO_ZERO_DATE", None), "round {round}");
        // The same SQL prepared by both sessions, bound with different types.
        let x: Option<i64> = a.exec_first(&a_stmt, (round,)).await.unwrap();
        assert_eq!(x, Some(round * 2));
        // A string parameter makes the product a DOUBLE.
        let y: Option<f64> = b.exec_first(&b_stmt, (format!("{round}"),)).await.unwrap();
        assert_eq!(y, Some(round as f64 * 2.0));
    }
    // Both ran on the one backend connection the pool has.
    assert_eq!(pool_stats(&proxy).max, 1);
}

#[tokio::test]
async fn a_checkout_that_times_out_is_1040_and_the_session_stays_usable() {
    let db = MysqlDatabase::create("pool_timeout");
    let config = mysql_config("shop", &db.url(), "")
        .replace("max_connections = 64", "max_connections = 1")
        .replace("checkout_timeout_ms = 5000", "checkout_timeout_ms = 300");
    let proxy = Proxy::start(&config).await;
    let mut holder = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let mut waiter = Conn::new(proxy.app_opts("shop")).await.unwrap();
    holder.query_drop("BEGIN").await.unwrap();
    holder.query_drop("SELECT 1").await.unwrap();
    let (code, state, message) = server_error(waiter.query_drop("SELECT 2").await);
    assert_eq!(code, 1040, "{message}");
    assert_eq!(state, "08004");
    assert!(message.contains("ds_0"), "{message}");
    assert!(
        message.contains("max_connections = 1"),
        "names the pool size: {message}"
    );
    assert!(message.contains(" ms "), "names the wait: {message}");
    holder.query_drop("COMMIT").await.unwrap();
    let two: Option<i64> = waiter.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
    wait_until_nothing_in_use(&proxy).await;
}

#[tokio::test]
async fn no_slot_leaks_after_errors_kills_and_disconnects() {
    let db = MysqlDatabase::create("pool_leak");
    let proxy = proxy(&db, 4, "", "").await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t SELECT seq FROM seq_1_to_20000")
        .await
        .unwrap();

    // A backend error, then the session goes on.
    assert_eq!(server_error(conn.query_drop("SELEC 1").await).0, 1064);
    assert_eq!(
        server_error(conn.query_drop("INSERT INTO t VALUES (1)").await).0,
        1062
    );
    wait_until_nothing_in_use(&proxy).await;

    // KILL QUERY of a running statement from another session.
    let mut victim = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let victim_id = victim.id();
    let running = tokio::spawn(async move {
        let r = victim.query_drop("SELECT SLEEP(30)").await;
        (victim, r)
    });
    loop {
        let busy: Option<i64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(30)' AND DB = '{}'",
                db.name
            ))
            .await
            .unwrap();
        if busy == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    let (mut victim, r) = running.await.unwrap();
    // SLEEP interrupted by KILL QUERY returns 1 (or the statement fails with 1317).
    if let Err(e) = r {
        assert_eq!(server_error::<()>(Err(e)).0, 1317);
    }
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    wait_until_nothing_in_use(&proxy).await;

    // Disconnects: mid-statement, mid-result, mid-transaction.
    let mid_statement = {
        let mut c = Conn::new(proxy.app_opts("shop")).await.unwrap();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_millis(200), c.query_drop("SELECT SLEEP(2)"))
                    .await;
            // Dropped here with the statement running.
        })
    };
    mid_statement.await.unwrap();
    {
        let mut c = Conn::new(proxy.app_opts("shop")).await.unwrap();
        let mut result = c
            .query_iter("SELECT a.id FROM t a, t b LIMIT 3000000")
            .await
            .unwrap();
        let _first: Option<mysql_async::Row> = result.next().await.unwrap();
        // Dropped mid-result.
    }
    {
        let mut c = Conn::new(proxy.app_opts("shop")).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("DELETE FROM t WHERE id < 100").await.unwrap();
        // Dropped mid-transaction.
    }
    wait_until_nothing_in_use(&proxy).await;
    let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(20000), "the abandoned transaction was rolled back");
}

#[tokio::test]
async fn between_statements_a_session_holds_no_connection_in_transaction_mode() {
    let db = MysqlDatabase::create("pool_between");
    let proxy = proxy(&db, 4, "", "").await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    // The driver's own set-up queries at connect.
    assert_eq!(pool_stats(&proxy).in_use, 0);
    conn.query_drop("SELECT 1").await.unwrap();
    assert_eq!(pool_stats(&proxy).in_use, 0);
    conn.exec_drop("SELECT ?", (1,)).await.unwrap();
    assert_eq!(pool_stats(&proxy).in_use, 0);
    let mut tx = conn.start_transaction(Default::default()).await.unwrap();
    tx.query_drop("SELECT 1").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pool_stats(&proxy).in_use, 0);
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("SELECT 1").await.unwrap();
    assert_eq!(
        pool_stats(&proxy).in_use,
        1,
        "a transaction keeps its connection"
    );
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(pool_stats(&proxy).in_use, 0);
    conn.query_drop("SET autocommit = 0").await.unwrap();
    conn.query_drop("SELECT 1").await.unwrap();
    assert_eq!(
        pool_stats(&proxy).in_use,
        1,
        "autocommit = 0 keeps its connection"
    );
    conn.query_drop("SET autocommit = 1").await.unwrap();
    assert_eq!(pool_stats(&proxy).in_use, 0);
}

#[tokio::test]
async fn session_mode_keeps_a_session_on_its_connection() {
    let db = MysqlDatabase::create("pool_session");
    let proxy = proxy(&db, 4, "pool_mode = \"session\"", "max_lifetime_ms = 1").await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let first: u64 = conn
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        let id: u64 = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, first);
        assert_eq!(pool_stats(&proxy).in_use, 1);
    }
    drop(conn);
    wait_until_nothing_in_use(&proxy).await;
}

//! Many clients at once: more clients than the data source's `max_connections` all get
//! served, each waiting for a backend connection that another client gives back when it
//! disconnects, and dbmesh never opens more backend connections than configured.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::prelude::*;
use mysql_async::Conn;

const CLIENTS: usize = 200;
/// Backend connections dbmesh may open: far fewer than clients, and well under MariaDB's
/// max_connections (151) even with other test binaries' connections around.
const MAX_BACKEND: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_share_twenty_backend_connections() {
    let db = MysqlDatabase::create("conc");
    // These clients hold their backend connection while idle: session pooling, on purpose.
    let config = mysql_config("shop", &db.url(), "")
        .replace(
            "checkout_timeout_ms = 5000",
            "checkout_timeout_ms = 5000\npool_mode = \"session\"",
        )
        .replace(
            "max_connections = 64",
            &format!("max_connections = {MAX_BACKEND}"),
        )
        // A client may wait for many others to finish; this is a bound, not a speed check.
        .replace("checkout_timeout_ms = 5000", "checkout_timeout_ms = 120000");
    let proxy = Arc::new(Proxy::start(&config).await);
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (client INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();

    // Count the real backend connections on the physical database while clients run (not
    // counting this test's own direct connections).
    let done = Arc::new(AtomicBool::new(false));
    let peak_backends = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (done, peak) = (done.clone(), peak_backends.clone());
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
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };

    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (proxy, start) = (proxy.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut conn = Conn::new(proxy.app_opts("shop")).await?;
                let echoed: Option<i64> = conn.query_first(format!("SELECT {i}")).await?;
                assert_eq!(echoed, Some(i as i64));
                conn.exec_drop("INSERT INTO t VALUES (?, ?)", (i, format!("client {i}")))
                    .await?;
                let v: Option<String> = conn
                    .exec_first("SELECT v FROM t WHERE client = ?", (i,))
                    .await?;
                assert_eq!(v, Some(format!("client {i}")));
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
        "{} clients failed: {failures:#?}",
        failures.len()
    );

    let n: Option<usize> = direct.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(CLIENTS));
    let peak = peak_backends.load(Ordering::Relaxed);
    assert!(
        peak <= MAX_BACKEND,
        "{peak} backend connections, max is {MAX_BACKEND}"
    );
    let cluster = proxy.server.runtime.cluster();
    let pool = &cluster.databases["shop"].data_sources["ds_0"].mysql;
    assert!(pool.idle_count() <= MAX_BACKEND);
}

/// A proxy whose data source allows `max` backend connections, with the given checkout
/// timeout.
async fn small_pool(max: u32, checkout_ms: u64) -> (MysqlDatabase, Proxy) {
    let db = MysqlDatabase::create("conc_pool");
    // These clients hold their backend connection while idle: session pooling, on purpose.
    let config = mysql_config("shop", &db.url(), "")
        .replace(
            "checkout_timeout_ms = 5000",
            "checkout_timeout_ms = 5000\npool_mode = \"session\"",
        )
        .replace("max_connections = 64", &format!("max_connections = {max}"))
        .replace(
            "checkout_timeout_ms = 5000",
            &format!("checkout_timeout_ms = {checkout_ms}"),
        );
    let proxy = Proxy::start(&config).await;
    (db, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_waiting_for_a_backend_gets_the_one_a_leaving_client_frees() {
    let (_db, proxy) = small_pool(1, 120_000).await;
    let mut holder = Conn::new(proxy.app_opts("shop")).await.unwrap();
    holder.query_drop("SELECT 1").await.unwrap();

    let opts = proxy.app_opts("shop");
    let waiter = tokio::spawn(async move {
        let mut conn = Conn::new(opts).await?;
        conn.query_first::<i64, _>("SELECT 2").await
    });
    // The only backend connection is held: the waiter cannot have been served. (Waiting a
    // little cannot make this fail wrongly; it only gives a broken pool time to misbehave.)
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "a second backend connection was opened"
    );

    holder.disconnect().await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_timeout_is_a_clean_error_naming_the_data_source() {
    let (_db, proxy) = small_pool(1, 200).await;
    let mut holder = Conn::new(proxy.app_opts("shop")).await.unwrap();
    holder.query_drop("SELECT 1").await.unwrap();

    // Settings given up front, so connecting needs no backend connection.
    let opts = mysql_async::OptsBuilder::from_opts(proxy.app_opts("shop"))
        .max_allowed_packet(Some(16 << 20))
        .wait_timeout(Some(28800));
    let mut waiter = Conn::new(opts).await.unwrap();
    let (code, _, message) = dbmesh_integration::server_error(waiter.query_drop("SELECT 2").await);
    assert_eq!(code, 1040);
    assert!(
        message.contains("'ds_0'") && message.contains("max_connections = 1"),
        "{message}"
    );

    holder.disconnect().await.unwrap();
    // The 200 ms checkout timeout is short: wait until the holder's slot is really free.
    let cluster = proxy.server.runtime.cluster();
    let pool = &cluster.databases["shop"].data_sources["ds_0"].mysql;
    while pool.in_use() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let two: Option<i64> = waiter.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
}

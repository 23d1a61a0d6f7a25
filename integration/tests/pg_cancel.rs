//! A CancelRequest sent to dbmesh's port, with the key dbmesh gave the client, cancels the
//! query that client runs on its backend: `pg_sleep(10)` ends with 57014 well before 10 s,
//! and the connection goes on. A wrong key cancels nothing.

use std::time::{Duration, Instant};

use dbmesh_integration::{
    pg_admin, pg_config, pg_connect, PgDatabase, Proxy, APP_PASSWORD, APP_USER,
};
use tokio_postgres::NoTls;

/// Waits until `count` queries run `pg_sleep` in physical database `db`.
async fn wait_until_sleeping(db: &str, count: i64) {
    let admin = pg_admin().await;
    for _ in 0..1000 {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        if n >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the query never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_through_the_proxy_stops_the_running_query() {
    let db = PgDatabase::create("pgcancel");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let c = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    // Another client's query keeps running.
    let other = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let token = c.cancel_token();
    let started = Instant::now();
    let other_run =
        tokio::spawn(async move { other.simple_query("SELECT pg_sleep(1.5)").await.map(|_| ()) });
    let run = tokio::spawn(async move {
        let r = c.simple_query("SELECT pg_sleep(10)").await.map(|_| ());
        (r, started.elapsed(), c)
    });
    wait_until_sleeping(&db.name, 2).await;
    token
        .cancel_query(NoTls)
        .await
        .expect("cancel request sent");
    let (result, elapsed, c) = run.await.unwrap();
    let e = result.expect_err("the query was cancelled");
    assert_eq!(e.code().map(|c| c.code()), Some("57014"), "{e:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "cancelled after {elapsed:?}"
    );
    other_run
        .await
        .unwrap()
        .expect("the other client's query is not cancelled");

    // The connection is fine, and extended-protocol queries are cancelled the same way.
    let n: i32 = c.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(n, 7);
    let token = c.cancel_token();
    let started = Instant::now();
    let run = tokio::spawn(async move {
        let r = c.query("SELECT pg_sleep($1)", &[&10f64]).await.map(|_| ());
        (r, started.elapsed())
    });
    wait_until_sleeping(&db.name, 1).await;
    token.cancel_query(NoTls).await.unwrap();
    let (result, elapsed) = run.await.unwrap();
    assert_eq!(result.unwrap_err().code().map(|c| c.code()), Some("57014"));
    assert!(
        elapsed < Duration::from_secs(5),
        "cancelled after {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_with_a_wrong_key_is_ignored() {
    let db = PgDatabase::create("pgcancel");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let port = proxy.postgres_port();
    let c = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let run = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(1)").await.map(|_| ()) });
    wait_until_sleeping(&db.name, 1).await;
    // Guessed keys: every dbmesh process id from 1 to 64, with a secret of 0.
    for pid in 1..=64i32 {
        let mut raw = dbmesh_integration::PgRaw::connect(port).await;
        let mut m = 16i32.to_be_bytes().to_vec();
        m.extend_from_slice(&80877102i32.to_be_bytes());
        m.extend_from_slice(&pid.to_be_bytes());
        m.extend_from_slice(&0i32.to_be_bytes());
        raw.send(&m).await;
        assert!(raw.read().await.is_none(), "no answer to a CancelRequest");
    }
    run.await.unwrap().expect("not cancelled");
}

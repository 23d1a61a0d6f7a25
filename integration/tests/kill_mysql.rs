//! `KILL` uses dbmesh's connection ids (the ones clients see in the handshake), never the
//! backend's: a KILL QUERY from another connection interrupts exactly the statement of the
//! connection it names.

use std::time::{Duration, Instant};

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_with_the_proxy_connection_id_interrupts_that_statement() {
    let db = MysqlDatabase::create("kill");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut victim = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let victim_id = victim.id();
    let sleeper = tokio::spawn(async move {
        let started = Instant::now();
        let r: Result<Option<i64>, _> = victim.query_first("SELECT SLEEP(20)").await;
        (r, started.elapsed(), victim)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killer = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    killer
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    let (result, elapsed, mut victim) = sleeper.await.unwrap();
    // MariaDB answers an interrupted SLEEP() with 1 (or error 1317): either way, early.
    match result {
        Ok(v) => assert_eq!(v, Some(1), "SLEEP returns 1 when interrupted"),
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e}"),
        Err(e) => panic!("unexpected error {e}"),
    }
    assert!(
        elapsed < Duration::from_secs(15),
        "the query was not interrupted ({elapsed:?})"
    );
    // The victim's connection stays usable.
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_of_an_unknown_id_is_refused_and_reaches_no_backend_thread() {
    let db = MysqlDatabase::create("kill");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    // A backend thread id that certainly exists: our own backend connection's.
    let backend_thread: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let unknown = 4_000_000_000u64;
    let err = conn
        .query_drop(format!("KILL QUERY {unknown}"))
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1094, "{e}"),
        e => panic!("unexpected error {e}"),
    }
    // Killing "our own" backend thread id by number must not be forwarded either: dbmesh
    // knows no client connection with that id (unless ids collide; they come from
    // different counters, so pick the backend's and make sure it is not ours).
    if let Some(t) = backend_thread.filter(|t| *t != u64::from(conn.id())) {
        let err = conn.query_drop(format!("KILL {t}")).await.unwrap_err();
        assert!(
            matches!(err, mysql_async::Error::Server(ref e) if e.code == 1094),
            "{err}"
        );
    }
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_connection_closes_the_named_client() {
    let db = MysqlDatabase::create("kill");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut victim = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    victim.query_drop("SELECT 1").await.unwrap();
    let mut killer = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    killer
        .query_drop(format!("KILL CONNECTION {}", victim.id()))
        .await
        .unwrap();
    let after = victim.query_drop("SELECT 1").await;
    assert!(
        after.is_err(),
        "a killed connection must not run statements"
    );
}

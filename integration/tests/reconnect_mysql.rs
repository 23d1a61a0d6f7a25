//! A backend connection closed by the server while the client is idle and outside a
//! transaction is replaced without the client noticing: session variables are replayed and
//! prepared statements prepared again.

use std::time::Duration;

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::prelude::*;

async fn kill_backend_thread(db: &MysqlDatabase, thread: u64) {
    let mut direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    direct.query_drop(format!("KILL {thread}")).await.unwrap();
    direct.disconnect().await.unwrap();
    // Past the idle threshold after which dbmesh probes a connection before reuse.
    tokio::time::sleep(Duration::from_millis(1300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_killed_by_the_server_is_replaced_transparently() {
    let db = MysqlDatabase::create("reconn");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    conn.query_drop("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', @marker = 42")
        .await
        .unwrap();
    let stmt = conn.prep("SELECT ? + 1").await.unwrap();
    let before: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();

    kill_backend_thread(&db, before.unwrap()).await;

    let after: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_ne!(before, after, "a new backend connection serves the session");
    let mode: Option<String> = conn.query_first("SELECT @@SESSION.sql_mode").await.unwrap();
    assert_eq!(
        mode.as_deref(),
        Some("NO_ENGINE_SUBSTITUTION"),
        "SET replayed"
    );
    let marker: Option<i64> = conn.query_first("SELECT @marker").await.unwrap();
    assert_eq!(marker, Some(42), "user variable replayed");
    let two: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
    assert_eq!(two, Some(2), "prepared statement prepared again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_killed_inside_a_transaction_reports_the_loss() {
    let db = MysqlDatabase::create("reconn");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let thread: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();

    kill_backend_thread(&db, thread.unwrap()).await;

    // The transaction is gone: the client must hear about it rather than carry on.
    let err = conn
        .query_drop("INSERT INTO t VALUES (2)")
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 2013, "{e}");
            assert!(e.message.contains("ds_0"), "names the data source: {e}");
        }
        e => panic!("unexpected error {e}"),
    }
    // The connection itself stays usable, on a new backend connection.
    let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(0), "the killed transaction was rolled back");
}

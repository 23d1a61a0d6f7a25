//! A data source that is down, or goes down mid-session: dbmesh still starts and accepts
//! logins, statements fail with a clear error naming the data source, the client connection
//! stays usable, and statements work again once the backend is back.

use dbmesh_integration::{
    free_port, mysql_config, mysql_port, server_error, MysqlDatabase, Proxy, TcpForwarder,
};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};

/// Client options that need no statement at connect time (mysql_async otherwise asks the
/// server for max_allowed_packet and wait_timeout, which would fail with the backend down).
fn no_setup_queries(opts: Opts) -> Opts {
    OptsBuilder::from_opts(opts)
        .max_allowed_packet(Some(16 << 20))
        .wait_timeout(Some(28800))
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_data_source_gives_2003_naming_it_and_the_connection_stays_usable() {
    let db = MysqlDatabase::create("down");
    let closed = free_port();
    let url = format!("mysql://root:@127.0.0.1:{closed}/{}", db.name);
    let proxy = Proxy::start(&mysql_config("shop", &url, "")).await;
    let mut conn = Conn::new(no_setup_queries(proxy.app_opts("shop")))
        .await
        .unwrap();

    for _ in 0..2 {
        let (code, state, message) = server_error(conn.query_drop("SELECT 1").await);
        assert_eq!((code, state.as_str()), (2003, "HY000"));
        assert!(
            message.contains("data source 'ds_0' of database 'shop' is unavailable"),
            "{message}"
        );
        assert!(
            !message.contains("root:"),
            "no credentials in errors: {message}"
        );
    }
    assert_eq!(server_error(conn.prep("SELECT ?").await).0, 2003);
    conn.ping().await.unwrap();
    assert_eq!(server_error(conn.query_drop("SELECT 1").await).0, 2003);
}

/// Runs `sql` on `conn` while cutting the forwarder once the statement is running on MariaDB.
async fn cut_mid_statement(
    conn: &mut Conn,
    forwarder: &mut TcpForwarder,
    db: &MysqlDatabase,
    sql: &str,
) -> (u16, String) {
    let mut watcher = Conn::new(db.direct_opts()).await.unwrap();
    let running = format!(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{}' AND INFO = '{sql}'",
        db.name
    );
    let cut = async {
        let id = loop {
            if let Some(id) = watcher.query_first::<u64, _>(&running).await.unwrap() {
                break id;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        forwarder.cut().await;
        id
    };
    let (result, backend_id) = tokio::join!(conn.query_drop(sql), cut);
    // Don't leave the sleeping statement behind on MariaDB.
    let _ = watcher.query_drop(format!("KILL {backend_id}")).await;
    let (code, _, message) = server_error(result);
    (code, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_lost_mid_statement_gives_2013_and_recovers_when_it_returns() {
    let db = MysqlDatabase::create("down_mid");
    let mut forwarder = TcpForwarder::start(mysql_port()).await;
    let url = format!("mysql://root:@127.0.0.1:{}/{}", forwarder.port, db.name);
    let proxy = Proxy::start(&mysql_config("shop", &url, "")).await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT)").await.unwrap();
    conn.query_drop("SET @kept = 'yes'").await.unwrap();

    // The path to the backend breaks while a statement runs.
    let (code, message) =
        cut_mid_statement(&mut conn, &mut forwarder, &db, "SELECT SLEEP(30)").await;
    assert_eq!(code, 2013);
    assert!(
        message.contains("lost connection to data source 'ds_0'"),
        "{message}"
    );

    // While it is down: a clean 2003 each time, and the client connection survives.
    for _ in 0..2 {
        assert_eq!(server_error(conn.query_drop("SELECT 1").await).0, 2003);
    }
    conn.ping().await.unwrap();

    // Back up: the next statement works, on a new backend connection with the session's
    // settings replayed.
    forwarder.resume().await;
    let kept: Option<Option<String>> = conn.query_first("SELECT @kept").await.unwrap();
    assert_eq!(kept, Some(Some("yes".to_string())));
    conn.exec_drop("INSERT INTO t VALUES (?)", (1,))
        .await
        .unwrap();
    let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_survives_a_lost_backend() {
    let db = MysqlDatabase::create("down_ps");
    let mut forwarder = TcpForwarder::start(mysql_port()).await;
    let url = format!("mysql://root:@127.0.0.1:{}/{}", forwarder.port, db.name);
    // The session keeps the connection that is cut: session pooling, on purpose (under
    // transaction pooling an idle connection found dead is replaced without an error).
    let config = mysql_config("shop", &url, "").replace(
        "checkout_timeout_ms = 5000",
        "checkout_timeout_ms = 5000\npool_mode = \"session\"",
    );
    let proxy = Proxy::start(&config).await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let stmt = conn.prep("SELECT ? + 1").await.unwrap();
    let two: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
    assert_eq!(two, Some(2));

    forwarder.cut().await;
    assert_eq!(server_error(conn.exec_drop(&stmt, (1,)).await).0, 2013);
    forwarder.resume().await;
    // dbmesh prepares the statement again on the new backend connection.
    let three: Option<i64> = conn.exec_first(&stmt, (2,)).await.unwrap();
    assert_eq!(three, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connection_that_died_while_idle_is_replaced_transparently() {
    let db = MysqlDatabase::create("down_idle");
    let mut forwarder = TcpForwarder::start(mysql_port()).await;
    let url = format!("mysql://root:@127.0.0.1:{}/{}", forwarder.port, db.name);
    let proxy = Proxy::start(&mysql_config("shop", &url, "")).await;
    let cluster = proxy.server.runtime.cluster();
    let pool = &cluster.databases["shop"].data_sources["ds_0"].mysql;
    let mut first = Conn::new(proxy.app_opts("shop")).await.unwrap();
    first.query_drop("SELECT 1").await.unwrap();
    first.disconnect().await.unwrap();
    while pool.idle_count() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The idle connection's path dies and comes back: the pooled connection is dead.
    forwarder.cut().await;
    forwarder.resume().await;
    let mut second = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let two: Option<i64> = second.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
}

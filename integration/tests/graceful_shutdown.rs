//! Graceful shutdown of a dbmesh process on SIGTERM: it stops accepting, closes idle
//! sessions at once (PostgreSQL ones with FATAL 57P01 admin_shutdown), lets open
//! transactions finish (COMMIT works and the data is there), closes those sessions when
//! their transaction ends, and exits 0. A transaction still open at the deadline is cut
//! off (its data rolled back) and the process still exits 0.

use mysql_async::prelude::Queryable;

use dbmesh_integration::{
    free_port, pg_connect, ChildProxy, MysqlDatabase, PgDatabase, APP_PASSWORD, APP_USER,
};

/// One MySQL (`shop`) and one PostgreSQL (`shop_pg`) logical database, both listeners on
/// fixed ports.
fn config(
    mysql_port: u16,
    pg_port: u16,
    my: &MysqlDatabase,
    pg: &PgDatabase,
    timeout_ms: u64,
) -> String {
    format!(
        r#"
[server]
mysql_listen = "127.0.0.1:{mysql_port}"
postgres_listen = "127.0.0.1:{pg_port}"
shutdown_timeout_ms = {timeout_ms}
connect_timeout_ms = 2000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["shop", "shop_pg"]

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"
[databases.shop.data_sources.ds_0]
url = "{}"

[databases.shop_pg]
backend = "postgres"
default_data_source = "ds_0"
[databases.shop_pg.data_sources.ds_0]
url = "{}"
"#,
        my.url(),
        pg.url()
    )
}

fn mysql_opts(port: u16) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("shop"))
        .prefer_socket(false)
        .into()
}

fn pg_dsn(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user={APP_USER} password={APP_PASSWORD} dbname=shop_pg")
}

/// A PostgreSQL connection whose connection task reports how it ended.
async fn pg_watched(
    dsn: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::oneshot::Receiver<Result<(), tokio_postgres::Error>>,
) {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(conn.await);
    });
    (client, rx)
}

/// Waits until the listener refuses connections (the shutdown has started).
async fn wait_until_refused(port: u16) {
    for _ in 0..1500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("dbmesh kept accepting on port {port} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_open_transactions_commit_then_exits_zero() {
    let my = MysqlDatabase::create("shutdown");
    let pg = PgDatabase::create("shutdown");
    let (mysql_port, pg_port) = (free_port(), free_port());
    let mut proxy =
        ChildProxy::start(&config(mysql_port, pg_port, &my, &pg, 60_000), mysql_port).await;

    let mut in_txn = mysql_async::Conn::new(mysql_opts(mysql_port))
        .await
        .unwrap();
    in_txn
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    in_txn.query_drop("BEGIN").await.unwrap();
    in_txn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let mut idle = mysql_async::Conn::new(mysql_opts(mysql_port))
        .await
        .unwrap();
    idle.query_drop("SELECT 1").await.unwrap();

    let pg_txn = pg_connect(&pg_dsn(pg_port)).await.unwrap();
    pg_txn
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY); BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let (pg_idle, pg_idle_end) = pg_watched(&pg_dsn(pg_port)).await;
    pg_idle.simple_query("SELECT 1").await.unwrap();

    proxy.signal("TERM");
    wait_until_refused(mysql_port).await;
    wait_until_refused(pg_port).await;

    // Idle sessions are closed at once; PostgreSQL's are told why.
    let ended = pg_idle_end
        .await
        .expect("the connection task reports its end");
    let err = ended.expect_err("the idle PostgreSQL session is terminated");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::ADMIN_SHUTDOWN),
        "{err}"
    );
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "the idle MySQL session is closed"
    );

    // Sessions in a transaction go on until it ends.
    in_txn.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    in_txn.query_drop("COMMIT").await.unwrap();
    pg_txn
        .batch_execute("INSERT INTO t VALUES (2); COMMIT")
        .await
        .unwrap();
    // ...and are closed when it has.
    assert!(in_txn.query_drop("SELECT 1").await.is_err());
    assert!(pg_txn.simple_query("SELECT 1").await.is_err());

    let status = proxy.wait_exit().await;
    assert!(
        status.success(),
        "dbmesh exited with {status}:\n{}",
        proxy.log()
    );

    let mut direct = mysql_async::Conn::new(my.direct_opts()).await.unwrap();
    let ids: Vec<i32> = direct.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!(ids, vec![1, 2]);
    let direct_pg = pg_connect(&pg.direct_dsn()).await.unwrap();
    let rows = direct_pg
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![1, 2]);
    assert!(proxy.log().contains("every client connection closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_still_open_at_the_deadline_is_cut_off_and_dbmesh_exits_zero() {
    let my = MysqlDatabase::create("shutdown_deadline");
    let pg = PgDatabase::create("shutdown_deadline");
    let (mysql_port, pg_port) = (free_port(), free_port());
    let mut proxy =
        ChildProxy::start(&config(mysql_port, pg_port, &my, &pg, 300), mysql_port).await;

    let mut conn = mysql_async::Conn::new(mysql_opts(mysql_port))
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();

    proxy.signal("TERM");
    let status = proxy.wait_exit().await;
    assert!(
        status.success(),
        "dbmesh exited with {status}:\n{}",
        proxy.log()
    );
    assert!(
        proxy.log().contains("shutdown deadline passed"),
        "{}",
        proxy.log()
    );
    assert!(conn.query_drop("COMMIT").await.is_err());

    // Nothing of the cut-off transaction was committed.
    let mut direct = mysql_async::Conn::new(my.direct_opts()).await.unwrap();
    let count: Vec<i64> = direct.query("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(count, vec![0]);
}

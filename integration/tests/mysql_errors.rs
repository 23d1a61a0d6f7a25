//! Errors from the backend reach the client verbatim (errno, SQLSTATE, message), and the
//! connection stays usable after them.

use dbmesh_integration::{mysql_config, server_error, MysqlDatabase, Proxy};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn setup(prefix: &str) -> (MysqlDatabase, Proxy, Conn, Conn) {
    let db = MysqlDatabase::create(prefix);
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(50) UNIQUE)")
        .await
        .unwrap();
    let proxied = Conn::new(proxy.app_opts("shop")).await.unwrap();
    (db, proxy, direct, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_error_is_forwarded_verbatim_and_the_connection_stays_usable() {
    let (_db, _proxy, mut direct, mut proxied) = setup("err_syntax").await;
    let bad = "SELEKT * FROM t WHERE";
    let via_proxy = server_error(proxied.query_drop(bad).await);
    assert_eq!(via_proxy, server_error(direct.query_drop(bad).await));
    assert_eq!((via_proxy.0, via_proxy.1.as_str()), (1064, "42000"));
    assert!(via_proxy.2.contains("SELEKT"), "{}", via_proxy.2);

    let n: Option<i64> = proxied.query_first("SELECT 41 + 1").await.unwrap();
    assert_eq!(n, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_key_error_is_forwarded_verbatim_in_both_protocols() {
    let (_db, _proxy, mut direct, mut proxied) = setup("err_dup").await;
    proxied
        .query_drop("INSERT INTO t VALUES (1, 'a@example.com')")
        .await
        .unwrap();
    let text = "INSERT INTO t VALUES (2, 'a@example.com')";
    let via_proxy = server_error(proxied.query_drop(text).await);
    assert_eq!(via_proxy, server_error(direct.query_drop(text).await));
    assert_eq!((via_proxy.0, via_proxy.1.as_str()), (1062, "23000"));
    assert_eq!(
        via_proxy.2,
        "Duplicate entry 'a@example.com' for key 'email'"
    );

    let prepared = "INSERT INTO t VALUES (?, ?)";
    let params = (1, "b@example.com");
    let via_proxy = server_error(proxied.exec_drop(prepared, params).await);
    assert_eq!(
        via_proxy,
        server_error(direct.exec_drop(prepared, params).await)
    );
    assert_eq!(via_proxy.0, 1062);
    assert!(via_proxy.2.contains("PRIMARY"), "{}", via_proxy.2);

    let rows: Vec<(i32, String)> = proxied.query("SELECT id, email FROM t").await.unwrap();
    assert_eq!(rows, vec![(1, "a@example.com".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_error_is_forwarded_and_later_statements_work() {
    let (_db, _proxy, mut direct, mut proxied) = setup("err_prep").await;
    let bad = "SELECT no_such_column FROM t WHERE id = ?";
    let via_proxy = server_error(proxied.prep(bad).await);
    assert_eq!(via_proxy, server_error(direct.prep(bad).await));
    assert_eq!(via_proxy.0, 1054);

    let stmt = proxied.prep("SELECT ? + 1").await.unwrap();
    let n: Option<i64> = proxied.exec_first(&stmt, (1,)).await.unwrap();
    assert_eq!(n, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_mid_result_set_is_forwarded_and_the_connection_stays_usable() {
    let (_db, _proxy, mut direct, mut proxied) = setup("err_mid").await;
    // Rows 1..=4001 are sent, then the scalar subquery returns two rows (errno 1242) and the
    // server ends the result set with an ERR packet instead of an EOF.
    let sql = "SELECT o.seq, (SELECT s.seq FROM seq_1_to_2 AS s WHERE s.seq + 4000 <= o.seq) \
               FROM seq_1_to_5000 AS o ORDER BY o.seq";
    async fn rows_then_error(conn: &mut Conn, sql: &str) -> (usize, (u16, String, String)) {
        let mut result = conn.query_iter(sql).await.unwrap();
        let mut rows = 0;
        loop {
            match result.next().await {
                Ok(Some(_)) => rows += 1,
                other => return (rows, server_error(other)),
            }
        }
    }
    let via_proxy = rows_then_error(&mut proxied, sql).await;
    assert_eq!(via_proxy, rows_then_error(&mut direct, sql).await);
    assert_eq!((via_proxy.0, via_proxy.1 .0), (4001, 1242));
    let n: Option<i64> = proxied.query_first("SELECT 5").await.unwrap();
    assert_eq!(n, Some(5));
}

//! Pinning under `pool_mode = "transaction"` (docs/pooling.md): state that lives only in the
//! server's session keeps the session on its backend connection until the state is gone.
//!
//! Each test gives connections a lifetime of 1 ms, so a connection that goes back to the
//! pool is closed (when it comes back, or at the next checkout) and the session's next
//! statement runs on a new one: `CONNECTION_ID()` is
//! stable exactly while the session is pinned.

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn setup(prefix: &str) -> (MysqlDatabase, Proxy, Conn) {
    let db = MysqlDatabase::create(prefix);
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "max_lifetime_ms = 1")).await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    (db, proxy, conn)
}

/// The backend connection a statement runs on. It waits a little first, so that an idle
/// connection given back earlier is past its 1 ms lifetime and closed at the next checkout
/// (the wait is a lower bound on age, not a speed assumption).
async fn backend_id(conn: &mut Conn) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    conn.query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap()
}

/// Runs `pin`, checks the session stays on one backend connection over a few statements,
/// runs `unpin`, and checks it moves again afterwards.
async fn pinned_between(conn: &mut Conn, pin: &[&str], unpin: &[&str]) {
    let before = backend_id(conn).await;
    assert_ne!(
        backend_id(conn).await,
        before,
        "not pinned, the session changes connections"
    );
    for sql in pin {
        conn.query_drop(*sql).await.unwrap();
    }
    let pinned = backend_id(conn).await;
    for _ in 0..3 {
        conn.query_drop("SELECT 1").await.unwrap();
        assert_eq!(backend_id(conn).await, pinned, "pinned by {pin:?}");
    }
    for sql in unpin {
        conn.query_drop(*sql).await.unwrap();
    }
    let after = backend_id(conn).await;
    assert_ne!(backend_id(conn).await, after, "released after {unpin:?}");
}

#[tokio::test]
async fn a_temporary_table_pins_until_it_is_dropped() {
    let (_db, _proxy, mut conn) = setup("pin_temp").await;
    pinned_between(
        &mut conn,
        &[
            "CREATE TEMPORARY TABLE tmp (x INT)",
            "INSERT INTO tmp VALUES (1)",
        ],
        &["DROP TEMPORARY TABLE tmp"],
    )
    .await;
}

#[tokio::test]
async fn a_user_lock_pins_until_released() {
    let (db, _proxy, mut conn) = setup("pin_lock").await;
    let name = format!("lock_{}", db.name);
    pinned_between(
        &mut conn,
        &[&format!("SELECT GET_LOCK('{name}', 1)")],
        &[&format!("SELECT RELEASE_LOCK('{name}')")],
    )
    .await;
    pinned_between(
        &mut conn,
        &[&format!("SELECT GET_LOCK('{name}', 1)")],
        &["SELECT RELEASE_ALL_LOCKS()"],
    )
    .await;
}

#[tokio::test]
async fn lock_tables_pins_until_unlock_tables() {
    let (_db, _proxy, mut conn) = setup("pin_lock_tables").await;
    // LOCK TABLES allows only the locked tables; CONNECTION_ID() reads none.
    pinned_between(&mut conn, &["LOCK TABLES t READ"], &["UNLOCK TABLES"]).await;
}

#[tokio::test]
async fn a_transaction_pins_until_it_ends() {
    let (_db, _proxy, mut conn) = setup("pin_txn").await;
    pinned_between(&mut conn, &["BEGIN"], &["COMMIT"]).await;
    pinned_between(
        &mut conn,
        &["START TRANSACTION", "INSERT INTO t VALUES (1)"],
        &["ROLLBACK"],
    )
    .await;
    pinned_between(&mut conn, &["SET autocommit = 0"], &["SET autocommit = 1"]).await;
}

#[tokio::test]
async fn an_xa_transaction_pins_until_committed() {
    let (db, _proxy, mut conn) = setup("pin_xa").await;
    let xid = format!("'x_{}'", db.name);
    pinned_between(
        &mut conn,
        &[&format!("XA START {xid}"), "INSERT INTO t VALUES (2)"],
        &[
            &format!("XA END {xid}"),
            &format!("XA COMMIT {xid} ONE PHASE"),
        ],
    )
    .await;
}

#[tokio::test]
async fn query_assigned_variables_and_sql_prepare_pin_until_reset() {
    let (_db, _proxy, mut conn) = setup("pin_vars").await;
    for pin in [
        "SELECT @a := 5",
        "SELECT 6 INTO @a",
        "PREPARE s FROM 'SELECT 1'",
    ] {
        let before = backend_id(&mut conn).await;
        assert_ne!(backend_id(&mut conn).await, before);
        conn.query_drop(pin).await.unwrap();
        let pinned = backend_id(&mut conn).await;
        assert_eq!(backend_id(&mut conn).await, pinned, "pinned by {pin}");
        // COM_RESET_CONNECTION ends every such state.
        conn.reset().await.unwrap();
        let after = backend_id(&mut conn).await;
        assert_ne!(
            backend_id(&mut conn).await,
            after,
            "released after reset ({pin})"
        );
    }
    // A variable assigned by SET follows the session instead.
    conn.query_drop("SET @b = 7").await.unwrap();
    let first = backend_id(&mut conn).await;
    let b: Option<i64> = conn.query_first("SELECT @b").await.unwrap();
    assert_eq!(b, Some(7));
    assert_ne!(backend_id(&mut conn).await, first);
}

#[tokio::test]
async fn warnings_and_found_rows_answer_about_the_previous_statement() {
    let (_db, _proxy, mut conn) = setup("pin_warn").await;
    conn.query_drop("INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();
    let rows: Option<i64> = conn.query_first("SELECT ROW_COUNT()").await.unwrap();
    assert_eq!(rows, Some(3));
    conn.query_drop("SELECT CAST('x1' AS SIGNED)")
        .await
        .unwrap();
    let warnings: Vec<mysql_async::Row> = conn.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(warnings.len(), 1, "the previous statement's warning");
    let _: Vec<i64> = conn
        .query("SELECT SQL_CALC_FOUND_ROWS id FROM t LIMIT 1")
        .await
        .unwrap();
    let found: Option<i64> = conn.query_first("SELECT FOUND_ROWS()").await.unwrap();
    assert_eq!(found, Some(3));
}

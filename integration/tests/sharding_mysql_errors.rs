//! Errors on a sharded MySQL database reach the client as ERR packets, and the connection
//! stays usable after each: dbmesh's own planning errors (a statement it cannot parse or
//! route, a sharding-key change, a NULL sharding value), and a backend error on one data
//! node of a fan-out, before or after other nodes' rows went out.

use dbmesh_integration::{
    err_code, server_error, RawClient, ShardedDb, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn orders_db() -> (ShardedDb, Conn) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        conn.query_drop(ddl).await.unwrap();
    }
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, 2), (13, 8, 3), (5, -3, 4)",
    )
    .await
    .unwrap();
    (db, conn)
}

/// The session still answers, over every node.
async fn assert_usable(conn: &mut Conn) {
    let mut users: Vec<i32> = conn.query("SELECT user_id FROM t_order").await.unwrap();
    users.sort();
    assert_eq!(users, [-3, 7, 8, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planning_errors_are_err_packets_and_the_connection_stays_usable() {
    let (_db, mut conn) = orders_db().await;
    let (code, state, msg) = server_error(conn.query_drop("SELECT * FROM t_order WHERE").await);
    assert_eq!((code, state.as_str()), (1064, "42000"), "{msg}");
    assert!(msg.contains("t_order"), "{msg}");
    assert_usable(&mut conn).await;

    let (code, _, msg) = server_error(
        conn.query_drop("UPDATE t_order SET user_id = 9 WHERE user_id = 7")
            .await,
    );
    assert_eq!(code, 1235, "{msg}");
    assert!(msg.contains("user_id"), "{msg}");
    assert_usable(&mut conn).await;

    let (code, _, msg) = server_error(
        conn.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (1, NULL, 1)")
            .await,
    );
    assert_eq!(code, 1105, "{msg}");
    assert_usable(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_errors_leave_the_statement_and_connection_usable() {
    let (_db, mut conn) = orders_db().await;
    let (code, _, _) = server_error(
        conn.prep("SELECT * FROM t_order WHERE user_id = ? AND")
            .await,
    );
    assert_eq!(code, 1064);
    let stmt = conn
        .prep("INSERT INTO t_order (order_id, user_id, amount) VALUES (?, ?, ?)")
        .await
        .unwrap();
    let (code, _, _) = server_error(conn.exec_drop(&stmt, (1, None::<i32>, 1)).await);
    assert_eq!(code, 1105);
    // A duplicate key, from the backend, verbatim.
    let (code, _, _) = server_error(conn.exec_drop(&stmt, (12, 7, 1)).await);
    assert_eq!(code, 1062);
    conn.exec_drop(&stmt, (14, 8, 1)).await.unwrap();
    assert_eq!(conn.affected_rows(), 1);
    let mut users: Vec<i32> = conn.query("SELECT user_id FROM t_order").await.unwrap();
    users.sort();
    assert_eq!(users, [-3, 7, 8, 8, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_on_one_node_of_a_fan_out_reaches_the_client() {
    let (db, mut conn) = orders_db().await;
    // ds_1.t_order_1, the last of the four nodes, goes missing behind dbmesh's back.
    db.mysql_direct_query::<i64>(1, "DROP TABLE t_order_1")
        .await;
    let (code, _, msg) = server_error(conn.query_drop("SELECT * FROM t_order").await);
    assert_eq!(code, 1146, "{msg}");
    assert!(msg.contains("t_order_1"), "{msg}");
    // Nodes that exist still answer, on the same connections.
    let mut ds0: Vec<i64> = conn
        .query("SELECT order_id FROM t_order WHERE user_id = 8")
        .await
        .unwrap();
    ds0.sort();
    assert_eq!(ds0, [12, 13]);

    // Rows of the first nodes went out before the error: the client still gets a
    // well-formed response (rows, then the ERR in place of the terminator).
    let mut raw =
        RawClient::login(db.proxy.mysql_port(), APP_USER, APP_PASSWORD, &db.logical).await;
    let reply = raw.command(b"\x03SELECT order_id FROM t_order").await;
    let seqs: Vec<u8> = reply.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=reply.len() as u8).collect::<Vec<_>>());
    // count, definition, EOF, the rows of ds_0 (2) and ds_1.t_order_0 (1), ERR
    assert_eq!(reply.len(), 7, "{reply:?}");
    let (code, _) = err_code(&reply[6].1).expect("an ERR last");
    assert_eq!(code, 1146);
    let again = raw
        .command(b"\x03SELECT order_id FROM t_order WHERE user_id = 8")
        .await;
    assert_eq!(again.len(), 6, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_on_one_node_reports_it_after_the_others_ran() {
    let (db, mut conn) = orders_db().await;
    db.mysql_direct_query::<i64>(0, "DROP TABLE t_order_1")
        .await;
    // Rows for ds_0.t_order_0 (ok), ds_0.t_order_1 (missing), ds_1.t_order_0 (ok).
    let (code, _, msg) = server_error(
        conn.query_drop(
            "INSERT INTO t_order (order_id, user_id, amount) VALUES (20, 8, 1), (21, 8, 1), (22, 7, 1)",
        )
        .await,
    );
    assert_eq!(code, 1146, "{msg}");
    // Outside a transaction each node's statement stands on its own (as on ShardingSphere):
    // the nodes that could take their rows did.
    let ds0: Vec<i64> = db
        .mysql_direct_query(0, "SELECT order_id FROM t_order_0 ORDER BY order_id")
        .await;
    assert_eq!(ds0, [12, 20]);
    let ds1: Vec<i64> = db
        .mysql_direct_query(1, "SELECT order_id FROM t_order_0 ORDER BY order_id")
        .await;
    assert_eq!(ds1, [12, 22]);
    let still: Vec<i32> = conn
        .query("SELECT amount FROM t_order WHERE user_id = 7 AND order_id = 12")
        .await
        .unwrap();
    assert_eq!(still, [1]);
}

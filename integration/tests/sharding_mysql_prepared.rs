//! Prepared statements on a sharded MySQL database are routed per execution by their bound
//! values: a SELECT runs on the data nodes its parameters choose (binary rows, concatenated
//! over nodes), an INSERT puts each execution's row where its values say, long data is
//! folded in, and statements naming no sharded table work as before.

use dbmesh_integration::{
    err_code, RawClient, ShardedDb, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn orders_db() -> (ShardedDb, Conn) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        conn.query_drop(ddl).await.unwrap();
    }
    (db, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_select_is_rerouted_by_each_executions_parameters() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (13, 8, 2)",
    )
    .await
    .unwrap();
    // Decoys on the nodes the rows do NOT belong to: only a misrouted read finds them.
    db.mysql_direct_query::<i64>(0, "INSERT INTO t_order_0 VALUES (12, 7, 999)")
        .await;
    db.mysql_direct_query::<i64>(1, "INSERT INTO t_order_1 VALUES (13, 8, 999)")
        .await;
    let stmt = conn
        .prep("SELECT amount FROM t_order WHERE user_id = ? AND order_id = ?")
        .await
        .unwrap();
    for _ in 0..3 {
        let a: Vec<i32> = conn.exec(&stmt, (7, 12)).await.unwrap();
        assert_eq!(a, [1]);
        let b: Vec<i32> = conn.exec(&stmt, (8, 13)).await.unwrap();
        assert_eq!(b, [2]);
        // A sharding value bound as a string still routes.
        let c: Vec<i32> = conn.exec(&stmt, ("7", 12)).await.unwrap();
        assert_eq!(c, [1]);
    }
    let none: Vec<i32> = conn.exec(&stmt, (9, 12)).await.unwrap();
    assert!(none.is_empty());
    conn.close(stmt).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_select_over_every_node_concatenates_binary_rows() {
    let (_db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, NULL), (13, 8, 3), (5, -3, 4)",
    )
    .await
    .unwrap();
    let mut rows: Vec<(i64, i32, Option<i32>)> = conn
        .exec(
            "SELECT order_id, user_id, amount FROM t_order WHERE amount IS NULL OR amount >= ?",
            (2,),
        )
        .await
        .unwrap();
    rows.sort();
    assert_eq!(rows, [(5, -3, Some(4)), (12, 8, None), (13, 8, Some(3))]);
    let none: Vec<(i64, i32, Option<i32>)> = conn
        .exec(
            "SELECT order_id, user_id, amount FROM t_order WHERE amount > ?",
            (100,),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_insert_puts_each_executions_row_on_its_node() {
    let (db, mut conn) = orders_db().await;
    let stmt = conn
        .prep("INSERT INTO t_order (order_id, user_id, amount) VALUES (?, ?, ?)")
        .await
        .unwrap();
    for (order, user) in [(12i64, 7i32), (12, 8), (13, 8), (5, -3)] {
        conn.exec_drop(&stmt, (order, user, 1)).await.unwrap();
        assert_eq!(conn.affected_rows(), 1);
    }
    let node = |i: usize, t: &'static str| {
        let db = &db;
        async move {
            db.mysql_direct_query::<(i64, i32)>(i, &format!("SELECT order_id, user_id FROM {t}"))
                .await
        }
    };
    assert_eq!(node(0, "t_order_0").await, [(12, 8)]);
    assert_eq!(node(0, "t_order_1").await, [(13, 8)]);
    assert_eq!(node(1, "t_order_0").await, [(12, 7)]);
    assert_eq!(node(1, "t_order_1").await, [(5, -3)]);

    // Without the key column: a generated order_id, reported as last-insert-id.
    conn.exec_drop(
        "INSERT INTO t_order (user_id, amount) VALUES (?, ?)",
        (9, 1),
    )
    .await
    .unwrap();
    let id = conn.last_insert_id().expect("generated key") as i64;
    let table = if id % 2 == 0 {
        "t_order_0"
    } else {
        "t_order_1"
    };
    assert!(node(1, table).await.contains(&(id, 9)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_updates_and_deletes_route_by_their_parameters() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, 1), (13, 8, 1)",
    )
    .await
    .unwrap();
    conn.exec_drop("UPDATE t_order SET amount = ? WHERE user_id = ?", (5, 8))
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    conn.exec_drop(
        "DELETE FROM t_order WHERE user_id = ? AND order_id = ?",
        (7, 12),
    )
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    let ds0: Vec<i32> = db
        .mysql_direct_query(
            0,
            "SELECT amount FROM t_order_0 UNION ALL SELECT amount FROM t_order_1",
        )
        .await;
    assert_eq!(ds0, [5, 5]);
    let ds1: Vec<i32> = db
        .mysql_direct_query(
            1,
            "SELECT amount FROM t_order_0 UNION ALL SELECT amount FROM t_order_1",
        )
        .await;
    assert!(ds1.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_on_unsharded_tables_are_prepared_as_before() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("CREATE TABLE t_note (id INT PRIMARY KEY, body TEXT)")
        .await
        .unwrap();
    conn.exec_drop(
        "INSERT INTO t_note VALUES (?, ?)",
        (1, "on the default data source"),
    )
    .await
    .unwrap();
    let body: Option<String> = conn
        .exec_first("SELECT body FROM t_note WHERE id = ?", (1,))
        .await
        .unwrap();
    assert_eq!(body.as_deref(), Some("on the default data source"));
    let on_ds0: Vec<i32> = db.mysql_direct_query(0, "SELECT id FROM t_note").await;
    assert_eq!(on_ds0, [1]);
}

/// COM_STMT_PREPARE over a raw connection (classic EOFs): the statement id.
async fn raw_prepare(c: &mut RawClient, sql: &str) -> u32 {
    c.write_packet(0, &[&[0x16u8][..], sql.as_bytes()].concat())
        .await;
    let (_, ok) = c.read_packet().await.unwrap();
    assert_eq!(ok[0], 0, "prepare failed: {:?}", err_code(&ok));
    let columns = u16::from_le_bytes([ok[5], ok[6]]) as usize;
    let params = u16::from_le_bytes([ok[7], ok[8]]) as usize;
    let follow = |n: usize| if n > 0 { n + 1 } else { 0 };
    for _ in 0..follow(params) + follow(columns) {
        c.read_packet().await.unwrap();
    }
    u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_data_is_folded_into_a_sharded_insert() {
    let (db, _conn) = orders_db().await;
    let mut c = RawClient::login(db.proxy.mysql_port(), APP_USER, APP_PASSWORD, &db.logical).await;
    let id = raw_prepare(
        &mut c,
        "INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES (?, ?, ?, ?)",
    )
    .await;
    for chunk in [&b"long-"[..], b"data"] {
        // COM_STMT_SEND_LONG_DATA for parameter 3 (sku); no response.
        let mut p = vec![0x18];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&3u16.to_le_bytes());
        p.extend_from_slice(chunk);
        c.write_packet(0, &p).await;
    }
    // Types: LONGLONG x3, VAR_STRING; values of parameters 0..2 only.
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(0);
    exec.extend_from_slice(&1u32.to_le_bytes());
    exec.push(0);
    exec.push(1);
    exec.extend_from_slice(&[0x08, 0, 0x08, 0, 0x08, 0, 0xFD, 0]);
    for v in [1i64, 13, 7] {
        exec.extend_from_slice(&v.to_le_bytes());
    }
    let reply = c.command(&exec).await;
    assert_eq!(reply[0].1[0], 0x00, "{:?}", err_code(&reply[0].1));
    let rows: Vec<(i64, String)> = db
        .mysql_direct_query(1, "SELECT item_id, sku FROM t_order_item_1")
        .await;
    assert_eq!(rows, [(1, "long-data".to_string())]);

    // A SELECT over every node keeps its placeholders: each node's statement gets the
    // long data before its execute.
    let id = raw_prepare(&mut c, "SELECT item_id FROM t_order_item WHERE sku = ?").await;
    let mut p = vec![0x18];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(b"long-data");
    c.write_packet(0, &p).await;
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(0);
    exec.extend_from_slice(&1u32.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0xFD, 0]);
    let reply = c.command(&exec).await;
    // Column count, definition, EOF, one row, EOF.
    assert_eq!(reply.len(), 5, "{reply:?}");
    assert_eq!(reply[3].1, [0x00, 0x00, 1, 0, 0, 0, 0, 0, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_request_on_a_sharded_select_gets_the_rows_directly() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 7, 1), (2, 8, 2)")
        .await
        .unwrap();
    let mut c = RawClient::login(db.proxy.mysql_port(), APP_USER, APP_PASSWORD, &db.logical).await;
    let id = raw_prepare(&mut c, "SELECT order_id FROM t_order").await;
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(0x01); // CURSOR_TYPE_READ_ONLY
    exec.extend_from_slice(&1u32.to_le_bytes());
    let reply = c.command(&exec).await;
    // Column count, definition, EOF, two binary rows, EOF; sequence ids 1, 2, 3, ...
    assert_eq!(reply.len(), 6, "{reply:?}");
    let seqs: Vec<u8> = reply.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let eof_status = u16::from_le_bytes([reply[5].1[3], reply[5].1[4]]);
    assert_eq!(eof_status & 0x0040, 0, "no cursor");
    // The statement keeps working afterwards.
    let again = c.command(&exec).await;
    assert_eq!(again.len(), 6);
}

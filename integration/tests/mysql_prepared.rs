//! Server-side prepared statements through dbmesh: ids it assigns, many executions, closing,
//! many statements at once, statements without parameters or columns, large parameters
//! (inline and via COM_STMT_SEND_LONG_DATA) and cursors (COM_STMT_FETCH).

use dbmesh_integration::{
    err_code, mysql_config, server_error, MysqlDatabase, Proxy, RawClient, APP_PASSWORD, APP_USER,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn setup(prefix: &str) -> (MysqlDatabase, Proxy, Conn, Conn) {
    let db = MysqlDatabase::create(prefix);
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .unwrap();
    let proxied = Conn::new(proxy.app_opts("shop")).await.unwrap();
    (db, proxy, direct, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_statement_executes_many_times_with_fresh_parameters() {
    let (_db, _proxy, mut direct, mut proxied) = setup("ps_many").await;
    let insert = proxied
        .prep("INSERT INTO t (id, b) VALUES (?, ?)")
        .await
        .unwrap();
    for i in 0..500 {
        proxied
            .exec_drop(&insert, (i, format!("row {i}").into_bytes()))
            .await
            .unwrap();
    }
    let select = proxied.prep("SELECT b FROM t WHERE id = ?").await.unwrap();
    for i in (0..500).step_by(7) {
        let b: Option<Vec<u8>> = proxied.exec_first(&select, (i,)).await.unwrap();
        assert_eq!(b, Some(format!("row {i}").into_bytes()));
    }
    let n: Option<i64> = direct.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executing_a_closed_statement_fails_with_1243_like_direct() {
    let (_db, _proxy, mut direct, mut proxied) = setup("ps_close").await;
    let mut messages = Vec::new();
    for conn in [&mut proxied, &mut direct] {
        let stmt = conn.prep("SELECT ?").await.unwrap();
        let one: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
        assert_eq!(one, Some(1));
        conn.close(stmt.clone()).await.unwrap();
        let (code, state, message) = server_error(conn.exec_drop(&stmt, (1,)).await);
        assert_eq!((code, state.as_str()), (1243, "HY000"));
        messages.push(message.replace(&stmt.id().to_string(), "ID"));
        // The connection is fine afterwards.
        let two: Option<i64> = conn.exec_first("SELECT ? + 1", (1,)).await.unwrap();
        assert_eq!(two, Some(2));
    }
    assert_eq!(messages[0], messages[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_statements_can_be_open_at_once() {
    let (_db, proxy, _direct, _proxied) = setup("ps_open").await;
    // mysql_async closes statements evicted from its cache (32 by default): keep them all.
    let opts = mysql_async::OptsBuilder::from_opts(proxy.app_opts("shop")).stmt_cache_size(400);
    let mut proxied = Conn::new(opts).await.unwrap();
    let mut statements = Vec::new();
    for i in 0..300 {
        statements.push(proxied.prep(format!("SELECT {i} + ?")).await.unwrap());
    }
    let ids: std::collections::HashSet<u32> = statements.iter().map(|s| s.id()).collect();
    assert_eq!(
        ids.len(),
        statements.len(),
        "every statement has its own id"
    );
    for (i, stmt) in statements.iter().enumerate().rev() {
        let v: Option<i64> = proxied.exec_first(stmt, (1000,)).await.unwrap();
        assert_eq!(v, Some(i as i64 + 1000));
    }
    for stmt in statements {
        proxied.close(stmt).await.unwrap();
    }
    let v: Option<i64> = proxied.exec_first("SELECT ?", (7,)).await.unwrap();
    assert_eq!(v, Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_without_parameters_or_columns_executes() {
    let (_db, _proxy, _direct, mut proxied) = setup("ps_do").await;
    let stmt = proxied.prep("DO 1").await.unwrap();
    assert_eq!((stmt.num_params(), stmt.num_columns()), (0, 0));
    for _ in 0..3 {
        proxied.exec_drop(&stmt, ()).await.unwrap();
    }
    let insert = proxied.prep("INSERT INTO t (id) VALUES (1)").await.unwrap();
    proxied.exec_drop(&insert, ()).await.unwrap();
    assert_eq!(proxied.affected_rows(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_megabyte_blob_parameter_round_trips() {
    let (_db, _proxy, mut direct, mut proxied) = setup("ps_blob").await;
    let blob: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    proxied
        .exec_drop("INSERT INTO t VALUES (?, ?)", (1, blob.clone()))
        .await
        .unwrap();
    let back: Option<Vec<u8>> = proxied
        .exec_first("SELECT b FROM t WHERE id = ?", (1,))
        .await
        .unwrap();
    assert!(back.as_ref() == Some(&blob), "binary protocol round trip");
    let text: Option<Vec<u8>> = proxied
        .query_first("SELECT b FROM t WHERE id = 1")
        .await
        .unwrap();
    assert!(text.as_ref() == Some(&blob), "text protocol round trip");
    let stored: Option<Vec<u8>> = direct
        .query_first("SELECT b FROM t WHERE id = 1")
        .await
        .unwrap();
    assert!(stored.as_ref() == Some(&blob), "stored as sent");
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
async fn long_data_parameter_sent_in_chunks_is_stored_whole() {
    let (_db, proxy, mut direct, _proxied) = setup("ps_long").await;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    let id = raw_prepare(&mut c, "INSERT INTO t (id, b) VALUES (?, ?)").await;
    let blob: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    for chunk in blob.chunks(512 * 1024) {
        // COM_STMT_SEND_LONG_DATA: statement id, parameter 1, data. No response.
        let mut p = vec![0x18];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes());
        p.extend_from_slice(chunk);
        c.write_packet(0, &p).await;
    }
    // COM_STMT_EXECUTE: no cursor, 1 iteration, null bitmap, types bound (LONG, BLOB), and
    // only the value of parameter 0: parameter 1 came as long data.
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(0);
    exec.extend_from_slice(&1u32.to_le_bytes());
    exec.push(0);
    exec.push(1);
    exec.extend_from_slice(&[0x03, 0x00, 0xFC, 0x00]);
    exec.extend_from_slice(&7i32.to_le_bytes());
    let reply = c.command(&exec).await;
    assert_eq!(reply[0].1[0], 0x00, "{:?}", err_code(&reply[0].1));

    let stored: Option<Vec<u8>> = direct
        .query_first("SELECT b FROM t WHERE id = 7")
        .await
        .unwrap();
    assert!(
        stored.as_ref() == Some(&blob),
        "long data arrived whole and in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_rows_are_fetched_in_batches() {
    let (_db, proxy, _direct, _proxied) = setup("ps_cursor").await;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    let id = raw_prepare(&mut c, "SELECT seq FROM seq_1_to_10").await;
    // COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY: column count, definition, EOF, no rows.
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(0x01);
    exec.extend_from_slice(&1u32.to_le_bytes());
    c.write_packet(0, &exec).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(c.read_packet().await.unwrap().1);
    }
    assert_eq!(got[0], vec![1]);
    let status = u16::from_le_bytes([got[2][3], got[2][4]]);
    assert_ne!(status & 0x0040, 0, "SERVER_STATUS_CURSOR_EXISTS");

    let mut rows = 0;
    let mut last = false;
    while !last {
        // COM_STMT_FETCH 4 rows at a time: rows, then an EOF (LAST_ROW_SENT at the end).
        let mut fetch = vec![0x1C];
        fetch.extend_from_slice(&id.to_le_bytes());
        fetch.extend_from_slice(&4u32.to_le_bytes());
        c.write_packet(0, &fetch).await;
        loop {
            let (_, p) = c.read_packet().await.unwrap();
            assert_ne!(p[0], 0xFF, "{:?}", err_code(&p));
            if p[0] == 0xFE && p.len() < 9 {
                last = u16::from_le_bytes([p[3], p[4]]) & 0x0080 != 0;
                break;
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 10);
    // The connection is at a command boundary again.
    let reply = c.command(b"\x03SELECT 1").await;
    assert_eq!(reply[0].1, vec![1]);
}

//! Transactions over the data sources of a sharded MySQL database, with local semantics:
//! BEGIN reaches each data source before its first statement, COMMIT and ROLLBACK reach
//! every one, savepoints follow data sources that join later, `autocommit = 0` sessions
//! commit everywhere, and a data source whose commit fails is named while the others
//! still commit. What is committed is read from the data nodes directly.

use dbmesh_integration::{RawClient, ShardedDb, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES};
use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

async fn orders_db() -> (ShardedDb, Conn) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        conn.query_drop(ddl).await.unwrap();
    }
    (db, conn)
}

/// Committed `user_id`s of t_order on `ds_<i>`, read directly.
async fn committed_users(db: &ShardedDb, i: usize) -> Vec<i32> {
    db.mysql_direct_query(
        i,
        "SELECT user_id FROM t_order_0 UNION ALL SELECT user_id FROM t_order_1 ORDER BY 1",
    )
    .await
}

/// Inserts an order of `user` (ds_0 for even users, ds_1 for odd).
async fn order(conn: &mut Conn, order_id: i64, user: i32) {
    conn.query_drop(format!(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES ({order_id}, {user}, 1)"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_transaction_commits_on_every_data_source() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("BEGIN").await.unwrap();
    order(&mut conn, 1, 7).await;
    order(&mut conn, 2, 8).await;
    let mut inside: Vec<i32> = conn.query("SELECT user_id FROM t_order").await.unwrap();
    inside.sort();
    assert_eq!(inside, [7, 8], "the transaction sees its own rows");
    assert!(committed_users(&db, 0).await.is_empty());
    assert!(committed_users(&db, 1).await.is_empty());
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(committed_users(&db, 0).await, [8]);
    assert_eq!(committed_users(&db, 1).await, [7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_transaction_rolls_back_on_every_data_source() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("START TRANSACTION").await.unwrap();
    order(&mut conn, 1, 7).await;
    order(&mut conn, 2, 8).await;
    conn.query_drop("UPDATE t_order SET amount = 5")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    conn.query_drop("ROLLBACK").await.unwrap();
    assert!(committed_users(&db, 0).await.is_empty());
    assert!(committed_users(&db, 1).await.is_empty());
    let seen: Vec<i32> = conn.query("SELECT user_id FROM t_order").await.unwrap();
    assert!(seen.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_transactions_with_prepared_statements_span_data_sources() {
    let (db, mut conn) = orders_db().await;
    let mut tx = conn.start_transaction(TxOpts::default()).await.unwrap();
    let insert = "INSERT INTO t_order (order_id, user_id, amount) VALUES (?, ?, ?)";
    tx.exec_drop(insert, (1i64, 7i32, 1i32)).await.unwrap();
    tx.exec_drop(insert, (2i64, 8i32, 1i32)).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = conn.start_transaction(TxOpts::default()).await.unwrap();
    tx.exec_drop(insert, (3i64, 9i32, 1i32)).await.unwrap();
    tx.exec_drop(insert, (4i64, 10i32, 1i32)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(committed_users(&db, 0).await, [10]);
    assert_eq!(committed_users(&db, 1).await, [9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_a_savepoint_reaches_data_sources_that_joined_after_it() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("BEGIN").await.unwrap();
    order(&mut conn, 1, 7).await;
    conn.query_drop("SAVEPOINT before_ds0").await.unwrap();
    // ds_0 joins the transaction only now; it must still know the savepoint.
    order(&mut conn, 2, 8).await;
    order(&mut conn, 3, 9).await;
    conn.query_drop("ROLLBACK TO SAVEPOINT before_ds0")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    assert!(committed_users(&db, 0).await.is_empty());
    assert_eq!(committed_users(&db, 1).await, [7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_off_commits_and_rolls_back_every_held_data_source() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("SET autocommit = 0").await.unwrap();
    order(&mut conn, 1, 7).await;
    order(&mut conn, 2, 8).await;
    assert!(committed_users(&db, 0).await.is_empty());
    assert!(committed_users(&db, 1).await.is_empty());
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(committed_users(&db, 0).await, [8]);
    assert_eq!(committed_users(&db, 1).await, [7]);
    order(&mut conn, 3, 9).await;
    order(&mut conn, 4, 10).await;
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(committed_users(&db, 0).await, [8]);
    assert_eq!(committed_users(&db, 1).await, [7]);
    // Back to autocommit: both data sources follow at once.
    conn.query_drop("SET autocommit = 1").await.unwrap();
    order(&mut conn, 5, 11).await;
    order(&mut conn, 6, 12).await;
    assert_eq!(committed_users(&db, 0).await, [8, 12]);
    assert_eq!(committed_users(&db, 1).await, [7, 11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_transactions_are_read_only_on_each_data_source() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    let read: Vec<i32> = conn.query("SELECT user_id FROM t_order").await.unwrap();
    assert!(read.is_empty());
    let err = conn
        .query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 7, 1)")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1792),
        "{err:?}"
    );
    conn.query_drop("ROLLBACK").await.unwrap();
    order(&mut conn, 1, 7).await;
    assert_eq!(committed_users(&db, 1).await, [7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_flags_report_the_transaction_dbmesh_holds_open() {
    let (db, conn) = orders_db().await;
    drop(conn.disconnect().await);
    let mut raw =
        RawClient::login(db.proxy.mysql_port(), APP_USER, APP_PASSWORD, &db.logical).await;
    const IN_TRANS: u16 = 0x0001;
    let status = |packets: &[(u8, Vec<u8>)]| {
        let ok = &packets.last().unwrap().1;
        assert_eq!(ok[0], 0x00, "{ok:?}");
        u16::from_le_bytes([ok[3], ok[4]])
    };
    let begun = raw.command(b"\x03BEGIN").await;
    assert_ne!(
        status(&begun) & IN_TRANS,
        0,
        "BEGIN answers in a transaction"
    );
    let wrote = raw
        .command(b"\x03INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 7, 1), (2, 8, 1)")
        .await;
    assert_ne!(status(&wrote) & IN_TRANS, 0);
    let done = raw.command(b"\x03COMMIT").await;
    assert_eq!(status(&done) & IN_TRANS, 0);
    assert_eq!(committed_users(&db, 0).await, [8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_names_its_data_source_and_the_others_still_commit() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("BEGIN").await.unwrap();
    order(&mut conn, 1, 7).await;
    order(&mut conn, 2, 8).await;
    // The DBA kills dbmesh's connection to ds_1 in the middle of the transaction.
    let ds1 = match &db.shards {
        dbmesh_integration::Shards::Mysql(dbs) => dbs[1].name.clone(),
        _ => unreachable!(),
    };
    let ids: Vec<u64> = db
        .mysql_direct_query(
            0,
            &format!("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{ds1}'"),
        )
        .await;
    assert_eq!(ids.len(), 1, "one connection of dbmesh's to ds_1");
    db.mysql_direct_query::<u64>(0, &format!("KILL {}", ids[0]))
        .await;
    let err = conn.query_drop("COMMIT").await.unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("ds_1"), "{text}");
    assert_eq!(committed_users(&db, 0).await, [8], "ds_0 committed");
    assert!(committed_users(&db, 1).await.is_empty());
    // The session goes on, with a new connection to ds_1.
    order(&mut conn, 3, 9).await;
    assert_eq!(committed_users(&db, 1).await, [9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_inside_a_transaction_commits_it_as_mysql_does() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("BEGIN").await.unwrap();
    order(&mut conn, 1, 7).await;
    conn.query_drop("CREATE INDEX idx_amount ON t_order (amount)")
        .await
        .unwrap();
    assert_eq!(committed_users(&db, 1).await, [7], "the DDL committed");
    // The transaction is over: this row autocommits, and ROLLBACK has nothing to undo.
    order(&mut conn, 2, 8).await;
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(committed_users(&db, 0).await, [8]);
    for i in 0..2 {
        // One index per actual table, named after it.
        let indexes: Vec<String> = db
            .mysql_direct_query(i, "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME LIKE 'idx_amount%' ORDER BY 1")
            .await;
        assert_eq!(
            indexes,
            ["idx_amount_t_order_0", "idx_amount_t_order_1"],
            "ds_{i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_on_one_data_source_commits_the_transaction_on_all() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("BEGIN").await.unwrap();
    order(&mut conn, 1, 7).await;
    // A single table: the DDL runs on ds_0 only, yet ends the transaction on ds_1 too.
    conn.query_drop("CREATE TABLE t_note (id INT PRIMARY KEY)")
        .await
        .unwrap();
    assert_eq!(committed_users(&db, 1).await, [7]);
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(committed_users(&db, 1).await, [7]);
}

//! Transactions run on the backend connection the session holds: ROLLBACK undoes, COMMIT
//! makes rows visible to other connections, autocommit=0 works, and a client that leaves with
//! a transaction open neither commits it nor hands its state to the next client.

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

async fn setup(prefix: &str) -> (MysqlDatabase, Proxy, Conn, Conn) {
    let db = MysqlDatabase::create(prefix);
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .unwrap();
    let proxied = Conn::new(proxy.app_opts("shop")).await.unwrap();
    (db, proxy, direct, proxied)
}

/// Committed rows, seen from a connection of its own.
async fn committed_ids(direct: &mut Conn) -> Vec<i32> {
    direct.query("SELECT id FROM t ORDER BY id").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_undoes_and_commit_publishes() {
    let (_db, _proxy, mut direct, mut proxied) = setup("txn").await;
    proxied.query_drop("BEGIN").await.unwrap();
    proxied
        .query_drop("INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    // Inside the transaction the row is visible to the session only.
    let inside: Vec<i32> = proxied.query("SELECT id FROM t").await.unwrap();
    assert_eq!(inside, vec![1]);
    assert_eq!(committed_ids(&mut direct).await, Vec::<i32>::new());
    proxied.query_drop("ROLLBACK").await.unwrap();
    let after: Vec<i32> = proxied.query("SELECT id FROM t").await.unwrap();
    assert!(after.is_empty());

    proxied.query_drop("BEGIN").await.unwrap();
    proxied
        .query_drop("INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    assert_eq!(committed_ids(&mut direct).await, Vec::<i32>::new());
    proxied.query_drop("COMMIT").await.unwrap();
    assert_eq!(committed_ids(&mut direct).await, vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_transactions_with_prepared_statements_commit_and_roll_back() {
    let (_db, _proxy, mut direct, mut proxied) = setup("txn_api").await;
    let mut tx = proxied.start_transaction(TxOpts::default()).await.unwrap();
    tx.exec_drop("INSERT INTO t VALUES (?)", (10,))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = proxied.start_transaction(TxOpts::default()).await.unwrap();
    tx.exec_drop("INSERT INTO t VALUES (?)", (11,))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(committed_ids(&mut direct).await, vec![11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_off_keeps_a_transaction_open_until_commit() {
    let (_db, _proxy, mut direct, mut proxied) = setup("txn_ac").await;
    proxied.query_drop("SET autocommit = 0").await.unwrap();
    proxied
        .query_drop("INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    assert_eq!(committed_ids(&mut direct).await, Vec::<i32>::new());
    proxied.query_drop("COMMIT").await.unwrap();
    assert_eq!(committed_ids(&mut direct).await, vec![1]);
    // Still autocommit = 0: the next statement opens a new transaction.
    proxied
        .query_drop("INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    proxied.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(committed_ids(&mut direct).await, vec![1]);
    let ac: Option<i64> = proxied.query_first("SELECT @@autocommit").await.unwrap();
    assert_eq!(ac, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_mid_transaction_rolls_back_and_the_next_client_starts_clean() {
    let db = MysqlDatabase::create("txn_leave");
    // One backend connection, so the second client surely reuses the first one's.
    let config =
        mysql_config("shop", &db.url(), "").replace("max_connections = 64", "max_connections = 1");
    let proxy = Proxy::start(&config).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .unwrap();

    let mut first = Conn::new(proxy.app_opts("shop")).await.unwrap();
    first.query_drop("SET autocommit = 0").await.unwrap();
    first.query_drop("SET @leftover = 'first'").await.unwrap();
    first.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    first.disconnect().await.unwrap();

    let mut second = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let state: Option<(i64, Option<String>, i64)> = second
        .query_first("SELECT @@autocommit, @leftover, (SELECT COUNT(*) FROM t)")
        .await
        .unwrap();
    assert_eq!(state, Some((1, None, 0)));
    assert_eq!(committed_ids(&mut direct).await, Vec::<i32>::new());
}

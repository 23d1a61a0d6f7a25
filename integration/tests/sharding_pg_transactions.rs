//! Transactions on a sharded PostgreSQL database: local transactions over both data
//! sources (committed, rolled back, failed, with savepoints and BEGIN options), a COMMIT
//! that fails on one data source, and cancelling a statement running on several.

use std::time::{Duration, Instant};

use dbmesh_integration::{pg_sqlstate, ShardedDb};
use tokio_postgres::{Client, NoTls};

async fn count_on(db: &ShardedDb, i: usize) -> i64 {
    let rows = db
        .pg_direct_query(
            i,
            "SELECT (SELECT count(*) FROM t_order_0) + (SELECT count(*) FROM t_order_1)",
        )
        .await;
    rows[0].get(0)
}

async fn exec(client: &Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_over_both_data_sources_commits_everywhere_at_commit() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    exec(&client, "BEGIN").await;
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0)",
    )
    .await;
    client
        .execute(
            "INSERT INTO t_order (order_id, user_id) VALUES ($1, $2)",
            &[&2i64, &1i32],
        )
        .await
        .unwrap();
    // Inside the transaction its rows are visible through dbmesh, not yet to others.
    let inside = client
        .query("SELECT order_id FROM t_order", &[])
        .await
        .unwrap();
    assert_eq!(inside.len(), 2);
    assert_eq!((count_on(&db, 0).await, count_on(&db, 1).await), (0, 0));
    exec(&client, "COMMIT").await;
    assert_eq!((count_on(&db, 0).await, count_on(&db, 1).await), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_leaves_no_row_on_any_data_source() {
    let db = ShardedDb::pg_orders().await;
    let mut client = db.pg_client().await;
    let txn = client.transaction().await.unwrap();
    txn.execute(
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1), (3, 1)",
        &[],
    )
    .await
    .unwrap();
    txn.execute("INSERT INTO t_province (id, name) VALUES (1, 'x')", &[])
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!((count_on(&db, 0).await, count_on(&db, 1).await), (0, 0));
    for i in 0..2 {
        let n: i64 = db
            .pg_direct_query(i, "SELECT count(*) FROM t_province")
            .await[0]
            .get(0);
        assert_eq!(n, 0, "ds_{i}");
    }
    // The connection is clean afterwards.
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (4, 1)",
    )
    .await;
    assert_eq!(count_on(&db, 1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_error_a_transaction_refuses_statements_and_commit_rolls_back() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    exec(
        &client,
        "BEGIN; INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)",
    )
    .await;
    let e = client
        .simple_query("SELECT 1 / 0 FROM t_order")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22012");
    let e = client
        .simple_query("INSERT INTO t_order (order_id, user_id) VALUES (3, 1)")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "25P02");
    let e = client
        .query("SELECT order_id FROM t_order WHERE user_id = $1", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "25P02");
    exec(&client, "COMMIT").await;
    assert_eq!((count_on(&db, 0).await, count_on(&db, 1).await), (0, 0));
    // Out of the transaction: statements run again.
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (5, 1)",
    )
    .await;
    assert_eq!(count_on(&db, 1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_apply_to_data_sources_that_join_after_them() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    exec(
        &client,
        "BEGIN; \
         INSERT INTO t_order (order_id, user_id) VALUES (1, 0); \
         SAVEPOINT a; \
         INSERT INTO t_order (order_id, user_id) VALUES (2, 1); \
         INSERT INTO t_order (order_id, user_id) VALUES (3, 0)",
    )
    .await;
    // ds_1 joined after SAVEPOINT a, which was replayed there: ROLLBACK TO works on both.
    exec(&client, "ROLLBACK TO SAVEPOINT a").await;
    // An error, then ROLLBACK TO recovers the transaction.
    exec(&client, "SAVEPOINT b").await;
    let e = client
        .simple_query("INSERT INTO t_order (order_id, user_id) VALUES (1, 0)")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "23505");
    exec(&client, "ROLLBACK TO b; RELEASE a").await;
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (4, 1)",
    )
    .await;
    exec(&client, "COMMIT").await;
    let ids: Vec<i64> = client
        .query("SELECT order_id FROM t_order", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, [1, 4]);
    let e = client.simple_query("SAVEPOINT c").await.unwrap_err();
    assert_eq!(
        pg_sqlstate(&e),
        "25P01",
        "outside a transaction, as PostgreSQL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_options_reach_every_data_source_that_joins() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)",
    )
    .await;
    exec(&client, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    let rows = client
        .query(
            "SELECT current_setting('transaction_isolation') FROM t_order",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r.get::<_, String>(0), "repeatable read");
    }
    exec(&client, "COMMIT").await;
    // SET TRANSACTION before the first statement reaches every data source too.
    exec(
        &client,
        "BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    )
    .await;
    let rows = client
        .query(
            "SELECT current_setting('transaction_isolation') FROM t_order",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r.get::<_, String>(0), "serializable");
    }
    exec(&client, "ROLLBACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_failing_on_one_data_source_names_it_and_the_others_commit() {
    let db = ShardedDb::pg_orders().await;
    // A deferred constraint on ds_1 only: it fails there at COMMIT.
    db.pg_direct_client(1)
        .await
        .batch_execute(
            "ALTER TABLE t_order_1 ADD CONSTRAINT one_amount UNIQUE (amount) DEFERRABLE INITIALLY DEFERRED",
        )
        .await
        .unwrap();
    let client = db.pg_client().await;
    exec(
        &client,
        "BEGIN; INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 0, 7), (1, 1, 7), (3, 1, 7)",
    )
    .await;
    let e = client.simple_query("COMMIT").await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "23505");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(message.contains("ds_1"), "{message}");
    assert_eq!((count_on(&db, 0).await, count_on(&db, 1).await), (1, 0));
    // The session is out of the transaction and usable.
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (5, 1)",
    )
    .await;
    assert_eq!(count_on(&db, 1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_statement_running_on_several_data_sources() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    exec(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)",
    )
    .await;
    let token = client.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    let e = client
        .simple_query("SELECT pg_sleep(20) FROM t_order")
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(pg_sqlstate(&e), "57014");
    assert!(started.elapsed() < Duration::from_secs(10));
    let rows = client
        .query("SELECT order_id FROM t_order", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
}

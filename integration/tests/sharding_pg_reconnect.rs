//! Backend connections of a sharded PostgreSQL session that the server closes: while the
//! client is idle outside a transaction nothing is lost (new connections, SETs replayed,
//! passthrough statements prepared again); inside a transaction the session ends with
//! FATAL 08006 naming the data source.

use dbmesh_integration::{pg_sqlstate, pg_terminate_backends, ShardedDb, Shards};

fn physical_names(db: &ShardedDb) -> Vec<String> {
    match &db.shards {
        Shards::Postgres(dbs) => dbs.iter().map(|d| d.name.clone()).collect(),
        Shards::Mysql(_) => unreachable!("a PostgreSQL sharded database"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_while_idle_are_replaced_without_the_client_noticing() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    client
        .batch_execute(
            "CREATE TABLE t_plain (id INT PRIMARY KEY); \
             INSERT INTO t_plain VALUES (1), (2); \
             INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1); \
             SET application_name = 'survivor'",
        )
        .await
        .unwrap();
    let plain = client
        .prepare("SELECT id FROM t_plain WHERE id = $1")
        .await
        .unwrap();
    let sharded = client
        .prepare("SELECT current_setting('application_name') FROM t_order WHERE user_id = $1")
        .await
        .unwrap();
    assert_eq!(client.query(&sharded, &[&1i32]).await.unwrap().len(), 1);
    for name in physical_names(&db) {
        assert!(pg_terminate_backends(&name).await >= 1, "{name}");
    }
    // The passthrough statement is prepared again on the new default connection.
    let row = client.query_one(&plain, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    // The SET is replayed on the new connections.
    for user_id in [0i32, 1] {
        let row = client.query_one(&sharded, &[&user_id]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "survivor");
    }
    let rows = client
        .simple_query("SELECT order_id FROM t_order")
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        4,
        "RowDescription, two rows, CommandComplete: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_inside_a_transaction_ends_the_session() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    client
        .batch_execute("BEGIN; INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)")
        .await
        .unwrap();
    let names = physical_names(&db);
    assert!(pg_terminate_backends(&names[1]).await >= 1);
    let e = client
        .simple_query("SELECT order_id FROM t_order")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "08006");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(message.contains("ds_1"), "{message}");
    assert!(client.is_closed() || client.simple_query("SELECT 1").await.is_err());
    // Nothing of the transaction was committed.
    for i in 0..2 {
        let n: i64 = db
            .pg_direct_query(
                i,
                "SELECT (SELECT count(*) FROM t_order_0) + (SELECT count(*) FROM t_order_1)",
            )
            .await[0]
            .get(0);
        assert_eq!(n, 0, "ds_{i}");
    }
}

//! The extended query protocol on a sharded PostgreSQL database, through tokio-postgres:
//! prepared statements routed anew by each execution's parameters (sent in binary),
//! unnamed statements with a described portal, statements on single tables passed through
//! to the default data source, pipelining, and errors that skip to Sync.

use dbmesh_integration::{pg_sqlstate, ShardedDb};
use tokio_postgres::types::Type;

/// The order ids in actual table `table` of data source `ds_<i>`, sorted.
async fn ids_on(db: &ShardedDb, i: usize, table: &str) -> Vec<i64> {
    db.pg_direct_query(
        i,
        &format!("SELECT order_id FROM {table} ORDER BY order_id"),
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_are_routed_by_each_executions_parameters() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let insert = client
        .prepare("INSERT INTO t_order (order_id, user_id, amount, note) VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        [Type::INT8, Type::INT4, Type::INT4, Type::TEXT]
    );
    for (order_id, user_id) in [(1i64, 0i32), (2, 0), (3, 1), (4, 1)] {
        let n = client
            .execute(
                &insert,
                &[
                    &order_id,
                    &user_id,
                    &(order_id as i32 * 10),
                    &format!("n{order_id}"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    assert_eq!(ids_on(&db, 0, "t_order_0").await, [2]);
    assert_eq!(ids_on(&db, 0, "t_order_1").await, [1]);
    assert_eq!(ids_on(&db, 1, "t_order_0").await, [4]);
    assert_eq!(ids_on(&db, 1, "t_order_1").await, [3]);

    let select = client
        .prepare("SELECT amount, note FROM t_order WHERE user_id = $1 AND order_id = $2")
        .await
        .unwrap();
    let names: Vec<&str> = select.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["amount", "note"]);
    for (order_id, user_id) in [(1i64, 0i32), (4, 1), (3, 1)] {
        let row = client
            .query_one(&select, &[&user_id, &order_id])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), order_id as i32 * 10);
        assert_eq!(row.get::<_, String>(1), format!("n{order_id}"));
    }
    // A text parameter in the condition, and a statement on every node.
    let rows = client
        .query(
            "SELECT order_id FROM t_order WHERE note = $1 OR amount > $2",
            &[&"n1", &35i32],
        )
        .await
        .unwrap();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort();
    assert_eq!(ids, [1, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_statements_with_a_described_portal_return_typed_rows() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    // query_typed: Parse (unnamed), Bind, Describe portal, Execute, Sync in one go.
    let n = client
        .query_typed(
            "INSERT INTO t_order (order_id, user_id, note) VALUES ($1, $2, $3), ($4, $5, $6)",
            &[
                (&10i64, Type::INT8),
                (&0i32, Type::INT4),
                (&"a", Type::TEXT),
                (&11i64, Type::INT8),
                (&1i32, Type::INT4),
                (&"b", Type::TEXT),
            ],
        )
        .await
        .unwrap();
    assert!(n.is_empty());
    let rows = client
        .query_typed(
            "SELECT order_id, note FROM t_order WHERE order_id >= $1",
            &[(&10i64, Type::INT8)],
        )
        .await
        .unwrap();
    let mut got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    assert_eq!(got, [(10, "a".to_string()), (11, "b".to_string())]);
    assert_eq!(ids_on(&db, 0, "t_order_0").await, [10]);
    assert_eq!(ids_on(&db, 1, "t_order_1").await, [11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_returning_generated_keys_through_a_prepared_statement() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let rows = client
        .query(
            "INSERT INTO t_order (user_id, amount) VALUES ($1, 1), ($2, 2), ($3, 3) RETURNING order_id, user_id",
            &[&0i32, &1i32, &2i32],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let (order_id, user_id): (i64, i32) = (r.get(0), r.get(1));
        let ds = (user_id % 2) as usize;
        let table = format!("t_order_{}", order_id % 2);
        assert!(
            ids_on(&db, ds, &table).await.contains(&order_id),
            "order {order_id} of user {user_id} should be in ds_{ds}.{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_on_single_tables_pass_through_to_the_default_data_source() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    client
        .batch_execute("CREATE TABLE t_plain (id INT PRIMARY KEY, label TEXT)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO t_plain (id, label) VALUES ($1, $2)")
        .await
        .unwrap();
    for i in 0..3 {
        client
            .execute(&insert, &[&i, &format!("l{i}")])
            .await
            .unwrap();
    }
    let rows = client
        .query(
            "SELECT label FROM t_plain WHERE id >= $1 ORDER BY id",
            &[&1i32],
        )
        .await
        .unwrap();
    let labels: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(labels, ["l1", "l2"]);
    let n: i64 = db.pg_direct_query(0, "SELECT count(*) FROM t_plain").await[0].get(0);
    assert_eq!(n, 3);
    // A failed Parse on the server does not disturb the statements it holds.
    let e = client
        .prepare("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42P01");
    client.execute(&insert, &[&9i32, &"nine"]).await.unwrap();
    let n: i64 = db.pg_direct_query(0, "SELECT count(*) FROM t_plain").await[0].get(0);
    assert_eq!(n, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_statements_on_sharded_and_single_tables_answer_in_order() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    client
        .batch_execute(
            "CREATE TABLE t_plain (id INT PRIMARY KEY); INSERT INTO t_plain VALUES (1), (2); \
             INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)",
        )
        .await
        .unwrap();
    let sharded = client
        .prepare("SELECT order_id FROM t_order WHERE user_id = $1")
        .await
        .unwrap();
    let plain = client
        .prepare("SELECT id FROM t_plain WHERE id = $1")
        .await
        .unwrap();
    // tokio-postgres pipelines concurrent requests on one connection.
    let (a, b, c, d) = tokio::join!(
        client.query(&plain, &[&1i32]),
        client.query(&sharded, &[&1i32]),
        client.query(&plain, &[&2i32]),
        client.query(&sharded, &[&0i32]),
    );
    assert_eq!(a.unwrap()[0].get::<_, i32>(0), 1);
    assert_eq!(b.unwrap()[0].get::<_, i64>(0), 2);
    assert_eq!(c.unwrap()[0].get::<_, i32>(0), 2);
    assert_eq!(d.unwrap()[0].get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_skip_to_sync_and_the_connection_stays_usable() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    client
        .batch_execute("INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)")
        .await
        .unwrap();
    // A backend error on one unit.
    let e = client
        .query("SELECT 10 / (order_id - $1) FROM t_order", &[&2i64])
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22012");
    // dbmesh's own errors at Parse and at Execute.
    let e = client
        .prepare("SELECT * FROM t_order WHERE")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42601");
    let e = client
        .execute(
            "UPDATE t_order SET user_id = $1 WHERE order_id = $2",
            &[&7i32, &1i64],
        )
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000");
    // Pipelined batches (each ends with its Sync): the failing one skips only itself.
    let failing = client
        .prepare("SELECT 1 / (order_id - $1) FROM t_order WHERE user_id = $2")
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        client.query(&failing, &[&5i64, &1i32]),
        client.query(&failing, &[&2i64, &1i32]),
        client.query(&failing, &[&5i64, &0i32]),
    );
    assert_eq!(a.unwrap().len(), 1);
    assert_eq!(pg_sqlstate(&b.unwrap_err()), "22012");
    assert_eq!(c.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_and_set_work_through_the_extended_protocol() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let rows = client
        .query("PREVIEW SELECT * FROM t_order WHERE user_id = 3", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, String>("data_source_name"), "ds_1");
    client
        .execute("SET application_name = 'sharded-ext'", &[])
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)")
        .await
        .unwrap();
    let rows = client
        .query(
            "SELECT current_setting('application_name') FROM t_order",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r.get::<_, String>(0), "sharded-ext");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_portals_of_sharded_statements_live_until_the_transaction_ends() {
    let db = ShardedDb::pg_orders().await;
    let mut client = db.pg_client().await;
    client
        .batch_execute(
            "INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 0), (3, 1), (4, 1)",
        )
        .await
        .unwrap();
    let txn = client.transaction().await.unwrap();
    let statement = txn
        .prepare("SELECT order_id FROM t_order WHERE order_id > $1")
        .await
        .unwrap();
    let portal = txn.bind(&statement, &[&1i64]).await.unwrap();
    // A row limit is not applied to a sharded statement: every row comes at once, then
    // the portal is exhausted.
    let first = txn.query_portal(&portal, 2).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = txn.query_portal(&portal, 2).await.unwrap();
    assert!(rest.is_empty());
    txn.commit().await.unwrap();
}

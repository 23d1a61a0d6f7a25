//! Simple Query on a sharded PostgreSQL database (`ORDERS_RULES`, two data sources):
//! PREVIEW, rows landing where the rules say (checked on each data source directly),
//! fan-out with concatenated results and summed counts, several statements in one Query,
//! and errors that leave the connection usable.

use dbmesh_integration::{pg_sqlstate, ShardedDb};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Rows (as text) and the CommandComplete counts of a simple query.
async fn simple(client: &Client, sql: &str) -> (Vec<Vec<Option<String>>>, Vec<u64>) {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(n) => counts.push(n),
            _ => {}
        }
    }
    (rows, counts)
}

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
async fn ddl_creates_every_actual_table_on_its_data_source() {
    let db = ShardedDb::pg_orders().await;
    for i in 0..2 {
        let tables: Vec<String> = db
            .pg_direct_query(
                i,
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' ORDER BY 1",
            )
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            tables,
            [
                "t_order_0",
                "t_order_1",
                "t_order_item_0",
                "t_order_item_1",
                "t_province"
            ],
            "ds_{i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_lists_data_sources_and_actual_sql_without_running_it() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let messages = client
        .simple_query("PREVIEW SELECT * FROM t_order WHERE user_id = 1 AND order_id = 3")
        .await
        .unwrap();
    let SimpleQueryMessage::Row(row) = &messages[1] else {
        panic!("expected a row: {messages:?}");
    };
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["data_source_name", "actual_sql"]);
    assert_eq!(row.get(0), Some("ds_1"));
    assert!(
        row.get(1).unwrap().contains("t_order_1"),
        "{:?}",
        row.get(1)
    );
    assert!(matches!(
        messages[2],
        SimpleQueryMessage::CommandComplete(1)
    ));

    let (rows, counts) = simple(&client, "PREVIEW SELECT * FROM t_order").await;
    assert_eq!(counts, [4]);
    let mut pairs: Vec<(String, String)> = rows
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    pairs.sort();
    assert_eq!(pairs[0].0, "ds_0");
    assert!(pairs[0].1.contains("t_order_0"));
    assert_eq!(pairs[3].0, "ds_1");
    assert!(pairs[3].1.contains("t_order_1"));
    // Nothing ran.
    assert!(ids_on(&db, 0, "t_order_0").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_land_on_the_node_the_rules_pick_and_multi_row_inserts_split() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let (_, counts) = simple(
        &client,
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 10, 1), (2, 10, 2), (3, 11, 3), (4, 11, 4), (6, 12, 6)",
    )
    .await;
    assert_eq!(counts, [5], "one INSERT tag with every row counted");
    // Database by user_id % 2, table by order_id % 2.
    assert_eq!(ids_on(&db, 0, "t_order_0").await, [2, 6]);
    assert_eq!(ids_on(&db, 0, "t_order_1").await, [1]);
    assert_eq!(ids_on(&db, 1, "t_order_0").await, [4]);
    assert_eq!(ids_on(&db, 1, "t_order_1").await, [3]);
}

/// `INSERT INTO t VALUES (...)` without a column list: dbmesh reads the table's columns
/// from its first actual table (in ordinal order) to find the sharding values, in a simple
/// query and a prepared statement, and reads them again when the table changed (through
/// dbmesh, or behind its back on every actual table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_without_a_column_list_routes_by_the_tables_columns() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let (_, counts) = simple(&client, "INSERT INTO t_order VALUES (1, 10, 1), (3, 11, 3)").await;
    assert_eq!(counts, [2]);
    let n = client
        .execute(
            "INSERT INTO t_order VALUES ($1, $2, $3)",
            &[&6i64, &12i32, &6i32],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Database by user_id % 2, table by order_id % 2.
    assert_eq!(ids_on(&db, 0, "t_order_0").await, [6]);
    assert_eq!(ids_on(&db, 0, "t_order_1").await, [1]);
    assert_eq!(ids_on(&db, 1, "t_order_1").await, [3]);

    simple(&client, "ALTER TABLE t_order DROP COLUMN note").await;
    simple(&client, "INSERT INTO t_order VALUES (8, 12, 8)").await;
    assert_eq!(ids_on(&db, 0, "t_order_0").await, [6, 8]);
    // Changed behind dbmesh's back: a column before the sharding column is not possible
    // to add, so one is added after; the wider row makes dbmesh read the columns again.
    for i in 0..2 {
        for t in ["t_order_0", "t_order_1"] {
            db.pg_direct_query(i, &format!("ALTER TABLE {t} ADD COLUMN extra INT"))
                .await;
        }
    }
    simple(&client, "INSERT INTO t_order VALUES (5, 13, 5, 9)").await;
    let (rows, _) = simple(
        &client,
        "SELECT order_id, extra FROM t_order WHERE user_id = 13 AND order_id = 5",
    )
    .await;
    assert_eq!(rows, [[Some("5".to_string()), Some("9".to_string())]]);
    assert_eq!(ids_on(&db, 1, "t_order_1").await, [3, 5]);

    // A row that fits no reading of the columns is still an error naming the table, and
    // the connection stays usable.
    let e = client
        .simple_query("INSERT INTO t_order VALUES (7, 13, 5, 9, 10, 11)")
        .await
        .unwrap_err();
    let e = e.as_db_error().expect("a server error");
    assert_eq!(e.code().code(), "42601", "{e}");
    assert!(e.message().contains("t_order"), "{e}");
    simple(&client, "SELECT 1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_returning_gives_the_generated_keys_of_rows_on_several_nodes() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let sql = "INSERT INTO t_order (user_id, amount) VALUES (20, 1), (21, 2), (22, 3), (23, 4) RETURNING order_id, user_id";
    let messages = client.simple_query(sql).await.unwrap();
    let mut keys = Vec::new();
    for m in &messages {
        match m {
            SimpleQueryMessage::Row(r) => keys.push((
                r.get(0).unwrap().parse::<i64>().unwrap(),
                r.get(1).unwrap().parse::<i32>().unwrap(),
            )),
            SimpleQueryMessage::CommandComplete(n) => assert_eq!(*n, 4),
            _ => {}
        }
    }
    assert_eq!(keys.len(), 4, "{messages:?}");
    for (order_id, user_id) in keys {
        assert!(order_id > 0);
        let ds = (user_id % 2) as usize;
        let table = format!("t_order_{}", order_id % 2);
        assert!(
            ids_on(&db, ds, &table).await.contains(&order_id),
            "order {order_id} of user {user_id} should be in ds_{ds}.{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_writes_reach_every_data_source_and_reads_one() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let (_, counts) = simple(
        &client,
        "INSERT INTO t_province (id, name) VALUES (1, 'north'), (2, 'south')",
    )
    .await;
    assert_eq!(counts, [4], "two rows written on each of two data sources");
    for i in 0..2 {
        let n: i64 = db
            .pg_direct_query(i, "SELECT count(*) FROM t_province")
            .await[0]
            .get(0);
        assert_eq!(n, 2, "ds_{i}");
    }
    let (rows, counts) = simple(&client, "SELECT name FROM t_province ORDER BY id").await;
    assert_eq!(counts, [2]);
    assert_eq!(rows[0][0].as_deref(), Some("north"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_reads_concatenate_rows_and_writes_sum_counts() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    simple(
        &client,
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 0, 1), (2, 0, 2), (3, 1, 3), (4, 1, 4)",
    )
    .await;
    let (rows, counts) = simple(&client, "SELECT order_id, amount FROM t_order").await;
    assert_eq!(counts, [4]);
    let mut ids: Vec<String> = rows.iter().map(|r| r[0].clone().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3", "4"]);

    // Through the extended protocol as well (tokio-postgres prepares every query).
    let rows = client
        .query("SELECT order_id FROM t_order WHERE amount > $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);

    let (_, counts) = simple(&client, "UPDATE t_order SET amount = amount + 1").await;
    assert_eq!(counts, [4]);
    let (_, counts) = simple(&client, "DELETE FROM t_order WHERE order_id IN (1, 3, 4)").await;
    assert_eq!(counts, [3]);
    let (rows, _) = simple(&client, "SELECT order_id, amount FROM t_order").await;
    assert_eq!(rows, [[Some("2".to_string()), Some("3".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_of_binding_tables_pairs_nodes() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    simple(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 0), (3, 1), (4, 1); \
         INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES \
           (10, 1, 0, 'a'), (11, 2, 0, 'b'), (12, 3, 1, 'c'), (13, 4, 1, 'd'), (14, 4, 1, 'e')",
    )
    .await;
    let (rows, counts) = simple(
        &client,
        "SELECT o.order_id, i.sku FROM t_order o JOIN t_order_item i \
         ON o.order_id = i.order_id AND o.user_id = i.user_id",
    )
    .await;
    assert_eq!(counts, [5]);
    let mut pairs: Vec<(String, String)> = rows
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    pairs.sort();
    let expected: Vec<(String, String)> =
        [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("4", "e")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(pairs, expected);
    let (rows, _) = simple(
        &client,
        "PREVIEW SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE o.user_id = 1 AND o.order_id = 4",
    )
    .await;
    assert_eq!(rows.len(), 1, "one node pair: {rows:?}");
    let sql = rows[0][1].clone().unwrap();
    assert!(
        sql.contains("t_order_0") && sql.contains("t_order_item_0"),
        "{sql}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_statements_in_one_query_run_in_order() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let (rows, counts) = simple(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0); \
         INSERT INTO t_order (order_id, user_id) VALUES (2, 1);; \
         SELECT order_id FROM t_order WHERE user_id = 1; -- done",
    )
    .await;
    assert_eq!(counts, [1, 1, 1]);
    assert_eq!(rows, [[Some("2".to_string())]]);
    // An empty query is answered as PostgreSQL answers it.
    let direct = db.pg_direct_client(0).await;
    for empty in ["", " ; ;", "-- nothing"] {
        assert_eq!(
            simple(&client, empty).await,
            simple(&direct, empty).await,
            "{empty:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_stops_the_query_and_the_connection_stays_usable() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let e = client
        .simple_query(
            "INSERT INTO t_order (order_id, user_id) VALUES (1, 0); \
             SELECT * FROM no_such_table; \
             INSERT INTO t_order (order_id, user_id) VALUES (2, 0)",
        )
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42P01");
    // Statements before the error ran (each on its own); the one after did not.
    assert_eq!(ids_on(&db, 0, "t_order_1").await, [1]);
    assert!(ids_on(&db, 0, "t_order_0").await.is_empty());

    // dbmesh's own errors: a sharding key change, an unparsable statement on a sharded
    // table.
    let e = client
        .simple_query("UPDATE t_order SET user_id = 5 WHERE order_id = 1")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000");
    let e = client
        .simple_query("SELECT * FROM t_order WHERE")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42601");

    // An error on one data source of a fan-out: one ErrorResponse, then usable again.
    let e = client
        .simple_query("SELECT 1 / (order_id - 1) FROM t_order")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22012");
    let (rows, _) = simple(&client, "SELECT order_id FROM t_order").await;
    assert_eq!(rows, [[Some("1".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_follow_the_client_to_data_sources_opened_later() {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    simple(&client, "SET statement_timeout = '4321ms'").await;
    // The first statement on ds_1 opens its connection now; the SET is replayed there.
    simple(
        &client,
        "INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)",
    )
    .await;
    let (rows, counts) = simple(
        &client,
        "SELECT current_setting('statement_timeout') FROM t_order",
    )
    .await;
    assert_eq!(counts, [2]);
    assert!(
        rows.iter().all(|r| r[0].as_deref() == Some("4321ms")),
        "{rows:?}"
    );
}

//! Statements on a sharded MySQL database run where ORDERS_RULES says: DDL on every actual
//! table, rows on the node their `user_id` (data source) and `order_id` (table) choose,
//! multi-row INSERTs split per node, generated keys reported as last-insert-id, broadcast
//! writes on every data source, and reads over several nodes concatenated into one
//! result. Every check of placement reads the data nodes directly, not through dbmesh.

use dbmesh_integration::{ShardedDb, ORDERS_DDL, ORDERS_RULES};
use mysql_async::prelude::*;
use mysql_async::Conn;

/// A sharded database with the ORDERS_RULES tables created through dbmesh.
async fn orders_db() -> (ShardedDb, Conn) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        conn.query_drop(ddl).await.unwrap();
    }
    (db, conn)
}

/// `(order_id, user_id)` of every row of actual table `table` on `ds_<i>`.
async fn node_rows(db: &ShardedDb, i: usize, table: &str) -> Vec<(i64, i32)> {
    db.mysql_direct_query(
        i,
        &format!("SELECT order_id, user_id FROM {table} ORDER BY order_id, user_id"),
    )
    .await
}

/// The four nodes of t_order as `[ds_0.t_order_0, ds_0.t_order_1, ds_1.t_order_0,
/// ds_1.t_order_1]`.
async fn order_nodes(db: &ShardedDb) -> Vec<Vec<(i64, i32)>> {
    let mut nodes = Vec::new();
    for i in 0..2 {
        for t in ["t_order_0", "t_order_1"] {
            nodes.push(node_rows(db, i, t).await);
        }
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_creates_every_actual_table_on_its_data_source() {
    let (db, _conn) = orders_db().await;
    for i in 0..2 {
        let mut tables: Vec<String> = db.mysql_direct_query(i, "SHOW TABLES").await;
        tables.sort();
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

/// ORMs learn whether a table exists and what its columns are with DESCRIBE: a sharded
/// table answers with its first actual table's columns, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_of_a_sharded_table_lists_its_columns_once() {
    let (db, mut conn) = orders_db().await;
    let expected: Vec<String> = vec!["order_id".into(), "user_id".into(), "amount".into()];
    for sql in [
        "DESCRIBE t_order".to_string(),
        format!("DESC `{}`.`t_order`", db.logical),
        "SHOW FULL COLUMNS FROM t_order".into(),
    ] {
        let rows: Vec<mysql_async::Row> = conn.query(&sql).await.unwrap();
        let columns: Vec<String> = rows.iter().map(|r| r.get(0).unwrap()).collect();
        assert_eq!(columns, expected, "{sql}");
    }
    let missing = conn.query_drop("DESCRIBE t_nope").await;
    assert!(
        matches!(missing, Err(mysql_async::Error::Server(ref e)) if e.code == 1146),
        "{missing:?}"
    );
}

/// `SELECT DATABASE()` names the default data source's physical database, and clients
/// qualify tables with it (SQLAlchemy's `DESCRIBE `db`.`t``): on the other data sources
/// that name is another database, so the qualifier is dropped like the logical name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qualifier_naming_the_default_physical_database_is_dropped() {
    let (db, mut conn) = orders_db().await;
    let physical: String = conn
        .query_first("SELECT DATABASE()")
        .await
        .unwrap()
        .unwrap();
    conn.query_drop(format!(
        "INSERT INTO `{physical}`.t_order (order_id, user_id, amount) VALUES (1, 1, 1), (2, 2, 2)"
    ))
    .await
    .unwrap();
    assert_eq!(node_rows(&db, 1, "t_order_1").await, vec![(1, 1)]);
    assert_eq!(node_rows(&db, 0, "t_order_0").await, vec![(2, 2)]);
    assert_eq!(node_rows(&db, 0, "t_order_1").await, vec![]);
    let rows: Vec<(i64, i32)> = conn
        .query(format!(
            "SELECT {physical}.t_order.order_id, user_id FROM {physical}.t_order WHERE user_id = 1"
        ))
        .await
        .unwrap();
    assert_eq!(rows, [(1, 1)]);
}

/// Index names of every actual table of t_order_item, per data source.
async fn item_indexes(db: &ShardedDb) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for i in 0..2 {
        out.push(
            db.mysql_direct_query(
                i,
                "SELECT DISTINCT concat(table_name, ':', index_name) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name LIKE 't_order_item%' AND index_name <> 'PRIMARY' ORDER BY 1",
            )
            .await,
        );
    }
    out
}

/// Index names are made unique per actual table whichever statement declares them, so
/// an index can be dropped whichever statement created it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_can_be_dropped_whichever_statement_created_them() {
    let (db, mut conn) = orders_db().await;
    for sql in [
        "DROP TABLE t_order_item",
        "CREATE TABLE t_order_item (item_id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, user_id INT NOT NULL, sku VARCHAR(32), KEY idx_order (order_id))",
        "ALTER TABLE t_order_item ADD INDEX idx_user (user_id)",
        "CREATE INDEX idx_sku ON t_order_item (sku)",
    ] {
        conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let expected: Vec<String> = ["0", "1"]
        .iter()
        .flat_map(|n| {
            ["idx_order", "idx_sku", "idx_user"]
                .map(|idx| format!("t_order_item_{n}:{idx}_t_order_item_{n}"))
        })
        .collect();
    assert_eq!(item_indexes(&db).await, [expected.clone(), expected]);
    for sql in [
        "DROP INDEX idx_order ON t_order_item",
        "ALTER TABLE t_order_item DROP INDEX idx_user, DROP INDEX idx_sku",
    ] {
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(item_indexes(&db).await, [Vec::<String>::new(), Vec::new()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_land_on_the_node_their_sharding_values_choose() {
    let (db, mut conn) = orders_db().await;
    for (user, order) in [(7, 12), (8, 12), (8, 13), (-3, 5)] {
        conn.exec_drop(
            format!("INSERT INTO t_order (order_id, user_id, amount) VALUES ({order}, {user}, 1)"),
            (),
        )
        .await
        .unwrap();
        assert_eq!(conn.affected_rows(), 1);
    }
    // docs/sharding.md's table: ds by user_id % 2, table by order_id % 2.
    assert_eq!(
        order_nodes(&db).await,
        vec![vec![(12, 8)], vec![(13, 8)], vec![(12, 7)], vec![(5, -3)]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_row_insert_is_split_per_node_and_affected_rows_summed() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, 2), (13, 8, 3), (5, -3, 4), (1, 7, 5)",
    )
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 5);
    assert_eq!(
        order_nodes(&db).await,
        vec![
            vec![(12, 8)],
            vec![(13, 8)],
            vec![(12, 7)],
            vec![(1, 7), (5, -3)]
        ]
    );
}

/// The info text of the merged OK adds up the nodes' (drivers read an UPDATE's changed
/// rows from it: mysql2's `changedRows`), and a multi-row INSERT split into one-row
/// statements still reports its records, as one server would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_oks_report_the_summed_info_of_their_nodes() {
    let (_db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4)",
    )
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 4);
    assert_eq!(conn.info(), "Records: 4  Duplicates: 0  Warnings: 0");
    conn.query_drop(
        "INSERT IGNORE INTO t_order (order_id, user_id, amount) VALUES (1, 1, 1), (5, 5, 5)",
    )
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    assert_eq!(conn.info(), "Records: 2  Duplicates: 1  Warnings: 1");
    // Every node: two rows match, one of them changes.
    conn.query_drop("UPDATE t_order SET amount = 3 WHERE order_id IN (2, 3)")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    assert_eq!(conn.info(), "Rows matched: 2  Changed: 1  Warnings: 0");
    conn.query_drop("DELETE FROM t_order WHERE amount > 0")
        .await
        .unwrap();
    assert_eq!((conn.affected_rows(), conn.info().as_ref()), (5, ""));
}

/// `INSERT INTO t VALUES (...)` without a column list: dbmesh reads the table's columns
/// from its first actual table to find the sharding values, and reads them again when
/// the table changed (through dbmesh, or elsewhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_without_a_column_list_routes_by_the_tables_columns() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("INSERT INTO t_order VALUES (12, 7, 1), (13, 8, 2)")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    conn.exec_drop("INSERT INTO t_order VALUES (?, ?, ?)", (5, -3, 4))
        .await
        .unwrap();
    assert_eq!(
        order_nodes(&db).await,
        vec![vec![], vec![(13, 8)], vec![(12, 7)], vec![(5, -3)]]
    );
    conn.query_drop("ALTER TABLE t_order ADD COLUMN note VARCHAR(10)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t_order VALUES (20, 2, 1, 'x')")
        .await
        .unwrap();
    // Changed behind dbmesh's back, on every actual table.
    for i in 0..2 {
        for t in ["t_order_0", "t_order_1"] {
            let sql = format!("ALTER TABLE {t} ADD COLUMN extra INT");
            let _: Vec<u8> = db.mysql_direct_query(i, &sql).await;
        }
    }
    conn.query_drop("INSERT INTO t_order VALUES (21, 3, 1, 'y', 9)")
        .await
        .unwrap();
    let rows: Vec<(i64, String, i32)> = conn
        .query("SELECT order_id, note, extra FROM t_order WHERE user_id = 3 AND order_id = 21")
        .await
        .unwrap();
    assert_eq!(rows, [(21, "y".to_string(), 9)]);
    assert_eq!(node_rows(&db, 0, "t_order_0").await, vec![(20, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_order_id_is_the_last_insert_id_and_routes_the_row() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("INSERT INTO t_order (user_id, amount) VALUES (7, 10)")
        .await
        .unwrap();
    let id = conn.last_insert_id().expect("a last-insert-id") as i64;
    assert!(id > 0);
    let table = format!("t_order_{}", id % 2);
    assert_eq!(node_rows(&db, 1, &table).await, vec![(id, 7)]);

    // Several rows: the client gets the first key; each row goes where its own key says.
    conn.query_drop("INSERT INTO t_order (user_id, amount) VALUES (8, 1), (8, 2), (8, 3)")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 3);
    let first = conn.last_insert_id().expect("a last-insert-id") as i64;
    let mut on_ds0: Vec<i64> = db
        .mysql_direct_query(
            0,
            "SELECT order_id FROM t_order_0 UNION ALL SELECT order_id FROM t_order_1",
        )
        .await;
    on_ds0.sort();
    assert_eq!(on_ds0.len(), 3);
    assert_eq!(on_ds0[0], first, "the first generated key is the smallest");
    for key in &on_ds0 {
        let table = format!("t_order_{}", key % 2);
        assert!(node_rows(&db, 0, &table).await.contains(&(*key, 8)));
    }
}

async fn last_insert_id(conn: &mut Conn) -> u64 {
    conn.query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap()
}

/// `SELECT LAST_INSERT_ID()` answers with the session's last generated key, wherever the
/// INSERT ran, as one server would; statements that generate none leave it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_last_insert_id_is_the_last_generated_key() {
    let (db, mut conn) = orders_db().await;
    assert_eq!(last_insert_id(&mut conn).await, 0);
    // user 7 lives on ds_1, which the default data source knows nothing about.
    conn.query_drop("INSERT INTO t_order (user_id, amount) VALUES (7, 1)")
        .await
        .unwrap();
    let key = conn.last_insert_id().unwrap();
    assert_eq!(last_insert_id(&mut conn).await, key);
    conn.query_drop("INSERT INTO t_order (user_id, amount) VALUES (8, 1), (9, 1)")
        .await
        .unwrap();
    let first = conn.last_insert_id().unwrap();
    assert!(first > key);
    conn.query_drop("UPDATE t_order SET amount = 2 WHERE user_id = 7")
        .await
        .unwrap();
    let named: (u64,) = conn
        .query_first("select last_insert_id() AS id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(named, (first,));
    // Prepared inserts too; and a single table's AUTO_INCREMENT on the default data source.
    conn.exec_drop(
        "INSERT INTO t_order (user_id, amount) VALUES (?, ?)",
        (10, 1),
    )
    .await
    .unwrap();
    let prepared = conn.last_insert_id().unwrap();
    assert_eq!(last_insert_id(&mut conn).await, prepared);
    conn.query_drop("CREATE TABLE t_log (id INT AUTO_INCREMENT PRIMARY KEY, msg TEXT)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t_log (msg) VALUES ('a'), ('b')")
        .await
        .unwrap();
    assert_eq!(last_insert_id(&mut conn).await, 1);
    conn.query_drop("INSERT INTO t_log (msg) VALUES ('c')")
        .await
        .unwrap();
    assert_eq!(last_insert_id(&mut conn).await, 3);
    conn.reset().await.unwrap();
    assert_eq!(last_insert_id(&mut conn).await, 0);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_writes_reach_every_data_source_and_count_once() {
    let (db, mut conn) = orders_db().await;
    conn.query_drop("INSERT INTO t_province (id, name) VALUES (1, 'Bern'), (2, 'Vaud')")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    conn.query_drop("UPDATE t_province SET name = 'Zug' WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    for i in 0..2 {
        let rows: Vec<(i32, String)> = db
            .mysql_direct_query(i, "SELECT id, name FROM t_province ORDER BY id")
            .await;
        assert_eq!(rows, [(1, "Bern".into()), (2, "Zug".into())], "ds_{i}");
    }
    let read: Vec<(i32, String)> = conn
        .query("SELECT id, name FROM t_province ORDER BY id")
        .await
        .unwrap();
    assert_eq!(read.len(), 2, "a broadcast read runs on one data source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_select_concatenates_every_nodes_rows() {
    let (_db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, 2), (13, 8, 3), (5, -3, 4)",
    )
    .await
    .unwrap();
    let mut all: Vec<(i64, i32, i32)> = conn
        .query("SELECT order_id, user_id, amount FROM t_order")
        .await
        .unwrap();
    all.sort();
    assert_eq!(all, [(5, -3, 4), (12, 7, 1), (12, 8, 2), (13, 8, 3)]);

    // Two data sources, one table each; and the same with no row anywhere.
    let mut by_users: Vec<(i64, i32)> = conn
        .query("SELECT order_id, user_id FROM t_order WHERE user_id IN (7, 8) AND order_id = 12")
        .await
        .unwrap();
    by_users.sort();
    assert_eq!(by_users, [(12, 7), (12, 8)]);
    let mut empty = conn
        .query_iter("SELECT order_id, amount FROM t_order WHERE amount > 100")
        .await
        .unwrap();
    let names: Vec<String> = empty
        .columns()
        .unwrap()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    assert_eq!(names, ["order_id", "amount"]);
    let rows: Vec<(i64, i32)> = empty.collect().await.unwrap();
    assert!(rows.is_empty());
    drop(empty);

    let count: Vec<i64> = conn.query("SELECT 1 FROM t_order").await.unwrap();
    assert_eq!(count.len(), 4, "the connection is in step after a fan-out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_join_pairs_each_order_node_with_its_item_node() {
    let (_db, mut conn) = orders_db().await;
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (13, 7, 2), (12, 8, 3)",
    )
    .await
    .unwrap();
    conn.query_drop(
        "INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES (1, 12, 7, 'a'), (2, 13, 7, 'b'), (3, 13, 7, 'c'), (4, 12, 8, 'd')",
    )
    .await
    .unwrap();
    let mut joined: Vec<(i64, i32, String)> = conn
        .query(
            "SELECT o.order_id, o.user_id, i.sku FROM t_order o JOIN t_order_item i \
             ON o.order_id = i.order_id AND o.user_id = i.user_id",
        )
        .await
        .unwrap();
    joined.sort();
    assert_eq!(
        joined,
        [
            (12, 7, "a".into()),
            (12, 8, "d".into()),
            (13, 7, "b".into()),
            (13, 7, "c".into())
        ]
    );
    let one_user: Vec<String> = conn
        .query(
            "SELECT i.sku FROM t_order o JOIN t_order_item i \
             ON o.order_id = i.order_id AND o.user_id = i.user_id WHERE o.user_id = 8",
        )
        .await
        .unwrap();
    assert_eq!(one_user, ["d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_cross_shard_results_stream_through() {
    let (db, mut conn) = orders_db().await;
    // 30 000 rows per actual table, written directly (the sequence engine is MariaDB's).
    for i in 0..2 {
        for (t, parity) in [("t_order_0", 0), ("t_order_1", 1)] {
            db.mysql_direct_query::<i64>(
                i,
                &format!("INSERT INTO {t} SELECT seq * 2 + {parity}, {i}, seq FROM seq_1_to_30000"),
            )
            .await;
        }
    }
    let mut rows = conn
        .query_iter("SELECT order_id, user_id, amount, REPEAT('x', 100) FROM t_order")
        .await
        .unwrap();
    let mut count = 0u64;
    let mut sum = 0i64;
    while let Some(row) = rows.next().await.unwrap() {
        let (_, _, amount, pad): (i64, i32, i64, String) = mysql_async::from_row(row);
        assert_eq!(pad.len(), 100);
        count += 1;
        sum += amount;
    }
    drop(rows);
    assert_eq!(count, 120_000);
    assert_eq!(sum, 4 * (30_000 * 30_001 / 2));
}

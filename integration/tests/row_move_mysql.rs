//! The UPDATE that changes a sharding column, on a sharded MariaDB database: under XA it
//! moves the row (the old data node no longer has it, the new one has it with every column
//! exactly), in an explicit transaction, under autocommit and under `autocommit = 0`, as a
//! plain query and as a prepared statement; a
//! ROLLBACK puts it back; a move that fails half-way leaves the row where it was; under
//! LOCAL it is refused naming the transaction type that allows it.

use dbmesh_integration::{server_error, unique_instance_id, Extra, ShardedDb, TempDir, BANK_RULES};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

/// One row of `account` with every column, read from a data node directly.
type Full = (
    i64,
    i64,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
);

const SELECT_FULL: &str = "SELECT id, balance, owner, photo, CAST(opened AS CHAR), CAST(rate AS CHAR) FROM account ORDER BY id";

async fn bank(database_keys: &str) -> (ShardedDb, TempDir, String) {
    let dir = TempDir::new("row_move_log");
    let instance = unique_instance_id();
    let extra = Extra {
        database_keys: database_keys.to_string(),
        tables: format!(
            "[transaction]\ninstance_id = \"{}\"\nlog_path = \"{}\"\n",
            instance,
            dir.path.join("xa.log").display()
        ),
        ..Extra::default()
    };
    let db = ShardedDb::mysql_with(BANK_RULES, 2, &extra).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    conn.query_drop(
        "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL, \
         owner VARCHAR(40) NULL, photo VARBINARY(8) NULL, opened DATETIME(3) NULL, rate DECIMAL(8,3) NULL)",
    )
    .await
    .unwrap();
    conn.query_drop(
        "INSERT INTO account (id, balance, owner, photo, opened, rate) VALUES \
         (4, 400, 'O''Brien \\\\ ü', X'00FF5C27', '2024-02-29 23:59:58.125', -1.5), \
         (5, 500, NULL, NULL, NULL, NULL), (6, 600, 'six', X'06', '2020-01-01 00:00:00.000', 6.25)",
    )
    .await
    .unwrap();
    (db, dir, instance)
}

async fn node(db: &ShardedDb, i: usize) -> Vec<Full> {
    let rows: Vec<Row> = db.mysql_direct_query(i, SELECT_FULL).await;
    rows.into_iter()
        .map(mysql_async::from_row::<Full>)
        .collect()
}

fn row_4_as(id: i64) -> Full {
    (
        id,
        400,
        Some("O'Brien \\ ü".to_string()),
        Some(vec![0x00, 0xFF, 0x5C, 0x27]),
        Some("2024-02-29 23:59:58.125".to_string()),
        Some("-1.500".to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_update_of_the_sharding_column_moves_the_row_with_every_column() {
    let (db, _dir, instance) = bank(r#"transaction = "XA""#).await;
    let before_1 = node(&db, 1).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();

    // Autocommit: the move is a transaction of its own. id 4 lives on ds_0, 11 on ds_1.
    conn.query_drop("UPDATE account SET id = 11 WHERE id = 4")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    let on_0 = node(&db, 0).await;
    assert!(on_0.iter().all(|r| r.0 != 4), "old node empty: {on_0:?}");
    let on_1 = node(&db, 1).await;
    assert!(on_1.contains(&row_4_as(11)), "{on_1:?}");
    assert_eq!(on_1.len(), before_1.len() + 1);

    // In an explicit transaction with other columns assigned too; ROLLBACK puts it back.
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET id = 20, balance = 1 WHERE id = 11")
        .await
        .unwrap();
    let through: Vec<(i64, i64)> = conn
        .query("SELECT id, balance FROM account WHERE id IN (11, 20)")
        .await
        .unwrap();
    assert_eq!(through, vec![(20, 1)], "the transaction sees the moved row");
    conn.query_drop("ROLLBACK").await.unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(11)));
    assert!(node(&db, 0).await.iter().all(|r| r.0 != 20));

    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET balance = balance + 1 WHERE id = 5")
        .await
        .unwrap();
    conn.query_drop("UPDATE account SET id = 20 WHERE id = 11")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    assert!(node(&db, 0).await.contains(&row_4_as(20)));
    assert!(node(&db, 1).await.iter().all(|r| r.0 != 11));
    assert!(node(&db, 1).await.iter().any(|r| r.0 == 5 && r.1 == 501));

    // autocommit = 0: the move joins the implicit global transaction.
    conn.query_drop("SET autocommit = 0").await.unwrap();
    conn.query_drop("UPDATE account SET id = 21 WHERE id = 20")
        .await
        .unwrap();
    assert!(
        node(&db, 0).await.contains(&row_4_as(20)),
        "not committed yet"
    );
    conn.query_drop("COMMIT").await.unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(21)));
    assert!(node(&db, 0).await.iter().all(|r| r.0 != 20));

    // A prepared statement (COM_STMT_EXECUTE), parameters for the values and the WHERE.
    conn.query_drop("SET autocommit = 1").await.unwrap();
    conn.exec_drop(
        "UPDATE account SET id = ?, owner = ? WHERE id = ?",
        (30i64, "moved", 21i64),
    )
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    let mut moved = row_4_as(30);
    moved.2 = Some("moved".into());
    assert!(
        node(&db, 0).await.contains(&moved),
        "{:?}",
        node(&db, 0).await
    );
    assert!(node(&db, 1).await.iter().all(|r| r.0 != 21));
    assert!(db.mysql_prepared(&instance).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_move_failing_half_way_leaves_the_row_where_it_was() {
    let (db, _dir, _) = bank(r#"transaction = "XA""#).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET balance = 0 WHERE id = 6")
        .await
        .unwrap();
    // id 5 already exists on ds_1: the insert there fails after the delete on ds_0 ran.
    let (code, state, message) = server_error(
        conn.query_drop("UPDATE account SET id = 5 WHERE id = 4")
            .await,
    );
    assert_eq!((code, state.as_str()), (1062, "23000"), "{message}");
    assert!(
        message.contains("rolled back on every data source"),
        "{message}"
    );
    assert!(node(&db, 0).await.contains(&row_4_as(4)), "the row stayed");
    assert!(
        node(&db, 0).await.iter().any(|r| r.0 == 6 && r.1 == 600),
        "the whole transaction was rolled back"
    );
    // The connection goes on.
    conn.query_drop("UPDATE account SET id = 13 WHERE id = 4")
        .await
        .unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(13)));

    // An expression assigned in a moving UPDATE is refused before anything runs.
    let (code, state, message) = server_error(
        conn.query_drop("UPDATE account SET id = 14, balance = balance + 1 WHERE id = 13")
            .await,
    );
    assert_eq!((code, state.as_str()), (1235, "42000"), "{message}");
    assert!(message.contains("balance + 1"), "{message}");
    assert!(node(&db, 1).await.contains(&row_4_as(13)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_transactions_refuse_the_row_move_naming_xa() {
    let (db, _dir, _) = bank("").await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    let (code, state, message) = server_error(
        conn.query_drop("UPDATE account SET id = 11 WHERE id = 4")
            .await,
    );
    assert_eq!((code, state.as_str()), (1235, "42000"), "{message}");
    assert!(
        message.contains("sharding column `id`") && message.contains("transaction type XA"),
        "{message}"
    );
    assert!(node(&db, 0).await.contains(&row_4_as(4)));
    // The session statement switches it on.
    conn.query_drop("SET dbmesh_transaction_type = 'XA'")
        .await
        .unwrap();
    conn.query_drop("UPDATE account SET id = 11 WHERE id = 4")
        .await
        .unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(11)));
}

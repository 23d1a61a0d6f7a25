//! The UPDATE that changes a sharding column, on a sharded PostgreSQL database: under XA it
//! moves the row (the old data node no longer has it, the new one has it with every column
//! exactly), outside and inside BEGIN, in the simple and the extended protocol; ROLLBACK puts it back; a move failing half-way aborts
//! the transaction and leaves the row where it was; under LOCAL it is refused naming the
//! transaction type that allows it.

use dbmesh_integration::{pg_sqlstate, unique_instance_id, Extra, ShardedDb, TempDir, BANK_RULES};
use tokio_postgres::{Client, SimpleQueryMessage};

/// One row of `account` with every column as text, read from a data node directly.
type Full = Vec<Option<String>>;

const SELECT_FULL: &str = "SELECT id::text, balance::text, owner, encode(photo, 'hex'), opened::text, rate::text FROM account ORDER BY id";

async fn bank(database_keys: &str) -> (ShardedDb, TempDir, String) {
    let dir = TempDir::new("row_move_log");
    let instance = unique_instance_id();
    let extra = Extra {
        database_keys: database_keys.to_string(),
        tables: format!(
            "[transaction]\ninstance_id = \"{instance}\"\nlog_path = \"{}\"\n",
            dir.path.join("xa.log").display()
        ),
        ..Extra::default()
    };
    let db = ShardedDb::postgres_with(BANK_RULES, 2, &extra).await;
    let client = db.pg_client().await;
    client
        .batch_execute(
            "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL, \
             owner TEXT NULL, photo BYTEA NULL, opened TIMESTAMP(3) NULL, rate NUMERIC(8,3) NULL)",
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO account (id, balance, owner, photo, opened, rate) VALUES \
             (4, 400, 'O''Brien \\ ü', '\\x00ff5c27', '2024-02-29 23:59:58.125', -1.5), \
             (5, 500, NULL, NULL, NULL, NULL), (6, 600, 'six', '\\x06', '2020-01-01 00:00:00', 6.25)",
        )
        .await
        .unwrap();
    (db, dir, instance)
}

async fn node(db: &ShardedDb, i: usize) -> Vec<Full> {
    db.pg_direct_query(i, SELECT_FULL)
        .await
        .into_iter()
        .map(|r| (0..6).map(|c| r.get::<_, Option<String>>(c)).collect())
        .collect()
}

fn row_4_as(id: i64) -> Full {
    vec![
        Some(id.to_string()),
        Some("400".into()),
        Some("O'Brien \\ ü".into()),
        Some("00ff5c27".into()),
        Some("2024-02-29 23:59:58.125".into()),
        Some("-1.500".into()),
    ]
}

/// The row count of a statement's CommandComplete.
async fn affected(client: &Client, sql: &str) -> Result<u64, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .expect("a CommandComplete"))
}

async fn prepared_branches(db: &ShardedDb, instance: &str) -> usize {
    let mut n = 0;
    for i in 0..2 {
        n += db
            .pg_direct_query(i, "SELECT gid FROM pg_prepared_xacts")
            .await
            .iter()
            .filter(|r| r.get::<_, String>(0).contains(instance))
            .count();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_update_of_the_sharding_column_moves_the_row_with_every_column() {
    let (db, _dir, instance) = bank(r#"transaction = "XA""#).await;
    let before_1 = node(&db, 1).await.len();
    let client = db.pg_client().await;

    // Outside BEGIN the move is a transaction of its own. id 4 lives on ds_0, 11 on ds_1.
    assert_eq!(
        affected(&client, "UPDATE account SET id = 11 WHERE id = 4")
            .await
            .unwrap(),
        1
    );
    assert!(node(&db, 0)
        .await
        .iter()
        .all(|r| r[0].as_deref() != Some("4")));
    let on_1 = node(&db, 1).await;
    assert!(on_1.contains(&row_4_as(11)), "{on_1:?}");
    assert_eq!(on_1.len(), before_1 + 1);

    // Inside BEGIN, with another column assigned too; ROLLBACK puts it back.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("UPDATE account SET id = 20, balance = 1 WHERE id = 11")
        .await
        .unwrap();
    let seen = client
        .query("SELECT id, balance FROM account WHERE id IN (11, 20)", &[])
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].get::<_, i64>(0), seen[0].get::<_, i64>(1)),
        (20, 1)
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(11)));

    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("UPDATE account SET balance = balance + 1 WHERE id = 5")
        .await
        .unwrap();
    client
        .batch_execute("UPDATE account SET id = 20 WHERE id = 11")
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    assert!(node(&db, 0).await.contains(&row_4_as(20)));
    assert!(node(&db, 1)
        .await
        .iter()
        .all(|r| r[0].as_deref() != Some("11")));
    assert!(node(&db, 1)
        .await
        .iter()
        .any(|r| r[0].as_deref() == Some("5") && r[1].as_deref() == Some("501")));

    // The extended protocol, with parameters for the new value and the WHERE clause.
    let n = client
        .execute(
            "UPDATE account SET id = $1, owner = $2 WHERE id = $3",
            &[&31i64, &"moved", &20i64],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut moved = row_4_as(31);
    moved[2] = Some("moved".into());
    assert!(
        node(&db, 1).await.contains(&moved),
        "{:?}",
        node(&db, 1).await
    );
    assert!(node(&db, 0)
        .await
        .iter()
        .all(|r| r[0].as_deref() != Some("20")));
    assert_eq!(prepared_branches(&db, &instance).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_move_failing_half_way_leaves_the_row_where_it_was() {
    let (db, _dir, _) = bank(r#"transaction = "XA""#).await;
    let client = db.pg_client().await;
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("UPDATE account SET balance = 0 WHERE id = 6")
        .await
        .unwrap();
    // id 5 already exists on ds_1: the insert there fails after the delete on ds_0 ran.
    let e = client
        .batch_execute("UPDATE account SET id = 5 WHERE id = 4")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "23505", "{e:?}");
    let e = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "25P02", "the transaction is aborted");
    client.batch_execute("COMMIT").await.unwrap();
    assert!(node(&db, 0).await.contains(&row_4_as(4)), "the row stayed");
    assert!(node(&db, 0)
        .await
        .iter()
        .any(|r| r[0].as_deref() == Some("6") && r[1].as_deref() == Some("600")));

    // Outside BEGIN the statement's own transaction is rolled back; the session goes on.
    let e = client
        .batch_execute("UPDATE account SET id = 5 WHERE id = 4")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "23505", "{e:?}");
    assert!(node(&db, 0).await.contains(&row_4_as(4)));
    client
        .batch_execute("UPDATE account SET id = 13 WHERE id = 4")
        .await
        .unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(13)));

    // An expression assigned in a moving UPDATE is refused before anything runs.
    let e = client
        .batch_execute("UPDATE account SET id = 14, balance = balance + 1 WHERE id = 13")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000", "{e:?}");
    assert!(format!("{e:?}").contains("balance + 1"), "{e:?}");
    assert!(node(&db, 1).await.contains(&row_4_as(13)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_transactions_refuse_the_row_move_naming_xa() {
    let (db, _dir, _) = bank("").await;
    let client = db.pg_client().await;
    let e = client
        .batch_execute("UPDATE account SET id = 11 WHERE id = 4")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000", "{e:?}");
    assert!(format!("{e:?}").contains("transaction type XA"), "{e:?}");
    assert!(node(&db, 0).await.contains(&row_4_as(4)));
    client
        .batch_execute("SET dbmesh_transaction_type = 'XA'")
        .await
        .unwrap();
    client
        .batch_execute("UPDATE account SET id = 11 WHERE id = 4")
        .await
        .unwrap();
    assert!(node(&db, 1).await.contains(&row_4_as(11)));
}

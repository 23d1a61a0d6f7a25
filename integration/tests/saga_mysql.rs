//! SAGA transactions on a sharded MariaDB database: each statement commits on its data
//! sources at once and ROLLBACK (or a failing statement) compensates them. The bank keeps
//! its total under concurrent transfers; ROLLBACK restores every column of every row
//! exactly (UPDATE / DELETE / INSERT mixes, explicit and AUTO_INCREMENT keys, prepared
//! statements, `autocommit = 0`); a failing third statement restores what the first two
//! did; what cannot be compensated is refused with 1235 `0A000`.

use dbmesh_integration::{
    expected_balances, server_error, transfer_statements, unique_instance_id, Extra, ShardedDb,
    TempDir, ACCOUNTS, OPENING,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

const RULES: &str = r#"
[tables.account]
nodes             = "ds_${0..1}.account"
database_strategy = { column = "id", algorithm = "by_id" }

[tables.item]
nodes             = "ds_${0..1}.item"
database_strategy = { column = "id", algorithm = "by_id" }

[tables.loose]
nodes             = "ds_${0..1}.loose"
database_strategy = { column = "id", algorithm = "by_id" }

[algorithms.by_id]
type           = "MOD"
sharding_count = 2
"#;

struct Bank {
    db: ShardedDb,
    log: std::path::PathBuf,
    _dir: TempDir,
}

/// The bank and the item table (every column type that must come back exactly), with
/// `database_keys` in the database's table (`transaction = "SAGA"`, or none).
async fn bank(database_keys: &str) -> Bank {
    let dir = TempDir::new("saga_log");
    let log = dir.path.join("saga.log");
    let extra = Extra {
        database_keys: database_keys.to_string(),
        tables: format!(
            "[transaction]\ninstance_id = \"{}\"\nlog_path = \"{}\"\n",
            unique_instance_id(),
            log.display()
        ),
        ..Extra::default()
    };
    let db = ShardedDb::mysql_with(RULES, 2, &extra).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    for sql in [
        "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL)",
        "CREATE TABLE item (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NULL, price DECIMAL(10,2) NOT NULL, \
         at DATETIME(3) NULL, raw VARBINARY(8) NULL, ratio DOUBLE NULL, \
         touched TIMESTAMP(3) NOT NULL DEFAULT '2020-01-01 00:00:00.000' ON UPDATE CURRENT_TIMESTAMP(3))",
        "CREATE TABLE loose (id BIGINT NOT NULL, v INT)",
        "CREATE TABLE note (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, body VARCHAR(20) NOT NULL)",
        "INSERT INTO note (body) VALUES ('first'), ('second')",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    for id in 0..ACCOUNTS {
        conn.query_drop(format!(
            "INSERT INTO account (id, balance) VALUES ({id}, {OPENING})"
        ))
        .await
        .unwrap();
    }
    for id in 0..8 {
        conn.query_drop(format!(
            "INSERT INTO item (id, name, price, at, raw, ratio) VALUES ({id}, {}, {id}.25, '2024-02-29 23:59:59.{:03}', X'{:02x}ff00c3', {})",
            if id == 3 { "NULL".to_string() } else { format!("'it''em {id} '") },
            id * 7,
            id,
            if id == 5 { "NULL".to_string() } else { format!("{id}.5e-3") }
        ))
        .await
        .unwrap();
    }
    Bank { db, log, _dir: dir }
}

/// Every row of every table, read from each data source directly, every column hex
/// encoded (so a changed byte, NULL or fraction shows).
async fn snapshot(db: &ShardedDb) -> Vec<String> {
    let mut all = Vec::new();
    for i in 0..2 {
        for sql in [
            "SELECT CONCAT_WS('|', 'account', id, balance) FROM account ORDER BY id",
            "SELECT CONCAT_WS('|', 'item', id, IFNULL(HEX(name), 'N'), HEX(CAST(price AS CHAR)), IFNULL(HEX(CAST(at AS CHAR)), 'N'), IFNULL(HEX(raw), 'N'), IFNULL(HEX(CAST(ratio AS CHAR)), 'N'), HEX(CAST(touched AS CHAR))) FROM item ORDER BY id",
        ] {
            let rows: Vec<String> = db.mysql_direct_query(i, sql).await;
            all.extend(rows.into_iter().map(|r| format!("ds_{i} {r}")));
        }
    }
    let notes: Vec<String> = db
        .mysql_direct_query(
            0,
            "SELECT CONCAT_WS('|', 'note', id, body) FROM note ORDER BY id",
        )
        .await;
    all.extend(notes);
    all
}

/// Changes of every kind, over both data sources, on `conn` inside its transaction.
async fn mixed_changes(conn: &mut Conn) {
    for sql in [
        "UPDATE item SET name = 'renamed', price = price * 2, raw = X'00', ratio = NULL",
        "DELETE FROM item WHERE id IN (2, 3, 6)",
        "INSERT INTO item (id, name, price) VALUES (20, 'new', 1.00), (21, NULL, 2.00)",
        "UPDATE account SET balance = balance - 7 WHERE id = 1",
        "DELETE FROM account WHERE id = 4",
        "INSERT INTO account (id, balance) VALUES (40, 1), (41, 2)",
        "INSERT INTO note (body) VALUES ('third'), ('fourth')",
        "UPDATE note SET body = 'changed' WHERE id = 1",
        "DELETE FROM note WHERE id = 2",
        "INSERT INTO item (id, name, price) VALUES (2, 'reused key', 3.00)",
    ] {
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_every_column_exactly() {
    let bank = bank(r#"transaction = "SAGA""#).await;
    let before = snapshot(&bank.db).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    mixed_changes(&mut conn).await;
    let inside: Option<i64> = conn.query_first("SELECT COUNT(*) FROM item").await.unwrap();
    assert_eq!(inside, Some(8), "8 - 3 + 2 + 1 rows inside the saga");
    assert_ne!(snapshot(&bank.db).await, before, "each statement committed");
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(snapshot(&bank.db).await, before);
    assert_eq!(
        std::fs::metadata(&bank.log).map(|m| m.len()).unwrap_or(0),
        0,
        "the compensated saga is trimmed from the log"
    );
    // The session goes on, out of the transaction.
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM account")
        .await
        .unwrap();
    assert_eq!(n, Some(ACCOUNTS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_keeps_every_change_and_trims_the_log() {
    let bank = bank(r#"transaction = "SAGA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    mixed_changes(&mut conn).await;
    let during = snapshot(&bank.db).await;
    assert!(
        std::fs::metadata(&bank.log).unwrap().len() > 0,
        "compensations are logged while the saga runs"
    );
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(snapshot(&bank.db).await, during);
    assert_eq!(std::fs::metadata(&bank.log).unwrap().len(), 0);
    let notes: Vec<(i64, String)> = bank
        .db
        .mysql_direct_query(0, "SELECT id, body FROM note ORDER BY id")
        .await;
    assert_eq!(
        notes,
        vec![
            (1, "changed".into()),
            (3, "third".into()),
            (4, "fourth".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_third_statement_restores_the_first_two() {
    let bank = bank(r#"transaction = "SAGA""#).await;
    let before = snapshot(&bank.db).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET balance = balance - 100 WHERE id IN (1, 2)")
        .await
        .unwrap();
    conn.query_drop("DELETE FROM item WHERE id > 4")
        .await
        .unwrap();
    // Fans out to both data sources; id 1 exists on ds_1, so that part fails.
    let (code, state, message) = server_error(
        conn.query_drop("INSERT INTO item (id, name, price) VALUES (30, 'a', 1), (1, 'dup', 1)")
            .await,
    );
    assert_eq!((code, state.as_str()), (1062, "23000"), "{message}");
    assert!(message.contains("compensated"), "{message}");
    assert_eq!(snapshot(&bank.db).await, before);
    // The transaction is over: the next write autocommits.
    conn.query_drop("UPDATE account SET balance = balance + 1 WHERE id = 0")
        .await
        .unwrap();
    conn.query_drop("ROLLBACK").await.unwrap();
    let mut expected = expected_balances(&[]);
    expected[0].1 += 1;
    assert_eq!(bank.db.mysql_balances().await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_off_prepared_statements_and_the_session_variable() {
    // A LOCAL database: the session asks for SAGA.
    let bank = bank("").await;
    let before = snapshot(&bank.db).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("SET dbmesh_transaction_type = 'SAGA'")
        .await
        .unwrap();
    conn.query_drop("SET autocommit = 0").await.unwrap();
    conn.exec_drop(
        "UPDATE item SET name = ?, raw = ? WHERE id = ?",
        ("prepared", vec![0xffu8, 0x00], 1),
    )
    .await
    .unwrap();
    conn.exec_drop("DELETE FROM account WHERE id = ?", (3,))
        .await
        .unwrap();
    // `note` is outside the sharding rules: a prepared write there is not analysed, so
    // the saga refuses it; as a plain query it is compensated.
    let (code, _, message) = server_error(
        conn.exec_drop("INSERT INTO note (body) VALUES (?)", ("bound",))
            .await,
    );
    assert_eq!(code, 1235, "{message}");
    conn.query_drop("INSERT INTO note (body) VALUES ('plain')")
        .await
        .unwrap();
    let id: Option<u64> = conn.last_insert_id();
    assert_eq!(id, Some(3), "the client gets the generated key");
    assert_ne!(snapshot(&bank.db).await, before);
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(snapshot(&bank.db).await, before);
    // Still autocommit = 0: the next statement opens the next saga.
    conn.query_drop("DELETE FROM account WHERE id = 5")
        .await
        .unwrap();
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(snapshot(&bank.db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_compensated_is_refused_and_the_saga_goes_on() {
    let bank = bank(r#"transaction = "SAGA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET balance = 1 WHERE id = 1")
        .await
        .unwrap();
    for (sql, says) in [
        (
            "UPDATE loose SET v = 1 WHERE id = 1",
            "`loose`, which has no primary key",
        ),
        (
            "CREATE TABLE other (id INT PRIMARY KEY)",
            "DDL inside a SAGA transaction",
        ),
        (
            "INSERT IGNORE INTO account (id, balance) VALUES (1, 1)",
            "INSERT IGNORE",
        ),
        (
            "UPDATE account SET id = 100 WHERE id = 0",
            "sharding column",
        ),
        ("SAVEPOINT s1", "savepoints inside a SAGA transaction"),
        ("UPDATE item SET name = 'x' ORDER BY id LIMIT 1", "LIMIT"),
    ] {
        let (code, state, message) = server_error(conn.query_drop(sql).await);
        assert_eq!(code, 1235, "{sql}: {message}");
        assert!(state == "0A000" || state == "42000", "{sql}: {state}");
        assert!(message.contains(says), "{sql}: {message}");
    }
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(bank.db.mysql_balances().await, expected_balances(&[]));
}

/// Runs one transfer in a saga; true when COMMIT succeeded.
async fn transfer(conn: &mut Conn, from: i64, to: i64, amount: i64) -> bool {
    let mut ok = conn.query_drop("BEGIN").await.is_ok();
    for sql in transfer_statements(from, to, amount) {
        ok = ok && conn.query_drop(sql).await.is_ok();
    }
    if ok && conn.query_drop("COMMIT").await.is_ok() {
        return true;
    }
    let _ = conn.query_drop("ROLLBACK").await;
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_keep_the_total() {
    let bank = bank(r#"transaction = "SAGA""#).await;
    let mut clients = Vec::new();
    for client in 0..6u64 {
        let opts = bank.db.mysql_opts();
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (client + 1);
            let mut next = move |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n) as i64
            };
            let mut done = Vec::new();
            for _ in 0..25 {
                let from = next(ACCOUNTS as u64);
                let to = (from + 1 + next(ACCOUNTS as u64 - 1)) % ACCOUNTS;
                let amount = 1 + next(50);
                assert!(transfer(&mut conn, from, to, amount).await);
                done.push((from, to, amount));
            }
            done
        }));
    }
    let mut committed = Vec::new();
    for c in clients {
        committed.extend(c.await.unwrap());
    }
    assert!(committed.iter().any(|(f, t, _)| f % 2 != t % 2));
    let balances = bank.db.mysql_balances().await;
    assert_eq!(balances, expected_balances(&committed));
    let total: i64 = balances.iter().map(|(_, b)| b).sum();
    assert_eq!(total, ACCOUNTS * OPENING);
    assert_eq!(std::fs::metadata(&bank.log).unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_inside_a_saga_has_it_compensated() {
    let bank = bank(r#"transaction = "SAGA""#).await;
    let before = snapshot(&bank.db).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    mixed_changes(&mut conn).await;
    assert_ne!(snapshot(&bank.db).await, before, "each statement committed");
    conn.disconnect().await.unwrap();
    // Recovery (every 10 s by default) compensates a saga its session no longer runs.
    let patience = std::time::Duration::from_secs(60);
    let start = std::time::Instant::now();
    while snapshot(&bank.db).await != before {
        assert!(start.elapsed() < patience, "the saga was not compensated");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    while std::fs::metadata(&bank.log).is_ok_and(|m| m.len() > 0) {
        assert!(start.elapsed() < patience, "the saga log was not trimmed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

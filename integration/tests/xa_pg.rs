//! XA transactions on a sharded PostgreSQL database: the bank test (concurrent transfers
//! between accounts on two data sources; the total never changes, every committed transfer
//! is applied whole, nothing is left in pg_prepared_xacts), one-phase commit, a failed
//! transaction, the session statement and the application's own two-phase statements.

use dbmesh_integration::{
    expected_balances, pg_config, pg_connect, pg_sqlstate, transfer_statements, unique_instance_id,
    Extra, PgDatabase, Proxy, ShardedDb, TempDir, ACCOUNTS, BANK_RULES, OPENING,
};
use tokio_postgres::Client;

struct Bank {
    db: ShardedDb,
    instance: String,
    log: std::path::PathBuf,
    _dir: TempDir,
}

async fn bank(database_keys: &str) -> Bank {
    let dir = TempDir::new("xa_log");
    let instance = unique_instance_id();
    let log = dir.path.join("xa.log");
    let extra = Extra {
        database_keys: database_keys.to_string(),
        tables: format!(
            "[transaction]\ninstance_id = \"{instance}\"\nlog_path = \"{}\"\n",
            log.display()
        ),
        ..Extra::default()
    };
    let db = ShardedDb::postgres_with(BANK_RULES, 2, &extra).await;
    let client = db.pg_client().await;
    client
        .batch_execute(
            "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    for id in 0..ACCOUNTS {
        client
            .batch_execute(&format!(
                "INSERT INTO account (id, balance) VALUES ({id}, {OPENING})"
            ))
            .await
            .unwrap();
    }
    Bank {
        db,
        instance,
        log,
        _dir: dir,
    }
}

/// One transfer in a transaction; true when COMMIT succeeded.
async fn transfer(client: &Client, from: i64, to: i64, amount: i64) -> bool {
    let mut ok = client.batch_execute("BEGIN").await.is_ok();
    for sql in transfer_statements(from, to, amount) {
        ok = ok && client.batch_execute(&sql).await.is_ok();
    }
    if ok && client.batch_execute("COMMIT").await.is_ok() {
        return true;
    }
    let _ = client.batch_execute("ROLLBACK").await;
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_keep_the_total_and_apply_whole() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut clients = Vec::new();
    for client in 0..6u64 {
        let dsn = bank.db.pg_dsn();
        clients.push(tokio::spawn(async move {
            let conn = pg_connect(&dsn).await.unwrap();
            conn.batch_execute("SET lock_timeout = '10s'")
                .await
                .unwrap();
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
                if transfer(&conn, from, to, amount).await {
                    done.push((from, to, amount));
                }
            }
            done
        }));
    }
    let mut committed = Vec::new();
    for c in clients {
        committed.extend(c.await.unwrap());
    }
    assert!(
        committed.len() >= 100,
        "most transfers commit: {}",
        committed.len()
    );
    assert!(committed.iter().any(|(f, t, _)| f % 2 != t % 2));
    let balances = bank.db.pg_balances().await;
    assert_eq!(balances, expected_balances(&committed));
    let client = bank.db.pg_client().await;
    let messages = client
        .simple_query("SELECT SUM(balance) FROM account")
        .await
        .unwrap();
    let total: i64 = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
            _ => None,
        })
        .expect("a sum");
    assert_eq!(total, ACCOUNTS * OPENING);
    assert!(bank.db.pg_prepared(&bank.instance).await.is_empty());
    let log = std::fs::metadata(&bank.log).expect("two-phase commits wrote the log");
    assert_eq!(
        log.len(),
        0,
        "the log is trimmed once every branch finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_participant_commits_in_one_phase_without_the_log() {
    let bank = bank(r#"transaction = "XA""#).await;
    let client = bank.db.pg_client().await;
    assert!(transfer(&client, 1, 3, 10).await, "both accounts on ds_1");
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 3, 10)])
    );
    assert!(!bank.log.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_rolls_back_every_branch() {
    let bank = bank(r#"transaction = "XA""#).await;
    let client = bank.db.pg_client().await;
    client.batch_execute("BEGIN").await.unwrap();
    for sql in transfer_statements(1, 2, 10) {
        client.batch_execute(&sql).await.unwrap();
    }
    let e = client
        .batch_execute("INSERT INTO account (id, balance) VALUES (0, 1)")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "23505");
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(bank.db.pg_balances().await, expected_balances(&[]));
    assert!(bank.db.pg_prepared(&bank.instance).await.is_empty());
    client.batch_execute("BEGIN").await.unwrap();
    for sql in transfer_statements(1, 2, 10) {
        client.batch_execute(&sql).await.unwrap();
    }
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(bank.db.pg_balances().await, expected_balances(&[]));
    assert!(transfer(&client, 1, 2, 10).await);
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 2, 10)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_statement_switches_a_local_database_to_xa() {
    let bank = bank("").await;
    let client = bank.db.pg_client().await;
    assert!(transfer(&client, 1, 2, 5).await);
    assert!(!bank.log.exists(), "LOCAL transactions write no log");
    client
        .batch_execute("SET dbmesh_transaction_type = 'XA'")
        .await
        .unwrap();
    assert!(transfer(&client, 1, 2, 5).await);
    assert!(bank.log.exists(), "the XA commit wrote its decision");
    // The extended protocol (what most drivers use) sets it too.
    client
        .execute("SET dbmesh_transaction_type = 'LOCAL'", &[])
        .await
        .unwrap();
    std::fs::remove_file(&bank.log).unwrap();
    assert!(transfer(&client, 1, 2, 5).await);
    assert!(!bank.log.exists(), "back to LOCAL: no decision written");
    client.batch_execute("BEGIN").await.unwrap();
    let e = client
        .batch_execute("SET dbmesh_transaction_type = 'LOCAL'")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "25001");
    client.batch_execute("ROLLBACK").await.unwrap();
    // An unknown type is refused by name, and the session stays usable.
    let e = client
        .batch_execute("SET dbmesh_transaction_type = 'TWO_PHASE'")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22023");
    assert!(format!("{e:?}").contains("TWO_PHASE"), "{e:?}");
    // SAGA is one too (see saga_pg.rs): a transfer under it commits.
    client
        .batch_execute("SET dbmesh_transaction_type = 'SAGA'")
        .await
        .unwrap();
    assert!(transfer(&client, 1, 2, 5).await);
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 2, 5), (1, 2, 5), (1, 2, 5), (1, 2, 5)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_two_phase_statements_are_refused_on_several_data_sources() {
    let bank = bank(r#"transaction = "XA""#).await;
    let client = bank.db.pg_client().await;
    let e = client
        .batch_execute("PREPARE TRANSACTION 'mine'")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000");
    assert!(
        e.to_string().contains("transaction type XA")
            || format!("{e:?}").contains("transaction type XA"),
        "{e:?}"
    );
    assert!(
        transfer(&client, 3, 4, 1).await,
        "the connection stays usable"
    );
    // The extended protocol (Parse/Bind/Execute) is refused the same way, not sent to the
    // default data source.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("UPDATE account SET balance = balance - 1 WHERE id = 3")
        .await
        .unwrap();
    let e = client
        .execute("PREPARE TRANSACTION 'mine_extended'", &[])
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000", "{e:?}");
    assert!(format!("{e:?}").contains("transaction type XA"), "{e:?}");
    client.batch_execute("ROLLBACK").await.unwrap();
    let e = client
        .execute("COMMIT PREPARED 'mine_extended'", &[])
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000", "{e:?}");
    assert!(
        transfer(&client, 3, 4, 1).await,
        "the connection stays usable"
    );
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(3, 4, 1), (3, 4, 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_two_phase_statements_pass_through_on_one_data_source() {
    let ds = PgDatabase::create("xa_single");
    let logical = dbmesh_integration::unique_name("xa_single");
    let proxy = Proxy::start(&pg_config(&logical, &ds.url(), "")).await;
    let client = pg_connect(&proxy.pg_dsn("app", "app-secret", &logical))
        .await
        .unwrap();
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let gid = format!("'{logical}'");
    client
        .batch_execute(&format!(
            "BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION {gid}"
        ))
        .await
        .unwrap();
    client
        .batch_execute(&format!("COMMIT PREPARED {gid}"))
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_failing_to_prepare_rolls_back_the_prepared_ones() {
    let bank = bank(r#"transaction = "XA""#).await;
    let client = bank.db.pg_client().await;
    client.batch_execute("BEGIN").await.unwrap();
    for sql in transfer_statements(1, 2, 10) {
        client.batch_execute(&sql).await.unwrap();
    }
    // PostgreSQL cannot prepare a transaction that used a temporary table (on ds_0).
    client
        .batch_execute("CREATE TEMP TABLE scratch (a INT)")
        .await
        .unwrap();
    let e = client.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "0A000", "{e:?}");
    assert!(format!("{e:?}").contains("ds_0"), "{e:?}");
    assert_eq!(bank.db.pg_balances().await, expected_balances(&[]));
    assert!(bank.db.pg_prepared(&bank.instance).await.is_empty());
    assert!(!bank.log.exists(), "no decision was taken");
    assert!(transfer(&client, 1, 2, 10).await, "the session goes on");
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 2, 10)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_transaction_leaves_nothing_behind() {
    let bank = bank(r#"transaction = "XA""#).await;
    {
        let leaving = bank.db.pg_client().await;
        leaving.batch_execute("BEGIN").await.unwrap();
        for sql in transfer_statements(1, 2, 10) {
            leaving.batch_execute(&sql).await.unwrap();
        }
    }
    for _ in 0..3 {
        let client = bank.db.pg_client().await;
        assert!(transfer(&client, 1, 2, 1).await);
    }
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 2, 1), (1, 2, 1), (1, 2, 1)])
    );
    assert!(bank.db.pg_prepared(&bank.instance).await.is_empty());
}

//! XA transactions on a sharded MariaDB database: the bank test (concurrent transfers
//! between accounts on two data sources; the total never changes and every committed
//! transfer is applied whole), one-phase commit for one participant, rollback, the
//! session statement choosing the type, and the application's own XA statements.

use dbmesh_integration::{
    expected_balances, mysql_config, server_error, transfer_statements, unique_instance_id, Extra,
    MysqlDatabase, Proxy, ShardedDb, TempDir, ACCOUNTS, BANK_RULES, OPENING,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

struct Bank {
    db: ShardedDb,
    instance: String,
    log: std::path::PathBuf,
    _dir: TempDir,
}

/// The bank with `database_keys` in its database table (`transaction = "XA"`, or none).
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
    let db = ShardedDb::mysql_with(BANK_RULES, 2, &extra).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    conn.query_drop(
        "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    for id in 0..ACCOUNTS {
        conn.query_drop(format!(
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

/// Runs one transfer in a transaction; true when COMMIT succeeded.
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
async fn concurrent_transfers_keep_the_total_and_apply_whole() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut clients = Vec::new();
    for client in 0..6u64 {
        let opts = bank.db.mysql_opts();
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            conn.query_drop("SET innodb_lock_wait_timeout = 10")
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
                if transfer(&mut conn, from, to, amount).await {
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
    assert!(
        committed.iter().any(|(f, t, _)| f % 2 != t % 2),
        "some transfers span both data sources"
    );
    let balances = bank.db.mysql_balances().await;
    assert_eq!(balances, expected_balances(&committed));
    let total: i64 = balances.iter().map(|(_, b)| b).sum();
    assert_eq!(total, ACCOUNTS * OPENING);
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    let through: Option<i64> = conn
        .query_first("SELECT SUM(balance) FROM account")
        .await
        .unwrap();
    assert_eq!(through, Some(ACCOUNTS * OPENING));
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());
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
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    assert!(transfer(&mut conn, 0, 2, 10).await, "both accounts on ds_0");
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(0, 2, 10)])
    );
    assert!(!bank.log.exists(), "one phase writes no decision");
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_undoes_every_branch() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    for sql in transfer_statements(1, 2, 10) {
        conn.query_drop(sql).await.unwrap();
    }
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(bank.db.mysql_balances().await, expected_balances(&[]));
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());
    // The connection goes on, and the next transaction commits.
    assert!(transfer(&mut conn, 1, 2, 10).await);
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 10)])
    );
}

/// Under `autocommit = 0` (PyMySQL's and mysql-connector's default) there is no BEGIN:
/// the first statement opens the transaction, and under XA that is a global one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_off_sessions_run_xa_transactions_without_begin() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("SET autocommit = 0").await.unwrap();
    for sql in transfer_statements(1, 2, 7) {
        conn.query_drop(sql).await.unwrap();
    }
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(bank.db.mysql_balances().await, expected_balances(&[]));
    assert!(!bank.log.exists(), "a rollback writes no decision");

    for sql in transfer_statements(1, 2, 7) {
        conn.query_drop(sql).await.unwrap();
    }
    // Still open: another session sees nothing of it yet.
    assert_eq!(bank.db.mysql_balances().await, expected_balances(&[]));
    conn.query_drop("COMMIT").await.unwrap();
    assert!(
        bank.log.exists(),
        "the commit over two data sources was two-phase (its decision was logged)"
    );
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 7)])
    );
    // The next statement opens the next global transaction.
    for sql in transfer_statements(2, 1, 3) {
        conn.query_drop(sql).await.unwrap();
    }
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 7), (2, 1, 3)])
    );
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());

    // Under LOCAL the same session commits per data source, writing no decision.
    std::fs::remove_file(&bank.log).unwrap();
    conn.query_drop("SET dbmesh_transaction_type = 'LOCAL'")
        .await
        .unwrap();
    for sql in transfer_statements(1, 2, 1) {
        conn.query_drop(sql).await.unwrap();
    }
    conn.query_drop("COMMIT").await.unwrap();
    assert!(!bank.log.exists(), "LOCAL writes no decision");
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 7), (2, 1, 3), (1, 2, 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_statement_switches_a_local_database_to_xa() {
    let bank = bank("").await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    assert!(transfer(&mut conn, 1, 2, 5).await);
    assert!(!bank.log.exists(), "LOCAL transactions write no log");
    conn.query_drop("SET dbmesh_transaction_type = 'XA'")
        .await
        .unwrap();
    assert!(transfer(&mut conn, 1, 2, 5).await);
    assert!(bank.log.exists(), "the XA commit wrote its decision");
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 5), (1, 2, 5)])
    );

    conn.query_drop("BEGIN").await.unwrap();
    let (code, state, message) = server_error(
        conn.query_drop("SET dbmesh_transaction_type = 'LOCAL'")
            .await,
    );
    assert_eq!((code, state.as_str()), (1568, "25001"), "{message}");
    conn.query_drop("ROLLBACK").await.unwrap();
    let (code, _, message) = server_error(
        conn.query_drop("SET dbmesh_transaction_type = 'SAGA'")
            .await,
    );
    assert_eq!(code, 1235, "{message}");
    assert!(message.contains("SAGA"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_xa_is_refused_on_several_data_sources() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    let (code, state, message) = server_error(conn.query_drop("XA START 'app_xid'").await);
    assert_eq!((code, state.as_str()), (1235, "0A000"), "{message}");
    assert!(message.contains("transaction type XA"), "{message}");
    // The connection stays usable.
    assert!(transfer(&mut conn, 3, 4, 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_xa_passes_through_on_one_data_source() {
    let ds = MysqlDatabase::create("xa_single");
    let logical = dbmesh_integration::unique_name("xa_single");
    let proxy = Proxy::start(&mysql_config(&logical, &ds.url(), "")).await;
    let mut conn = Conn::new(proxy.app_opts(&logical)).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let xid = format!("'{logical}'");
    conn.query_drop(format!("XA START {xid}")).await.unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    conn.query_drop(format!("XA END {xid}")).await.unwrap();
    conn.query_drop(format!("XA PREPARE {xid}")).await.unwrap();
    let recovered: Vec<(i64, i64, i64, Vec<u8>)> = conn.query("XA RECOVER").await.unwrap();
    assert!(recovered.iter().any(|r| r.3 == logical.as_bytes()));
    conn.query_drop(format!("XA COMMIT {xid}")).await.unwrap();
    let rows: Vec<i32> = conn.query("SELECT id FROM t").await.unwrap();
    assert_eq!(rows, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_lost_before_commit_rolls_back_every_branch() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    for sql in transfer_statements(1, 2, 10) {
        conn.query_drop(sql).await.unwrap();
    }
    assert!(bank.db.mysql_kill_connections_to(1).await >= 1);
    let (code, _, message) = server_error(conn.query_drop("COMMIT").await);
    assert!(message.contains("ds_1"), "{code} {message}");
    assert!(message.contains("rolled back"), "{code} {message}");
    assert_eq!(bank.db.mysql_balances().await, expected_balances(&[]));
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());
    assert!(!bank.log.exists(), "no decision was taken");
    assert!(
        transfer(&mut conn, 1, 2, 10).await,
        "the connection stays usable"
    );
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 10)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_transaction_leaves_nothing_behind() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut leaving = Conn::new(bank.db.mysql_opts()).await.unwrap();
    leaving.query_drop("BEGIN").await.unwrap();
    for sql in transfer_statements(1, 2, 10) {
        leaving.query_drop(sql).await.unwrap();
    }
    leaving.disconnect().await.unwrap();
    // The pooled connections are clean and the rows unlocked: later transactions on
    // the same rows commit.
    for _ in 0..3 {
        let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
        assert!(transfer(&mut conn, 1, 2, 1).await);
        conn.disconnect().await.unwrap();
    }
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 1), (1, 2, 1), (1, 2, 1)])
    );
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());
}

/// `SET autocommit = 1` would commit an open transaction on one server; inside an XA
/// branch MariaDB refuses it, and the global transaction goes on until COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_autocommit_inside_an_implicit_xa_transaction_is_refused_and_it_goes_on() {
    let bank = bank(r#"transaction = "XA""#).await;
    let mut conn = Conn::new(bank.db.mysql_opts()).await.unwrap();
    conn.query_drop("SET autocommit = 0").await.unwrap();
    for sql in transfer_statements(1, 2, 7) {
        conn.query_drop(sql).await.unwrap();
    }
    let (code, state, message) = server_error(conn.query_drop("SET autocommit = 1").await);
    assert_eq!((code, state.as_str()), (1399, "XAE07"), "{message}");
    assert_eq!(bank.db.mysql_balances().await, expected_balances(&[]));
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        bank.db.mysql_balances().await,
        expected_balances(&[(1, 2, 7)])
    );
    assert!(bank.db.mysql_prepared(&bank.instance).await.is_empty());
}

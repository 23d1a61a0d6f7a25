//! XA recovery: dbmesh (a child process built with the `failpoints` feature) aborts in the
//! middle of a cross-shard COMMIT, at each failure point, and a restarted instance (or,
//! with the shared table log, a second instance) finishes the transaction: committed when
//! the decision was logged, rolled back otherwise. Afterwards the total is intact, the
//! transfer is applied whole or not at all, and no prepared branch is left.

use std::time::{Duration, Instant};

use dbmesh_integration::{
    expected_balances, free_port, listen_on, pg_connect, pg_listen_on, transfer_statements,
    unique_instance_id, ChildProxy, Extra, ShardedDb, TempDir, ACCOUNTS, BANK_RULES, OPENING,
};
use mysql_async::prelude::*;

/// How long recovery may take before the test gives up (it normally takes well under a
/// second: recovery runs at start-up and every 200 ms here).
const PATIENCE: Duration = Duration::from_secs(30);

/// The bank on MySQL or PostgreSQL, served in process (LOCAL, for setup) and as `toml`
/// for child processes (XA).
async fn bank(pg: bool) -> ShardedDb {
    let extra = Extra::default();
    let db = if pg {
        ShardedDb::postgres_with(BANK_RULES, 2, &extra).await
    } else {
        ShardedDb::mysql_with(BANK_RULES, 2, &extra).await
    };
    let mut setup = vec![
        "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL)"
            .to_string(),
    ];
    for id in 0..ACCOUNTS {
        setup.push(format!(
            "INSERT INTO account (id, balance) VALUES ({id}, {OPENING})"
        ));
    }
    if pg {
        let client = db.pg_client().await;
        for sql in setup {
            client.batch_execute(&sql).await.unwrap();
        }
    } else {
        let mut conn = mysql_async::Conn::new(db.mysql_opts()).await.unwrap();
        for sql in setup {
            conn.query_drop(sql).await.unwrap();
        }
    }
    db
}

/// The child's config: the bank database as XA, with `transaction` as its
/// `[transaction]` table, on `port`.
fn child_toml(db: &ShardedDb, pg: bool, transaction: &str, port: u16) -> String {
    let toml = db
        .toml()
        .replacen("\nrules = [", "\ntransaction = \"XA\"\nrules = [", 1);
    let toml = format!("{toml}\n[transaction]\nrecovery_interval_ms = 200\n{transaction}\n");
    if pg {
        pg_listen_on(&toml, port)
    } else {
        listen_on(&toml, port)
    }
}

/// Transfers 100 from account 1 (ds_1) to account 2 (ds_0) through the child on `port`;
/// the child aborts at its failpoint, so COMMIT must fail.
async fn transfer_into_crash(db: &ShardedDb, pg: bool, port: u16) {
    if pg {
        let dsn = format!(
            "host=127.0.0.1 port={port} user={} password={} dbname={}",
            dbmesh_integration::APP_USER,
            dbmesh_integration::APP_PASSWORD,
            db.logical
        );
        let client = pg_connect(&dsn).await.unwrap();
        client.batch_execute("BEGIN").await.unwrap();
        for sql in transfer_statements(1, 2, 100) {
            client.batch_execute(&sql).await.unwrap();
        }
        assert!(client.batch_execute("COMMIT").await.is_err());
    } else {
        let opts = mysql_async::OptsBuilder::from_opts(db.mysql_opts()).tcp_port(port);
        let mut conn = mysql_async::Conn::new(opts).await.unwrap();
        conn.query_drop("BEGIN").await.unwrap();
        for sql in transfer_statements(1, 2, 100) {
            conn.query_drop(sql).await.unwrap();
        }
        assert!(conn.query_drop("COMMIT").await.is_err());
    }
}

async fn prepared(db: &ShardedDb, pg: bool, instance: &str) -> Vec<String> {
    if pg {
        db.pg_prepared(instance).await
    } else {
        db.mysql_prepared(instance).await
    }
}

async fn balances(db: &ShardedDb, pg: bool) -> Vec<(i64, i64)> {
    if pg {
        db.pg_balances().await
    } else {
        db.mysql_balances().await
    }
}

/// Waits until no branch of `instance` is prepared on the backends.
async fn until_resolved(db: &ShardedDb, pg: bool, instance: &str, recoverer: &ChildProxy) {
    let start = Instant::now();
    loop {
        let left = prepared(db, pg, instance).await;
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "recovery left {left:?} prepared:\n{}",
            recoverer.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One crash at `point` and a restart of the same instance with the same log file.
async fn crash_and_restart(pg: bool, point: &str, committed: bool) {
    let db = bank(pg).await;
    let dir = TempDir::new("xa_recovery");
    let instance = unique_instance_id();
    let transaction = format!(
        "instance_id = \"{instance}\"\nlog_path = \"{}\"",
        dir.path.join("xa.log").display()
    );
    let port = free_port();
    let toml = child_toml(&db, pg, &transaction, port);
    let mut crashing =
        ChildProxy::start_with_env(&toml, port, &[("DBMESH_FAILPOINTS", point)]).await;
    transfer_into_crash(&db, pg, port).await;
    let status = crashing.wait_exit().await;
    assert!(!status.success(), "{point}: dbmesh aborted ({status})");
    assert!(crashing.log().contains(point), "{}", crashing.log());
    if point != "xa_after_first_prepare" {
        assert!(
            !prepared(&db, pg, &instance).await.is_empty(),
            "{point}: the crash left prepared branches"
        );
    }
    let port = free_port();
    let restarted = ChildProxy::start(&child_toml(&db, pg, &transaction, port), port).await;
    until_resolved(&db, pg, &instance, &restarted).await;
    let expected = if committed {
        expected_balances(&[(1, 2, 100)])
    } else {
        expected_balances(&[])
    };
    assert_eq!(balances(&db, pg).await, expected, "{point}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_crash_after_the_first_prepare_rolls_back() {
    crash_and_restart(false, "xa_after_first_prepare", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_crash_after_every_prepare_rolls_back() {
    crash_and_restart(false, "xa_after_prepare", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_crash_after_the_decision_commits() {
    crash_and_restart(false, "xa_after_decision", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_crash_after_the_first_commit_commits() {
    crash_and_restart(false, "xa_after_first_commit", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crash_after_every_prepare_rolls_back() {
    crash_and_restart(true, "xa_after_prepare", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crash_after_the_decision_commits() {
    crash_and_restart(true, "xa_after_decision", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crash_after_the_first_commit_commits() {
    crash_and_restart(true, "xa_after_first_commit", true).await;
}

/// With the shared table log, a second instance resolves what a dead one left, once the
/// dead one's lease has run out, and trims the log.
async fn second_instance_recovers(pg: bool) {
    let db = bank(pg).await;
    let log = format!(
        "log = \"table\"\nlog_data_source = \"{}.ds_0\"\nlease_ms = 1000",
        db.logical
    );
    let first = unique_instance_id();
    let port = free_port();
    let toml = child_toml(&db, pg, &format!("instance_id = \"{first}\"\n{log}"), port);
    let mut crashing =
        ChildProxy::start_with_env(&toml, port, &[("DBMESH_FAILPOINTS", "xa_after_decision")])
            .await;
    transfer_into_crash(&db, pg, port).await;
    assert!(!crashing.wait_exit().await.success());
    assert_eq!(
        prepared(&db, pg, &first).await.len(),
        2,
        "both branches prepared"
    );
    let second = unique_instance_id();
    let port = free_port();
    let toml = child_toml(&db, pg, &format!("instance_id = \"{second}\"\n{log}"), port);
    let survivor = ChildProxy::start(&toml, port).await;
    until_resolved(&db, pg, &first, &survivor).await;
    assert_eq!(balances(&db, pg).await, expected_balances(&[(1, 2, 100)]));
    let total: i64 = balances(&db, pg).await.iter().map(|(_, b)| b).sum();
    assert_eq!(total, ACCOUNTS * OPENING);
    // The decision is trimmed in the same pass that committed the branches.
    let start = Instant::now();
    loop {
        let count = if pg {
            db.pg_direct_query(0, "SELECT count(*) FROM dbmesh_xa_log")
                .await[0]
                .get::<_, i64>(0)
        } else {
            db.mysql_direct_query::<i64>(0, "SELECT count(*) FROM dbmesh_xa_log")
                .await[0]
        };
        if count == 0 {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the log kept {count} decisions:\n{}",
            survivor.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_second_instance_recovers_through_the_shared_log() {
    second_instance_recovers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_second_instance_recovers_through_the_shared_log() {
    second_instance_recovers(true).await;
}

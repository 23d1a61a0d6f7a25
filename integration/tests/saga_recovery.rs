//! SAGA recovery: dbmesh (a child process built with the `failpoints` feature) aborts in
//! the middle of a saga, after its second statement committed, or half-way through the
//! compensations of a ROLLBACK, and the restarted instance compensates what the crash
//! left, from the saga log: every balance is back to its before-image and the log is
//! trimmed.

use std::time::{Duration, Instant};

use dbmesh_integration::{
    expected_balances, free_port, listen_on, unique_instance_id, ChildProxy, Extra, ShardedDb,
    TempDir, ACCOUNTS, BANK_RULES, OPENING,
};
use mysql_async::prelude::*;

/// How long recovery may take before the test gives up (it runs at start-up and every
/// 200 ms here, so it normally takes well under a second).
const PATIENCE: Duration = Duration::from_secs(30);

async fn bank() -> ShardedDb {
    let db = ShardedDb::mysql_with(BANK_RULES, 2, &Extra::default()).await;
    let mut conn = mysql_async::Conn::new(db.mysql_opts()).await.unwrap();
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
    db
}

/// The child's config: the bank as SAGA, with `transaction` in its `[transaction]`
/// table, on `port`.
fn child_toml(db: &ShardedDb, transaction: &str, port: u16) -> String {
    let toml = db
        .toml()
        .replacen("\nrules = [", "\ntransaction = \"SAGA\"\nrules = [", 1);
    listen_on(
        &format!("{toml}\n[transaction]\nrecovery_interval_ms = 200\n{transaction}\n"),
        port,
    )
}

async fn client(db: &ShardedDb, port: u16) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::from_opts(db.mysql_opts()).tcp_port(port);
    mysql_async::Conn::new(opts).await.unwrap()
}

/// Waits until the balances are the opening ones again.
async fn until_compensated(db: &ShardedDb, recoverer: &ChildProxy) {
    let start = Instant::now();
    loop {
        let now = db.mysql_balances().await;
        if now == expected_balances(&[]) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "recovery left {now:?}:\n{}",
            recoverer.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a child aborting at `point`, runs `work` against it (which must hit the
/// point), checks what the crash left with `left`, restarts the instance and waits for
/// recovery to restore every before-image.
async fn crash_and_recover(point: &str, rollback: bool, left: Vec<(i64, i64)>) {
    let dir = TempDir::new("saga_recovery");
    let log = dir.path.join("saga.log");
    let transaction = format!(
        "instance_id = \"{}\"\nlog_path = \"{}\"",
        unique_instance_id(),
        log.display()
    );
    let db = bank().await;
    let logged = || async { std::fs::metadata(&log).unwrap().len() > 0 };
    crash_then(
        &db,
        point,
        rollback,
        left,
        &transaction,
        &transaction,
        logged,
    )
    .await;
}

/// [`crash_and_recover`] with the crashing and the recovering instances' `[transaction]`
/// keys, and `logged` telling whether the saga log holds anything.
async fn crash_then<F, Fut>(
    db: &ShardedDb,
    point: &str,
    rollback: bool,
    left: Vec<(i64, i64)>,
    transaction: &str,
    recovering: &str,
    logged: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let port = free_port();
    let mut crashing = ChildProxy::start_with_env(
        &child_toml(db, transaction, port),
        port,
        &[("DBMESH_FAILPOINTS", point)],
    )
    .await;
    let mut conn = client(db, port).await;
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET balance = balance - 100 WHERE id = 1")
        .await
        .unwrap();
    let second = conn
        .query_drop("UPDATE account SET balance = balance + 100 WHERE id = 2")
        .await;
    if rollback {
        second.unwrap();
        assert!(conn.query_drop("ROLLBACK").await.is_err(), "{point}");
    } else {
        assert!(
            second.is_err(),
            "{point}: the second statement's OK never came"
        );
    }
    let status = crashing.wait_exit().await;
    assert!(!status.success(), "{point}: dbmesh aborted ({status})");
    assert!(crashing.log().contains(point), "{}", crashing.log());
    assert_eq!(
        db.mysql_balances().await,
        left,
        "{point}: what the crash left"
    );
    assert!(logged().await, "{point}: the saga is in the log");

    let port = free_port();
    let restarted = ChildProxy::start(&child_toml(db, recovering, port), port).await;
    until_compensated(db, &restarted).await;
    // The log is trimmed once the saga is compensated.
    let start = Instant::now();
    while logged().await {
        assert!(start.elapsed() < PATIENCE, "{}", restarted.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The restarted instance serves SAGA transactions as usual.
    let mut conn = client(db, port).await;
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE account SET balance = balance - 5 WHERE id = 3")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    let mut expected = expected_balances(&[]);
    expected[3].1 -= 5;
    assert_eq!(db.mysql_balances().await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_second_statement_is_compensated_after_restart() {
    // Both statements committed, the third never ran: recovery undoes both.
    crash_and_recover(
        "saga_after_statement_2",
        false,
        expected_balances(&[(1, 2, 100)]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_compensation_is_finished_after_restart() {
    // ROLLBACK undid the second statement (the last first), then the process died.
    let mut left = expected_balances(&[]);
    left[1].1 -= 100;
    crash_and_recover("saga_after_first_undo", true, left).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_compensates_a_dead_ones_saga_from_the_table_log() {
    let db = bank().await;
    let log = format!(
        "log = \"table\"\nlog_data_source = \"{}.ds_0\"\nlease_ms = 1000",
        db.logical
    );
    let dead = format!("instance_id = \"{}\"\n{log}", unique_instance_id());
    let second = format!("instance_id = \"{}\"\n{log}", unique_instance_id());
    let logged = || async {
        let n: Vec<i64> = db
            .mysql_direct_query(0, "SELECT COUNT(*) FROM dbmesh_saga_log")
            .await;
        n.first().copied().unwrap_or(0) > 0
    };
    crash_then(
        &db,
        "saga_after_statement_2",
        false,
        expected_balances(&[(1, 2, 100)]),
        &dead,
        &second,
        logged,
    )
    .await;
}

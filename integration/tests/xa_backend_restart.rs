//! A backend restarted mid-run: an XA bank whose second data source is a MariaDB server
//! of the test's own, killed (SIGKILL, as a crash) and started again while clients keep
//! transferring. Clients get errors meanwhile, never a torn transaction: afterwards the
//! total over both data sources is intact, and once recovery ran no prepared branch is
//! left on either server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmesh_integration::{
    transfer_statements, unique_instance_id, unique_name, MysqlDatabase, Proxy, TempDir,
    TempMariadb, ACCOUNTS, APP_PASSWORD, APP_USER, BANK_RULES, OPENING,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

/// How long the test waits for transfers to commit or recovery to finish before it gives
/// up (both normally take well under a second).
const PATIENCE: Duration = Duration::from_secs(60);

/// One transfer in a transaction; true when COMMIT succeeded. Errors (the restarted data
/// source, a lock wait) are expected: the caller goes on.
async fn transfer(conn: &mut Conn, from: i64, to: i64, amount: i64) -> Result<bool, ()> {
    let mut ok = conn.query_drop("BEGIN").await.is_ok();
    for sql in transfer_statements(from, to, amount) {
        ok = ok && conn.query_drop(sql).await.is_ok();
    }
    if ok && conn.query_drop("COMMIT").await.is_ok() {
        return Ok(true);
    }
    // A connection dbmesh closed is replaced by the caller.
    conn.query_drop("ROLLBACK").await.map_err(|_| ())?;
    Ok(false)
}

async fn total(opts: Vec<mysql_async::Opts>) -> i64 {
    let mut sum = 0;
    for o in opts {
        let mut conn = Conn::new(o).await.unwrap();
        let s: Option<i64> = conn
            .query_first("SELECT CAST(SUM(balance) AS SIGNED) FROM account")
            .await
            .unwrap();
        sum += s.unwrap_or(0);
        let _ = conn.disconnect().await;
    }
    sum
}

async fn prepared(opts: &[mysql_async::Opts], instance: &str) -> Vec<String> {
    let mut left = Vec::new();
    for o in opts {
        let Ok(mut conn) = Conn::new(o.clone()).await else {
            left.push("(server unreachable)".to_string());
            continue;
        };
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = conn.query("XA RECOVER").await.unwrap();
        left.extend(
            rows.into_iter()
                .map(|(_, _, _, d)| String::from_utf8_lossy(&d).into_owned())
                .filter(|d| d.starts_with(&format!("dbmesh-{instance}-"))),
        );
        let _ = conn.disconnect().await;
    }
    left
}

/// Waits until `committed` has grown by `more`, or gives up.
async fn until_committed(committed: &AtomicUsize, more: usize) {
    let target = committed.load(Ordering::SeqCst) + more;
    let start = Instant::now();
    while committed.load(Ordering::SeqCst) < target {
        assert!(
            start.elapsed() < PATIENCE,
            "transfers stopped committing ({} of {target})",
            committed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_backend_gives_errors_but_no_torn_transaction() {
    let mut server = TempMariadb::start("xa_restart", &[]).await;
    let physical = unique_name("bank1");
    let mut root = Conn::new(server.root_opts(None)).await.unwrap();
    root.query_drop(format!("CREATE DATABASE `{physical}`"))
        .await
        .unwrap();
    let _ = root.disconnect().await;
    let ds_0 = MysqlDatabase::create("bank0");

    let dir = TempDir::new("xa_restart");
    std::fs::write(dir.path.join("rules.toml"), BANK_RULES).unwrap();
    let logical = unique_name("bank");
    let instance = unique_instance_id();
    let toml = format!(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
connect_timeout_ms = 2000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{logical}"]

[databases.{logical}]
backend = "mysql"
default_data_source = "ds_0"
rules = ["{rules}"]
transaction = "XA"

[databases.{logical}.data_sources.ds_0]
url = "{url_0}"

[databases.{logical}.data_sources.ds_1]
url = "mysql://root:@127.0.0.1:{port}/{physical}"

[transaction]
instance_id = "{instance}"
log_path = "{log}"
recovery_interval_ms = 200
"#,
        rules = dir.path.join("rules.toml").display(),
        url_0 = ds_0.url(),
        port = server.port,
        log = dir.path.join("xa.log").display(),
    );
    let proxy = Proxy::start(&toml).await;
    let opts = proxy.app_opts(&logical);
    let direct = vec![ds_0.direct_opts(), server.root_opts(Some(&physical))];

    let mut conn = Conn::new(opts.clone()).await.unwrap();
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
    assert_eq!(total(direct.clone()).await, ACCOUNTS * OPENING);

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..4u64 {
        let (opts, stop, committed, failed) = (
            opts.clone(),
            stop.clone(),
            committed.clone(),
            failed.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (client + 1);
            let mut next = move |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n) as i64
            };
            let mut conn: Option<Conn> = None;
            while !stop.load(Ordering::SeqCst) {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match Conn::new(opts.clone()).await {
                        Ok(c) => {
                            let mut c = c;
                            let _ = c.query_drop("SET innodb_lock_wait_timeout = 5").await;
                            conn.insert(c)
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                };
                // Always across the two data sources (an even and an odd account).
                let a = 2 * next(ACCOUNTS as u64 / 2);
                let b = 2 * next(ACCOUNTS as u64 / 2) + 1;
                let (from, to) = if next(2) == 0 { (a, b) } else { (b, a) };
                match transfer(c, from, to, 1 + next(50)).await {
                    Ok(true) => {
                        committed.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(false) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(()) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        conn = None;
                    }
                }
            }
        }));
    }

    until_committed(&committed, 20).await;
    let failed_before = failed.load(Ordering::SeqCst);
    server.kill();
    // Transfers fail while ds_1 is down.
    let start = Instant::now();
    while failed.load(Ordering::SeqCst) < failed_before + 4 {
        assert!(
            start.elapsed() < PATIENCE,
            "no transfer failed with ds_1 down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart().await;
    until_committed(&committed, 20).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    // Recovery resolves what the crash left prepared (branches on ds_0 whose ds_1 branch
    // died, branches on ds_1 that survived the restart prepared).
    let start = Instant::now();
    loop {
        let left = prepared(&direct, &instance).await;
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "prepared branches left after recovery: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        total(direct.clone()).await,
        ACCOUNTS * OPENING,
        "no transfer was applied on one data source only"
    );
    let mut conn = Conn::new(opts).await.unwrap();
    let through: Option<i64> = conn
        .query_first("SELECT SUM(balance) FROM account")
        .await
        .unwrap();
    assert_eq!(through, Some(ACCOUNTS * OPENING));
}

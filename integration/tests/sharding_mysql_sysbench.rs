//! sysbench against a sharded MySQL database: `sbtest1` split by `id mod 2` over two data
//! sources. `prepare` goes through dbmesh (CREATE TABLE and CREATE INDEX fanned out, the
//! multi-row INSERTs split by id), then OLTP read/write, read-only and point-select
//! workloads run with server-side prepared statements (`--db-ps-mode=auto`) and without
//! (`disable`), and must end without a single error, every row still on the data source
//! its id chooses. Skipped (with a message) only when sysbench is not installed;
//! integration/setup/services.sh installs it.

use dbmesh_integration::{run_program, ShardedDb, APP_PASSWORD, APP_USER};

const SBTEST_RULES: &str = r#"
[tables.sbtest1]
nodes             = "ds_${0..1}.sbtest1"
database_strategy = { column = "id", algorithm = "id_mod" }

[algorithms.id_mod]
type           = "MOD"
sharding_count = 2
"#;

const TABLE_SIZE: u32 = 2000;

fn sysbench_installed() -> bool {
    std::process::Command::new("sysbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `sysbench <test> <args...> <command>` against the sharded database; returns
/// stdout, failing the test on a non-zero exit.
async fn sysbench(db: &ShardedDb, test: &str, args: &[&str], command: &str) -> String {
    let mut all: Vec<String> = vec![
        test.into(),
        "--db-driver=mysql".into(),
        "--mysql-host=127.0.0.1".into(),
        format!("--mysql-port={}", db.proxy.mysql_port()),
        format!("--mysql-user={APP_USER}"),
        format!("--mysql-password={APP_PASSWORD}"),
        format!("--mysql-db={}", db.logical),
        "--tables=1".into(),
        format!("--table-size={TABLE_SIZE}"),
        "--auto-inc=off".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all.push(command.into());
    let out = run_program("sysbench", &all, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stdout.contains("FATAL") && !stderr.contains("FATAL"),
        "sysbench {test} {command} {args:?}:\n{stdout}\n{stderr}"
    );
    stdout
}

/// The number after `label` in sysbench's report (`transactions:  514 (128.29 per sec.)`).
fn reported(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` in the sysbench report:\n{stdout}"))
}

/// Rows of sbtest1 on `ds_<i>`, and how many of them have an id of the wrong parity.
async fn rows_and_misplaced(db: &ShardedDb, i: usize) -> (i64, i64) {
    let sql = format!(
        "SELECT count(*), CAST(coalesce(sum(mod(id, 2) <> {i}), 0) AS SIGNED) FROM sbtest1"
    );
    let rows: Vec<(i64, i64)> = db.mysql_direct_query(i, &sql).await;
    rows[0]
}

async fn run_workload(db: &ShardedDb, test: &str, threads: &str, ps_mode: &str) {
    let stdout = sysbench(
        db,
        test,
        &[
            "--time=3",
            &format!("--threads={threads}"),
            &format!("--db-ps-mode={ps_mode}"),
            "--report-interval=0",
        ],
        "run",
    )
    .await;
    assert_eq!(
        reported(&stdout, "ignored errors:"),
        0,
        "{test} --db-ps-mode={ps_mode}:\n{stdout}"
    );
    assert!(
        reported(&stdout, "transactions:") > 10,
        "{test} --db-ps-mode={ps_mode}:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_prepares_and_runs_oltp_on_a_sharded_table() {
    if !sysbench_installed() {
        eprintln!("sysbench is not installed (integration/setup/services.sh installs it): skipped");
        return;
    }
    let db = ShardedDb::mysql(SBTEST_RULES, 2).await;
    sysbench(&db, "oltp_read_write", &["--threads=1"], "prepare").await;
    let mut total = 0;
    for i in 0..2 {
        let (rows, misplaced) = rows_and_misplaced(&db, i).await;
        assert_eq!((rows, misplaced), (i64::from(TABLE_SIZE) / 2, 0), "ds_{i}");
        total += rows;
        let indexes: Vec<String> = db
            .mysql_direct_query(
                i,
                "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'sbtest1' ORDER BY 1",
            )
            .await;
        assert_eq!(indexes, ["k_1_sbtest1", "PRIMARY"], "ds_{i}");
    }
    assert_eq!(total, i64::from(TABLE_SIZE));

    for ps_mode in ["auto", "disable"] {
        // One thread: a transaction holds row locks on both data sources, and a deadlock
        // between two of them spans two servers, which neither detects (see
        // docs/sharding.md, Transactions).
        run_workload(&db, "oltp_read_write", "1", ps_mode).await;
        // Ranges over both data sources, merged (SUM, ORDER BY, DISTINCT), concurrently.
        run_workload(&db, "oltp_read_only", "2", ps_mode).await;
        run_workload(&db, "oltp_point_select", "2", ps_mode).await;
    }
    for i in 0..2 {
        let (rows, misplaced) = rows_and_misplaced(&db, i).await;
        assert!(rows > 0, "ds_{i} lost its rows");
        assert_eq!(
            misplaced, 0,
            "rows of ds_{i} with an id of the other data source"
        );
    }

    sysbench(&db, "oltp_read_write", &[], "cleanup").await;
    for i in 0..2 {
        let tables: Vec<String> = db.mysql_direct_query(i, "SHOW TABLES").await;
        assert!(tables.is_empty(), "ds_{i} still has {tables:?}");
    }
}

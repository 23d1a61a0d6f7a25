//! pgbench's select-only workload through dbmesh in each query mode (simple, extended,
//! prepared), four clients for three seconds: every transaction succeeds.

use dbmesh_integration::{
    pg_config, pg_port, run_program, PgDatabase, Proxy, APP_PASSWORD, APP_USER,
};

async fn select_only(mode: &str) {
    let db = PgDatabase::create("pgbench");
    let init = run_program(
        "pgbench",
        &[
            "-i".into(),
            "-q".into(),
            "-s".into(),
            "1".into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            pg_port().to_string(),
            "-U".into(),
            "postgres".into(),
            db.name.clone(),
        ],
        &[],
    )
    .await;
    assert!(init.status.success(), "pgbench -i: {init:?}");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let args: Vec<String> = [
        "-S",
        "-M",
        mode,
        "-T",
        "3",
        "-c",
        "4",
        "-j",
        "2",
        "-n",
        "-h",
        "127.0.0.1",
        "-U",
        APP_USER,
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([proxy.postgres_port().to_string(), "shop".to_string()])
    .collect();
    let out = run_program("pgbench", &args, &[("PGPASSWORD", APP_PASSWORD)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench -M {mode}:\n{stdout}\n{stderr}"
    );
    let value = |prefix: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"));
        line[prefix.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unreadable: {line}"))
    };
    assert_eq!(
        value("number of failed transactions:"),
        0,
        "{stdout}\n{stderr}"
    );
    assert!(
        value("number of transactions actually processed:") > 100,
        "{stdout}"
    );
    assert!(stdout.contains(&format!("query mode: {mode}")), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_select_only_with_simple_queries() {
    select_only("simple").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_select_only_with_the_extended_protocol() {
    select_only("extended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_select_only_with_prepared_statements() {
    select_only("prepared").await;
}

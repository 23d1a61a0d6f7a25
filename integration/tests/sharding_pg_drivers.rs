//! Real PostgreSQL drivers and pgbench against a *sharded* logical database. Their tables
//! are single tables (no rule names them), so every statement runs on the default data
//! source `ds_0`, through the sharded session (statement splitting, passthrough of the
//! extended protocol, transaction tracking) rather than the plain pump: the differential
//! driver scripts must see exactly what a direct connection to `ds_0` sees.

use dbmesh_integration::{
    pg_port, run_driver_check, run_program, Endpoint, ShardedDb, Shards, APP_PASSWORD, APP_USER,
    ORDERS_RULES,
};

fn ds0_name(db: &ShardedDb) -> String {
    match &db.shards {
        Shards::Postgres(dbs) => dbs[0].name.clone(),
        Shards::Mysql(_) => unreachable!("a PostgreSQL sharded database"),
    }
}

async fn differential(program: &str, script: &str) {
    let db = ShardedDb::postgres(ORDERS_RULES, 2).await;
    let ds0 = ds0_name(&db);
    let direct = Endpoint {
        port: pg_port(),
        user: "postgres",
        password: "",
        database: &ds0,
    };
    let through = Endpoint {
        port: db.proxy.postgres_port(),
        user: APP_USER,
        password: APP_PASSWORD,
        database: &db.logical,
    };
    run_driver_check(program, script, direct, through).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_on_a_sharded_database_matches_a_direct_connection() {
    differential("python3", "pg_psycopg_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pg_on_a_sharded_database_matches_a_direct_connection() {
    differential("node", "pg_node_check.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_on_a_sharded_database_matches_a_direct_connection() {
    differential("bash", "pg_psql_check.sh").await;
}

/// pgbench's TPC-B-like workload (BEGIN, three UPDATEs, SELECT, INSERT, END) in `mode`,
/// on its own tables, which are single tables of the sharded database.
async fn tpcb(mode: &str) {
    let db = ShardedDb::postgres(ORDERS_RULES, 2).await;
    let ds0 = ds0_name(&db);
    let init = run_program(
        "pgbench",
        &[
            "-i",
            "-q",
            "-s",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &pg_port().to_string(),
            "-U",
            "postgres",
            &ds0,
        ]
        .map(String::from),
        &[],
    )
    .await;
    assert!(init.status.success(), "pgbench -i: {init:?}");
    let port = db.proxy.postgres_port().to_string();
    let args = [
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
        &port,
        &db.logical,
    ]
    .map(String::from);
    let out = run_program("pgbench", &args, &[("PGPASSWORD", APP_PASSWORD)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench -M {mode}:\n{stdout}\n{stderr}"
    );
    let value = |prefix: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"))
    };
    assert_eq!(
        value("number of failed transactions:"),
        0,
        "{stdout}\n{stderr}"
    );
    assert!(
        value("number of transactions actually processed:") > 20,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_with_simple_queries_on_a_sharded_database() {
    tpcb("simple").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_with_the_extended_protocol_on_a_sharded_database() {
    tpcb("extended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_with_prepared_statements_on_a_sharded_database() {
    tpcb("prepared").await;
}

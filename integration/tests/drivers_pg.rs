//! Real PostgreSQL drivers through dbmesh: each pg_* script in integration/drivers/ runs the
//! same checks over a direct connection and through the proxy and fails on any difference in
//! values, column metadata, SQLSTATEs or transaction states. Requirements are installed by
//! integration/setup/services.sh.

use dbmesh_integration::{
    pg_config, pg_port, run_program, PgDatabase, Proxy, APP_PASSWORD, APP_USER,
};

async fn run_driver_check(program: &str, script: &str) {
    let db = PgDatabase::create("pgdrv");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers");
    let args = vec![
        format!("{dir}/{script}"),
        "--direct".into(),
        format!("127.0.0.1:{}", pg_port()),
        "--direct-user".into(),
        "postgres".into(),
        "--direct-password=".into(),
        "--direct-db".into(),
        db.name.clone(),
        "--proxy".into(),
        format!("127.0.0.1:{}", proxy.postgres_port()),
        "--proxy-user".into(),
        APP_USER.into(),
        "--proxy-password".into(),
        APP_PASSWORD.into(),
        "--proxy-db".into(),
        "shop".into(),
    ];
    let out = run_program(program, &args, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} found differences between dbmesh and a direct connection:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(" passed, 0 failed") && !stdout.contains("\n0 passed"),
        "{script} printed no summary:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_plain_prepared_and_server_side_cursors_match_a_direct_connection() {
    run_driver_check("python3", "pg_psycopg_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_reflection_core_and_orm_match_a_direct_connection() {
    run_driver_check("python3", "pg_sqlalchemy_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pg_named_statements_and_row_descriptions_match_a_direct_connection() {
    run_driver_check("node", "pg_node_check.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_script_output_matches_a_direct_connection() {
    run_driver_check("bash", "pg_psql_check.sh").await;
}

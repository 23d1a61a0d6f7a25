//! Real MySQL drivers through dbmesh: each script in integration/drivers/ runs the same checks
//! over a direct connection and through the proxy and fails on any difference in values or
//! column metadata. Requirements are installed by integration/setup/services.sh.

use std::process::Command;

use dbmesh_integration::{mysql_config, mysql_port, MysqlDatabase, Proxy, APP_PASSWORD, APP_USER};

async fn run_driver_check(program: &str, script: &str) {
    let db = MysqlDatabase::create("drv");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers");
    let args = [
        format!("{dir}/{script}"),
        "--direct".into(),
        format!("127.0.0.1:{}", mysql_port()),
        "--direct-user".into(),
        "root".into(),
        "--direct-password=".into(),
        "--direct-db".into(),
        db.name.clone(),
        "--proxy".into(),
        format!("127.0.0.1:{}", proxy.mysql_port()),
        "--proxy-user".into(),
        APP_USER.into(),
        "--proxy-password".into(),
        APP_PASSWORD.into(),
        "--proxy-db".into(),
        "shop".into(),
    ];
    let program = program.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&program).args(&args).current_dir(dir).output()
    })
    .await
    .unwrap()
    .expect("driver runtime is installed (run integration/setup/services.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} found differences between dbmesh and a direct connection:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(" passed, 0 failed"),
        "{script} printed no summary:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_sees_what_a_direct_connection_sees() {
    run_driver_check("python3", "pymysql_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connector_prepared_statements_match_a_direct_connection() {
    run_driver_check("python3", "mysql_connector_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_mysql2_query_and_execute_match_a_direct_connection() {
    run_driver_check("node", "mysql2_check.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_output_matches_a_direct_connection() {
    run_driver_check("bash", "mariadb_cli_check.sh").await;
}

//! Real MySQL drivers through dbmesh: each script in integration/drivers/ runs the same checks
//! over a direct connection and through the proxy and fails on any difference in values or
//! column metadata. Requirements are installed by integration/setup/services.sh.

use dbmesh_integration::{
    mysql_config, mysql_port, Endpoint, MysqlDatabase, Proxy, APP_PASSWORD, APP_USER,
};

async fn run_driver_check(program: &str, script: &str) {
    let db = MysqlDatabase::create("drv");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let direct = Endpoint {
        port: mysql_port(),
        user: "root",
        password: "",
        database: &db.name,
    };
    let through = Endpoint {
        port: proxy.mysql_port(),
        user: APP_USER,
        password: APP_PASSWORD,
        database: "shop",
    };
    dbmesh_integration::run_driver_check(program, script, direct, through).await;
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

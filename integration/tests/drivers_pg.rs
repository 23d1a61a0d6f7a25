//! Real PostgreSQL drivers through dbmesh: each pg_* script in integration/drivers/ runs the
//! same checks over a direct connection and through the proxy and fails on any difference in
//! values, column metadata, SQLSTATEs or transaction states. Requirements are installed by
//! integration/setup/services.sh.

use dbmesh_integration::{pg_config, pg_port, Endpoint, PgDatabase, Proxy, APP_PASSWORD, APP_USER};

async fn run_driver_check(program: &str, script: &str) {
    let db = PgDatabase::create("pgdrv");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let direct = Endpoint {
        port: pg_port(),
        user: "postgres",
        password: "",
        database: &db.name,
    };
    let through = Endpoint {
        port: proxy.postgres_port(),
        user: APP_USER,
        password: APP_PASSWORD,
        database: "shop",
    };
    dbmesh_integration::run_driver_check(program, script, direct, through).await;
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

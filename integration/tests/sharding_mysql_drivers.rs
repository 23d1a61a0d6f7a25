//! Real MySQL clients against a *sharded* logical database (ORDERS_RULES).
//!
//! First the differential driver scripts of integration/drivers/: their tables are single
//! tables (no rule names them), so every statement runs on the default data source `ds_0`,
//! but through the sharded session (parsing, planning, prepared statements analysed by
//! the router): they must see exactly what a direct connection to `ds_0` sees.

use dbmesh_integration::{
    mysql_port, run_driver_check, Endpoint, ShardedDb, Shards, APP_PASSWORD, APP_USER, ORDERS_RULES,
};

fn ds0_name(db: &ShardedDb) -> String {
    match &db.shards {
        Shards::Mysql(dbs) => dbs[0].name.clone(),
        Shards::Postgres(_) => unreachable!("a MySQL sharded database"),
    }
}

async fn differential(program: &str, script: &str) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let ds0 = ds0_name(&db);
    let direct = Endpoint {
        port: mysql_port(),
        user: "root",
        password: "",
        database: &ds0,
    };
    let through = Endpoint {
        port: db.proxy.mysql_port(),
        user: APP_USER,
        password: APP_PASSWORD,
        database: &db.logical,
    };
    run_driver_check(program, script, direct, through).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_on_a_sharded_database_matches_a_direct_connection() {
    differential("python3", "pymysql_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connector_on_a_sharded_database_matches_a_direct_connection() {
    differential("python3", "mysql_connector_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_mysql2_on_a_sharded_database_matches_a_direct_connection() {
    differential("node", "mysql2_check.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_on_a_sharded_database_matches_a_direct_connection() {
    differential("bash", "mariadb_cli_check.sh").await;
}

//! Real MySQL clients against a *sharded* logical database (ORDERS_RULES).
//!
//! First the differential driver scripts of integration/drivers/: their tables are single
//! tables (no rule names them), so every statement runs on the default data source `ds_0`,
//! but through the sharded session (parsing, planning, prepared statements analysed by
//! the router): they must see exactly what a direct connection to `ds_0` sees.
//!
//! Then each driver does real work on the sharded tables (integration/drivers/sharded_*):
//! CREATE TABLE fanned out, inserts with and without the key (the generated key as the
//! driver's last insert id), batched inserts, reads by key and across shards, updates,
//! deletes, transactions over both data sources; every row's placement is checked on the
//! data sources directly.

use dbmesh_integration::{
    mysql_port, run_driver_check, run_program, Endpoint, ShardedDb, Shards, APP_PASSWORD, APP_USER,
    ORDERS_RULES,
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

/// Runs a sharded workload script against a fresh sharded database (no tables yet: the
/// script creates them through dbmesh) and fails on any check it reports failing.
async fn workload(program: &str, script: &str, extra: &[&str]) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let Shards::Mysql(shards) = &db.shards else {
        unreachable!("a MySQL sharded database")
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers");
    let mut args = vec![
        format!("{dir}/{script}"),
        "--proxy".into(),
        format!("127.0.0.1:{}", db.proxy.mysql_port()),
        "--proxy-user".into(),
        APP_USER.into(),
        format!("--proxy-password={APP_PASSWORD}"),
        "--proxy-db".into(),
        db.logical.clone(),
        "--direct".into(),
        format!("127.0.0.1:{}", mysql_port()),
        "--direct-user".into(),
        "root".into(),
        "--direct-password=".into(),
    ];
    for shard in shards {
        args.extend(["--shard".to_string(), shard.name.clone()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers/node_modules");
    let out = run_program(program, &args, &[("NODE_PATH", modules)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {extra:?} failed:\n{stdout}\n{stderr}"
    );
    let skipped = stdout.lines().any(|l| l.starts_with("SKIP"));
    assert!(
        stdout.contains(" passed, 0 failed") && (skipped || !stdout.contains("\n0 passed")),
        "{script} {extra:?} printed no summary:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_works_on_sharded_tables() {
    workload("python3", "sharded_dbapi.py", &["--driver", "pymysql"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connector_prepared_statements_work_on_sharded_tables() {
    workload(
        "python3",
        "sharded_dbapi.py",
        &["--driver", "connector-pure"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connector_c_extension_works_on_sharded_tables() {
    workload(
        "python3",
        "sharded_dbapi.py",
        &["--driver", "connector-cext"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_mysql2_query_and_execute_work_on_sharded_tables() {
    workload("node", "sharded_mysql2.js", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_session_works_on_sharded_tables() {
    workload("bash", "sharded_mariadb_cli.sh", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_core_and_orm_on_pymysql_work_on_sharded_tables() {
    workload("python3", "sharded_sqlalchemy.py", &["--driver", "pymysql"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_core_and_orm_on_mysql_connector_work_on_sharded_tables() {
    workload(
        "python3",
        "sharded_sqlalchemy.py",
        &["--driver", "mysqlconnector"],
    )
    .await;
}

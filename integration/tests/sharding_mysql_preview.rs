//! `PREVIEW <sql>` answers with the statements a plan would run, one row per data node, and
//! runs nothing; on a database without sharding rules it shows the default data source
//! and the statement unchanged.

use dbmesh_integration::{
    mysql_config, run_program, MysqlDatabase, Proxy, ShardedDb, APP_PASSWORD, APP_USER,
    ORDERS_RULES,
};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

/// Column names and rows of a PREVIEW.
async fn preview(conn: &mut Conn, sql: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut result = conn.query_iter(sql).await.unwrap();
    let columns = result
        .columns()
        .map(|cols| cols.iter().map(|c| c.name_str().into_owned()).collect())
        .unwrap_or_default();
    let rows: Vec<Row> = result.collect().await.unwrap();
    let rows = rows
        .into_iter()
        .map(mysql_async::from_row::<(String, String)>)
        .collect();
    (columns, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_lists_every_data_node_and_runs_nothing() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    let (columns, rows) = preview(
        &mut conn,
        "PREVIEW CREATE TABLE t_order (order_id BIGINT PRIMARY KEY, user_id INT NOT NULL)",
    )
    .await;
    assert_eq!(columns, ["data_source_name", "actual_sql"]);
    let nodes: Vec<(&str, bool)> = rows
        .iter()
        .map(|(ds, sql)| (ds.as_str(), sql.starts_with("CREATE TABLE t_order_")))
        .collect();
    assert_eq!(
        nodes,
        [
            ("ds_0", true),
            ("ds_0", true),
            ("ds_1", true),
            ("ds_1", true)
        ]
    );
    for i in 0..2 {
        let mut direct = Conn::new(db.mysql_direct(i)).await.unwrap();
        let tables: Vec<String> = direct.query("SHOW TABLES").await.unwrap();
        assert!(tables.is_empty(), "PREVIEW created {tables:?} on ds_{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_the_rewritten_sql_of_a_single_node() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    let (_, rows) = preview(
        &mut conn,
        "preview SELECT amount FROM t_order WHERE user_id = 7 AND order_id = 12;",
    )
    .await;
    assert_eq!(
        rows,
        [(
            "ds_1".to_string(),
            "SELECT amount FROM t_order_0 WHERE user_id = 7 AND order_id = 12".to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_on_an_unsharded_database_shows_the_default_data_source() {
    let physical = MysqlDatabase::create("preview_plain");
    let proxy = Proxy::start(&mysql_config("shop", &physical.url(), "")).await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let (columns, rows) = preview(&mut conn, "PREVIEW SELECT * FROM anything").await;
    assert_eq!(columns, ["data_source_name", "actual_sql"]);
    assert_eq!(
        rows,
        [("ds_0".to_string(), "SELECT * FROM anything".to_string())]
    );
}

/// The `mariadb` client negotiates MariaDB's extended metadata, whose column definitions
/// have one more field: result sets dbmesh writes itself (PREVIEW, SHOW DATABASES) must
/// have it too, or the client fails with "Received malformed packet".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_client_reads_preview_and_show_databases() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let args: Vec<String> = [
        "--no-defaults",
        "--protocol=TCP",
        "--host=127.0.0.1",
        &format!("--port={}", db.proxy.mysql_port()),
        &format!("--user={APP_USER}"),
        &format!("--password={APP_PASSWORD}"),
        "-B",
        "-N",
        "-e",
        "PREVIEW SELECT * FROM t_order WHERE user_id = 7 AND order_id = 12; SHOW DATABASES",
        &db.logical,
    ]
    .map(String::from)
    .to_vec();
    let out = run_program("mariadb", &args, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        format!(
            "ds_1\tSELECT * FROM t_order_0 WHERE user_id = 7 AND order_id = 12\n{}\n",
            db.logical
        )
    );
}

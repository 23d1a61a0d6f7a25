//! The basic promise: a MySQL client connects to dbmesh and its statements run on the
//! logical database's data source.

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_run_on_the_default_data_source() {
    let db = MysqlDatabase::create("smoke");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    conn.exec_drop("INSERT INTO t VALUES (?, ?)", (1, "héllo 👋"))
        .await
        .unwrap();
    let rows: Vec<(i32, String)> = conn.query("SELECT id, v FROM t").await.unwrap();
    assert_eq!(rows, vec![(1, "héllo 👋".to_string())]);
    // The row is really in the physical database.
    let mut direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let n: Option<i64> = direct.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1));
    conn.disconnect().await.unwrap();
    direct.disconnect().await.unwrap();
}

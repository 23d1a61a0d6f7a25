//! LOAD DATA LOCAL INFILE through dbmesh: the backend asks for the file, dbmesh passes the
//! request to the client and streams the client's file to the backend.

use dbmesh_integration::{mysql_config, server_error, MysqlDatabase, Proxy, TempDir};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder, WhiteListFsHandler};

/// A database with table `t`, a proxy, a direct connection, a proxied connection allowed to
/// send the file, and the file (`rows` lines of `id<TAB>text`) in a directory kept alive by
/// the returned guard.
async fn load(rows: usize) -> (MysqlDatabase, Proxy, Conn, Conn, String, TempDir) {
    let db = MysqlDatabase::create("infile");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))")
        .await
        .unwrap();
    let dir = TempDir::new("infile");
    let path = dir.path.join("rows.tsv");
    let data: String = (0..rows)
        .map(|i| format!("{i}\tvalue number {i} 👋\n"))
        .collect();
    std::fs::write(&path, data).unwrap();
    let path = path.to_str().unwrap().to_string();
    let opts = OptsBuilder::from_opts(proxy.app_opts("shop"))
        .local_infile_handler(Some(WhiteListFsHandler::new([path.clone()])));
    let proxied = Conn::new(opts).await.unwrap();
    (db, proxy, direct, proxied, path, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_file_is_streamed_to_the_backend() {
    // ~3 MB: many packets, more than one flush towards the backend.
    let rows = 100_000;
    let (_db, _proxy, mut direct, mut proxied, path, _dir) = load(rows).await;
    proxied
        .query_drop(format!(
            "LOAD DATA LOCAL INFILE '{path}' INTO TABLE t CHARACTER SET utf8mb4"
        ))
        .await
        .unwrap();
    assert_eq!(proxied.affected_rows(), rows as u64);
    let (n, sample): (usize, String) = direct
        .query_first("SELECT COUNT(*), (SELECT v FROM t WHERE id = 99999) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, sample.as_str()), (rows, "value number 99999 👋"));
    // The connection is at a command boundary.
    let one: Option<i64> = proxied.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_rows_become_warnings_and_a_missing_table_is_an_error() {
    let (_db, _proxy, _direct, mut proxied, path, _dir) = load(3).await;
    let sql = format!("LOAD DATA LOCAL INFILE '{path}' INTO TABLE t");
    proxied.query_drop(&sql).await.unwrap();
    // With LOCAL, MariaDB skips duplicate keys with a warning each instead of failing.
    proxied.query_drop(&sql).await.unwrap();
    assert_eq!((proxied.affected_rows(), proxied.get_warnings()), (0, 3));
    let missing = format!("LOAD DATA LOCAL INFILE '{path}' INTO TABLE no_such_table");
    assert_eq!(server_error(proxied.query_drop(&missing).await).0, 1146);
    let n: Option<i64> = proxied.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(3));
}

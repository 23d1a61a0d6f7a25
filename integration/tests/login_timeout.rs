//! A client that connects and never logs in is disconnected after the login timeout, on
//! both listeners, instead of holding a task and a socket forever.

use std::time::{Duration, Instant};

use dbmesh_integration::{MysqlDatabase, PgDatabase, Proxy};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns how long that took.
async fn time_until_closed(port: u16) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue, // the MySQL greeting
            Err(_) => panic!("the silent client was still connected after 30 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_disconnected_after_the_login_timeout() {
    let my = MysqlDatabase::create("login");
    let pg = PgDatabase::create("login");
    let config = format!(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
postgres_listen = "127.0.0.1:0"

[[users]]
name = "app"
password = "app-secret"
databases = ["*"]

[databases.shop]
backend = "mysql"
[databases.shop.data_sources.ds_0]
url = "{}"

[databases.shop_pg]
backend = "postgres"
[databases.shop_pg.data_sources.ds_0]
url = "{}"
"#,
        my.url(),
        pg.url()
    );
    let proxy = Proxy::start(&config).await;
    let (mysql, postgres) = tokio::join!(
        time_until_closed(proxy.mysql_port()),
        time_until_closed(proxy.postgres_port())
    );
    let limit = dbmesh_integration::dbmesh::server::LOGIN_TIMEOUT;
    for (name, took) in [("mysql", mysql), ("postgres", postgres)] {
        assert!(
            took >= limit - Duration::from_millis(500),
            "{name} closed too early: {took:?}"
        );
        assert!(
            took < limit + Duration::from_secs(5),
            "{name} closed late: {took:?}"
        );
    }
}

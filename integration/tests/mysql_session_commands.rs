//! COM_CHANGE_USER and COM_RESET_CONNECTION: a fresh session on the same client connection.

use dbmesh_integration::{mysql_config, server_error, MysqlDatabase, Proxy};
use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Conn};

/// `app` may use `shop`; `clerk` (password `clerk-pw`) may use `shop2` only.
async fn two_users() -> (MysqlDatabase, MysqlDatabase, Proxy) {
    let db = MysqlDatabase::create("sess");
    let db2 = MysqlDatabase::create("sess2");
    let extra = format!(
        r#"
[[users]]
name = "clerk"
password = "clerk-pw"
databases = ["shop2"]

[databases.shop2]
backend = "mysql"

[databases.shop2.data_sources.ds_0]
url = "{}"
"#,
        db2.url()
    );
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), &extra)).await;
    (db, db2, proxy)
}

async fn databases(conn: &mut Conn) -> Vec<String> {
    conn.query("SHOW DATABASES").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_switches_user_database_and_resets_the_session() {
    let (_db, db2, proxy) = two_users().await;
    dbmesh_integration::mariadb_exec(&format!(
        "CREATE TABLE `{}`.marker (v VARCHAR(10)); INSERT INTO `{}`.marker VALUES ('shop2')",
        db2.name, db2.name
    ));
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("SET @x = 42").await.unwrap();
    conn.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    let stmt = conn.prep("SELECT 1").await.unwrap();
    assert_eq!(databases(&mut conn).await, vec!["shop"]);

    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some("clerk".into()))
            .with_pass(Some("clerk-pw".into()))
            .with_db_name(Some("shop2".into())),
    )
    .await
    .unwrap();

    assert_eq!(databases(&mut conn).await, vec!["shop2"]);
    let marker: Option<String> = conn.query_first("SELECT v FROM marker").await.unwrap();
    assert_eq!(marker.as_deref(), Some("shop2"));
    let (x, mode): (Option<i64>, String) = conn
        .query_first("SELECT @x, @@sql_mode")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x, None, "user variables are gone");
    assert_ne!(mode, "", "session variables are back to their defaults");
    // Statements prepared by the previous user are closed.
    assert_eq!(server_error(conn.exec_drop(&stmt, ()).await).0, 1243);
    // The previous user's database is now off limits.
    assert_eq!(server_error(conn.query_drop("USE shop").await).0, 1044);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_with_a_wrong_password_is_refused_and_the_previous_user_stays() {
    let (_db, _db2, proxy) = two_users().await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("SET @x = 42").await.unwrap();

    let refused = conn
        .change_user(
            ChangeUserOpts::default()
                .with_user(Some("clerk".into()))
                .with_pass(Some("wrong".into()))
                .with_db_name(Some("shop2".into())),
        )
        .await;
    let (code, state, message) = server_error(refused);
    assert_eq!((code, state.as_str()), (1045, "28000"));
    assert!(message.contains("'clerk'"), "{message}");

    // mysql_async neither reconnects nor drops the connection: it keeps using it. As on
    // MariaDB, the previous user stays logged in and the session is reset.
    assert_eq!(databases(&mut conn).await, vec!["shop"]);
    let x: Option<Option<i64>> = conn.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(None));
    assert_eq!(server_error(conn.query_drop("USE shop2").await).0, 1044);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_to_a_database_the_user_may_not_use_is_refused() {
    let (_db, _db2, proxy) = two_users().await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let refused = conn
        .change_user(
            ChangeUserOpts::default()
                .with_user(Some("clerk".into()))
                .with_pass(Some("clerk-pw".into()))
                .with_db_name(Some("shop".into())),
        )
        .await;
    assert_eq!(server_error(refused).0, 1044);
    assert_eq!(databases(&mut conn).await, vec!["shop"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connection_clears_variables_and_statements_and_keeps_the_connection() {
    let db = MysqlDatabase::create("reset");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    let default_mode: String = direct
        .query_first("SELECT @@sql_mode")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(default_mode, "");

    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("SET @x = 'before'").await.unwrap();
    conn.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE tmp (id INT)")
        .await
        .unwrap();
    let stmt = conn.prep("SELECT ? * 2").await.unwrap();
    let two: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
    assert_eq!(two, Some(2));

    assert!(
        conn.reset().await.unwrap(),
        "COM_RESET_CONNECTION is supported"
    );

    let (x, mode): (Option<String>, String) = conn
        .query_first("SELECT @x, @@sql_mode")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x, None);
    assert_eq!(mode, default_mode);
    assert_eq!(
        server_error(conn.query_drop("SELECT * FROM tmp").await).0,
        1146
    );
    assert_eq!(server_error(conn.exec_drop(&stmt, (1,)).await).0, 1243);
    // Still in the same logical database, and prepared statements work again.
    let n: Option<i64> = conn.exec_first("SELECT ? + 1", (41,)).await.unwrap();
    assert_eq!(n, Some(42));
    let schema: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(schema, Some(db.name.clone()));
}

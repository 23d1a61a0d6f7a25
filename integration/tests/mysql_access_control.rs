//! Who may log in and which logical databases they see: passwords, unknown and forbidden
//! databases (at connect, with USE and with COM_INIT_DB), and USE switching data sources.

use dbmesh_integration::{
    mariadb_exec, mysql_config, server_error, MysqlDatabase, Proxy, RawClient, APP_PASSWORD,
    APP_USER,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

/// Logical databases `shop` and `shop2` (app may use both) and `vault` (only `auditor`),
/// each on its own physical database holding a `marker` table that names it.
struct Setup {
    dbs: Vec<MysqlDatabase>,
    proxy: Proxy,
}

async fn setup() -> Setup {
    let dbs: Vec<MysqlDatabase> = ["acl_shop", "acl_shop2", "acl_vault"]
        .iter()
        .map(|p| MysqlDatabase::create(p))
        .collect();
    for (db, logical) in dbs.iter().zip(["shop", "shop2", "vault"]) {
        mariadb_exec(&format!(
            "CREATE TABLE `{0}`.marker (v VARCHAR(10)); INSERT INTO `{0}`.marker VALUES ('{logical}')",
            db.name
        ));
    }
    let extra = format!(
        r#"
[[users]]
name = "auditor"
password = "auditor-pw"
databases = ["vault"]

[databases.shop2]
backend = "mysql"
[databases.shop2.data_sources.ds_0]
url = "{}"

[databases.vault]
backend = "mysql"
[databases.vault.data_sources.ds_0]
url = "{}"
"#,
        dbs[1].url(),
        dbs[2].url()
    );
    let config = mysql_config("shop", &dbs[0].url(), &extra).replace(
        r#"databases = ["shop"]"#,
        r#"databases = ["shop", "shop2"]"#,
    );
    let proxy = Proxy::start(&config).await;
    Setup { dbs, proxy }
}

async fn marker(conn: &mut Conn) -> String {
    conn.query_first("SELECT v FROM marker")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_are_refused_with_1045() {
    let s = setup().await;
    let wrong = Conn::new(
        s.proxy
            .mysql_opts(APP_USER, "not-the-password", Some("shop")),
    )
    .await;
    let (code, state, message) = server_error(wrong);
    assert_eq!((code, state.as_str()), (1045, "28000"));
    assert_eq!(
        message,
        "Access denied for user 'app'@'127.0.0.1' (using password: YES)"
    );

    let nobody = Conn::new(s.proxy.mysql_opts("nobody", "x", Some("shop"))).await;
    assert_eq!(server_error(nobody).0, 1045);
    let empty = Conn::new(s.proxy.mysql_opts(APP_USER, "", Some("shop"))).await;
    let (code, _, message) = server_error(empty);
    assert_eq!(code, 1045);
    assert!(message.ends_with("(using password: NO)"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_is_refused_with_1049_at_connect_and_on_use() {
    let s = setup().await;
    let at_connect = Conn::new(s.proxy.mysql_opts(APP_USER, APP_PASSWORD, Some("nope"))).await;
    let (code, state, message) = server_error(at_connect);
    assert_eq!((code, state.as_str()), (1049, "42000"));
    assert_eq!(message, "Unknown database 'nope'");

    let mut conn = Conn::new(s.proxy.app_opts("shop")).await.unwrap();
    assert_eq!(server_error(conn.query_drop("USE nope").await).0, 1049);
    // The physical database behind a logical one is not a logical database.
    let physical = format!("USE `{}`", s.dbs[0].name);
    assert_eq!(server_error(conn.query_drop(physical).await).0, 1049);
    // The session stays where it was.
    assert_eq!(marker(&mut conn).await, "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_the_user_may_not_use_is_refused_with_1044() {
    let s = setup().await;
    let at_connect = Conn::new(s.proxy.mysql_opts(APP_USER, APP_PASSWORD, Some("vault"))).await;
    let (code, state, message) = server_error(at_connect);
    assert_eq!((code, state.as_str()), (1044, "42000"));
    assert_eq!(
        message,
        "Access denied for user 'app'@'127.0.0.1' to database 'vault'"
    );

    let mut conn = Conn::new(s.proxy.app_opts("shop")).await.unwrap();
    assert_eq!(server_error(conn.query_drop("USE vault").await).0, 1044);
    assert_eq!(marker(&mut conn).await, "shop");

    let mut auditor = Conn::new(s.proxy.mysql_opts("auditor", "auditor-pw", Some("vault")))
        .await
        .unwrap();
    assert_eq!(marker(&mut auditor).await, "vault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_switches_the_data_source_statements_run_on() {
    let s = setup().await;
    let mut conn = Conn::new(s.proxy.app_opts("shop")).await.unwrap();
    assert_eq!(marker(&mut conn).await, "shop");
    conn.query_drop("USE shop2").await.unwrap();
    assert_eq!(marker(&mut conn).await, "shop2");
    let prepared: Option<String> = conn
        .exec_first("SELECT v FROM marker WHERE ? = 1", (1,))
        .await
        .unwrap();
    assert_eq!(prepared.as_deref(), Some("shop2"));
    conn.query_drop("USE `shop`").await.unwrap();
    assert_eq!(marker(&mut conn).await, "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_init_db_checks_and_switches_like_use() {
    let s = setup().await;
    let mut raw = RawClient::login(s.proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    let init_db = |db: &str| [&[0x02u8][..], db.as_bytes()].concat();
    let ok = raw.command(&init_db("shop2")).await;
    assert_eq!(ok[0].1[0], 0x00);
    let rows = raw.command(b"\x03SELECT v FROM marker").await;
    assert!(rows.iter().any(|(_, p)| p == b"\x05shop2"), "{rows:?}");
    let refused = raw.command(&init_db("vault")).await;
    assert_eq!(dbmesh_integration::err_code(&refused[0].1).unwrap().0, 1044);
    let unknown = raw.command(&init_db("nope")).await;
    assert_eq!(dbmesh_integration::err_code(&unknown[0].1).unwrap().0, 1049);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_databases_lists_only_the_logical_databases_the_user_may_use() {
    let s = setup().await;
    let mut app = Conn::new(s.proxy.app_opts("shop")).await.unwrap();
    let listed: Vec<String> = app.query("SHOW DATABASES").await.unwrap();
    assert_eq!(listed, vec!["shop", "shop2"]);
    let schemas: Vec<String> = app.query("show schemas").await.unwrap();
    assert_eq!(schemas, listed);

    let mut auditor = Conn::new(s.proxy.mysql_opts("auditor", "auditor-pw", None))
        .await
        .unwrap();
    let listed: Vec<String> = auditor.query("SHOW DATABASES").await.unwrap();
    assert_eq!(listed, vec!["vault"]);
}

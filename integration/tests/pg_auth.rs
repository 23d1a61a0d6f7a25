//! Logging in to dbmesh's PostgreSQL port: SCRAM-SHA-256 (default), md5 and cleartext users,
//! each asked for its own method; wrong passwords and unknown users get 28P01, unknown
//! databases 3D000, a database the user may not use 42501, and a MySQL logical database an
//! error.

use dbmesh_integration::pg_frontend::startup;
use dbmesh_integration::{
    mysql_config, pg_config, pg_connect, pg_sqlstate, pg_user, MysqlDatabase, PgDatabase, PgRaw,
    Proxy,
};

/// AuthenticationSASL, AuthenticationMD5Password, AuthenticationCleartextPassword.
const SASL: i32 = 10;
const MD5: i32 = 5;
const CLEARTEXT: i32 = 3;

async fn setup() -> (PgDatabase, MysqlDatabase, Proxy) {
    let db = PgDatabase::create("pgauth");
    let my = MysqlDatabase::create("pgauth");
    let mut users = String::new();
    users += &pg_user("scram_user", "s3cret scram é", "scram-sha-256", &["shop"]);
    users += &pg_user("md5_user", "s3cret md5", "md5", &["shop"]);
    users += &pg_user("clear_user", "s3cret clear", "password", &["shop"]);
    users += &pg_user("default_user", "s3cret default", "scram-sha-256", &["*"]);
    users += &pg_user("other_user", "s3cret other", "md5", &["other"]);
    // A MySQL logical database next to the PostgreSQL one.
    let mysql = mysql_config("other", &my.url(), "");
    let mysql_db = &mysql[mysql.find("[databases.other]").unwrap()..];
    let toml = format!("{}\n{users}\n{mysql_db}", pg_config("shop", &db.url(), ""));
    (db, my, Proxy::start(&toml).await)
}

fn dsn(proxy: &Proxy, user: &str, password: &str, db: &str) -> String {
    proxy.pg_dsn(user, &format!("'{password}'"), db)
}

/// The authentication request dbmesh answers a startup packet for `user` with.
async fn method_asked(proxy: &Proxy, user: &str) -> i32 {
    let mut c = PgRaw::connect(proxy.postgres_port()).await;
    c.send(&startup(3, 0, &[("user", user), ("database", "shop")]))
        .await;
    let m = c.read().await.expect("an authentication request");
    assert_eq!(m.tag, b'R');
    i32::from_be_bytes(m.body[..4].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_logs_in_with_its_configured_method() {
    let (db, _my, proxy) = setup().await;
    for (user, password, method) in [
        ("scram_user", "s3cret scram é", SASL),
        ("md5_user", "s3cret md5", MD5),
        ("clear_user", "s3cret clear", CLEARTEXT),
        ("app", "app-secret", SASL),
    ] {
        assert_eq!(method_asked(&proxy, user).await, method, "{user}");
        let c = pg_connect(&dsn(&proxy, user, password, "shop"))
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        let row = c
            .query_one("SELECT current_database(), current_user", &[])
            .await
            .unwrap();
        // Backend-side identity is the data source's, whoever logged in to dbmesh.
        assert_eq!(row.get::<_, String>(0), db.name);
        assert_eq!(row.get::<_, String>(1), "postgres");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_get_28p01() {
    let (_db, _my, proxy) = setup().await;
    for (user, password) in [
        ("scram_user", "s3cret scram e"),
        ("md5_user", "S3cret md5"),
        ("clear_user", "s3cret clear "),
        ("app", ""),
        ("nobody", "app-secret"),
    ] {
        let e = pg_connect(&dsn(&proxy, user, password, "shop"))
            .await
            .unwrap_err();
        assert_eq!(pg_sqlstate(&e), "28P01", "{user}: {e}");
    }
    // An unknown user sees SCRAM too, like the real ones: no way to probe names.
    assert_eq!(method_asked(&proxy, "nobody").await, SASL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_errors_name_the_database() {
    let (_db, _my, proxy) = setup().await;
    let e = pg_connect(&dsn(&proxy, "app", "app-secret", "nosuchdb"))
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "3D000", "{e}");
    assert!(
        e.as_db_error().unwrap().message().contains("nosuchdb"),
        "{e:?}"
    );

    // other_user may use "other" only.
    let e = pg_connect(&dsn(&proxy, "other_user", "s3cret other", "shop"))
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42501", "{e}");
    assert!(e.as_db_error().unwrap().message().contains("shop"), "{e:?}");

    // "other" is a MySQL logical database: not reachable on the PostgreSQL port.
    for (user, password) in [
        ("other_user", "s3cret other"),
        ("default_user", "s3cret default"),
    ] {
        let e = pg_connect(&dsn(&proxy, user, password, "other"))
            .await
            .unwrap_err();
        assert_eq!(pg_sqlstate(&e), "3D000", "{user}: {e}");
        assert!(
            e.as_db_error().unwrap().message().contains("other"),
            "{e:?}"
        );
    }
    // Without a database name, the user name is the database, as in PostgreSQL.
    let e = pg_connect(&format!(
        "host=127.0.0.1 port={} user=default_user password='s3cret default'",
        proxy.postgres_port()
    ))
    .await
    .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "3D000", "{e}");
    assert!(
        e.as_db_error().unwrap().message().contains("default_user"),
        "{e:?}"
    );
}

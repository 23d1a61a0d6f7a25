//! dbmesh authenticating to a PostgreSQL backend that asks for SCRAM-SHA-256 or md5. The test
//! servers use trust, so the "backend" here is a second dbmesh whose users require those
//! methods: the outer proxy's data source points at the inner proxy.

use dbmesh_integration::{pg_config, pg_connect, PgDatabase, Proxy};

async fn query_through_chain(method: &str) {
    let db = PgDatabase::create("chain");
    let inner_users = format!(
        r#"
[[users]]
name = "inner"
password = "p@ss w0rd/é"
postgres_auth = "{method}"
databases = ["shop"]
"#
    );
    let inner = Proxy::start(&pg_config("shop", &db.url(), &inner_users)).await;
    // The password needs percent-encoding in the URL.
    let url = format!(
        "postgres://inner:p%40ss%20w0rd%2F%C3%A9@127.0.0.1:{}/shop",
        inner.postgres_port()
    );
    let outer = Proxy::start(&pg_config("front", &url, "")).await;
    let client = pg_connect(&outer.pg_dsn("app", "app-secret", "front"))
        .await
        .unwrap();
    let row = client
        .query_one("SELECT $1::int + 1, current_database()", &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, String>(1), db.name);

    // A wrong password on the backend side is reported with the data source named.
    let bad_url = format!(
        "postgres://inner:wrong@127.0.0.1:{}/shop",
        inner.postgres_port()
    );
    let outer_bad = Proxy::start(&pg_config("front", &bad_url, "")).await;
    let err = pg_connect(&outer_bad.pg_dsn("app", "app-secret", "front"))
        .await
        .unwrap_err();
    let db_err = err.as_db_error().expect("a server error");
    assert_eq!(db_err.code().code(), "08006", "{db_err}");
    assert!(db_err.message().contains("ds_0"), "{db_err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_to_a_scram_backend() {
    query_through_chain("scram-sha-256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_to_an_md5_backend() {
    query_through_chain("md5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_to_a_cleartext_backend() {
    query_through_chain("password").await;
}

//! The basic promise on the PostgreSQL side: a client connects to dbmesh and its statements
//! run on the logical database's data source.

use dbmesh_integration::{pg_config, pg_connect, PgDatabase, Proxy, APP_PASSWORD, APP_USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_run_on_the_default_data_source() {
    let db = PgDatabase::create("pgsmoke");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let client = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    client
        .execute("INSERT INTO t VALUES ($1, $2)", &[&1i32, &"héllo 👋"])
        .await
        .unwrap();
    let row = client.query_one("SELECT id, v FROM t", &[]).await.unwrap();
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, String>(1)),
        (1, "héllo 👋".to_string())
    );
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    let n: i64 = direct
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

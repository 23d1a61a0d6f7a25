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

/// `PREVIEW` without sharding rules is dbmesh's to answer: the default data source and the
/// statement unchanged, in a simple query and a prepared one; the backend never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_on_an_unsharded_database_shows_the_default_data_source() {
    let db = PgDatabase::create("pgpreview");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let client = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let rows: Vec<Vec<String>> = client
        .simple_query("PREVIEW SELECT * FROM nowhere WHERE id = 1")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap().to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(rows, [["ds_0", "SELECT * FROM nowhere WHERE id = 1"]]);
    let row = client
        .query_one("PREVIEW DELETE FROM nowhere", &[])
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "data_source_name");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("ds_0".to_string(), "DELETE FROM nowhere".to_string())
    );
    // The session goes on as before.
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

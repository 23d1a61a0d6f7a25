//! When the backend connection goes away while the client is idle and outside a transaction,
//! dbmesh reconnects on the next statement without the client noticing: its named prepared
//! statements are prepared again and its session SETs replayed. Inside a transaction the
//! client must learn that its work is lost: FATAL 08006 naming the data source, then the
//! connection closes.

use dbmesh_integration::pg_frontend::{bind, execute, parse, query, sync};
use dbmesh_integration::{
    pg_config, pg_connect, pg_disconnect, pg_terminate_backends, pg_user, PgDatabase, PgRaw, Proxy,
    APP_PASSWORD, APP_USER,
};
use tokio_postgres::Client;

async fn backend_pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn setup() -> (PgDatabase, Proxy, Client) {
    let db = PgDatabase::create("pgreconn");
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    direct
        .batch_execute(
            "CREATE SCHEMA side; CREATE TABLE side.only_here (v text);
             INSERT INTO side.only_here VALUES ('found via search_path')",
        )
        .await
        .unwrap();
    // Gone before the test counts the processes on the database (it once found two).
    pg_disconnect(direct).await;
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let c = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    (db, proxy, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_survive_a_backend_connection_change() {
    let (db, _proxy, c) = setup().await;
    let add = c.prepare("SELECT $1::int4 + 1").await.unwrap();
    let describe = c
        .prepare("SELECT $1::text || '!' AS shout, 42::int8 AS answer")
        .await
        .unwrap();
    assert_eq!(
        c.query_one(&add, &[&1i32]).await.unwrap().get::<_, i32>(0),
        2
    );
    let before = backend_pid(&c).await;

    assert_eq!(pg_terminate_backends(&db.name).await, 1);

    // The statements were prepared on the old connection only; they must work unchanged.
    assert_eq!(
        c.query_one(&add, &[&41i32]).await.unwrap().get::<_, i32>(0),
        42
    );
    let row = c.query_one(&describe, &[&"hey"]).await.unwrap();
    assert_eq!(row.get::<_, String>("shout"), "hey!");
    assert_eq!(row.get::<_, i64>("answer"), 42);
    assert_ne!(backend_pid(&c).await, before, "a new backend connection");

    // And again after a second change, with a statement prepared in between.
    let third = c.prepare("SELECT $1::int8 * 3").await.unwrap();
    assert_eq!(pg_terminate_backends(&db.name).await, 1);
    assert_eq!(
        c.query_one(&third, &[&5i64])
            .await
            .unwrap()
            .get::<_, i64>(0),
        15
    );
    assert_eq!(
        c.query_one(&add, &[&1i32]).await.unwrap().get::<_, i32>(0),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_sets_are_replayed_on_a_new_backend_connection() {
    let (db, _proxy, c) = setup().await;
    // A simple-query SET and one through the extended protocol (how psycopg, node-postgres
    // and JDBC send statements).
    c.batch_execute("SET application_name = 'dbmesh_reconnect'")
        .await
        .unwrap();
    c.execute("SET search_path = side, public", &[])
        .await
        .unwrap();
    let before = backend_pid(&c).await;

    assert_eq!(pg_terminate_backends(&db.name).await, 1);

    let row = c
        .query_one(
            "SELECT current_setting('application_name'), current_setting('search_path'), \
             (SELECT v FROM only_here)",
            &[],
        )
        .await
        .unwrap();
    assert_ne!(backend_pid(&c).await, before, "a new backend connection");
    assert_eq!(row.get::<_, String>(0), "dbmesh_reconnect");
    assert_eq!(row.get::<_, String>(1), "side, public");
    assert_eq!(row.get::<_, String>(2), "found via search_path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_backend_inside_a_transaction_closes_the_client_with_08006() {
    let (db, proxy, c) = setup().await;
    c.batch_execute("BEGIN; CREATE TABLE lost (id int)")
        .await
        .unwrap();
    assert_eq!(pg_terminate_backends(&db.name).await, 1);
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    // The client hears the error before its connection task has seen the stream end.
    for _ in 0..100 {
        if c.is_closed() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(c.is_closed(), "connection closed after {e}");

    // Exactly what arrives, on a raw connection: FATAL 08006 naming the data source, then
    // the end of the stream.
    let users = pg_user("raw", "raw-secret", "password", &["shop"]);
    let proxy2 = Proxy::start(&pg_config("shop", &db.url(), &users)).await;
    let mut raw = PgRaw::login(proxy2.postgres_port(), "raw", "raw-secret", "shop").await;
    raw.send(&query("BEGIN")).await;
    raw.read_until_ready(1).await;
    assert_eq!(pg_terminate_backends(&db.name).await, 1);
    raw.send(&query("SELECT 1")).await;
    let got = raw.read_until_closed().await;
    let errors: Vec<_> = got.iter().filter(|m| m.tag == b'E').collect();
    assert_eq!(errors.len(), 1, "{got:?}");
    assert_eq!(errors[0].field(b'C').as_deref(), Some("08006"));
    assert_eq!(errors[0].field(b'S').as_deref(), Some("FATAL"));
    let message = errors[0].field(b'M').unwrap();
    assert!(message.contains("ds_0"), "{message}");

    // The transaction was rolled back; the proxy serves new clients.
    let fresh = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let n: i64 = fresh
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'lost'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_backend_during_a_statement_reports_08006() {
    let (db, _proxy, c) = setup().await;
    let running = tokio::spawn(async move {
        let r = c.simple_query("SELECT pg_sleep(30)").await;
        (r.map(|_| ()), c)
    });
    // Wait until the statement runs on the server, then cut it off.
    let admin = dbmesh_integration::pg_admin().await;
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
                &[&db.name],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(pg_terminate_backends(&db.name).await, 1);
    let (result, c) = running.await.unwrap();
    let e = result.unwrap_err();
    let db_err = e
        .as_db_error()
        .unwrap_or_else(|| panic!("server error, got {e:?}"));
    // PostgreSQL's own FATAL (57P01) reaches the client first, or dbmesh's 08006.
    assert!(
        ["57P01", "08006"].contains(&db_err.code().code()),
        "{db_err:?}"
    );
    assert!(c.simple_query("SELECT 1").await.is_err());
    assert!(c.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_names_stay_taken_across_a_backend_connection_change() {
    let db = PgDatabase::create("pgreconn");
    let users = pg_user("raw", "raw-secret", "password", &["shop"]);
    let proxy = Proxy::start(&pg_config("shop", &db.url(), &users)).await;
    let mut raw = PgRaw::login(proxy.postgres_port(), "raw", "raw-secret", "shop").await;
    let parsed = raw.exchange(&[parse("s1", "SELECT 'first'"), sync()]).await;
    assert_eq!(parsed.join(" "), "1 Z:I");
    assert_eq!(pg_terminate_backends(&db.name).await, 1);
    // As on the original connection: the name is taken, and s1 is still the first query.
    let again = raw
        .exchange(&[parse("s1", "SELECT 'second'"), sync()])
        .await;
    assert_eq!(again.join(" "), "E:42P05 Z:I");
    raw.send(&[bind("", "s1"), execute(""), sync()].concat())
        .await;
    let rows = raw.read_until_ready(1).await;
    let row = rows.iter().find(|m| m.tag == b'D').expect("a row");
    assert!(row.body.ends_with(b"first"), "{row:?}");
}

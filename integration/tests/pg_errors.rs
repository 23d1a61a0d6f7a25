//! Errors leave the connection usable, as they do on PostgreSQL: a syntax error, an error in
//! the middle of an extended-protocol pipeline (the rest is skipped up to Sync), and an error
//! inside a transaction (ReadyForQuery 'E', then ROLLBACK). Exact response sequences are
//! compared with a direct connection.

use dbmesh_integration::pg_frontend::{bind, describe, execute, parse, query, sync};
use dbmesh_integration::{
    pg_config, pg_connect, pg_sqlstate, pg_user, PgDatabase, PgRaw, Proxy, APP_PASSWORD, APP_USER,
};

/// Two raw connections to the same physical database: direct, and through dbmesh.
async fn raw_pair() -> (PgDatabase, Proxy, PgRaw, PgRaw) {
    let db = PgDatabase::create("pgerr");
    let users = pg_user("raw", "raw-secret", "password", &["shop"]);
    let proxy = Proxy::start(&pg_config("shop", &db.url(), &users)).await;
    let direct = PgRaw::login(dbmesh_integration::pg_port(), "postgres", "", &db.name).await;
    let through = PgRaw::login(proxy.postgres_port(), "raw", "raw-secret", "shop").await;
    (db, proxy, direct, through)
}

/// Runs each step on both connections and checks that the responses are the same and are
/// `expected`.
async fn same_responses(direct: &mut PgRaw, through: &mut PgRaw, steps: &[(&[Vec<u8>], &str)]) {
    for (i, (messages, expected)) in steps.iter().enumerate() {
        let d = direct.exchange(messages).await.join(" ");
        let p = through.exchange(messages).await.join(" ");
        assert_eq!(d, *expected, "step {i} on the direct connection");
        assert_eq!(
            p, d,
            "step {i} through dbmesh differs from the direct connection"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_error_is_followed_by_a_working_query() {
    let db = PgDatabase::create("pgerr");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let c = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let e = c.simple_query("SELEKT 1").await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42601");
    assert!(e.as_db_error().unwrap().message().contains("SELEKT"), "{e}");
    let e = c.query("SELECT FROM WHERE", &[]).await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "42601");
    let e = c.query("SELECT 1/0", &[]).await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22012");
    let row = c.query_one("SELECT $1::int + 1", &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_in_a_pipeline_skips_to_sync() {
    let (_db, _proxy, mut direct, mut through) = raw_pair().await;
    let ok = |n: &str| vec![parse(n, "SELECT 1"), bind("", n), execute("")];
    let pipeline: Vec<Vec<u8>> = [
        ok("").as_slice(),
        &[parse("", "SELECT 1/0"), bind("", ""), execute("")],
        &ok(""),
        &[sync()],
    ]
    .concat();
    same_responses(
        &mut direct,
        &mut through,
        &[
            // 1/0 of constants fails while planning, at Bind.
            (&pipeline, "1 2 D C 1 E:22012 Z:I"),
            (&[query("SELECT 2")], "T D C Z:I"),
            (&[sync()], "Z:I"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_statements_after_pipeline_errors_exist_only_if_parsed() {
    let (_db, _proxy, mut direct, mut through) = raw_pair().await;
    same_responses(
        &mut direct,
        &mut through,
        &[
            // s1 is parsed before the error: it exists. s2 comes after: skipped.
            (
                &[
                    parse("s1", "SELECT 1"),
                    parse("bad", "SELEKT"),
                    parse("s2", "SELECT 2"),
                    sync(),
                ],
                "1 E:42601 Z:I",
            ),
            (&[bind("", "s1"), execute(""), sync()], "2 D C Z:I"),
            (&[describe(b'S', "s2"), sync()], "E:26000 Z:I"),
            // The failed names are free to use.
            (
                &[
                    parse("bad", "SELECT 3"),
                    bind("", "bad"),
                    execute(""),
                    sync(),
                ],
                "1 2 D C Z:I",
            ),
            (
                &[parse("s2", "SELECT 4"), describe(b'S', "s2"), sync()],
                "1 t T Z:I",
            ),
            (&[parse("s1", "SELECT 5"), sync()], "E:42P05 Z:I"),
            (&[bind("", "s1"), execute(""), sync()], "2 D C Z:I"),
            // Statements parsed after a Sync in the same write are not affected by the
            // ReadyForQuery of that Sync.
            (
                &[query("SELECT 6"), parse("s3", "SELECT 7"), sync()],
                "T D C Z:I 1 Z:I",
            ),
            (&[describe(b'S', "s3"), sync()], "t T Z:I"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_in_a_transaction_fails_it_until_rollback() {
    let (_db, _proxy, mut direct, mut through) = raw_pair().await;
    same_responses(
        &mut direct,
        &mut through,
        &[
            (&[query("BEGIN")], "C Z:T"),
            (&[query("SELECT 1/0")], "E:22012 Z:E"),
            (&[query("SELECT 1")], "E:25P02 Z:E"),
            (
                &[parse("", "SELECT 1"), bind("", ""), execute(""), sync()],
                "E:25P02 Z:E",
            ),
            (&[query("ROLLBACK")], "C Z:I"),
            (&[query("SELECT 1")], "T D C Z:I"),
            // Several statements in one Query form one implicit transaction.
            (
                &[query("SELECT 1; SELECT 1/0; SELECT 3")],
                "T D C E:22012 Z:I",
            ),
        ],
    )
    .await;

    // The same through a driver: the error is reported, and ROLLBACK recovers.
    let db = PgDatabase::create("pgerr");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let c = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    c.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let e = c
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "23505");
    let e = c
        .execute("INSERT INTO t VALUES (2)", &[])
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

//! What no driver sends: garbage instead of a startup packet, oversized and unknown messages
//! end that client's connection with an ErrorResponse (and leave everyone else alone);
//! SSLRequest is declined with 'N'; a protocol 3.2 client is told to use 3.0.

use dbmesh_integration::pg_frontend::{query, raw, request_code, startup};
use dbmesh_integration::{
    pg_config, pg_connect, pg_user, run_program, with_server_keys, PgDatabase, PgMsg, PgRaw, Proxy,
    APP_PASSWORD, APP_USER,
};

const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;

async fn setup(server_keys: &str) -> (PgDatabase, Proxy) {
    let db = PgDatabase::create("pgbad");
    let users = pg_user("raw", "raw-secret", "password", &["shop"]);
    let toml = with_server_keys(&pg_config("shop", &db.url(), &users), server_keys);
    let proxy = Proxy::start(&toml).await;
    (db, proxy)
}

/// The connection ends with exactly one ErrorResponse, carrying `sqlstate`.
fn assert_closed_with(got: &[PgMsg], sqlstate: &str) {
    let errors: Vec<_> = got.iter().filter(|m| m.tag == b'E').collect();
    assert_eq!(errors.len(), 1, "{got:?}");
    assert_eq!(errors[0].field(b'C').as_deref(), Some(sqlstate), "{got:?}");
    assert_eq!(
        got.last().map(|m| m.tag),
        Some(b'E'),
        "nothing after the error"
    );
}

async fn select_one(port: u16) -> String {
    let mut c = PgRaw::login(port, "raw", "raw-secret", "shop").await;
    c.exchange(&[query("SELECT 1")]).await.join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_bad_messages_close_only_that_connection() {
    let (_db, proxy) = setup("max_packet_size = 1024").await;
    let port = proxy.postgres_port();
    let bystander = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    bystander.batch_execute("BEGIN").await.unwrap();

    // An HTTP request where the startup packet should be.
    let mut c = PgRaw::connect(port).await;
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_closed_with(&c.read_until_closed().await, "08P01");

    // A well-formed packet with a protocol version nobody speaks.
    let mut c = PgRaw::connect(port).await;
    c.send(&startup(1234, 5678, &[("user", "raw")])).await;
    assert_closed_with(&c.read_until_closed().await, "0A000");

    // A message over max_packet_size, after a login; one just under it works.
    let mut c = PgRaw::login(port, "raw", "raw-secret", "shop").await;
    let under = format!("SELECT '{}'", "x".repeat(900));
    assert_eq!(c.exchange(&[query(&under)]).await.join(" "), "T D C Z:I");
    let over = format!("SELECT '{}'", "x".repeat(2000));
    c.send(&query(&over)).await;
    assert_closed_with(&c.read_until_closed().await, "08P01");

    // A length that announces more than the limit is refused before it is read.
    let mut c = PgRaw::login(port, "raw", "raw-secret", "shop").await;
    c.send(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).await;
    assert_closed_with(&c.read_until_closed().await, "08P01");

    // An unknown message type.
    let mut c = PgRaw::login(port, "raw", "raw-secret", "shop").await;
    c.send(&raw(b'Y', b"what")).await;
    assert_closed_with(&c.read_until_closed().await, "08P01");

    // A message length below the minimum.
    let mut c = PgRaw::login(port, "raw", "raw-secret", "shop").await;
    c.send(&[b'Q', 0, 0, 0, 2]).await;
    assert_closed_with(&c.read_until_closed().await, "08P01");

    // Nobody else noticed.
    let n: i64 = bystander
        .query_one("SELECT 41::int8 + 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 42);
    bystander.batch_execute("COMMIT").await.unwrap();
    assert_eq!(select_one(port).await, "T D C Z:I");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_and_gss_requests_are_declined_and_the_client_continues() {
    let (_db, proxy) = setup("").await;
    let port = proxy.postgres_port();
    for code in [SSL_REQUEST, GSSENC_REQUEST] {
        let mut c = PgRaw::connect(port).await;
        c.send(&request_code(code)).await;
        assert_eq!(c.read_byte().await, Some(b'N'));
        c.send(&startup(3, 0, &[("user", "raw"), ("database", "shop")]))
            .await;
        c.finish_login("raw-secret").await;
        assert_eq!(
            c.exchange(&[query("SELECT 1")]).await.join(" "),
            "T D C Z:I"
        );
    }

    let psql = |sslmode: &str| {
        vec![
            "-X".to_string(),
            "-At".into(),
            "-c".into(),
            "SELECT 'plain ' || 1".into(),
            format!("host=127.0.0.1 port={port} user={APP_USER} dbname=shop sslmode={sslmode}"),
        ]
    };
    let env = [("PGPASSWORD", APP_PASSWORD)];
    let prefer = run_program("psql", &psql("prefer"), &env).await;
    assert!(prefer.status.success(), "{prefer:?}");
    assert_eq!(String::from_utf8_lossy(&prefer.stdout).trim(), "plain 1");
    let require = run_program("psql", &psql("require"), &env).await;
    assert!(!require.status.success());
    let stderr = String::from_utf8_lossy(&require.stderr);
    assert!(stderr.contains("does not support SSL"), "{stderr}");
    assert_eq!(select_one(port).await, "T D C Z:I");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_3_2_is_negotiated_down_to_3_0() {
    let (_db, proxy) = setup("").await;
    let mut c = PgRaw::connect(proxy.postgres_port()).await;
    c.send(&startup(
        3,
        2,
        &[
            ("user", "raw"),
            ("database", "shop"),
            ("_pq_.test_option", "on"),
        ],
    ))
    .await;
    let login = c.finish_login("raw-secret").await;
    let v = login
        .iter()
        .find(|m| m.tag == b'v')
        .expect("NegotiateProtocolVersion");
    assert_eq!(&v.body[..4], &0i32.to_be_bytes(), "newest minor version: 0");
    assert_eq!(
        &v.body[4..8],
        &1i32.to_be_bytes(),
        "one option not recognised"
    );
    assert_eq!(&v.body[8..], b"_pq_.test_option\0");
    assert_eq!(login[0].tag, b'v', "before authentication");
    // 3.0 BackendKeyData: pid and a 4-byte secret.
    let key = login
        .iter()
        .find(|m| m.tag == b'K')
        .expect("BackendKeyData");
    assert_eq!(key.body.len(), 8);
    assert_eq!(
        c.exchange(&[query("SELECT 1; SELECT 2")]).await.join(" "),
        "T D C T D C Z:I"
    );
}

//! TLS on the PostgreSQL side: psql and psycopg logging in to dbmesh with
//! `sslmode=require` / `verify-full`, `require_tls` users refused on plain TCP, and
//! dbmesh connecting to a backend over TLS when the data source URL asks (another dbmesh
//! with TLS, and the shared PostgreSQL with `sslmode=prefer`).

use dbmesh_integration::{
    pg_config, pg_connect, pg_sqlstate, pg_user, run_program, with_server_keys, PgDatabase, Proxy,
    TestCerts, TlsPostgres, APP_PASSWORD, APP_USER,
};

const SECURE_USER: &str = "secure";
const SECURE_PASSWORD: &str = "secure-pw";

/// dbmesh with TLS in front of `db`: user `app` (SCRAM), and `secure` (require_tls,
/// cleartext password).
async fn tls_proxy(db: &PgDatabase, certs: &TestCerts) -> Proxy {
    let secure =
        pg_user(SECURE_USER, SECURE_PASSWORD, "password", &["shop"]) + "require_tls = true\n";
    let toml = with_server_keys(&pg_config("shop", &db.url(), &secure), &certs.server_keys());
    Proxy::start(&toml).await
}

/// The error of a login that must fail.
async fn login_error(dsn: &str, why: &str) -> tokio_postgres::Error {
    match pg_connect(dsn).await {
        Ok(_) => panic!("{why}"),
        Err(e) => e,
    }
}

async fn psql(conninfo: &str, password: &str, commands: &[&str]) -> (bool, String, String) {
    let mut args = vec!["-X".to_string(), "-w".to_string(), conninfo.to_string()];
    for c in commands {
        args.extend(["-c".to_string(), c.to_string()]);
    }
    let out = run_program(
        "psql",
        &args,
        &[("PGPASSWORD", password), ("PGCONNECT_TIMEOUT", "10")],
    )
    .await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls_and_require_tls_refuses_plain() {
    let db = PgDatabase::create("tlspsql");
    let certs = TestCerts::new();
    let proxy = tls_proxy(&db, &certs).await;
    let port = proxy.postgres_port();
    let ca = certs.ca().display().to_string();

    for (user, password, mode) in [
        (APP_USER, APP_PASSWORD, "sslmode=require".to_string()),
        (
            APP_USER,
            APP_PASSWORD,
            format!("sslmode=verify-full sslrootcert={ca}"),
        ),
        (
            SECURE_USER,
            SECURE_PASSWORD,
            format!("sslmode=verify-full sslrootcert={ca}"),
        ),
    ] {
        let conninfo = format!("host=localhost port={port} user={user} dbname=shop {mode}");
        let (ok, out, err) = psql(
            &conninfo,
            password,
            &["\\conninfo", "SELECT 40 + 2 AS answer"],
        )
        .await;
        assert!(ok, "{conninfo}: {err}");
        assert!(
            out.contains("SSL connection (protocol: TLSv1."),
            "{conninfo}:\n{out}"
        );
        assert!(out.contains("42"), "{conninfo}:\n{out}");
    }

    let plain =
        format!("host=127.0.0.1 port={port} user={SECURE_USER} dbname=shop sslmode=disable");
    let (ok, _, err) = psql(&plain, SECURE_PASSWORD, &["SELECT 1"]).await;
    assert!(!ok);
    assert!(err.contains("must connect with TLS"), "{err}");
    let e = login_error(
        &proxy.pg_dsn(SECURE_USER, SECURE_PASSWORD, "shop"),
        "a plain login of a require_tls user must fail",
    )
    .await;
    assert_eq!(pg_sqlstate(&e), "28000", "{e:?}");

    // sslmode=prefer (psql's default) picks TLS when dbmesh offers it.
    let prefer = format!("host=127.0.0.1 port={port} user={SECURE_USER} dbname=shop");
    let (ok, out, err) = psql(&prefer, SECURE_PASSWORD, &["\\conninfo"]).await;
    assert!(ok && out.contains("SSL connection"), "{out}{err}");

    let untrusted = format!(
        "host=127.0.0.1 port={port} user={APP_USER} dbname=shop sslmode=verify-full sslrootcert={}",
        certs.other_ca().display()
    );
    let (ok, _, err) = psql(&untrusted, APP_PASSWORD, &["SELECT 1"]).await;
    assert!(!ok && err.contains("certificate verify failed"), "{err}");
    proxy.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_with_sslmode_require_and_verify_full() {
    let db = PgDatabase::create("tlspsycopg");
    let certs = TestCerts::new();
    let proxy = tls_proxy(&db, &certs).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers/tls_psycopg.py");
    let args: Vec<String> = vec![
        script.to_string(),
        "--port".into(),
        proxy.postgres_port().to_string(),
        "--db".into(),
        "shop".into(),
        "--ca".into(),
        certs.ca().display().to_string(),
        "--other-ca".into(),
        certs.other_ca().display().to_string(),
        "--user".into(),
        APP_USER.into(),
        "--password".into(),
        APP_PASSWORD.into(),
        "--secure-user".into(),
        SECURE_USER.into(),
        "--secure-password".into(),
        SECURE_PASSWORD.into(),
    ];
    let out = run_program("python3", &args, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("8 passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    proxy.server.stop().await;
}

/// dbmesh A → dbmesh B over TLS: B admits `secure` only over TLS, so every statement
/// that works through A proves A's backend connection is TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_use_tls_when_the_url_asks() {
    let db = PgDatabase::create("tlspgbackend");
    let certs = TestCerts::new();
    let b = tls_proxy(&db, &certs).await;
    let b_url = |params: &str| {
        format!(
            "postgres://{SECURE_USER}:{SECURE_PASSWORD}@127.0.0.1:{}/shop?{params}",
            b.postgres_port()
        )
    };
    let ca = certs.ca().display().to_string();
    for params in [
        format!("sslmode=verify-full&sslrootcert={ca}"),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        "sslmode=require".to_string(),
        "sslmode=prefer".to_string(),
    ] {
        let a = Proxy::start(&pg_config("shop", &b_url(&params), "")).await;
        let client = pg_connect(&a.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
            .await
            .unwrap_or_else(|e| panic!("{params}: {e}"));
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)")
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO t VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = $2",
                &[&1i32, &"über TLS"],
            )
            .await
            .unwrap();
        let row = client
            .query_one("SELECT v FROM t WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "über TLS", "{params}");
        drop(client);
        a.server.stop().await;
    }

    // Plain towards B: B refuses the require_tls user, so the login through A fails.
    let a = Proxy::start(&pg_config("shop", &b_url("sslmode=disable"), "")).await;
    let err = login_error(
        &a.pg_dsn(APP_USER, APP_PASSWORD, "shop"),
        "the backend login must fail",
    )
    .await;
    assert!(
        format!("{err:?}").contains("must connect with TLS"),
        "{err:?}"
    );
    a.server.stop().await;

    // A CA that did not sign B's certificate: no connection.
    let a = Proxy::start(&pg_config(
        "shop",
        &b_url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            certs.other_ca().display()
        )),
        "",
    ))
    .await;
    let err = login_error(
        &a.pg_dsn(APP_USER, APP_PASSWORD, "shop"),
        "an untrusted backend certificate must fail",
    )
    .await;
    assert!(format!("{err:?}").contains("TLS handshake"), "{err:?}");
    a.server.stop().await;
    b.server.stop().await;
}

/// `sslmode=prefer` towards the shared PostgreSQL: TLS exactly when the server has it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_uses_tls_when_the_real_server_offers_it() {
    let db = PgDatabase::create("tlspgprefer");
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    let server_ssl: String = direct.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    drop(direct);
    let url = format!("{}?sslmode=prefer", db.url());
    let a = Proxy::start(&pg_config("shop", &url, "")).await;
    let client = pg_connect(&a.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ssl, server_ssl == "on", "server ssl = {server_ssl}");
    drop(client);
    a.server.stop().await;
}

/// A real PostgreSQL with TLS as the backend (a second server on its own port, with a
/// certificate of the test CA): `verify-full` gives a TLS backend session in which the
/// extended protocol, COPY out and a result spanning many TLS records work; `disable`
/// gives a plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postgres_backend_over_verified_tls() {
    let certs = TestCerts::new();
    let server = TlsPostgres::start(&certs).await;
    let admin = pg_connect(&server.dsn("postgres")).await.unwrap();
    admin
        .batch_execute("CREATE DATABASE shop_tls")
        .await
        .unwrap();
    drop(admin);
    let url = |params: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/shop_tls?{params}",
            server.port
        )
    };

    let verified = url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        certs.ca().display()
    ));
    let a = Proxy::start(&pg_config("shop", &verified, "")).await;
    let client = pg_connect(&a.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the backend connection is not TLS");
    let rows = client
        .query(
            "SELECT g, repeat('ab', 5000) FROM generate_series(1, $1::int) g",
            &[&200i32],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(|r| r.get::<_, String>(1).len() == 10_000));
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)",
        )
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t WHERE id > $1", &[&500i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 500);
    drop(client);
    a.server.stop().await;

    let a = Proxy::start(&pg_config("shop", &url("sslmode=disable"), "")).await;
    let client = pg_connect(&a.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!ssl, "sslmode=disable used TLS");
    drop(client);
    a.server.stop().await;
}

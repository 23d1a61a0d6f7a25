//! TLS on the MySQL side: real clients (the `mariadb` CLI, PyMySQL) logging in to dbmesh
//! over TLS, `require_tls` users refused on plain TCP, and dbmesh connecting to a backend
//! over TLS when the data source URL asks (the backend being another dbmesh with TLS,
//! since the shared MariaDB has none).

use dbmesh_integration::{
    mysql_config, run_program, server_error, with_server_keys, MysqlDatabase, Proxy, TestCerts,
    TlsMariadb, APP_PASSWORD, APP_USER,
};
use mysql_async::prelude::*;

const SECURE_USER: &str = "secure";
const SECURE_PASSWORD: &str = "secure-pw";

/// dbmesh with TLS in front of `db`: user `app` (native password), and `secure`
/// (require_tls, caching_sha2_password).
async fn tls_proxy(db: &MysqlDatabase, certs: &TestCerts) -> Proxy {
    let extra = format!(
        "\n[[users]]\nname = \"{SECURE_USER}\"\npassword = \"{SECURE_PASSWORD}\"\ndatabases = [\"shop\"]\nmysql_auth_plugin = \"caching_sha2_password\"\nrequire_tls = true\n"
    );
    let toml = with_server_keys(
        &mysql_config("shop", &db.url(), &extra),
        &certs.server_keys(),
    );
    Proxy::start(&toml).await
}

/// Runs the `mariadb` CLI against `port`; returns (success, stdout, stderr).
async fn mariadb(
    port: u16,
    user: &str,
    password: &str,
    tls: &[String],
    sql: &str,
) -> (bool, String, String) {
    let mut args = vec![
        "-h127.0.0.1".to_string(),
        format!("-P{port}"),
        format!("-u{user}"),
        format!("-p{password}"),
        "--connect-timeout=10".to_string(),
        "shop".to_string(),
    ];
    args.extend(tls.iter().cloned());
    args.extend(["-e".to_string(), sql.to_string()]);
    let out = run_program("mariadb", &args, &[]).await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_logs_in_over_verified_tls_and_require_tls_refuses_plain() {
    let db = MysqlDatabase::create("tlscli");
    let certs = TestCerts::new();
    let proxy = tls_proxy(&db, &certs).await;
    let port = proxy.mysql_port();
    let verified = vec![
        "--ssl".to_string(),
        format!("--ssl-ca={}", certs.ca().display()),
        "--ssl-verify-server-cert".to_string(),
    ];

    for (user, password) in [(APP_USER, APP_PASSWORD), (SECURE_USER, SECURE_PASSWORD)] {
        let (ok, out, err) = mariadb(
            port,
            user,
            password,
            &verified,
            "status; SELECT 40 + 2 AS answer",
        )
        .await;
        assert!(ok, "{user}: {err}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("SSL:") && l.contains("Cipher in use is")),
            "{user}: the CLI reports no TLS:\n{out}"
        );
        assert!(out.contains("answer\n42"), "{user}:\n{out}");
    }

    // Plain TCP: the ordinary user still gets in, the require_tls one is denied (1045).
    let plain = vec!["--skip-ssl".to_string()];
    let (ok, out, err) = mariadb(port, APP_USER, APP_PASSWORD, &plain, "status").await;
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("SSL:") && l.contains("Not in use")),
        "{out}"
    );
    let (ok, _, err) = mariadb(port, SECURE_USER, SECURE_PASSWORD, &plain, "SELECT 1").await;
    assert!(!ok);
    assert!(
        err.contains("ERROR 1045 (28000)") && err.contains("must connect with TLS"),
        "{err}"
    );

    // A CA that did not sign dbmesh's certificate: verification fails.
    let untrusted = vec![
        "--ssl".to_string(),
        format!("--ssl-ca={}", certs.other_ca().display()),
        "--ssl-verify-server-cert".to_string(),
    ];
    let (ok, _, err) = mariadb(port, APP_USER, APP_PASSWORD, &untrusted, "SELECT 1").await;
    assert!(!ok, "an untrusted certificate was accepted");
    assert!(
        err.contains("ERROR 2026") || err.to_lowercase().contains("ssl"),
        "{err}"
    );
    proxy.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_over_tls_with_ca_and_caching_sha2_full_authentication() {
    let db = MysqlDatabase::create("tlspymysql");
    let certs = TestCerts::new();
    let proxy = tls_proxy(&db, &certs).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers/tls_pymysql.py");
    let args: Vec<String> = [
        script.to_string(),
        "--port".into(),
        proxy.mysql_port().to_string(),
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
    ]
    .into();
    let out = run_program("python3", &args, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("8 passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    proxy.server.stop().await;
}

/// dbmesh A → dbmesh B over TLS: B admits the `secure` user only over TLS, so every
/// statement that works through A proves A's backend connection is TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_use_tls_when_the_url_asks() {
    let db = MysqlDatabase::create("tlsbackend");
    let certs = TestCerts::new();
    let b = tls_proxy(&db, &certs).await;
    let b_url = |params: &str| {
        format!(
            "mysql://{SECURE_USER}:{SECURE_PASSWORD}@127.0.0.1:{}/shop?{params}",
            b.mysql_port()
        )
    };

    for params in [
        format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", certs.ca().display()),
        format!("sslmode=verify_ca&sslca={}", certs.ca().display()),
        "ssl-mode=REQUIRED".to_string(),
    ] {
        let a = Proxy::start(&mysql_config("shop", &b_url(&params), "")).await;
        let mut conn = mysql_async::Conn::new(a.app_opts("shop")).await.unwrap();
        conn.query_drop("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, v VARCHAR(20))")
            .await
            .unwrap();
        conn.exec_drop("REPLACE INTO t VALUES (?, ?)", (1, "über TLS"))
            .await
            .unwrap();
        let v: Option<String> = conn
            .query_first("SELECT v FROM t WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some("über TLS"), "{params}");
        conn.disconnect().await.unwrap();
        a.server.stop().await;
    }

    // Without TLS towards B, B refuses the require_tls user: the statement fails.
    let a = Proxy::start(&mysql_config("shop", &b_url("ssl-mode=DISABLED"), "")).await;
    let (_, _, msg) = server_error(mysql_async::Conn::new(a.app_opts("shop")).await);
    assert!(msg.contains("must connect with TLS"), "{msg}");
    a.server.stop().await;

    // A certificate the URL's CA did not sign: no connection.
    let untrusted = b_url(&format!(
        "ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        certs.other_ca().display()
    ));
    let a = Proxy::start(&mysql_config("shop", &untrusted, "")).await;
    let (code, _, msg) = server_error(mysql_async::Conn::new(a.app_opts("shop")).await);
    assert_eq!(code, 2003, "{msg}");
    assert!(msg.contains("TLS handshake"), "{msg}");
    a.server.stop().await;
    b.server.stop().await;
}

/// The shared MariaDB has no TLS: PREFERRED falls back to plain TCP, REQUIRED refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_falls_back_to_plain_and_required_refuses_a_server_without_tls() {
    let db = MysqlDatabase::create("tlsprefer");
    let have_ssl = {
        let mut direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
        let row: Option<(String, String)> = direct
            .query_first("SHOW VARIABLES LIKE 'have_ssl'")
            .await
            .unwrap();
        direct.disconnect().await.unwrap();
        row.map(|r| r.1).unwrap_or_default() == "YES"
    };
    let url = format!("{}?ssl-mode=PREFERRED", db.url());
    let a = Proxy::start(&mysql_config("shop", &url, "")).await;
    let mut conn = mysql_async::Conn::new(a.app_opts("shop")).await.unwrap();
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    let cipher = cipher.map(|c| c.1).unwrap_or_default();
    assert_eq!(
        !cipher.is_empty(),
        have_ssl,
        "Ssl_cipher = {cipher:?}, have_ssl = {have_ssl}"
    );
    conn.disconnect().await.unwrap();
    a.server.stop().await;

    if !have_ssl {
        let url = format!("{}?ssl-mode=REQUIRED", db.url());
        let a = Proxy::start(&mysql_config("shop", &url, "")).await;
        let (_, _, msg) = server_error(mysql_async::Conn::new(a.app_opts("shop")).await);
        assert!(msg.contains("does not offer TLS"), "{msg}");
        a.server.stop().await;
    }
}

/// COM_CHANGE_USER to a require_tls user on a plain connection is refused like a login;
/// the connection stays usable as the previous user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_to_a_require_tls_user_on_plain_tcp_is_refused() {
    let db = MysqlDatabase::create("tlschange");
    let certs = TestCerts::new();
    let proxy = tls_proxy(&db, &certs).await;
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let refused = conn
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some(SECURE_USER.into()))
                .with_pass(Some(SECURE_PASSWORD.into())),
        )
        .await;
    let (code, state, msg) = server_error(refused);
    assert_eq!((code, state.as_str()), (1045, "28000"), "{msg}");
    assert!(msg.contains("must connect with TLS"), "{msg}");
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    conn.disconnect().await.unwrap();
    proxy.server.stop().await;
}

/// A real MariaDB with TLS as the backend (a second server on its own port): with
/// `ssl-mode=VERIFY_IDENTITY` the backend session reports a cipher, statements, prepared
/// statements and a result spanning many TLS records work; with `DISABLED` it reports none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_mariadb_backend_over_verified_tls() {
    let certs = TestCerts::new();
    let server = TlsMariadb::start(&certs).await;
    let mut root = mysql_async::Conn::new(server.root_opts(None))
        .await
        .unwrap();
    root.query_drop("CREATE DATABASE shop_tls").await.unwrap();
    root.disconnect().await.unwrap();
    let url = |params: &str| format!("mysql://root@127.0.0.1:{}/shop_tls?{params}", server.port);

    let verified = url(&format!(
        "ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        certs.ca().display()
    ));
    let a = Proxy::start(&mysql_config("shop", &verified, "")).await;
    let mut conn = mysql_async::Conn::new(a.app_opts("shop")).await.unwrap();
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    let cipher = cipher.map(|c| c.1).unwrap_or_default();
    assert!(!cipher.is_empty(), "the backend connection is not TLS");
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v LONGTEXT)")
        .await
        .unwrap();
    for id in 0..20 {
        conn.exec_drop("INSERT INTO t VALUES (?, REPEAT(?, 50000))", (id, "ab"))
            .await
            .unwrap();
    }
    let rows: Vec<(i32, String)> = conn.query("SELECT id, v FROM t ORDER BY id").await.unwrap();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|(_, v)| v.len() == 100_000));
    let n: Option<i64> = conn
        .exec_first("SELECT COUNT(*) FROM t WHERE id >= ?", (10,))
        .await
        .unwrap();
    assert_eq!(n, Some(10));
    conn.disconnect().await.unwrap();
    a.server.stop().await;

    let a = Proxy::start(&mysql_config("shop", &url("ssl-mode=DISABLED"), "")).await;
    let mut conn = mysql_async::Conn::new(a.app_opts("shop")).await.unwrap();
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    assert_eq!(
        cipher.map(|c| c.1).unwrap_or_default(),
        "",
        "DISABLED used TLS"
    );
    conn.disconnect().await.unwrap();
    a.server.stop().await;
}

//! `caching_sha2_password`, both directions: clients logging in to dbmesh (full
//! authentication with the RSA key on the first login, the fast path after), and dbmesh
//! logging in to a backend that requires it (here: another dbmesh).

use dbmesh_integration::{
    free_port, listen_on, mysql_config, server_error, MysqlDatabase, Proxy, TempDir,
};
use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Conn};

const SHA2_USER: &str = "sha2user";
const SHA2_PASSWORD: &str = "sha2-pw";

/// A config for logical database `shop` on `db` with user `sha2user` on
/// caching_sha2_password, using an RSA key pair generated into `keys`.
fn sha2_config(db: &MysqlDatabase, keys: &TempDir) -> String {
    let private = keys.path.join("private.pem");
    let public = keys.path.join("public.pem");
    if !private.exists() {
        for args in [
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ],
            vec!["pkey", "-pubout", "-in", private.to_str().unwrap(), "-out"],
        ] {
            let out = if args[0] == "genpkey" {
                &private
            } else {
                &public
            };
            let status = std::process::Command::new("openssl")
                .args(&args)
                .arg(out)
                .output()
                .expect("openssl is installed");
            assert!(
                status.status.success(),
                "{}",
                String::from_utf8_lossy(&status.stderr)
            );
        }
    }
    let extra = format!(
        r#"
[[users]]
name = "{SHA2_USER}"
password = "{SHA2_PASSWORD}"
databases = ["shop"]
mysql_auth_plugin = "caching_sha2_password"
"#
    );
    mysql_config("shop", &db.url(), &extra).replace(
        "connect_timeout_ms = 2000",
        &format!(
            "connect_timeout_ms = 2000\nrsa_private_key = {:?}\nrsa_public_key = {:?}",
            private.to_str().unwrap(),
            public.to_str().unwrap()
        ),
    )
}

fn cached(proxy: &Proxy) -> bool {
    proxy
        .server
        .runtime
        .auth
        .sha2_cached(SHA2_USER, SHA2_PASSWORD)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_logs_in_with_full_authentication_then_the_fast_path() {
    let db = MysqlDatabase::create("sha2");
    let keys = TempDir::new("sha2_keys");
    let proxy = Proxy::start(&sha2_config(&db, &keys)).await;
    let opts = |pw: &str| proxy.mysql_opts(SHA2_USER, pw, Some("shop"));

    // A wrong password during full authentication (RSA-encrypted) is refused.
    assert!(!cached(&proxy));
    assert_eq!(server_error(Conn::new(opts("wrong")).await).0, 1045);
    assert!(!cached(&proxy));

    // First login: full authentication, the client asks for the public key.
    let mut first = Conn::new(opts(SHA2_PASSWORD)).await.unwrap();
    assert!(cached(&proxy), "a full authentication took place");
    let one: Option<i64> = first.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));

    // Second login: the fast path (scramble only).
    let mut second = Conn::new(opts(SHA2_PASSWORD)).await.unwrap();
    let two: Option<i64> = second.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
    // A wrong password on the fast path is refused too.
    assert_eq!(server_error(Conn::new(opts("wrong")).await).0, 1045);

    // The native-password user on the same listener is unaffected.
    let mut app = Conn::new(proxy.app_opts("shop")).await.unwrap();
    app.query_drop("SELECT 3").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_to_a_caching_sha2_user_switches_plugin_mid_session() {
    let db = MysqlDatabase::create("sha2_change");
    let keys = TempDir::new("sha2_keys");
    let proxy = Proxy::start(&sha2_config(&db, &keys)).await;
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    conn.query_drop("SET @x = 1").await.unwrap();
    let wrong = conn
        .change_user(
            ChangeUserOpts::default()
                .with_user(Some(SHA2_USER.into()))
                .with_pass(Some("wrong".into())),
        )
        .await;
    assert_eq!(server_error(wrong).0, 1045);
    for _ in 0..2 {
        // Full authentication the first time, the fast path the second.
        conn.change_user(
            ChangeUserOpts::default()
                .with_user(Some(SHA2_USER.into()))
                .with_pass(Some(SHA2_PASSWORD.into())),
        )
        .await
        .unwrap();
        assert!(cached(&proxy));
        let x: Option<Option<i64>> = conn.query_first("SELECT @x").await.unwrap();
        assert_eq!(x, Some(None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbmesh_logs_in_to_a_caching_sha2_backend_with_full_then_fast_authentication() {
    let db = MysqlDatabase::create("sha2_chain");
    dbmesh_integration::mariadb_exec(&format!(
        "CREATE TABLE `{0}`.t (v VARCHAR(10)); INSERT INTO `{0}`.t VALUES ('through')",
        db.name
    ));
    let keys = TempDir::new("sha2_keys");
    let inner_port = free_port();
    // The outer proxy's data source is the inner proxy, as the caching_sha2 user. It starts
    // first, so its start-up probe finds nothing and no login to the inner proxy happens yet.
    let outer_url = format!("mysql://{SHA2_USER}:{SHA2_PASSWORD}@127.0.0.1:{inner_port}/shop");
    // A generous login bound: the inner proxy's full authentication is a debug-build RSA
    // decryption, on a machine busy with the other tests.
    // The first client holds its backend connection while the second logs in: session
    // pooling, on purpose.
    let outer_config = mysql_config("shop", &outer_url, "").replace(
        "connect_timeout_ms = 2000",
        "connect_timeout_ms = 30000\npool_mode = \"session\"",
    );
    let outer = Proxy::start(&outer_config).await;
    let inner = Proxy::start(&listen_on(&sha2_config(&db, &keys), inner_port)).await;
    assert!(!cached(&inner));

    // First backend connection from outer to inner: full authentication.
    let mut a = Conn::new(outer.app_opts("shop")).await.unwrap();
    let v: Option<String> = a.query_first("SELECT v FROM t").await.unwrap();
    assert_eq!(v.as_deref(), Some("through"));
    assert!(cached(&inner), "the outer proxy did a full authentication");

    // A second client while the first holds its backend connection: a second backend
    // connection, on the fast path.
    let mut b = Conn::new(outer.app_opts("shop")).await.unwrap();
    let v: Option<String> = b
        .exec_first("SELECT v FROM t WHERE ? = 1", (1,))
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("through"));
    let cluster = outer.server.runtime.cluster();
    let pool = &cluster.databases["shop"].data_sources["ds_0"].mysql;
    assert_eq!(pool.in_use(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_backend_password_is_reported_as_an_unavailable_data_source() {
    let db = MysqlDatabase::create("sha2_badpw");
    let keys = TempDir::new("sha2_keys");
    let inner = Proxy::start(&sha2_config(&db, &keys)).await;
    let outer_url = format!(
        "mysql://{SHA2_USER}:nope@127.0.0.1:{}/shop",
        inner.mysql_port()
    );
    let outer = Proxy::start(&mysql_config("shop", &outer_url, "")).await;
    let opts = mysql_async::OptsBuilder::from_opts(outer.app_opts("shop"))
        .max_allowed_packet(Some(16 << 20))
        .wait_timeout(Some(28800));
    let mut conn = Conn::new(opts).await.unwrap();
    let (code, _, message) = server_error(conn.query_drop("SELECT 1").await);
    assert_eq!(code, 2003);
    assert!(
        message.contains("'ds_0'") && message.contains("1045"),
        "{message}"
    );
    assert!(
        !message.contains("nope"),
        "the password does not leak: {message}"
    );
}

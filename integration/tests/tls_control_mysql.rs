//! TLS on the MySQL control plane, against servers whose dbmesh user is `REQUIRE SSL`
//! (the URL's `VERIFY_IDENTITY` with the test CA): a replica is health-checked over TLS,
//! admitted and serves reads; XA recovery with the transaction log table there lists
//! `XA RECOVER` and reads the log over TLS, commits the branch with a decision, rolls back
//! the one without, and trims the decision.

use dbmesh_integration::*;
use mysql_async::prelude::Queryable;

const TLS_USER: &str = "tls_only";
const TLS_PASSWORD: &str = "tls-pw";

const ADMIN: &str =
    "\n[[users]]\nname = \"ops\"\npassword = \"ops-secret\"\nadmin = true\ndatabases = [\"*\"]\n";

/// Creates [`TLS_USER`] (`REQUIRE SSL`, every privilege) on the server `root` talks to.
async fn create_tls_user(root: &mut mysql_async::Conn) {
    for host in ["%", "localhost", "127.0.0.1"] {
        root.query_drop(format!(
            "CREATE USER '{TLS_USER}'@'{host}' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL"
        ))
        .await
        .unwrap();
        root.query_drop(format!("GRANT ALL ON *.* TO '{TLS_USER}'@'{host}'"))
            .await
            .unwrap();
    }
}

/// A plain-TCP login of [`TLS_USER`] on `port` is refused (1045).
async fn assert_plain_is_refused(port: u16) {
    let plain = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(TLS_USER))
        .pass(Some(TLS_PASSWORD))
        .prefer_socket(false);
    let err = mysql_async::Conn::new(plain).await.unwrap_err();
    assert!(format!("{err:?}").contains("1045"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_requiring_tls_is_health_checked_and_serves_reads() {
    let certs = TestCerts::new();
    let primary = ReplicationMariadb::start(1).await;
    let replica = TempMariadb::start(
        "mariadb_tls_replica",
        &[
            "--server-id=2".to_string(),
            "--log-bin=binlog".to_string(),
            "--binlog-format=ROW".to_string(),
            format!("--ssl-cert={}", certs.dir.path.join("cert.pem").display()),
            format!("--ssl-key={}", certs.dir.path.join("key.pem").display()),
        ],
    )
    .await;
    let db = unique_name("tlsreplica");
    let mut root = primary.root().await;
    create_tls_user(&mut root).await;
    root.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    root.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    root.disconnect().await.unwrap();
    let mut replica_root = mysql_async::Conn::new(replica.root_opts(None))
        .await
        .unwrap();
    replica_root
        .query_drop(format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
            primary.port
        ))
        .await
        .unwrap();
    replica_root.query_drop("START SLAVE").await.unwrap();
    let replicated = format!("SELECT COUNT(*) FROM {db}.t");
    let mut tries = 0;
    while replica_root.query_drop(&replicated).await.is_err() {
        tries += 1;
        assert!(tries < 600, "the table never reached the replica");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    replica_root.disconnect().await.unwrap();
    // The user replicated too: the replica refuses it on plain TCP.
    assert_plain_is_refused(replica.port).await;

    let replica_url = format!(
        "mysql://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{}/{db}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        replica.port,
        certs.ca().display()
    );
    let extra = format!(
        "health_check_interval_ms = 100\nmax_replica_lag_ms = 30000\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{replica_url}\"\n{ADMIN}"
    );
    let proxy = Proxy::start(&mysql_config("shop", &primary.url(&db), &extra)).await;
    let mut admin = mysql_async::Conn::new(proxy.mysql_opts("ops", "ops-secret", None))
        .await
        .unwrap();
    let mut tries = 0;
    while data_source_health(&mut admin, "ds_0.replica_0").await != "up" {
        tries += 1;
        assert!(tries < 600, "the replica was never admitted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    admin.disconnect().await.unwrap();
    let mut app = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let server_id: Option<u32> = app.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(server_id, Some(2), "the read ran on the replica");
    app.disconnect().await.unwrap();
    proxy.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_recovery_and_the_table_log_on_a_server_requiring_tls() {
    let certs = TestCerts::new();
    let server = TlsMariadb::start(&certs).await;
    let db = unique_name("tlsxa");
    let mut root = mysql_async::Conn::new(server.root_opts(None))
        .await
        .unwrap();
    root.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    create_tls_user(&mut root).await;
    root.disconnect().await.unwrap();
    assert_plain_is_refused(server.port).await;

    // What a crashed earlier incarnation (boot 1) of this instance left: two prepared
    // branches of data source ds_0, and the commit decision of the first.
    let instance = unique_instance_id();
    let committed = format!("dbmesh-{instance}-1-1");
    let undecided = format!("dbmesh-{instance}-1-2");
    let mut setup = mysql_async::Conn::new(server.root_opts(Some(&db)))
        .await
        .unwrap();
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    setup
        .query_drop("CREATE TABLE dbmesh_xa_log (gtrid VARCHAR(64) NOT NULL PRIMARY KEY, participants VARCHAR(4000) NOT NULL, decided_ms BIGINT NOT NULL)")
        .await
        .unwrap();
    setup
        .query_drop(format!(
            "INSERT INTO dbmesh_xa_log VALUES ('{committed}', 'ds_0', 0)"
        ))
        .await
        .unwrap();
    setup.disconnect().await.unwrap();
    // One connection per branch: a connection with a prepared branch can do nothing else
    // until it goes; the prepared branch outlives it (MariaDB 10.5+).
    for (gtrid, id) in [(&committed, 1), (&undecided, 2)] {
        let mut setup = mysql_async::Conn::new(server.root_opts(Some(&db)))
            .await
            .unwrap();
        let xid = format!("'{gtrid}','ds_0'");
        for sql in [
            format!("XA START {xid}"),
            format!("INSERT INTO t VALUES ({id})"),
            format!("XA END {xid}"),
            format!("XA PREPARE {xid}"),
        ] {
            setup
                .query_drop(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        setup.disconnect().await.unwrap();
    }

    let url = format!(
        "mysql://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{}/{db}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        server.port,
        certs.ca().display()
    );
    let extra = format!(
        "\n[transaction]\ninstance_id = \"{instance}\"\nlog = \"table\"\n\
         log_data_source = \"shop.ds_0\"\nrecovery_interval_ms = 200\n"
    );
    let proxy = Proxy::start(&mysql_config("shop", &url, &extra)).await;
    let mut check = mysql_async::Conn::new(server.root_opts(Some(&db)))
        .await
        .unwrap();
    for _ in 0..600 {
        let prepared: Vec<mysql_async::Row> = check.query("XA RECOVER").await.unwrap();
        let decisions: Option<i64> = check
            .query_first("SELECT COUNT(*) FROM dbmesh_xa_log")
            .await
            .unwrap();
        if prepared.is_empty() && decisions == Some(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let prepared: Vec<mysql_async::Row> = check.query("XA RECOVER").await.unwrap();
    assert!(prepared.is_empty(), "branches left: {}", prepared.len());
    let decisions: Option<i64> = check
        .query_first("SELECT COUNT(*) FROM dbmesh_xa_log")
        .await
        .unwrap();
    assert_eq!(decisions, Some(0), "the decision was not trimmed");
    let ids: Vec<i32> = check.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!(
        ids,
        vec![1],
        "the decided branch committed, the other rolled back"
    );
    check.disconnect().await.unwrap();

    // Sessions reach the same server over TLS too.
    let mut conn = mysql_async::Conn::new(proxy.app_opts("shop"))
        .await
        .unwrap();
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    assert!(!cipher.map(|c| c.1).unwrap_or_default().is_empty());
    conn.disconnect().await.unwrap();
    proxy.server.stop().await;
}

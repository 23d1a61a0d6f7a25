//! TLS on the MySQL control plane: XA recovery with the transaction log table on a MariaDB
//! whose dbmesh user is `REQUIRE SSL` lists `XA RECOVER` and reads the log over TLS (the
//! URL's `VERIFY_IDENTITY` with the test CA), commits the branch with a decision, rolls
//! back the one without, and trims the decision.

use dbmesh_integration::*;
use mysql_async::prelude::Queryable;

const TLS_USER: &str = "tls_only";
const TLS_PASSWORD: &str = "tls-pw";

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
    root.disconnect().await.unwrap();
    // Plain TCP is refused for that user.
    let plain = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(server.port)
        .user(Some(TLS_USER))
        .pass(Some(TLS_PASSWORD))
        .prefer_socket(false);
    let err = mysql_async::Conn::new(plain).await.unwrap_err();
    assert!(format!("{err:?}").contains("1045"), "{err:?}");

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

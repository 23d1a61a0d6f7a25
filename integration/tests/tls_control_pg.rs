//! TLS on the PostgreSQL control plane (tokio-postgres over dbmesh's rustls client): a
//! streaming standby that requires TLS is health-checked over TLS, admitted, and serves
//! reads (a CA that did not sign its certificate keeps it ejected, with the reason); and
//! XA recovery with the transaction log table on a TLS-only server resolves the prepared
//! branches a dead incarnation left there. "TLS only" is pg_hba.conf: `hostssl` for the
//! user dbmesh logs in as, plain TCP only for `postgres` (the tests' own setup).

use dbmesh_integration::*;
use tokio_postgres::{Client, SimpleQueryMessage};

/// The superuser dbmesh logs in as; pg_hba.conf lets it in over TLS only.
const TLS_USER: &str = "tls_only";

const ADMIN: &str =
    "\n[[users]]\nname = \"ops\"\npassword = \"ops-secret\"\nadmin = true\ndatabases = [\"*\"]\n";

/// The first row of a simple query, every column as text.
async fn first_row(client: &Client, sql: &str) -> Vec<Option<String>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// Waits until a plain-TCP login of [`TLS_USER`] on `port` is refused for want of TLS
/// (the pg_hba.conf reload is asynchronous).
async fn until_plain_is_refused(port: u16, db: &str) {
    let plain = format!("host=127.0.0.1 port={port} user={TLS_USER} dbname={db} sslmode=disable");
    eventually("plain TCP is refused", || async {
        match pg_connect(&plain).await {
            Ok(_) => false,
            Err(e) => {
                let text = format!("{e:?}");
                assert!(text.contains("no encryption"), "{text}");
                true
            }
        }
    })
    .await;
}

/// The replica's row of `SHOW DBMESH DATA SOURCES`: (health, last_error).
async fn replica_row(admin: &Client) -> (String, Option<String>) {
    let messages = admin
        .simple_query("SHOW DBMESH DATA SOURCES")
        .await
        .unwrap();
    for m in messages {
        if let SimpleQueryMessage::Row(r) = m {
            if r.get("data_source") == Some("ds_0.replica_0") {
                return (
                    r.get("health").unwrap().to_string(),
                    r.get("last_error").map(str::to_string),
                );
            }
        }
    }
    panic!("the replica has no row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_that_requires_tls_is_health_checked_over_tls_and_serves_reads() {
    let certs = TestCerts::new();
    let db = unique_name("tlsstandby");
    let primary = start_pg_primary().await;
    let setup = primary.connect("postgres").await;
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE ROLE {TLS_USER} LOGIN SUPERUSER"),
    ] {
        setup.batch_execute(&sql).await.unwrap();
    }
    let (_keys, tls) = tls_conf(&certs);
    let standby = start_pg_standby(&primary, &tls).await;
    let client = primary.connect(&db).await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    eventually("the table reaches the standby", || async {
        match pg_connect(&standby.dsn(&db)).await {
            Ok(c) => c.query_one("SELECT count(*) FROM t", &[]).await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    require_tls_in(
        &standby.dir.path.join("data/pg_hba.conf"),
        &standby.dsn("postgres"),
    )
    .await;
    until_plain_is_refused(standby.port, &db).await;

    let config = |ca: &std::path::Path| {
        let replica = format!(
            "postgres://{TLS_USER}@127.0.0.1:{}/{db}?sslmode=verify-full&sslrootcert={}",
            standby.port,
            ca.display()
        );
        let extra = format!(
            "health_check_interval_ms = 100\nmax_replica_lag_ms = 30000\n\
             [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{replica}\"\n{ADMIN}"
        );
        pg_config("shop", &primary.url(&db), &extra)
    };

    // Trusted: admitted, and reads run on the standby, whose health-check session is TLS.
    let proxy = Proxy::start(&config(&certs.ca())).await;
    let admin = pg_connect(&proxy.pg_dsn("ops", "ops-secret", "shop"))
        .await
        .unwrap();
    eventually("the standby is admitted", || async {
        replica_row(&admin).await.0 == "up"
    })
    .await;
    let app = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let row = first_row(
        &app,
        "SELECT inet_server_port(), \
         (SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
          WHERE a.application_name = 'dbmesh-health')",
    )
    .await;
    assert_eq!(
        row,
        vec![Some(standby.port.to_string()), Some("true".to_string())],
        "the read ran on the standby, whose health-check session is TLS"
    );
    drop((app, admin));
    proxy.server.stop().await;

    // A CA that did not sign the standby's certificate: never admitted, reads go to the
    // primary, and the reason names the certificate.
    let proxy = Proxy::start(&config(&certs.other_ca())).await;
    let admin = pg_connect(&proxy.pg_dsn("ops", "ops-secret", "shop"))
        .await
        .unwrap();
    eventually("the untrusted standby is ejected", || async {
        let (health, error) = replica_row(&admin).await;
        health == "ejected" && error.is_some_and(|e| e.contains("invalid peer certificate"))
    })
    .await;
    let app = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let row = first_row(&app, "SELECT inet_server_port()").await;
    assert_eq!(row, vec![Some(primary.port.to_string())]);
    drop((app, admin));
    proxy.server.stop().await;
}

/// The transaction log table and the prepared branches both live on a TLS-only server:
/// recovery reads the log and lists `pg_prepared_xacts` over TLS, commits the branch with
/// a decision, rolls back the one without, and trims the decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_recovery_and_the_table_log_on_a_tls_only_server() {
    let certs = TestCerts::new();
    let server = TlsPostgres::start(&certs).await;
    let db = unique_name("tlsxa");
    let admin = pg_connect(&server.dsn("postgres")).await.unwrap();
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE ROLE {TLS_USER} LOGIN SUPERUSER"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    server.require_tls().await;
    until_plain_is_refused(server.port, &db).await;

    // What a crashed earlier incarnation (boot 1) of this instance left: two prepared
    // branches of data source ds_0, and the commit decision of the first.
    let instance = unique_instance_id();
    let committed = format!("dbmesh-{instance}-1-1");
    let undecided = format!("dbmesh-{instance}-1-2");
    let setup = pg_connect(&server.dsn(&db)).await.unwrap();
    // One statement group each: a BEGIN in a multi-statement query would pull what came
    // before it into the prepared transaction.
    for sql in [
        "CREATE TABLE t (id int PRIMARY KEY)".to_string(),
        "CREATE TABLE dbmesh_xa_log (gtrid VARCHAR(64) NOT NULL PRIMARY KEY, participants VARCHAR(4000) NOT NULL, decided_ms BIGINT NOT NULL)".to_string(),
        format!("INSERT INTO dbmesh_xa_log VALUES ('{committed}', 'ds_0', 0)"),
        format!("BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION '{committed}.ds_0'"),
        format!("BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION '{undecided}.ds_0'"),
    ] {
        setup
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    let url = format!(
        "postgres://{TLS_USER}@127.0.0.1:{}/{db}?sslmode=verify-full&sslrootcert={}",
        server.port,
        certs.ca().display()
    );
    let extra = format!(
        "\n[transaction]\ninstance_id = \"{instance}\"\nlog = \"table\"\n\
         log_data_source = \"shop.ds_0\"\nrecovery_interval_ms = 200\n"
    );
    let proxy = Proxy::start(&pg_config("shop", &url, &extra)).await;
    eventually(
        "recovery resolves both branches and trims the log",
        || async {
            let left: i64 = setup
                .query_one("SELECT count(*) FROM pg_prepared_xacts", &[])
                .await
                .unwrap()
                .get(0);
            let decisions: i64 = setup
                .query_one("SELECT count(*) FROM dbmesh_xa_log", &[])
                .await
                .unwrap()
                .get(0);
            left == 0 && decisions == 0
        },
    )
    .await;
    let ids: Vec<i32> = setup
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ids,
        vec![1],
        "the decided branch committed, the other rolled back"
    );

    // The sessions reach the same server over TLS too.
    let app = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    let ssl = first_row(
        &app,
        "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    assert_eq!(ssl, vec![Some("true".to_string())]);
    drop(app);
    proxy.server.stop().await;
}

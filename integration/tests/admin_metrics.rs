//! The admin endpoint: after traffic on both protocols (a plain and a sharded MySQL
//! database, a plain PostgreSQL one), a scrape of `/metrics` shows the counters moved with
//! the right labels; `/health` answers; `/ready` is 200 when every data source is
//! reachable and 503 naming the one that is not; after a reload the pool gauges are the
//! new configuration's.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use dbmesh_integration::{
    pg_connect, unique_name, AdminCluster, MysqlDatabase, PgDatabase, Proxy, TempDir,
    ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES,
};

/// `GET path` over HTTP/1.1; returns the status code and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: dbmesh\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// One sample of the Prometheus text format: name, labels, value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(body: &str) -> Vec<Sample> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The sum of the samples called `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

struct Setup {
    proxy: Proxy,
    plain: String,
    sharded: String,
    pg: String,
    _dbs: (MysqlDatabase, MysqlDatabase, MysqlDatabase, PgDatabase),
    _dir: TempDir,
}

async fn start() -> Setup {
    let dbs = (
        MysqlDatabase::create("metrics"),
        MysqlDatabase::create("metrics_s0"),
        MysqlDatabase::create("metrics_s1"),
        PgDatabase::create("metrics"),
    );
    let dir = TempDir::new("metrics_rules");
    let rules = dir.path.join("rules.toml");
    std::fs::write(&rules, ORDERS_RULES).unwrap();
    let (plain, sharded, pg) = (
        unique_name("plain"),
        unique_name("sharded"),
        unique_name("pg"),
    );
    let toml = format!(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
postgres_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
connect_timeout_ms = 2000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["*"]

[databases.{plain}]
backend = "mysql"
default_data_source = "ds_0"
[databases.{plain}.data_sources.ds_0]
url = "{}"
max_connections = 7

[databases.{sharded}]
backend = "mysql"
default_data_source = "ds_0"
rules = ["{}"]
[databases.{sharded}.data_sources.ds_0]
url = "{}"
[databases.{sharded}.data_sources.ds_1]
url = "{}"

[databases.{pg}]
backend = "postgres"
default_data_source = "ds_0"
[databases.{pg}.data_sources.ds_0]
url = "{}"
"#,
        dbs.0.url(),
        rules.display(),
        dbs.1.url(),
        dbs.2.url(),
        dbs.3.url(),
    );
    let proxy = Proxy::start(&toml).await;
    Setup {
        proxy,
        plain,
        sharded,
        pg,
        _dbs: dbs,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_traffic_shows_the_counters_moved() {
    let s = start().await;
    let admin = s.proxy.server.admin_addr.expect("admin listener");

    // MySQL, no sharding rules: single routes, a transaction, an error.
    let mut c = mysql_async::Conn::new(s.proxy.app_opts(&s.plain))
        .await
        .unwrap();
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let _: Vec<i32> = c.query("SELECT id FROM t").await.unwrap();
    assert!(c.query_drop("SELECT * FROM no_such_table").await.is_err());

    // MySQL, sharded: DDL fanned out, a single-shard insert, a scan of every shard, a
    // broadcast-table write, a transaction over the data sources.
    let mut sh = mysql_async::Conn::new(s.proxy.app_opts(&s.sharded))
        .await
        .unwrap();
    for ddl in ORDERS_DDL {
        sh.query_drop(ddl).await.unwrap();
    }
    sh.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 1, 10)")
        .await
        .unwrap();
    let _: Vec<i64> = sh.query("SELECT order_id FROM t_order").await.unwrap();
    sh.query_drop("INSERT INTO t_province (id, name) VALUES (1, 'north')")
        .await
        .unwrap();
    sh.query_drop("BEGIN").await.unwrap();
    sh.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (2, 2, 20)")
        .await
        .unwrap();
    sh.query_drop("ROLLBACK").await.unwrap();
    // An error from the backends of a fan-out.
    assert!(sh.query_drop("UPDATE t_order SET nope = 1").await.is_err());

    // PostgreSQL: simple and extended protocol, a rolled-back transaction, an error.
    let dsn = s.proxy.pg_dsn(APP_USER, APP_PASSWORD, &s.pg);
    let pg = pg_connect(&dsn).await.unwrap();
    pg.batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    pg.execute("INSERT INTO t VALUES ($1)", &[&1i32])
        .await
        .unwrap();
    pg.batch_execute("BEGIN").await.unwrap();
    pg.batch_execute("INSERT INTO t VALUES (2)").await.unwrap();
    pg.batch_execute("ROLLBACK").await.unwrap();
    let err = pg
        .simple_query("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
    let rows = pg.query("SELECT id FROM t", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);

    let (status, body) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    // Every metric is described, in the words of docs/metrics.md.
    for help in [
        "# HELP dbmesh_statements_total Statements run, by protocol",
        "# HELP dbmesh_statement_duration_seconds Statement latency",
        "# HELP dbmesh_pool_connections Pooled backend connections",
        "# HELP dbmesh_client_connections Client connections open now",
    ] {
        assert!(body.contains(help), "no `{help}` in {body}");
    }
    let m = parse(&body);
    let statements = |db: &str, kind: &str, route: &str| {
        value(
            &m,
            "dbmesh_statements_total",
            &[("database", db), ("type", kind), ("route", route)],
        )
    };
    assert_eq!(statements(&s.plain, "insert", "single"), 2.0, "{body}");
    assert_eq!(statements(&s.plain, "ddl", "single"), 1.0);
    assert_eq!(statements(&s.plain, "begin", "single"), 1.0);
    assert_eq!(statements(&s.sharded, "ddl", "broadcast"), 3.0, "{body}");
    assert_eq!(statements(&s.sharded, "insert", "single"), 2.0);
    assert_eq!(statements(&s.sharded, "select", "multi"), 1.0);
    assert_eq!(statements(&s.sharded, "insert", "broadcast"), 1.0);
    assert_eq!(statements(&s.pg, "insert", "single"), 2.0, "{body}");
    assert!(statements(&s.pg, "select", "single") >= 2.0);
    assert!(
        value(
            &m,
            "dbmesh_statement_duration_seconds_count",
            &[("database", &s.pg)]
        ) >= 6.0,
        "{body}"
    );
    assert!(
        value(
            &m,
            "dbmesh_backend_duration_seconds_count",
            &[("database", &s.plain), ("data_source", "ds_0")]
        ) >= 6.0
    );

    // Fanned-out units are timed per data source too: ds_1 of the sharded database ran
    // one single-unit INSERT, and its share of three DDL fan-outs, a scan, a broadcast write
    // and the failed UPDATE.
    let sharded_ds1 = [("database", s.sharded.as_str()), ("data_source", "ds_1")];
    assert!(
        value(&m, "dbmesh_backend_duration_seconds_count", &sharded_ds1) >= 5.0,
        "{body}"
    );

    let errors = |protocol: &str, code: &str| {
        value(
            &m,
            "dbmesh_errors_total",
            &[("protocol", protocol), ("code", code)],
        )
    };
    assert!(errors("mysql", "1146") >= 1.0, "{body}");
    assert!(errors("mysql", "1054") >= 1.0, "{body}");
    assert!(errors("postgres", "42P01") >= 1.0, "{body}");

    let txns = |protocol: &str, kind: &str, outcome: &str| {
        value(
            &m,
            "dbmesh_transactions_total",
            &[("protocol", protocol), ("type", kind), ("outcome", outcome)],
        )
    };
    assert!(txns("mysql", "single", "commit") >= 1.0, "{body}");
    assert!(txns("mysql", "local", "rollback") >= 1.0, "{body}");
    assert!(txns("postgres", "single", "rollback") >= 1.0, "{body}");

    for protocol in ["mysql", "postgres"] {
        let p = [("protocol", protocol)];
        assert!(value(&m, "dbmesh_client_connections_total", &p) >= 1.0);
        assert!(value(&m, "dbmesh_client_connections", &p) >= 1.0, "{body}");
        assert!(value(&m, "dbmesh_client_received_bytes_total", &p) > 0.0);
        assert!(value(&m, "dbmesh_client_sent_bytes_total", &p) > 0.0);
    }
    let pool = [("database", s.plain.as_str()), ("data_source", "ds_0")];
    assert_eq!(value(&m, "dbmesh_pool_max_connections", &pool), 7.0);
    // Under transaction pooling (the default) the idle session gave its one connection
    // back: it is in the pool, idle.
    let state = |s: &'static str| {
        let mut labels = pool.to_vec();
        labels.push(("state", s));
        value(&m, "dbmesh_pool_connections", &labels)
    };
    assert_eq!(state("in_use"), 0.0, "the idle session holds no connection");
    assert_eq!(
        state("idle"),
        1.0,
        "the session's connection is back in the pool"
    );

    let (status, body) = http_get(admin, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = http_get(admin, "/ready").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _) = http_get(admin, "/nope").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_naming_an_unreachable_data_source() {
    let db = MysqlDatabase::create("ready");
    // A port nothing listens on.
    let dead = dbmesh_integration::free_port();
    let toml = format!(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
connect_timeout_ms = 1000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["*"]

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"
[databases.shop.data_sources.ds_0]
url = "{}"
[databases.shop.data_sources.ds_1]
url = "mysql://root@127.0.0.1:{dead}/gone"
"#,
        db.url()
    );
    let proxy = Proxy::start(&toml).await;
    let admin = proxy.server.admin_addr.unwrap();
    let (status, body) = http_get(admin, "/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("shop.ds_1"), "{body}");
    assert!(!body.contains("shop.ds_0"), "{body}");
    let (status, _) = http_get(admin, "/health").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reload_removed_a_database_its_pool_gauges_are_gone() {
    let cluster = AdminCluster::new("mysql", 0);
    let with_admin = cluster.config_text(r#"admin_listen = "127.0.0.1:0""#);
    cluster.write_config(&with_admin);
    let proxy = cluster.start().await;
    let admin = proxy.server.admin_addr.unwrap();
    let ghost = [("database", cluster.ghost.as_str())];
    let (_, body) = http_get(admin, "/metrics").await;
    assert_eq!(
        value(&parse(&body), "dbmesh_pool_max_connections", &ghost),
        32.0,
        "{body}"
    );

    let section = format!("[databases.{}]", cluster.ghost);
    let without_ghost = with_admin[..with_admin.find(&section).unwrap()]
        .replace(&format!(", \"{}\"", cluster.ghost), "");
    cluster.write_config(&without_ghost);
    let mut conn = mysql_async::Conn::new(proxy.mysql_opts(ADMIN_USER, ADMIN_PASSWORD, None))
        .await
        .unwrap();
    conn.query_drop("RELOAD DBMESH CONFIG").await.unwrap();

    let (_, body) = http_get(admin, "/metrics").await;
    let m = parse(&body);
    for gauge in ["dbmesh_pool_max_connections", "dbmesh_pool_connections"] {
        assert!(
            !m.iter()
                .any(|s| s.name == gauge && s.labels.get("database") == Some(&cluster.ghost)),
            "the removed database's pool is still exported:\n{body}"
        );
    }
    let plain = [("database", cluster.plain.as_str())];
    assert_eq!(value(&m, "dbmesh_pool_max_connections", &plain), 32.0);
}

//! Hot reload: `RELOAD DBMESH CONFIG` and SIGHUP while clients run a steady workload. A
//! valid file changing a sharding rule takes effect for new statements (rows land where
//! the new rule says, read on the data sources directly) while a transaction in flight
//! finishes on the old rule, with zero failed statements; an invalid file is refused with
//! its line number, and the old configuration keeps serving.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dbmesh_integration::{
    free_port, listen_on, pg_connect, pg_sqlstate, server_error, swapped_orders_rules,
    AdminCluster, ChildProxy, Proxy, ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER,
    ORDERS_DDL, ORDERS_RULES, PG_ORDERS_DDL,
};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

/// Clients running statements until told to stop; counts what ran and what failed.
struct Workload {
    stop: Arc<AtomicBool>,
    done: Vec<Arc<AtomicU64>>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    /// Four MySQL clients: INSERT + SELECT on the sharded table, a two-statement
    /// transaction there, and SELECTs on the unsharded database.
    fn mysql(sharded: Opts, plain: Opts) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut done = Vec::new();
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let (stop, failures) = (stop.clone(), failures.clone());
            let count = Arc::new(AtomicU64::new(0));
            done.push(count.clone());
            let opts = if worker == 3 {
                plain.clone()
            } else {
                sharded.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(opts).await.expect("workload connects");
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = (worker + 1) * 10_000_000 + i;
                    let user = (i % 7) as i64;
                    let statements: Vec<String> = match worker {
                        0 | 1 => vec![
                            format!("INSERT INTO t_order (order_id, user_id, amount) VALUES ({id}, {user}, 1)"),
                            format!("SELECT COUNT(*) FROM t_order WHERE user_id = {user}"),
                        ],
                        2 => vec![
                            "BEGIN".into(),
                            format!("INSERT INTO t_order (order_id, user_id) VALUES ({id}, {user})"),
                            format!("INSERT INTO t_order (order_id, user_id) VALUES ({}, {user})", id + 5_000_000),
                            "COMMIT".into(),
                        ],
                        _ => vec!["SELECT 1".into()],
                    };
                    for sql in statements {
                        if let Err(e) = conn.query_drop(&sql).await {
                            failures.lock().unwrap().push(format!("{sql}: {e}"));
                        }
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        Workload {
            stop,
            done,
            failures,
            tasks,
        }
    }

    /// Waits until every client has run `rounds` more rounds than now.
    async fn run_rounds(&self, rounds: u64) {
        let start: Vec<u64> = self
            .done
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect();
        loop {
            let behind = self
                .done
                .iter()
                .zip(&start)
                .any(|(d, s)| d.load(Ordering::Relaxed) < s + rounds);
            if !behind {
                return;
            }
            assert!(
                self.failures.lock().unwrap().len() < 10,
                "{:?}",
                self.failures.lock().unwrap()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("workload client panicked");
        }
        let failures = self.failures.lock().unwrap().clone();
        failures
    }
}

async fn variable(conn: &mut Conn, name: &str) -> String {
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW DBMESH VARIABLES LIKE '{name}'"))
        .await
        .unwrap();
    row.unwrap().1
}

/// The order ids above `above` on each physical database of the sharded one.
async fn orders_on(cluster: &AdminCluster, above: u64) -> [Vec<u64>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for (i, ids) in out.iter_mut().enumerate() {
        let mut conn = Conn::new(cluster.mysql_direct(i)).await.unwrap();
        *ids = conn
            .query(format!(
                "SELECT order_id FROM t_order_0 WHERE order_id > {above} UNION ALL \
                 SELECT order_id FROM t_order_1 WHERE order_id > {above} ORDER BY 1"
            ))
            .await
            .unwrap();
        let _ = conn.disconnect().await;
    }
    out
}

async fn start_mysql() -> (AdminCluster, Proxy, Conn) {
    let cluster = AdminCluster::new("mysql", 0);
    let proxy = cluster.start().await;
    let mut admin = Conn::new(proxy.mysql_opts(ADMIN_USER, ADMIN_PASSWORD, Some(&cluster.sharded)))
        .await
        .unwrap();
    for ddl in ORDERS_DDL {
        admin.query_drop(ddl).await.unwrap();
    }
    (cluster, proxy, admin)
}

#[tokio::test]
async fn a_valid_file_takes_effect_for_new_statements_while_a_transaction_finishes_on_the_old_one()
{
    let (cluster, proxy, mut admin) = start_mysql().await;
    let workload = Workload::mysql(
        proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.sharded)),
        proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain)),
    );
    workload.run_rounds(20).await;

    let mut txn = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.sharded)))
        .await
        .unwrap();
    txn.query_drop("BEGIN").await.unwrap();
    // user 10 is even: ds_0 under the running rule.
    txn.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000001, 10)")
        .await
        .unwrap();

    cluster.write_rules(&swapped_orders_rules());
    admin.query_drop("RELOAD DBMESH CONFIG").await.unwrap();
    assert_eq!(variable(&mut admin, "config_generation").await, "1");
    let rules: Vec<(String, String, String, Option<String>, String)> = admin
        .query("SHOW DBMESH RULES LIKE 'db_inline'")
        .await
        .unwrap();
    assert_eq!(rules[0].4, "expression=ds_${1 - user_id % 2}");

    // Still in the transaction: the old rule.
    txn.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000002, 12)")
        .await
        .unwrap();
    txn.query_drop("COMMIT").await.unwrap();
    // After it: the new rule puts even users on ds_1.
    txn.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000003, 14)")
        .await
        .unwrap();
    let mut fresh = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.sharded)))
        .await
        .unwrap();
    fresh
        .query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000004, 16)")
        .await
        .unwrap();

    workload.run_rounds(20).await;
    let failures = workload.finish().await;
    assert!(
        failures.is_empty(),
        "{} failed statements: {failures:?}",
        failures.len()
    );
    assert_eq!(
        orders_on(&cluster, 90_000_000).await,
        [vec![90000001, 90000002], vec![90000003, 90000004]]
    );
}

#[tokio::test]
async fn an_invalid_file_is_refused_with_its_line_and_the_old_configuration_keeps_serving() {
    let (cluster, proxy, mut admin) = start_mysql().await;
    let workload = Workload::mysql(
        proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.sharded)),
        proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain)),
    );
    workload.run_rounds(20).await;

    // A mistake in the config file itself.
    let good = cluster.config_text("");
    let bad = good.replacen("max_connections = 32", "max_connections = \"many\"", 1);
    let line = bad
        .lines()
        .position(|l| l.contains("\"many\""))
        .expect("the mistake is in the file")
        + 1;
    cluster.write_config(&bad);
    let (code, state, message) = server_error(admin.query_drop("RELOAD DBMESH CONFIG").await);
    assert_eq!((code, state.as_str()), (1105, "HY000"), "{message}");
    let at = format!("{}:{line}:", cluster.config_path.display());
    assert!(message.contains(&at), "expected {at} in: {message}");
    assert!(message.contains("max_connections"), "{message}");

    // A mistake in the rule file it names.
    cluster.write_config(&good);
    let bad_rules = ORDERS_RULES.replace("sharding_count = 2", "sharding_count = \"two\"");
    let rule_line = bad_rules
        .lines()
        .position(|l| l.contains("\"two\""))
        .unwrap()
        + 1;
    cluster.write_rules(&bad_rules);
    let (code, _, message) = server_error(admin.query_drop("reload dbmesh config;").await);
    assert_eq!(code, 1105, "{message}");
    let at = format!("{}:{rule_line}:", cluster.rules_path.display());
    assert!(message.contains(&at), "expected {at} in: {message}");

    assert_eq!(variable(&mut admin, "config_generation").await, "0");
    workload.run_rounds(20).await;
    // The running rule still places even users on ds_0.
    admin
        .query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000001, 10)")
        .await
        .unwrap();
    let failures = workload.finish().await;
    assert!(
        failures.is_empty(),
        "{} failed statements: {failures:?}",
        failures.len()
    );
    assert_eq!(
        orders_on(&cluster, 90_000_000).await,
        [vec![90000001], vec![]]
    );
}

#[tokio::test]
async fn a_changed_listen_address_is_refused_without_touching_the_running_configuration() {
    let (cluster, _proxy, mut admin) = start_mysql().await;
    let moved = cluster.config_text("").replace(
        "mysql_listen = \"127.0.0.1:0\"",
        "mysql_listen = \"127.0.0.1:1\"",
    );
    cluster.write_config(&moved);
    let (code, _, message) = server_error(admin.query_drop("RELOAD DBMESH CONFIG").await);
    assert_eq!(code, 1105);
    assert!(message.contains("server.mysql_listen"), "{message}");
    assert!(message.contains("restart"), "{message}");
    assert_eq!(variable(&mut admin, "config_generation").await, "0");
}

#[tokio::test]
async fn a_sharded_postgres_session_moves_to_the_new_rule_between_statements() {
    let cluster = AdminCluster::new("postgres", 0);
    let proxy = cluster.start().await;
    let admin = pg_connect(&proxy.pg_dsn(ADMIN_USER, ADMIN_PASSWORD, &cluster.sharded))
        .await
        .unwrap();
    for ddl in PG_ORDERS_DDL {
        admin.batch_execute(ddl).await.unwrap();
    }
    let app = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, &cluster.sharded))
        .await
        .unwrap();
    app.batch_execute("INSERT INTO t_order (order_id, user_id) VALUES (1, 10)")
        .await
        .unwrap();

    let bad = ORDERS_RULES.replace("sharding_count = 2", "sharding_count = -2");
    cluster.write_rules(&bad);
    let e = admin
        .simple_query("RELOAD DBMESH CONFIG")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "F0000", "{e:?}");
    assert!(
        format!("{e:?}").contains(&format!("{}:", cluster.rules_path.display())),
        "{e:?}"
    );

    cluster.write_rules(&swapped_orders_rules());
    admin.simple_query("RELOAD DBMESH CONFIG").await.unwrap();
    app.batch_execute("INSERT INTO t_order (order_id, user_id) VALUES (3, 12)")
        .await
        .unwrap();
    let mut placed = Vec::new();
    for i in 0..2 {
        let direct = pg_connect(&cluster.pg_direct(i)).await.unwrap();
        let rows = direct
            .query(
                "SELECT order_id FROM t_order_0 UNION ALL SELECT order_id FROM t_order_1 ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        placed.push(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>());
    }
    assert_eq!(placed, [vec![1], vec![3]]);
}

#[tokio::test]
async fn sighup_reloads_a_running_dbmesh_process() {
    let port = free_port();
    let cluster = AdminCluster::new("mysql", 0);
    let child = ChildProxy::start(&listen_on(&cluster.config_text(""), port), port).await;
    let opts = |user: &str, password: &str| -> Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(cluster.sharded.clone()))
            .prefer_socket(false)
            .into()
    };
    let mut admin = Conn::new(opts(ADMIN_USER, ADMIN_PASSWORD)).await.unwrap();
    for ddl in ORDERS_DDL {
        admin.query_drop(ddl).await.unwrap();
    }
    let mut app = Conn::new(opts(APP_USER, APP_PASSWORD)).await.unwrap();
    let hup = || {
        // The shell's builtin kill: no procps needed.
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -HUP {}", child.pid())])
            .status()
            .unwrap();
        assert!(status.success());
    };

    // An invalid rule file: logged with its line, nothing changes.
    cluster.write_rules(&ORDERS_RULES.replace("sharding_count = 2", "sharding_count = \"x\""));
    hup();
    let wanted = format!("{}:", cluster.rules_path.display());
    wait_for(|| child.log().contains(&wanted), &child).await;
    assert_eq!(variable(&mut admin, "config_generation").await, "0");

    cluster.write_rules(&swapped_orders_rules());
    hup();
    for _ in 0..500 {
        if variable(&mut admin, "config_generation").await == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        variable(&mut admin, "config_generation").await,
        "1",
        "{}",
        child.log()
    );
    app.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000001, 10)")
        .await
        .unwrap();
    assert_eq!(
        orders_on(&cluster, 90_000_000).await,
        [vec![], vec![90000001]]
    );
    assert!(
        child.log().contains("configuration reloaded"),
        "{}",
        child.log()
    );
}

/// Polls `condition` (a log line to appear) for a while; fails with the log otherwise.
async fn wait_for(condition: impl Fn() -> bool, child: &ChildProxy) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the expected log line never came:\n{}", child.log());
}

#[tokio::test]
async fn a_moved_data_source_is_used_by_open_mysql_sessions_after_their_transaction() {
    let (cluster, proxy, mut admin) = start_mysql().await;
    let mut app = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain)))
        .await
        .unwrap();
    assert_eq!(mysql_database(&mut app).await, cluster.physical(2));
    app.query_drop("BEGIN").await.unwrap();
    let moved = cluster
        .config_text("")
        .replace(&cluster.url(2), &cluster.url(1));
    cluster.write_config(&moved);
    admin.query_drop("RELOAD DBMESH CONFIG").await.unwrap();
    assert_eq!(
        mysql_database(&mut app).await,
        cluster.physical(2),
        "inside the transaction"
    );
    app.query_drop("COMMIT").await.unwrap();
    assert_eq!(mysql_database(&mut app).await, cluster.physical(1));
    let sources: Vec<mysql_async::Row> = admin
        .query(format!("SHOW DBMESH DATA SOURCES FROM `{}`", cluster.plain))
        .await
        .unwrap();
    let url: String = sources[0].get("url").unwrap();
    assert!(url.ends_with(&cluster.physical(1)), "{url}");
}

#[tokio::test]
async fn a_moved_data_source_is_used_by_open_postgres_sessions_between_statements() {
    let cluster = AdminCluster::new("postgres", 0);
    let proxy = cluster.start().await;
    let admin = pg_connect(&proxy.pg_dsn(ADMIN_USER, ADMIN_PASSWORD, &cluster.plain))
        .await
        .unwrap();
    let app = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, &cluster.plain))
        .await
        .unwrap();
    assert_eq!(pg_database(&app).await, cluster.physical(2));
    let moved = cluster
        .config_text("")
        .replace(&cluster.url(2), &cluster.url(1));
    cluster.write_config(&moved);
    admin.simple_query("RELOAD DBMESH CONFIG").await.unwrap();
    assert_eq!(pg_database(&app).await, cluster.physical(1));
    assert_eq!(pg_database(&admin).await, cluster.physical(1));
}

/// The physical database a MySQL session's statements run in.
async fn mysql_database(conn: &mut Conn) -> String {
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    db.unwrap()
}

/// The physical database a PostgreSQL session's statements run in.
async fn pg_database(client: &tokio_postgres::Client) -> String {
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap();
    row.get::<_, String>(0)
}

#[tokio::test]
async fn new_logins_use_the_new_users_while_sessions_of_a_removed_user_go_on() {
    let (cluster, proxy, mut admin) = start_mysql().await;
    let mut app = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain)))
        .await
        .unwrap();
    let renamed = cluster.config_text("").replacen(
        &format!("name = \"{APP_USER}\""),
        "name = \"app_renamed\"",
        1,
    );
    cluster.write_config(&renamed);
    admin.query_drop("RELOAD DBMESH CONFIG").await.unwrap();

    let one: Option<i64> = app.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the open session goes on");
    let refused = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain))).await;
    let (code, _, _) = server_error(refused);
    assert_eq!(code, 1045);
    let mut renamed =
        Conn::new(proxy.mysql_opts("app_renamed", APP_PASSWORD, Some(&cluster.plain)))
            .await
            .unwrap();
    let two: Option<i64> = renamed.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
}

#[tokio::test]
async fn with_config_watch_ms_a_changed_rule_file_is_reloaded_on_its_own() {
    let cluster = AdminCluster::new("mysql", 0);
    cluster.write_config(&cluster.config_text("config_watch_ms = 20"));
    let proxy = cluster.start().await;
    let mut admin = Conn::new(proxy.mysql_opts(ADMIN_USER, ADMIN_PASSWORD, Some(&cluster.sharded)))
        .await
        .unwrap();
    for ddl in ORDERS_DDL {
        admin.query_drop(ddl).await.unwrap();
    }
    let wait_for_generation = |wanted: &'static str| {
        let opts = proxy.mysql_opts(ADMIN_USER, ADMIN_PASSWORD, None);
        async move {
            let mut conn = Conn::new(opts).await.unwrap();
            for _ in 0..500 {
                if variable(&mut conn, "config_generation").await == wanted {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("config_generation never became {wanted}");
        }
    };
    // An invalid change is refused; the valid one after it is taken.
    cluster.write_rules(&ORDERS_RULES.replace("sharding_count = 2", "sharding_count = 0"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(variable(&mut admin, "config_generation").await, "0");
    cluster.write_rules(&swapped_orders_rules());
    wait_for_generation("1").await;
    admin
        .query_drop("INSERT INTO t_order (order_id, user_id) VALUES (90000001, 10)")
        .await
        .unwrap();
    assert_eq!(
        orders_on(&cluster, 90_000_000).await,
        [vec![], vec![90000001]]
    );
    // The invalid file in between never took effect.
    assert_eq!(variable(&mut admin, "config_generation").await, "1");
}

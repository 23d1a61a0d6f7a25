//! Transaction pooling for PostgreSQL clients (`pool_mode = "transaction"`, the default): a
//! session gives its backend connection back between transactions, so many clients share
//! few connections, and what the session set up follows it to whichever connection serves
//! it next: SETs, named prepared statements (under backend names of dbmesh's own, so two
//! sessions' statements of one name do not clash). A checkout that finds no free
//! connection in time fails with 53300 and the session goes on; no error, cancel or
//! disconnect leaks a pool slot. `pool_mode = "session"` keeps a connection per session.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbmesh_integration::{
    pg_admin, pg_config, pg_connect, pg_port, pg_user, run_program, with_server_keys, PgDatabase,
    Proxy, APP_PASSWORD, APP_USER,
};
use tokio_postgres::{Client, NoTls};

/// A proxy in front of a new database, its data source capped at `max` connections, with
/// `server` keys added to `[server]` and an md5 user `fast` (cheap logins for many clients).
async fn setup(prefix: &str, max: u32, server: &str) -> (PgDatabase, Proxy) {
    let db = PgDatabase::create(prefix);
    let users = pg_user("fast", "fast-secret", "md5", &["shop"]);
    let toml = pg_config("shop", &db.url(), &users)
        .replace("max_connections = 64", &format!("max_connections = {max}"));
    let proxy = Proxy::start(&server_keys(&toml, server)).await;
    (db, proxy)
}

/// `with_server_keys`, where `lines` may replace the config's checkout timeout.
fn server_keys(toml: &str, lines: &str) -> String {
    let toml = if lines.contains("checkout_timeout_ms") {
        toml.replace("checkout_timeout_ms = 5000\n", "")
    } else {
        toml.to_string()
    };
    with_server_keys(&toml, lines)
}

async fn client(proxy: &Proxy) -> Client {
    pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap()
}

/// The backend process serving `c` now. A simple query: tokio-postgres closes a
/// statement it prepared for a one-off query afterwards, a message of its own that would
/// check out a connection at a moment the test does not control.
async fn pid(c: &Client) -> i32 {
    let rows = c.simple_query("SELECT pg_backend_pid()").await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
            _ => None,
        })
        .expect("a row")
}

async fn app(c: &Client) -> String {
    c.query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0)
}

fn pool(proxy: &Proxy) -> Arc<dbmesh_integration::dbmesh::execute::DataSource> {
    proxy.server.runtime.cluster().databases["shop"].data_sources["ds_0"].clone()
}

/// Waits until no connection of the pool is checked out (every session released its).
async fn wait_until_in_use(proxy: &Proxy, n: usize) {
    let ds = pool(proxy);
    for _ in 0..3000 {
        if ds.postgres.in_use() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the pool still has {} connections in use, expected {n}",
        ds.postgres.in_use()
    );
}

/// Client server processes connected to physical database `db` (not autovacuum workers,
/// which visit a new database too).
async fn backends_on(db: &str) -> i64 {
    pg_admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
             AND backend_type = 'client backend'",
            &[&db],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_share_twenty_backend_connections() {
    const CLIENTS: usize = 1000;
    const MAX: u32 = 20;
    let (db, proxy) = setup("pool_many", MAX, "checkout_timeout_ms = 60000").await;
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    direct
        .batch_execute("CREATE TABLE hits (client int, n int)")
        .await
        .unwrap();
    // Counts the server processes on the database while the clients run.
    let most = Arc::new(AtomicI64::new(0));
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (most, watching, name) = (most.clone(), watching.clone(), db.name.clone());
        tokio::spawn(async move {
            let admin = pg_admin().await;
            while watching.load(Ordering::Relaxed) {
                let n: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                         AND backend_type = 'client backend'",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                most.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let dsn = proxy.pg_dsn("fast", "fast-secret", "shop");
    let mut tasks = Vec::new();
    for i in 0..CLIENTS as i32 {
        let dsn = dsn.clone();
        tasks.push(tokio::spawn(async move {
            let c = pg_connect(&dsn).await.expect("login");
            let rows = c.simple_query(&format!("SELECT {i}")).await.unwrap();
            let text = rows.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
            assert_eq!(text, Some(i.to_string()));
            // A named statement (tokio-postgres prepares every statement with a name).
            let add = c.prepare("SELECT $1::int4 + $2::int4").await.unwrap();
            let sum: i32 = c.query_one(&add, &[&i, &1]).await.unwrap().get(0);
            assert_eq!(sum, i + 1);
            // A short transaction.
            c.batch_execute(&format!(
                "BEGIN; INSERT INTO hits VALUES ({i}, 1); INSERT INTO hits VALUES ({i}, 2); COMMIT"
            ))
            .await
            .unwrap();
            let again: i32 = c.query_one(&add, &[&i, &2]).await.unwrap().get(0);
            assert_eq!(again, i + 2);
        }));
    }
    for t in tasks {
        t.await.expect("a client failed");
    }
    watching.store(false, Ordering::Relaxed);
    watcher.await.unwrap();
    let count: i64 = direct
        .query_one("SELECT count(*) FROM hits", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2 * CLIENTS as i64);
    let most = most.load(Ordering::Relaxed);
    // The direct connection is one of them.
    assert!(
        most <= MAX as i64 + 1,
        "{most} server processes on the database"
    );
    assert!(
        most >= 2,
        "the watcher saw the proxy's connections ({most})"
    );
    wait_until_in_use(&proxy, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_and_sets_follow_a_session_to_another_connection() {
    let (db, proxy) = setup("pool_follow", 2, "").await;
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    direct
        .batch_execute(
            "CREATE SCHEMA side; CREATE TABLE side.only_here (v text);
             INSERT INTO side.only_here VALUES ('found via search_path')",
        )
        .await
        .unwrap();
    let a = client(&proxy).await;
    let b = client(&proxy).await;
    let c = client(&proxy).await;
    a.batch_execute("SET search_path = side, public; SET application_name = 'session_a'")
        .await
        .unwrap();
    let read = a
        .prepare("SELECT v FROM only_here WHERE $1::int4 = 1")
        .await
        .unwrap();
    let first = pid(&a).await;
    wait_until_in_use(&proxy, 0).await;
    // b takes that connection (the only idle one) into a transaction, c opens the other;
    // when c is done, a can only run on c's.
    b.batch_execute("BEGIN").await.unwrap();
    assert_eq!(pid(&b).await, first);
    c.batch_execute("BEGIN").await.unwrap();
    let other = pid(&c).await;
    assert_ne!(other, first);
    c.batch_execute("COMMIT").await.unwrap();
    wait_until_in_use(&proxy, 1).await;
    let row = a.query_one(&read, &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "found via search_path");
    assert_eq!(pid(&a).await, other, "a moved to another connection");
    b.batch_execute("COMMIT").await.unwrap();
    let setting: String = a
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(setting, "session_a");
    // And b, on whatever connection it gets, does not see a's settings.
    c.batch_execute("COMMIT").await.unwrap();
    let theirs: String = b
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(theirs, "\"$user\", public");
    wait_until_in_use(&proxy, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_one_connection_keep_their_own_statements_and_settings() {
    let (_db, proxy) = setup("pool_one", 1, "").await;
    let a = client(&proxy).await;
    let b = client(&proxy).await;
    // tokio-postgres names statements s0, s1, ... per client: the same names, other SQL.
    let sa = a.prepare("SELECT 'from a'::text, $1::int4").await.unwrap();
    let sb = b.prepare("SELECT $1::int8 * 10").await.unwrap();
    let same = b.prepare("SELECT 'from a'::text, $1::int4").await.unwrap();
    a.batch_execute("SET application_name = 'a_app'")
        .await
        .unwrap();
    b.batch_execute("SET application_name = 'b_app'")
        .await
        .unwrap();
    for i in 0..5 {
        let r = a.query_one(&sa, &[&i]).await.unwrap();
        assert_eq!(
            (r.get::<_, String>(0), r.get::<_, i32>(1)),
            ("from a".into(), i)
        );
        let r = b.query_one(&sb, &[&(i as i64)]).await.unwrap();
        assert_eq!(r.get::<_, i64>(0), i as i64 * 10);
        let r = b.query_one(&same, &[&i]).await.unwrap();
        assert_eq!(r.get::<_, i32>(1), i);
        assert_eq!(app(&a).await, "a_app");
        assert_eq!(app(&b).await, "b_app");
    }
    assert_eq!(pid(&a).await, pid(&b).await, "one connection for both");
    // Closing a statement in one session leaves the other's of the same SQL working.
    drop(same);
    let r = a.query_one(&sa, &[&7i32]).await.unwrap();
    assert_eq!(r.get::<_, i32>(1), 7);
    // DISCARD ALL drops the session's statements and settings, as on a server.
    b.batch_execute("DISCARD ALL").await.unwrap();
    let e = b.query_one(&sb, &[&1i64]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("26000"), "{e:?}");
    let app: String = b
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(app, "b_app");
    let r = a.query_one(&sa, &[&8i32]).await.unwrap();
    assert_eq!(
        r.get::<_, i32>(1),
        8,
        "a's statement survives b's DISCARD ALL"
    );
    wait_until_in_use(&proxy, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_timeout_is_53300_naming_the_data_source_and_the_session_goes_on() {
    let (_db, proxy) = setup("pool_timeout", 1, "checkout_timeout_ms = 200").await;
    let holder = client(&proxy).await;
    let waiter = client(&proxy).await;
    holder.batch_execute("BEGIN").await.unwrap();
    let e = waiter.simple_query("SELECT 1").await.unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert!(db.message().contains("ds_0"), "{}", db.message());
    // Extended protocol too.
    let e = waiter.query("SELECT $1::int4", &[&1i32]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("53300"), "{e:?}");
    holder.batch_execute("COMMIT").await.unwrap();
    let v: i32 = waiter
        .query_one("SELECT $1::int4", &[&5i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 5);
    wait_until_in_use(&proxy, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_cancels_and_disconnects_leak_no_pool_slot() {
    let (db, proxy) = setup("pool_leak", 4, "").await;
    // An error, inside and outside a transaction.
    let c = client(&proxy).await;
    c.simple_query("SELECT nope").await.unwrap_err();
    c.batch_execute("BEGIN").await.unwrap();
    c.simple_query("SELECT 1/0").await.unwrap_err();
    c.batch_execute("ROLLBACK").await.unwrap();
    c.query("SELECT $1::int4 / 0", &[&1i32]).await.unwrap_err();
    wait_until_in_use(&proxy, 0).await;
    // A cancelled query.
    let token = c.cancel_token();
    let sleeping = tokio::spawn(async move {
        let r = c.simple_query("SELECT pg_sleep(30)").await;
        (r, c)
    });
    wait_for_sleeping(&db.name).await;
    token.cancel_query(NoTls).await.unwrap();
    let (r, c) = sleeping.await.unwrap();
    assert_eq!(r.unwrap_err().code().map(|c| c.code()), Some("57014"));
    wait_until_in_use(&proxy, 0).await;
    assert_eq!(
        c.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );
    // Clients that leave mid-transaction and mid-query.
    let t = client(&proxy).await;
    t.batch_execute("BEGIN; SELECT 1").await.unwrap();
    drop(t);
    let q = client(&proxy).await;
    let running = tokio::spawn(async move { q.simple_query("SELECT pg_sleep(30)").await });
    wait_for_sleeping(&db.name).await;
    running.abort();
    let _ = running.await;
    wait_until_in_use(&proxy, 0).await;
    assert_eq!(
        c.query_one("SELECT 2", &[]).await.unwrap().get::<_, i32>(0),
        2
    );
}

/// Waits until a query of physical database `db` runs `pg_sleep`.
async fn wait_for_sleeping(db: &str) {
    let admin = pg_admin().await;
    for _ in 0..3000 {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the query never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_keeps_a_connection_per_session() {
    let (db, proxy) = setup("pool_session", 4, "pool_mode = \"session\"").await;
    let a = client(&proxy).await;
    let b = client(&proxy).await;
    let (pa, pb) = (pid(&a).await, pid(&b).await);
    assert_ne!(pa, pb);
    assert_eq!(
        pool(&proxy).postgres.in_use(),
        2,
        "idle sessions keep theirs"
    );
    assert_eq!((pid(&a).await, pid(&b).await), (pa, pb));
    assert_eq!(backends_on(&db.name).await, 2);
    drop(a);
    wait_until_in_use(&proxy, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_serves_sequential_sessions_from_one_connection() {
    let (db, proxy) = setup("pool_shared", 4, "").await;
    let a = client(&proxy).await;
    // The connection a's login used is back before b logs in (else b opens another).
    wait_until_in_use(&proxy, 0).await;
    let b = client(&proxy).await;
    wait_until_in_use(&proxy, 0).await;
    let pa = pid(&a).await;
    wait_until_in_use(&proxy, 0).await;
    let pb = pid(&b).await;
    assert_eq!(pa, pb, "b reuses the connection a gave back");
    wait_until_in_use(&proxy, 0).await;
    assert_eq!(backends_on(&db.name).await, 1);
}

/// The TPC-B-like script: transactions of five statements, each prepared by name. One
/// thread per client: pgbench prepares with a blocking PQprepare, so a thread serving
/// several clients would wait for a connection that its own other clients hold, idle in
/// their transactions until the thread reads their results (as through pgbouncer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_prepared_with_fifty_clients_over_five_connections() {
    let db = PgDatabase::create("pool_bench");
    let init = run_program(
        "pgbench",
        &[
            "-i",
            "-q",
            "-s",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &pg_port().to_string(),
            "-U",
            "postgres",
            &db.name,
        ]
        .map(String::from),
        &[],
    )
    .await;
    assert!(init.status.success(), "pgbench -i: {init:?}");
    let toml =
        pg_config("shop", &db.url(), "").replace("max_connections = 64", "max_connections = 5");
    let proxy = Proxy::start(&server_keys(&toml, "checkout_timeout_ms = 20000")).await;
    let port = proxy.postgres_port().to_string();
    let args = [
        "-M",
        "prepared",
        "-c",
        "50",
        "-j",
        "50",
        "-t",
        "20",
        "-n",
        "-h",
        "127.0.0.1",
        "-U",
        APP_USER,
        "-p",
        &port,
        "shop",
    ]
    .map(String::from);
    let out = run_program("pgbench", &args, &[("PGPASSWORD", APP_PASSWORD)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgbench:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("number of transactions actually processed: 1000/1000"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("number of failed transactions: 0"),
        "{stdout}\n{stderr}"
    );
    wait_until_in_use(&proxy, 0).await;
    assert!(backends_on(&db.name).await <= 5);
}

/// Waits until no connection of any data source of logical database `logical` is checked out.
async fn wait_until_all_released(proxy: &Proxy, logical: &str) {
    let cluster = proxy.server.runtime.cluster();
    let sources: Vec<_> = cluster.databases[logical]
        .data_sources
        .values()
        .cloned()
        .collect();
    for _ in 0..3000 {
        if sources.iter().all(|ds| ds.postgres.in_use() == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let in_use: Vec<usize> = sources.iter().map(|ds| ds.postgres.in_use()).collect();
    panic!("connections still in use: {in_use:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_sessions_release_their_shard_connections_between_transactions() {
    let db = dbmesh_integration::ShardedDb::pg_orders().await;
    let c = db.pg_client().await;
    c.batch_execute("INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)")
        .await
        .unwrap();
    c.batch_execute("SET application_name = 'sharded_pool'")
        .await
        .unwrap();
    wait_until_all_released(&db.proxy, &db.logical).await;
    let rows = c
        .query("SELECT order_id FROM t_order ORDER BY order_id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    wait_until_all_released(&db.proxy, &db.logical).await;
    // Inside a transaction the connections stay.
    c.batch_execute("BEGIN; INSERT INTO t_order (order_id, user_id) VALUES (3, 0)")
        .await
        .unwrap();
    let cluster = db.proxy.server.runtime.cluster();
    let in_use = |name: &str| {
        cluster.databases[&db.logical].data_sources[name]
            .postgres
            .in_use()
    };
    let held: usize = cluster.databases[&db.logical]
        .data_sources
        .values()
        .map(|ds| ds.postgres.in_use())
        .sum();
    assert!(held >= 1, "a transaction holds its connection");
    c.batch_execute("COMMIT").await.unwrap();
    wait_until_all_released(&db.proxy, &db.logical).await;
    // The SET survived the connection changes.
    let app: String = c
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(app, "sharded_pool");
    // A named passthrough statement (no sharded table) keeps the default data source's
    // connection while it exists: its name is the client's there.
    let plain = c.prepare("SELECT $1::int4 * 2").await.unwrap();
    let v: i32 = c.query_one(&plain, &[&21i32]).await.unwrap().get(0);
    assert_eq!(v, 42);
    let default = cluster.databases[&db.logical]
        .config
        .default_data_source
        .clone();
    assert_eq!(in_use(&default), 1);
    drop(plain);
    let n = c.query("SELECT order_id FROM t_order", &[]).await.unwrap();
    assert_eq!(n.len(), 3);
    wait_until_all_released(&db.proxy, &db.logical).await;
}

/// The backend process serving `c` now and its `application_name`, by one simple query.
async fn pid_and_app(c: &Client) -> (i32, String) {
    let rows = c
        .simple_query("SELECT pg_backend_pid(), current_setting('application_name')")
        .await
        .unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                r.get(0).unwrap().parse().unwrap(),
                r.get(1).unwrap().to_string(),
            )),
            _ => None,
        })
        .expect("a row")
}

/// Connections idle in the pool are not pinged before an hour (`pool_check_idle_ms`), so
/// one the server closed a moment ago is found closed only when the client's statement is
/// sent on it: the statement goes again on a new connection, with the session's SETs, and
/// the client never hears of it. The close races the statement on purpose, many times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_by_the_server_is_replaced_and_the_statement_sent_again() {
    let (db, proxy) = setup("pool_pg_closed", 4, "pool_check_idle_ms = 3600000").await;
    let c = client(&proxy).await;
    c.batch_execute("SET application_name = 'kept'")
        .await
        .unwrap();
    let admin = pg_admin().await;
    let mut last = pid_and_app(&c).await.0;
    for round in 0..20 {
        wait_until_in_use(&proxy, 0).await;
        // Signalled, not waited for: the backend may still be exiting when the statement
        // reaches it, or may have exited unseen by the proxy.
        let terminated = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                &[&db.name],
            )
            .await
            .unwrap();
        assert!(
            !terminated.is_empty(),
            "round {round}: the pooled connection"
        );
        let (now, app) = pid_and_app(&c).await;
        assert_ne!(now, last, "round {round}: a new backend connection");
        assert_eq!(app, "kept", "round {round}: the SETs replayed");
        last = now;
    }
    // The extended protocol too, with a named statement prepared on a lost connection.
    let add = c.prepare("SELECT $1::int4 + 1").await.unwrap();
    for round in 0..5 {
        wait_until_in_use(&proxy, 0).await;
        admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                &[&db.name],
            )
            .await
            .unwrap();
        let two: i32 = c.query_one(&add, &[&1i32]).await.unwrap().get(0);
        assert_eq!(two, 2, "round {round}");
    }
}

/// At checkout a session gets the idle connection already in its SET state, even when
/// another was returned more recently: no reset and replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_prefers_the_connection_already_in_the_sessions_state() {
    let (_db, proxy) = setup("pool_pg_state", 4, "").await;
    let a = client(&proxy).await;
    let b = client(&proxy).await;
    // `b` holds a connection in a transaction while `a` sets a name on another.
    b.batch_execute("BEGIN").await.unwrap();
    let plain = pid(&b).await;
    a.batch_execute("SET application_name = 'mine'")
        .await
        .unwrap();
    let named = pid_and_app(&a).await;
    assert_ne!(named.0, plain);
    assert_eq!(named.1, "mine");
    // `b`'s connection is returned last, in the default state.
    b.batch_execute("COMMIT").await.unwrap();
    wait_until_in_use(&proxy, 0).await;
    assert_eq!(
        pid_and_app(&a).await,
        named,
        "the connection with `a`'s SET"
    );
    wait_until_in_use(&proxy, 0).await;
    assert_eq!(pid(&b).await, plain, "the connection without SETs");
    wait_until_in_use(&proxy, 0).await;
    assert_eq!(pid_and_app(&a).await, named);
}

/// `min_connections` keeps PostgreSQL pools warm: once a client's connection went back,
/// the upkeep task opens more like it until the minimum is open, and clients use them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_connections_are_kept_open_for_postgres() {
    let db = PgDatabase::create("pool_pg_warm");
    let toml = pg_config("shop", &db.url(), "").replace(
        "max_connections = 64",
        "max_connections = 8\nmin_connections = 3",
    );
    let proxy = Proxy::start(&toml).await;
    let c = client(&proxy).await;
    c.batch_execute("SELECT 1").await.unwrap();
    wait_until_in_use(&proxy, 0).await;
    let ds = pool(&proxy);
    for _ in 0..600 {
        if ds.postgres.idle_count() == 3 && backends_on(&db.name).await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ds.postgres.idle_count(), 3, "three warm connections");
    assert_eq!(backends_on(&db.name).await, 3);
    // Warm connections serve clients of the same start-up parameters.
    let others: Vec<Client> = futures_util::future::join_all((0..3).map(|_| client(&proxy))).await;
    for o in &others {
        o.batch_execute("BEGIN").await.unwrap();
        pid(o).await;
    }
    assert_eq!(
        backends_on(&db.name).await,
        3,
        "no new connection was opened"
    );
    for o in &others {
        o.batch_execute("COMMIT").await.unwrap();
    }
}

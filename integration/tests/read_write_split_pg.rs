//! Read/write splitting on the PostgreSQL listener against a real streaming standby: a
//! temp PostgreSQL primary and a temp hot standby of it (`pg_basebackup -R`), each on its
//! own port and data dir. `inet_server_port()` tells where each statement ran.

use std::collections::HashMap;
use std::time::Duration;

use dbmesh_integration::*;
use tokio_postgres::{Client, SimpleQueryMessage};

const ADMIN: &str =
    "\n[[users]]\nname = \"ops\"\npassword = \"ops-secret\"\nadmin = true\ndatabases = [\"*\"]\n";

/// Polls `check` every 100 ms until it holds, for up to a minute (replication and health
/// checks are asynchronous; the bound only keeps a broken setup from hanging the suite).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

/// The first row of a simple query, by column name.
async fn row(client: &Client, sql: &str) -> HashMap<String, Option<String>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                row.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), row.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// The port of the server that ran `sql` (a simple query whose first column is
/// `inet_server_port()`).
async fn port_of(client: &Client, sql: &str) -> u16 {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let value = messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"));
    value.parse().unwrap_or_else(|_| panic!("{sql}: {value}"))
}

/// The same through the extended protocol (a prepared statement each time).
async fn port_of_extended(client: &Client, sql: &str) -> u16 {
    let row = client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    row.get::<_, i32>(0) as u16
}

/// The standby's row of `SHOW DBMESH DATA SOURCES`: (health, last_error).
async fn standby_row(admin: &Client) -> (String, Option<String>) {
    let messages = admin
        .simple_query("SHOW DBMESH DATA SOURCES")
        .await
        .unwrap();
    for m in messages {
        if let SimpleQueryMessage::Row(r) = m {
            if r.get("data_source") == Some("ds_0.replica_0") {
                assert_eq!(r.get("role"), Some("replica"));
                return (
                    r.get("health").unwrap().to_string(),
                    r.get("last_error").map(str::to_string),
                );
            }
        }
    }
    panic!("the standby has no row");
}

async fn wait_for_standby(admin: &Client, what: &str, health: &str) {
    for _ in 0..600 {
        if standby_row(admin).await.0 == health {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}: {:?}", standby_row(admin).await);
}

/// Rows of `t` on `server` (-1 while the table is not there).
async fn rows_on(server: &TempPostgres, db: &str) -> i64 {
    let Ok(client) = pg_connect(&server.dsn(db)).await else {
        return -1;
    };
    match client.query_one("SELECT count(*) FROM t", &[]).await {
        Ok(r) => r.get(0),
        Err(_) => -1,
    }
}

/// A primary with database `db` holding table `t` and sequence `s`, and a standby (with
/// `standby_conf`) that has replayed them.
async fn servers(db: &str, standby_conf: &str) -> (TempPostgres, TempPostgres) {
    let primary = start_pg_primary().await;
    let setup = primary.connect("postgres").await;
    setup
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    // The standby starts first and replays the table's creation: a standby that has
    // replayed no transaction yet has no replay timestamp, so its lag is unknown (it is
    // ejected while WAL waits to be replayed).
    let standby = start_pg_standby(&primary, standby_conf).await;
    let client = primary.connect(db).await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, written_on int); CREATE SEQUENCE s")
        .await
        .unwrap();
    eventually("the table reaches the standby", || async {
        rows_on(&standby, db).await == 0
    })
    .await;
    (primary, standby)
}

fn config(primary: &TempPostgres, standby: &TempPostgres, db: &str, keys: &str) -> String {
    let extra = format!(
        "health_check_interval_ms = 100\n{keys}\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"{}\"\n{ADMIN}",
        standby.url(db)
    );
    pg_config("shop", &primary.url(db), &extra)
}

async fn connect_app(proxy: &Proxy) -> Client {
    pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_standby_and_everything_else_to_the_primary() {
    let db = unique_name("rw_pg");
    let (primary, standby) = servers(&db, "").await;
    let (p, r) = (primary.port, standby.port);
    let proxy = Proxy::start(&config(
        &primary,
        &standby,
        &db,
        "max_replica_lag_ms = 30000",
    ))
    .await;
    let conn = connect_app(&proxy).await;

    // Simple query: plain reads on the standby; the hint, locking reads, session-bound
    // functions and several statements in one Query on the primary.
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);
    assert_eq!(
        port_of(&conn, "/* dbmesh: primary */ SELECT inet_server_port()").await,
        p
    );
    conn.batch_execute("INSERT INTO t VALUES (1, inet_server_port())")
        .await
        .unwrap();
    for lock in [
        "FOR UPDATE",
        "FOR NO KEY UPDATE",
        "FOR SHARE",
        "FOR KEY SHARE",
    ] {
        let sql = format!("SELECT inet_server_port() FROM t WHERE id = 1 {lock}");
        assert_eq!(port_of(&conn, &sql).await, p, "{sql}");
    }
    for sql in [
        "SELECT inet_server_port(), nextval('s')",
        "SELECT inet_server_port(), currval('s')",
        "SELECT inet_server_port(), pg_advisory_lock(1)",
        "SELECT inet_server_port(), pg_advisory_unlock(1)",
        "SELECT inet_server_port(), txid_current()",
        "SELECT inet_server_port(), setval('s', 10)",
        "SELECT inet_server_port(), lastval()",
    ] {
        assert_eq!(port_of(&conn, sql).await, p, "{sql}");
    }
    let both = conn
        .simple_query("SELECT 1; SELECT inet_server_port()")
        .await
        .unwrap();
    let last = both
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .last();
    assert_eq!(last, Some(p.to_string()), "a multi-statement Query");
    eventually("the insert reaches the standby", || async {
        rows_on(&standby, &db).await == 1
    })
    .await;
    let written = row(
        &conn,
        "SELECT written_on::text AS w, inet_server_port()::text AS at FROM t WHERE id = 1",
    )
    .await;
    assert_eq!(
        written["w"].as_deref(),
        Some(p.to_string().as_str()),
        "written on the primary"
    );
    assert_eq!(
        written["at"].as_deref(),
        Some(r.to_string().as_str()),
        "read on the standby"
    );

    // Extended protocol: the decision is made at Parse; a prepared read runs on the
    // standby again after a write in between, a prepared write on the primary.
    assert_eq!(
        port_of_extended(&conn, "SELECT inet_server_port()::int4").await,
        r
    );
    let read = conn
        .prepare("SELECT inet_server_port()::int4 + $1")
        .await
        .unwrap();
    let write = conn
        .prepare("INSERT INTO t VALUES ($1, inet_server_port()) RETURNING inet_server_port()::int4")
        .await
        .unwrap();
    for i in 0..3 {
        let at: i32 = conn.query_one(&read, &[&0i32]).await.unwrap().get(0);
        assert_eq!(at as u16, r, "prepared read {i}");
        let at: i32 = conn.query_one(&write, &[&(10 + i)]).await.unwrap().get(0);
        assert_eq!(at as u16, p, "prepared write {i}");
    }
    let locked = conn
        .query_one(
            "SELECT inet_server_port()::int4 FROM t WHERE id = $1 FOR UPDATE",
            &[&1i32],
        )
        .await
        .unwrap();
    assert_eq!(locked.get::<_, i32>(0) as u16, p);

    // In an explicit transaction everything runs on the primary (transactional_read =
    // PRIMARY, the default) and the transaction reads its own write.
    conn.batch_execute("BEGIN").await.unwrap();
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, p);
    conn.batch_execute("INSERT INTO t VALUES (2, 0)")
        .await
        .unwrap();
    let seen = row(&conn, "SELECT count(*)::text AS n FROM t WHERE id = 2").await;
    assert_eq!(seen["n"].as_deref(), Some("1"));
    conn.batch_execute("COMMIT").await.unwrap();
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);

    // Session SETs follow the session onto the standby connection.
    conn.batch_execute("SET application_name = 'rw_check'")
        .await
        .unwrap();
    let set = row(
        &conn,
        "SELECT current_setting('application_name') AS name, inet_server_port()::text AS at",
    )
    .await;
    assert_eq!(set["name"].as_deref(), Some("rw_check"));
    assert_eq!(set["at"].as_deref(), Some(r.to_string().as_str()));

    // An error on the standby leaves the connection usable; a write after it works.
    let e = conn
        .simple_query("SELECT 1 / 0, inet_server_port()")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22012");
    conn.batch_execute("INSERT INTO t VALUES (3, 0)")
        .await
        .unwrap();
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);

    // A temporary table pins the session to the primary, where it exists.
    conn.batch_execute("CREATE TEMP TABLE scratch (x int)")
        .await
        .unwrap();
    assert_eq!(
        port_of(
            &conn,
            "SELECT inet_server_port() FROM (SELECT 1) one LEFT JOIN scratch ON true"
        )
        .await,
        p
    );
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_read_dynamic_reads_on_the_standby_inside_a_transaction() {
    let db = unique_name("rw_pg_txn");
    let (primary, standby) = servers(&db, "").await;
    let proxy = Proxy::start(&config(
        &primary,
        &standby,
        &db,
        "max_replica_lag_ms = 30000\ntransactional_read = \"DYNAMIC\"",
    ))
    .await;
    let conn = connect_app(&proxy).await;
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute("INSERT INTO t VALUES (1, 0)")
        .await
        .unwrap();
    // The read runs on the standby (it cannot see the uncommitted row), and the client
    // still sees its transaction open.
    let read = row(
        &conn,
        "SELECT inet_server_port()::text AS at, count(*)::text AS n FROM t",
    )
    .await;
    assert_eq!(
        read["at"].as_deref(),
        Some(standby.port.to_string().as_str())
    );
    assert_eq!(read["n"].as_deref(), Some("0"));
    // The transaction goes on on the primary.
    conn.batch_execute("INSERT INTO t VALUES (2, 0)")
        .await
        .unwrap();
    let own = row(
        &conn,
        "SELECT count(*)::text AS n FROM (SELECT id FROM t FOR SHARE) locked",
    )
    .await;
    assert_eq!(
        own["n"].as_deref(),
        Some("2"),
        "a locking read sees the transaction's rows"
    );
    conn.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        rows_on(&primary, &db).await,
        2,
        "the transaction committed on the primary"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_waits_for_the_standby_or_reads_on_the_primary() {
    let db = unique_name("rw_pg_ryw");
    // The standby applies each transaction 2 s after it committed.
    let (primary, standby) = servers(&db, "recovery_min_apply_delay = '2s'").await;
    let (p, r) = (primary.port, standby.port);

    // Waiting long enough: the read after the write waits on the standby and sees it.
    let proxy = Proxy::start(&config(
        &primary,
        &standby,
        &db,
        "max_replica_lag_ms = 60000\nread_your_writes_timeout_ms = 30000",
    ))
    .await;
    let conn = connect_app(&proxy).await;
    for i in 0..2 {
        conn.batch_execute(&format!("INSERT INTO t VALUES ({i}, 0)"))
            .await
            .unwrap();
        let read = row(
            &conn,
            "SELECT inet_server_port()::text AS at, count(*)::text AS n FROM t",
        )
        .await;
        // Each round adds two rows; the read sees the round's first.
        let rows = (2 * i + 1).to_string();
        assert_eq!(
            read["n"].as_deref(),
            Some(rows.as_str()),
            "write {i} is visible"
        );
        assert_eq!(
            read["at"].as_deref(),
            Some(r.to_string().as_str()),
            "read {i} waited on the standby"
        );
        // The extended protocol too.
        conn.execute("INSERT INTO t VALUES ($1, 0)", &[&(100 + i)])
            .await
            .unwrap();
        let n: i64 = conn
            .query_one("SELECT count(*) FROM t WHERE id = $1", &[&(100 + i)])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "extended write {i} is visible");
    }
    drop(conn);
    drop(proxy);

    // Waiting too short: the read runs on the primary instead, and sees the write.
    let proxy = Proxy::start(&config(
        &primary,
        &standby,
        &db,
        "max_replica_lag_ms = 60000\nread_your_writes_timeout_ms = 50",
    ))
    .await;
    let conn = connect_app(&proxy).await;
    conn.batch_execute("INSERT INTO t VALUES (50, 0)")
        .await
        .unwrap();
    let read = row(
        &conn,
        "SELECT inet_server_port()::text AS at, count(*)::text AS n FROM t WHERE id = 50",
    )
    .await;
    assert_eq!(read["n"].as_deref(), Some("1"));
    assert_eq!(
        read["at"].as_deref(),
        Some(p.to_string().as_str()),
        "fell back to the primary"
    );
    // Once the standby has replayed the write, reads go there again.
    eventually("the standby replays the write", || async {
        rows_on(&standby, &db).await == 5
    })
    .await;
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_standby_is_ejected_and_a_stopped_primary_fails_writes_only() {
    let db = unique_name("rw_pg_down");
    let (mut primary, mut standby) = servers(&db, "").await;
    let (p, r) = (primary.port, standby.port);
    let proxy = Proxy::start(&config(
        &primary,
        &standby,
        &db,
        "max_replica_lag_ms = 30000",
    ))
    .await;
    let conn = connect_app(&proxy).await;
    let admin = pg_connect(&proxy.pg_dsn("ops", "ops-secret", "shop"))
        .await
        .unwrap();
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);
    assert_eq!(standby_row(&admin).await.0, "up");
    // A named statement prepared on the standby, executed later wherever reads go.
    let prepared = conn
        .prepare("SELECT inet_server_port()::int4")
        .await
        .unwrap();
    let run_prepared = || async {
        conn.query_one(&prepared, &[])
            .await
            .unwrap()
            .get::<_, i32>(0) as u16
    };
    assert_eq!(run_prepared().await, r);

    // The standby stops: reads go on, on the primary, without a failed one, and the
    // monitor ejects it.
    standby.stop();
    for i in 0..20 {
        let at = port_of(&conn, "SELECT inet_server_port()").await;
        assert_eq!(at, p, "read {i} after the standby stopped");
    }
    wait_for_standby(&admin, "the stopped standby is ejected", "ejected").await;
    assert_eq!(run_prepared().await, p, "parsed again on the primary");
    let (_, reason) = standby_row(&admin).await;
    assert!(
        reason.as_deref().unwrap_or("").contains("connect"),
        "{reason:?}"
    );
    // Back: admitted again, and reads return to it.
    standby.start().await;
    wait_for_standby(&admin, "the restarted standby is admitted", "up").await;
    eventually("reads return to the standby", || async {
        port_of(&conn, "SELECT inet_server_port()").await == r
    })
    .await;

    // The primary stops: writes fail at once naming the data source, the connection stays
    // usable, and reads go on on the standby (which keeps serving what it replayed).
    primary.stop();
    for _ in 0..3 {
        let e = conn
            .batch_execute("INSERT INTO t VALUES (9, 0)")
            .await
            .unwrap_err();
        assert_eq!(pg_sqlstate(&e), "08006", "{e:?}");
        let message = e.as_db_error().unwrap().message().to_string();
        assert!(message.contains("ds_0"), "{message}");
        assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);
        assert_eq!(run_prepared().await, r);
    }
    // A client connecting now is served by the standby: reads work, writes fail.
    let late = connect_app(&proxy).await;
    assert_eq!(port_of(&late, "SELECT inet_server_port()").await, r);
    let e = late
        .batch_execute("INSERT INTO t VALUES (10, 0)")
        .await
        .unwrap_err();
    assert_eq!(pg_sqlstate(&e), "08006", "{e:?}");
    assert_eq!(port_of(&late, "SELECT inet_server_port()").await, r);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        standby_row(&admin).await.0,
        "up",
        "a standby without its primary stays admitted"
    );
    assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, r);
}

/// Reads under load while the standby dies (an immediate shutdown: its backends go with
/// the postmaster, mid-statement): every read that had sent nothing to its client yet runs
/// again on the primary, so none fails, by simple query or the extended protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_flight_when_the_standby_dies_run_again_on_the_primary() {
    let db = unique_name("rw_pg_die");
    let (primary, mut standby) = servers(&db, "").await;
    let (p, r) = (primary.port, standby.port);
    let proxy = Proxy::start(&config(
        &primary,
        &standby,
        &db,
        "max_replica_lag_ms = 30000",
    ))
    .await;
    let admin = pg_connect(&proxy.pg_dsn("ops", "ops-secret", "shop"))
        .await
        .unwrap();
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let standby_reads: std::sync::Arc<Vec<std::sync::atomic::AtomicU32>> =
        std::sync::Arc::new((0..4).map(|_| Default::default()).collect());
    let mut clients = Vec::new();
    for c in 0..4 {
        let conn = connect_app(&proxy).await;
        let stopped = stopped.clone();
        let reads = standby_reads.clone();
        clients.push(tokio::spawn(async move {
            // (reads on the standby, reads after the stop)
            let (mut on_standby, mut after) = (0, 0);
            let mut i = 0u32;
            while after < 20 {
                let was_stopped = stopped.load(std::sync::atomic::Ordering::SeqCst);
                // Each read takes a while, so some are running when the standby dies.
                let at = if (i + c) % 2 == 0 {
                    port_of(&conn, "SELECT inet_server_port(), pg_sleep(0.02)").await
                } else {
                    port_of_extended(&conn, "SELECT inet_server_port()::int4 FROM pg_sleep(0.02)")
                        .await
                };
                assert!(at == p || at == r, "read {i} ran on {at}");
                on_standby += u32::from(at == r);
                reads[c as usize]
                    .fetch_add(u32::from(at == r), std::sync::atomic::Ordering::SeqCst);
                after += u32::from(was_stopped);
                if was_stopped {
                    assert_eq!(at, p, "read {i}, begun after the standby stopped");
                }
                i += 1;
            }
            (on_standby, conn)
        }));
    }
    // Until every client has read from the standby a few times.
    eventually("every client reads from the standby", || async {
        standby_reads
            .iter()
            .all(|n| n.load(std::sync::atomic::Ordering::SeqCst) >= 3)
    })
    .await;
    standby.stop();
    stopped.store(true, std::sync::atomic::Ordering::SeqCst);
    for client in clients {
        let (on_standby, conn) = client.await.expect("no read failed");
        assert!(
            on_standby > 0,
            "each client read on the standby before it died"
        );
        // The connection is the same one, and still serves reads and writes.
        assert_eq!(port_of(&conn, "SELECT inet_server_port()").await, p);
    }
    let (health, reason) = standby_row(&admin).await;
    assert_eq!(health, "ejected");
    assert!(reason.is_some());
}

/// A read that had sent rows when its standby died cannot be taken back: the client gets
/// them, then ErrorResponse 08006 naming the standby and ReadyForQuery, and its
/// connection goes on, on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_streaming_when_its_standby_dies_fails_naming_it_and_the_session_goes_on() {
    use dbmesh_integration::pg_frontend::query;
    let db = unique_name("rw_pg_stream");
    let (primary, mut standby) = servers(&db, "").await;
    let users = pg_user("raw", "raw-secret", "password", &["shop"]);
    let proxy = Proxy::start(&format!(
        "{}{users}",
        config(&primary, &standby, &db, "max_replica_lag_ms = 30000")
    ))
    .await;
    let mut raw = PgRaw::login(proxy.postgres_port(), "raw", "raw-secret", "shop").await;
    // Rows of 1 kB: the first 150 fill the server's send buffer many times over and reach
    // the client; then the standby sleeps.
    raw.send(&query(
        "SELECT g, inet_server_port(), repeat('x', 1000), \
         CASE WHEN g = 150 THEN pg_sleep(600) END FROM generate_series(1, 300) g",
    ))
    .await;
    let first = raw.read().await.expect("a row description");
    assert_eq!(first.tag, b'T');
    let mut rows = 0;
    while rows < 100 {
        let m = raw.read().await.expect("rows");
        assert_eq!(m.tag, b'D', "{}", m.summary());
        rows += 1;
    }
    standby.stop();
    let rest = raw.read_until_ready(1).await;
    let error = rest
        .iter()
        .find(|m| m.tag == b'E')
        .unwrap_or_else(|| panic!("an error after the rows: {:?}", rest.last()));
    assert_eq!(error.field(b'C').as_deref(), Some("08006"));
    let message = error.field(b'M').unwrap_or_default();
    assert!(message.contains("ds_0.replica_0"), "{message}");
    assert_eq!(rest.last().unwrap().summary(), "Z:I");
    // The session goes on: on the primary.
    let answer = raw.exchange(&[query("SELECT inet_server_port()")]).await;
    assert_eq!(answer, ["T", "D", "C", "Z:I"]);
    raw.send(&query("SELECT inet_server_port()::text")).await;
    let msgs = raw.read_until_ready(1).await;
    let row = msgs.iter().find(|m| m.tag == b'D').expect("a row");
    let port = String::from_utf8_lossy(&row.body[6..]).into_owned();
    assert_eq!(port, primary.port.to_string());
}

//! Under transaction pooling a PostgreSQL session keeps its backend connection while it
//! holds state that lives in that backend process, and gives it back once the state is
//! gone: temporary tables, session advisory locks, LISTEN, cursors WITH HOLD, SQL-level
//! PREPARE, and open transactions.
//!
//! Each case: session `a` creates the state, then `b` takes a connection into a
//! transaction. Were `a` not pinned, `b` would get the connection `a` just gave back (the
//! pool hands out the most recently returned one); pinned, `b` gets another one and `a`
//! keeps its own (`pg_backend_pid()` stays). After `a` drops the state and `b` ends, no
//! connection stays checked out.

use std::time::Duration;

use dbmesh_integration::{pg_config, pg_connect, PgDatabase, Proxy, APP_PASSWORD, APP_USER};
use tokio_postgres::{AsyncMessage, Client};

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

async fn wait_until_in_use(proxy: &Proxy, n: usize) {
    let ds = proxy.server.runtime.cluster().databases["shop"].data_sources["ds_0"].clone();
    for _ in 0..3000 {
        if ds.postgres.in_use() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} connections in use, expected {n}", ds.postgres.in_use());
}

/// Runs one pinning case: `pin` creates the state, `unpin` removes it.
async fn pins_until_dropped(prefix: &str, pin: &str, unpin: &str) {
    let db = PgDatabase::create(prefix);
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let dsn = proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop");
    let a = pg_connect(&dsn).await.unwrap();
    let b = pg_connect(&dsn).await.unwrap();
    wait_until_in_use(&proxy, 0).await;
    a.batch_execute(pin).await.unwrap();
    let pinned = pid(&a).await;
    // Whatever a ran last is done; a pinned session still holds its connection.
    assert_eq!(
        proxy.server.runtime.cluster().databases["shop"].data_sources["ds_0"]
            .postgres
            .in_use(),
        1,
        "{pin}: a keeps its connection while idle"
    );
    b.batch_execute("BEGIN").await.unwrap();
    assert_ne!(
        pid(&b).await,
        pinned,
        "{pin}: b must not get a's connection"
    );
    for _ in 0..3 {
        assert_eq!(pid(&a).await, pinned, "{pin}: a stays on its connection");
    }
    b.batch_execute("COMMIT").await.unwrap();
    a.batch_execute(unpin).await.unwrap();
    // Released now: nothing stays checked out.
    wait_until_in_use(&proxy, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_table_pins_until_it_is_dropped() {
    pins_until_dropped(
        "pin_temp",
        "CREATE TEMP TABLE scratch (id int); INSERT INTO scratch VALUES (1)",
        "DROP TABLE scratch",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_advisory_lock_pins_until_unlocked() {
    pins_until_dropped(
        "pin_lock",
        "SELECT pg_advisory_lock(4242)",
        "SELECT pg_advisory_unlock(4242)",
    )
    .await;
    pins_until_dropped(
        "pin_lock_all",
        "SELECT pg_advisory_lock(1); SELECT pg_advisory_lock_shared(2)",
        "SELECT pg_advisory_unlock_all()",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_pins_until_unlisten() {
    pins_until_dropped("pin_listen", "LISTEN jobs", "UNLISTEN *").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_with_hold_pins_until_closed() {
    pins_until_dropped(
        "pin_cursor",
        "BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT generate_series(1, 10); COMMIT",
        "CLOSE c",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prepare_pins_until_deallocated() {
    pins_until_dropped(
        "pin_prepare",
        "PREPARE q (int) AS SELECT $1 + 1",
        "DEALLOCATE q",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_pins_until_it_ends() {
    pins_until_dropped("pin_txn", "BEGIN; SELECT 1", "COMMIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_session_gets_its_notifications() {
    let db = PgDatabase::create("pin_notify");
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let dsn = proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop");
    let (listener, mut conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(Ok(m)) = stream.next().await {
            if let AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    listener.batch_execute("LISTEN jobs").await.unwrap();
    let other = pg_connect(&dsn).await.unwrap();
    for i in 0..3 {
        other
            .batch_execute(&format!("NOTIFY jobs, 'job {i}'"))
            .await
            .unwrap();
        // Also while the listener runs statements of its own (and the probe runs).
        listener.batch_execute("SELECT 1").await.unwrap();
    }
    for i in 0..3 {
        assert_eq!(rx.recv().await.unwrap(), format!("job {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_role_is_replayed_and_does_not_leak_to_other_sessions() {
    let db = PgDatabase::create("pin_role");
    let role = format!("r_{}", db.name);
    dbmesh_integration::psql_exec(&format!("CREATE ROLE \"{role}\""));
    let proxy = Proxy::start(
        &pg_config("shop", &db.url(), "").replace("max_connections = 64", "max_connections = 1"),
    )
    .await;
    let dsn = proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop");
    let a = pg_connect(&dsn).await.unwrap();
    let b = pg_connect(&dsn).await.unwrap();
    a.batch_execute(&format!("SET ROLE \"{role}\""))
        .await
        .unwrap();
    for _ in 0..2 {
        let theirs: String = b
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(theirs, "postgres", "b runs as the data source's user");
        let ours: String = a
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(ours, role, "a's SET ROLE follows it");
    }
    drop((a, b));
    drop(proxy);
    dbmesh_integration::psql_exec(&format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name));
    dbmesh_integration::psql_exec(&format!("DROP ROLE \"{role}\""));
}

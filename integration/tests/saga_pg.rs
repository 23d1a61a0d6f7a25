//! SAGA transactions on a sharded PostgreSQL database: each statement commits on its data
//! sources at once and ROLLBACK (or a failing statement) compensates them, newest first.
//! Every column type comes back exactly (numeric, timestamptz, bytea, json, arrays, NULLs,
//! under the client's own DateStyle / TimeZone / IntervalStyle), in the simple and the
//! extended protocol; generated keys (identity, serial) are compensated through
//! RETURNING; what cannot be compensated is refused with 0A000; a client that disconnects
//! inside a saga has it compensated by recovery (also when SAGA was chosen by
//! `SET dbmesh_transaction_type` alone); a crash after statement 2 of 3, or half-way
//! through the compensations, is finished by the restarted instance.

use std::time::{Duration, Instant};

use dbmesh_integration::{
    expected_balances, free_port, pg_connect, pg_listen_on, unique_instance_id, ChildProxy, Extra,
    ShardedDb, TempDir, ACCOUNTS, OPENING,
};

/// How long recovery may take before a test gives up (its interval is 200 ms here, the
/// default 10 s where the config has no `[transaction]` table).
const PATIENCE: Duration = Duration::from_secs(60);

const RULES: &str = r#"
[tables.account]
nodes             = "ds_${0..1}.account"
database_strategy = { column = "id", algorithm = "by_id" }

[tables.typed]
nodes             = "ds_${0..1}.typed"
database_strategy = { column = "id", algorithm = "by_id" }

[tables.loose]
nodes             = "ds_${0..1}.loose"
database_strategy = { column = "id", algorithm = "by_id" }

[algorithms.by_id]
type           = "MOD"
sharding_count = 2
"#;

const TYPED_ROWS: i64 = 6;

struct Bank {
    db: ShardedDb,
    log: std::path::PathBuf,
    _dir: TempDir,
}

/// The `[transaction]` table of the bank's config: its own instance and log file, and
/// recovery every 200 ms.
fn transaction_table(log: &std::path::Path) -> String {
    format!(
        "[transaction]\ninstance_id = \"{}\"\nlog_path = \"{}\"\nrecovery_interval_ms = 200\n",
        unique_instance_id(),
        log.display()
    )
}

/// The bank, the typed table (every column type that must come back exactly) and two
/// tables outside the sharding rules with generated keys, with `database_keys` in the
/// database's table and `tables` appended (`None`: a `[transaction]` table of its own).
async fn bank_with(database_keys: &str, tables: Option<&str>) -> Bank {
    let dir = TempDir::new("saga_pg_log");
    let log = dir.path.join("saga.log");
    let extra = Extra {
        database_keys: database_keys.to_string(),
        tables: tables.map_or_else(|| transaction_table(&log), str::to_string),
        ..Extra::default()
    };
    let db = ShardedDb::postgres_with(RULES, 2, &extra).await;
    let client = db.pg_client().await;
    for sql in [
        "CREATE TABLE account (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL)",
        "CREATE TABLE typed (id BIGINT NOT NULL PRIMARY KEY, n NUMERIC(30,10), ts TIMESTAMPTZ, \
         t TIMESTAMP(3), d DATE, iv INTERVAL, b BYTEA, j JSON, jb JSONB, ints INT[], \
         texts TEXT[], f FLOAT8, r REAL, s TEXT, flag BOOLEAN, u UUID, \
         g BIGINT GENERATED ALWAYS AS (id * 2) STORED)",
        "CREATE TABLE loose (id BIGINT NOT NULL, v INT)",
    ] {
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // Outside the sharding rules: on the default data source only.
    let direct = db.pg_direct_client(0).await;
    direct
        .batch_execute(
            "CREATE TABLE note (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL); \
             CREATE TABLE memo (id SERIAL PRIMARY KEY, body TEXT NOT NULL); \
             INSERT INTO note (body) VALUES ('first'), ('second'); \
             INSERT INTO memo (body) VALUES ('first')",
        )
        .await
        .unwrap();
    for id in 0..ACCOUNTS {
        client
            .batch_execute(&format!(
                "INSERT INTO account (id, balance) VALUES ({id}, {OPENING})"
            ))
            .await
            .unwrap();
    }
    for id in 0..TYPED_ROWS {
        let null = id == 3;
        let v = |s: String| if null { "NULL".to_string() } else { s };
        client
            .batch_execute(&format!(
                "INSERT INTO typed (id, n, ts, t, d, iv, b, j, jb, ints, texts, f, r, s, flag, u) VALUES ({id}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                v(format!("12345678901234567890.{id:010}")),
                v(format!("'2024-02-29 23:59:59.{id:06}+05:45'")),
                v(format!("'1999-12-31 12:00:00.12{id}'")),
                v("'0044-03-15 BC'".to_string()),
                v(format!("'1 year 2 mons {id} days 04:05:06.789'")),
                v(format!("'\\x{id:02x}ff00c35c27'")),
                v("'{\"a\": [1,  2.50], \"b\" : \"x\\u0027y\"}'".to_string()),
                v("'{\"z\": 1, \"a\": {\"n\": null}}'".to_string()),
                v("'{1,NULL,-3}'".to_string()),
                v("ARRAY['a,b', 'it''s', NULL, 'back\\slash', '\"q\"']".to_string()),
                v(format!("{id}.1e-300")),
                v("3.4028235e38".to_string()),
                v(format!("E'multi\\nline ''{id}'' \\\\ tab\\t'")),
                v("true".to_string()),
                v(format!("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a{id:02}'")),
            ))
            .await
            .unwrap();
    }
    Bank { db, log, _dir: dir }
}

async fn bank() -> Bank {
    bank_with("transaction = \"SAGA\"", None).await
}

impl Bank {
    /// Every row of `table` on every data source, as PostgreSQL prints it (each column's
    /// exact text), in order.
    async fn rows(&self, table: &str, data_sources: usize) -> Vec<String> {
        let mut all = Vec::new();
        for i in 0..data_sources {
            let client = self.db.pg_direct_client(i).await;
            client
                .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3")
                .await
                .unwrap();
            for row in client
                .query(&format!("SELECT x::text FROM {table} x ORDER BY x.id"), &[])
                .await
                .unwrap()
            {
                all.push(format!("ds_{i}: {}", row.get::<_, String>(0)));
            }
        }
        all
    }

    async fn everything(&self) -> Vec<String> {
        let mut all = self.rows("account", 2).await;
        all.extend(self.rows("typed", 2).await);
        all.extend(self.rows("note", 1).await);
        all.extend(self.rows("memo", 1).await);
        all
    }

    fn log_is_empty(&self) -> bool {
        std::fs::metadata(&self.log).map_or(true, |m| m.len() == 0)
    }
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a server error: {e}"))
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_every_column_type_exactly() {
    let bank = bank().await;
    let before = bank.everything().await;
    let client = bank.db.pg_client().await;
    // The client's own settings: the before-images are read, and put back, under them.
    client
        .batch_execute("SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'iso_8601'")
        .await
        .unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    // Simple protocol: a fan-out UPDATE of every column, a DELETE, an INSERT.
    client
        .batch_execute(
            "UPDATE typed SET n = 0, ts = now(), t = NULL, d = '2000-01-01', iv = '1 second', \
             b = '\\x00', j = '[]', jb = '{}', ints = '{}', texts = NULL, f = 0, r = 0, \
             s = 'changed', flag = NULL, u = NULL WHERE id < 5",
        )
        .await
        .unwrap();
    client
        .batch_execute("DELETE FROM typed WHERE id IN (1, 3, 5)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO typed (id, s) VALUES (10, 'new'), (11, 'newer')")
        .await
        .unwrap();
    // Extended protocol, with parameters.
    let n = client
        .execute(
            "UPDATE account SET balance = balance - $1 WHERE id = $2",
            &[&100i64, &1i64],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = client
        .execute("DELETE FROM account WHERE id > $1", &[&6i64])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let n = client
        .execute(
            "INSERT INTO account (id, balance) VALUES ($1, $2), ($3, $4)",
            &[&20i64, &5i64, &21i64, &6i64],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    // Generated keys, on the default data source: identity and serial.
    client
        .batch_execute("INSERT INTO note (body) VALUES ('third'), ('fourth')")
        .await
        .unwrap();
    client
        .batch_execute("DELETE FROM note WHERE body = 'first'")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO memo (body) VALUES ('second')")
        .await
        .unwrap();
    // A read inside the saga sees what committed.
    let row = client
        .query_one("SELECT count(*) FROM typed", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), TYPED_ROWS - 3 + 2);
    assert_ne!(bank.everything().await, before, "each statement committed");
    assert!(!bank.log_is_empty(), "the compensations are logged");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(bank.everything().await, before);
    assert!(bank.log_is_empty(), "the log is trimmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_keeps_every_statement_and_trims_the_log() {
    let bank = bank().await;
    let client = bank.db.pg_client().await;
    client.batch_execute("BEGIN").await.unwrap();
    for sql in dbmesh_integration::transfer_statements(1, 2, 100) {
        client.batch_execute(&sql).await.unwrap();
    }
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 2, 100)])
    );
    assert!(bank.log_is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_statement_compensates_the_ones_before_it() {
    let bank = bank().await;
    let before = bank.everything().await;
    let client = bank.db.pg_client().await;
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("UPDATE account SET balance = balance - 100 WHERE id = 1")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO account (id, balance) VALUES (30, 1)")
        .await
        .unwrap();
    // A duplicate key on the other data source.
    let e = client
        .batch_execute("INSERT INTO account (id, balance) VALUES (2, 1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505", "{e}");
    assert!(message(&e).contains("compensated"), "{}", message(&e));
    assert_eq!(bank.everything().await, before);
    // The transaction has failed, as in PostgreSQL, until ROLLBACK.
    let e = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(bank.everything().await, before);
    assert!(bank.log_is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_compensated_is_refused_before_it_runs() {
    let bank = bank().await;
    let before = bank.everything().await;
    let client = bank.db.pg_client().await;
    for (sql, cause) in [
        ("UPDATE loose SET v = 1 WHERE id = 1", "no primary key"),
        ("UPDATE typed SET id = 7 WHERE id = 1", "id"),
        (
            "INSERT INTO account (id, balance) VALUES (1, 1) ON CONFLICT (id) DO NOTHING",
            "ON CONFLICT",
        ),
        (
            "UPDATE account SET balance = 1 FROM typed WHERE typed.id = account.id",
            "several tables",
        ),
        (
            "DELETE FROM account WHERE id = 1 RETURNING balance",
            "RETURNING",
        ),
        ("CREATE TABLE more (id INT PRIMARY KEY)", "DDL"),
    ] {
        client.batch_execute("BEGIN").await.unwrap();
        client
            .batch_execute("UPDATE account SET balance = balance + 1 WHERE id = 4")
            .await
            .unwrap();
        let e = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "0A000", "{sql}: {e}");
        assert!(message(&e).contains(cause), "{sql}: {}", message(&e));
        client.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(bank.everything().await, before, "{sql}");
    }
    // A prepared write dbmesh does not analyse (outside the sharding rules) would go to
    // the server as it is, uncompensated.
    client.batch_execute("BEGIN").await.unwrap();
    let e = client
        .execute("INSERT INTO memo (body) VALUES ($1)", &[&"second"])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{e}");
    assert!(message(&e).contains("simple query"), "{}", message(&e));
    client.batch_execute("ROLLBACK").await.unwrap();
    // Savepoints make no sense when each statement commits.
    client.batch_execute("BEGIN").await.unwrap();
    let e = client.batch_execute("SAVEPOINT a").await.unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{e}");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert!(bank.log_is_empty());
}

/// Waits until the bank's balances are the opening ones again.
async fn until_compensated(db: &ShardedDb, log: impl Fn() -> String) {
    let start = Instant::now();
    loop {
        let now = db.pg_balances().await;
        if now == expected_balances(&[]) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "recovery left {now:?}:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_inside_a_saga_has_it_compensated() {
    let bank = bank().await;
    let client = bank.db.pg_client().await;
    client.batch_execute("BEGIN").await.unwrap();
    for sql in dbmesh_integration::transfer_statements(1, 2, 100) {
        client.batch_execute(&sql).await.unwrap();
    }
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(1, 2, 100)])
    );
    drop(client);
    until_compensated(&bank.db, String::new).await;
    let start = Instant::now();
    while !bank.log_is_empty() {
        assert!(start.elapsed() < PATIENCE, "the log is trimmed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saga_chosen_by_set_alone_is_recovered_without_a_transaction_table() {
    // No `transaction` key and no `[transaction]` table: recovery starts once a session
    // runs a saga, so an abandoned one is compensated all the same. A child process, so
    // its default log file lands in its own temp dir.
    let bank = bank_with("", Some("")).await;
    let port = free_port();
    let child = ChildProxy::start(&pg_listen_on(bank.db.toml(), port), port).await;
    let client = pg_connect(&child_dsn(&bank.db, port)).await.unwrap();
    client
        .batch_execute("SET dbmesh_transaction_type = 'SAGA'")
        .await
        .unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    for sql in dbmesh_integration::transfer_statements(3, 4, 50) {
        client.batch_execute(&sql).await.unwrap();
    }
    assert_eq!(
        bank.db.pg_balances().await,
        expected_balances(&[(3, 4, 50)])
    );
    drop(client);
    until_compensated(&bank.db, || child.log()).await;
}

/// A connection string for the app user through a child listening on `port`.
fn child_dsn(db: &ShardedDb, port: u16) -> String {
    db.pg_dsn().replace(
        &format!("port={}", db.proxy.postgres_port()),
        &format!("port={port}"),
    )
}

/// The child's config: the bank as SAGA with `transaction` as its `[transaction]` table,
/// on `port`.
fn child_toml(db: &ShardedDb, transaction: &str, port: u16) -> String {
    // The in-process proxy's own `[transaction]` table ends the file: the child has its
    // own instance and log.
    let toml = db.toml().split("\n[transaction]\n").next().unwrap();
    pg_listen_on(&format!("{toml}\n{transaction}"), port)
}

/// Starts a child aborting at `point`, runs a saga of three transfers' statements
/// against it (`rollback`: two statements then ROLLBACK), checks what the crash left
/// (`left`), restarts the instance and waits for recovery to restore every balance.
async fn crash_and_recover(point: &str, rollback: bool, left: Vec<(i64, i64)>) {
    let bank = bank().await;
    let dir = TempDir::new("saga_pg_crash");
    let log = dir.path.join("saga.log");
    let transaction = transaction_table(&log);
    let port = free_port();
    let mut crashing = ChildProxy::start_with_env(
        &child_toml(&bank.db, &transaction, port),
        port,
        &[("DBMESH_FAILPOINTS", point)],
    )
    .await;
    let client = pg_connect(&child_dsn(&bank.db, port)).await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("UPDATE account SET balance = balance - 100 WHERE id = 1")
        .await
        .unwrap();
    let second = client
        .batch_execute("UPDATE account SET balance = balance + 100 WHERE id = 2")
        .await;
    if rollback {
        second.unwrap();
        assert!(client.batch_execute("ROLLBACK").await.is_err(), "{point}");
    } else {
        assert!(
            second.is_err(),
            "{point}: the second statement's answer never came"
        );
        // The third statement never ran.
    }
    let status = crashing.wait_exit().await;
    assert!(!status.success(), "{point}: dbmesh aborted ({status})");
    assert!(crashing.log().contains(point), "{}", crashing.log());
    assert_eq!(
        bank.db.pg_balances().await,
        left,
        "{point}: what the crash left"
    );
    assert!(
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
        "{point}: the saga is in the log"
    );

    let port = free_port();
    let restarted = ChildProxy::start(&child_toml(&bank.db, &transaction, port), port).await;
    until_compensated(&bank.db, || restarted.log()).await;
    let start = Instant::now();
    while std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
        assert!(start.elapsed() < PATIENCE, "{}", restarted.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_statement_two_of_three_is_compensated_after_restart() {
    crash_and_recover(
        "saga_after_statement_2",
        false,
        expected_balances(&[(1, 2, 100)]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_compensation_is_finished_after_restart() {
    // ROLLBACK undid the second statement (the newest first), then the process died.
    let mut left = expected_balances(&[]);
    left[1].1 -= 100;
    crash_and_recover("saga_after_first_undo", true, left).await;
}

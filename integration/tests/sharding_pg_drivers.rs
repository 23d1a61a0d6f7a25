//! Real PostgreSQL drivers and pgbench against a *sharded* logical database. The driver
//! scripts' and pgbench's own tables are single tables (no rule names them), so every
//! statement runs on the default data source `ds_0`, through the sharded session
//! (statement splitting, passthrough of the extended protocol, transaction tracking)
//! rather than the plain pump: the differential driver scripts must see exactly what a
//! direct connection to `ds_0` sees. A custom pgbench script then runs on the sharded
//! tables themselves, its parameters deciding the shards.

use dbmesh_integration::{
    pg_port, run_driver_check, run_program, Endpoint, ShardedDb, Shards, TempDir, APP_PASSWORD,
    APP_USER, ORDERS_RULES,
};

fn ds0_name(db: &ShardedDb) -> String {
    match &db.shards {
        Shards::Postgres(dbs) => dbs[0].name.clone(),
        Shards::Mysql(_) => unreachable!("a PostgreSQL sharded database"),
    }
}

async fn differential(program: &str, script: &str) {
    let db = ShardedDb::postgres(ORDERS_RULES, 2).await;
    let ds0 = ds0_name(&db);
    let direct = Endpoint {
        port: pg_port(),
        user: "postgres",
        password: "",
        database: &ds0,
    };
    let through = Endpoint {
        port: db.proxy.postgres_port(),
        user: APP_USER,
        password: APP_PASSWORD,
        database: &db.logical,
    };
    run_driver_check(program, script, direct, through).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_on_a_sharded_database_matches_a_direct_connection() {
    differential("python3", "pg_psycopg_check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pg_on_a_sharded_database_matches_a_direct_connection() {
    differential("node", "pg_node_check.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_on_a_sharded_database_matches_a_direct_connection() {
    differential("bash", "pg_psql_check.sh").await;
}

/// pgbench's TPC-B-like workload (BEGIN, three UPDATEs, SELECT, INSERT, END) in `mode`,
/// on its own tables, which are single tables of the sharded database.
async fn tpcb(mode: &str) {
    let db = ShardedDb::postgres(ORDERS_RULES, 2).await;
    let ds0 = ds0_name(&db);
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
            &ds0,
        ]
        .map(String::from),
        &[],
    )
    .await;
    assert!(init.status.success(), "pgbench -i: {init:?}");
    let port = db.proxy.postgres_port().to_string();
    let args = [
        "-M",
        mode,
        "-T",
        "3",
        "-c",
        "4",
        "-j",
        "2",
        "-n",
        "-h",
        "127.0.0.1",
        "-U",
        APP_USER,
        "-p",
        &port,
        &db.logical,
    ]
    .map(String::from);
    let out = run_program("pgbench", &args, &[("PGPASSWORD", APP_PASSWORD)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench -M {mode}:\n{stdout}\n{stderr}"
    );
    let value = |prefix: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"))
    };
    assert_eq!(
        value("number of failed transactions:"),
        0,
        "{stdout}\n{stderr}"
    );
    assert!(
        value("number of transactions actually processed:") > 20,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_with_simple_queries_on_a_sharded_database() {
    tpcb("simple").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_with_the_extended_protocol_on_a_sharded_database() {
    tpcb("extended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_with_prepared_statements_on_a_sharded_database() {
    tpcb("prepared").await;
}

/// A pgbench script on the sharded `t_order`: point reads and writes routed by the
/// parameters, a transaction over both data sources, a read of every node of one table.
const SHARDED_SCRIPT: &str = r"\set id random(1, 200)
SELECT amount FROM t_order WHERE user_id = :id AND order_id = :id;
UPDATE t_order SET amount = amount + 1 WHERE user_id = :id AND order_id = :id;
BEGIN;
UPDATE t_order SET amount = amount - 1 WHERE user_id = :id AND order_id = :id;
UPDATE t_order SET amount = amount + 0 WHERE user_id = :id + 1 AND order_id = :id + 1;
SELECT user_id FROM t_order WHERE order_id = :id;
END;
";

async fn sharded_script(mode: &str) {
    run_sharded_script(mode, SHARDED_SCRIPT).await;
}

async fn run_sharded_script(mode: &str, script_text: &str) {
    let db = ShardedDb::pg_orders().await;
    let client = db.pg_client().await;
    let values: Vec<String> = (1..=201).map(|i| format!("({i}, {i}, 0)")).collect();
    client
        .batch_execute(&format!(
            "INSERT INTO t_order (order_id, user_id, amount) VALUES {}",
            values.join(", ")
        ))
        .await
        .unwrap();
    let dir = TempDir::new("pgbench");
    let script = dir.path.join("sharded.sql");
    std::fs::write(&script, script_text).unwrap();
    let port = db.proxy.postgres_port().to_string();
    let args = [
        "-M",
        mode,
        "-f",
        &script.display().to_string(),
        "-T",
        "3",
        "-c",
        "4",
        "-j",
        "2",
        "-n",
        "-h",
        "127.0.0.1",
        "-U",
        APP_USER,
        "-p",
        &port,
        &db.logical,
    ]
    .map(String::from);
    let out = run_program("pgbench", &args, &[("PGPASSWORD", APP_PASSWORD)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench -M {mode}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("number of failed transactions: 0"),
        "{stdout}\n{stderr}"
    );
    // Each script adds 1 and, in its transaction, takes 1 away: the amounts sum to zero.
    let mut total = 0i64;
    for i in 0..2 {
        total += db
            .pg_direct_query(
                i,
                "SELECT (SELECT coalesce(sum(amount), 0) FROM t_order_0) + (SELECT coalesce(sum(amount), 0) FROM t_order_1)",
            )
            .await[0]
            .get::<_, i64>(0);
    }
    assert_eq!(total, 0, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_script_on_sharded_tables_with_simple_queries() {
    sharded_script("simple").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_script_on_sharded_tables_with_the_extended_protocol() {
    sharded_script("extended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_script_on_sharded_tables_with_prepared_statements() {
    sharded_script("prepared").await;
}

/// A pgbench pipeline (no Sync until its end) of more passthrough statements than dbmesh
/// lets await their answers, around sharded ones that must run in the middle of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_pipelines_mix_sharded_and_passthrough_statements() {
    let filler = "SELECT repeat('x', 500);\n".repeat(300);
    let script = format!(
        "\\set id random(1, 200)\n\\startpipeline\n\
         UPDATE t_order SET amount = amount + 1 WHERE user_id = :id AND order_id = :id;\n\
         {filler}\
         UPDATE t_order SET amount = amount - 1 WHERE user_id = :id AND order_id = :id;\n\
         {filler}\
         SELECT amount FROM t_order WHERE order_id = :id;\n\
         \\endpipeline\n"
    );
    run_sharded_script("extended", &script).await;
}

/// psycopg's pipeline mode sends thousands of statements before one Sync; passthrough
/// statements and sharded ones interleave, and the answers are large enough that nothing
/// may wait for the Sync to be read.
const LONG_PIPELINE: &str = r#"
import sys, psycopg
port, db = sys.argv[1], sys.argv[2]
with psycopg.connect(host="127.0.0.1", port=port, user="app", password="app-secret", dbname=db) as c:
    with c.pipeline():
        curs = []
        for i in range(3000):
            if i % 1000 == 999:
                curs.append(c.execute("SELECT order_id FROM t_order WHERE user_id = %s AND order_id = %s", [i % 2, i % 2 + 1]))
            else:
                curs.append(c.execute("SELECT %s::int, repeat('x', 3000)", [i]))
    rows = [cur.fetchall() for cur in curs]
    assert all(len(r) == 1 for r in rows), [r for r in rows if len(r) != 1][:3]
    assert rows[1][0][0] == 1 and len(rows[1][0][1]) == 3000, rows[1]
    assert rows[999][0][0] == 2 and rows[1999][0][0] == 2, (rows[999], rows[1999])
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_psycopg_pipeline_mixing_sharded_and_passthrough_statements() {
    let db = ShardedDb::pg_orders().await;
    db.pg_client()
        .await
        .batch_execute("INSERT INTO t_order (order_id, user_id) VALUES (1, 0), (2, 1)")
        .await
        .unwrap();
    let args = [
        "-c".to_string(),
        LONG_PIPELINE.to_string(),
        db.proxy.postgres_port().to_string(),
        db.logical.clone(),
    ];
    let out = run_program("python3", &args, &[]).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// psycopg on the sharded tables: server-side prepared statements (`prepare=True`) and
/// binary parameters of several types, routed per execution; a transaction over both
/// data sources; a generated key read back with RETURNING.
const PSYCOPG_SHARDED: &str = r#"
import sys, datetime, decimal, uuid, psycopg
port, db = sys.argv[1], sys.argv[2]
with psycopg.connect(host="127.0.0.1", port=port, user="app", password="app-secret", dbname=db) as c:
    for i in range(1, 5):
        c.execute("INSERT INTO t_order (order_id, user_id, amount, note) VALUES (%b, %b, %b, %b)",
                  [i, i % 2, i * 10, "note %d" % i], prepare=True)
    c.commit()
    for i in range(1, 5):
        cur = c.execute("SELECT amount, note FROM t_order WHERE user_id = %b AND order_id = %b",
                        [i % 2, i], prepare=True, binary=True)
        assert cur.fetchall() == [(i * 10, "note %d" % i)], i
    rows = c.execute("SELECT order_id FROM t_order WHERE note = ANY(%s)", [["note 1", "note 4"]]).fetchall()
    assert sorted(rows) == [(1,), (4,)], rows
    with c.transaction():
        key = c.execute("INSERT INTO t_order (user_id, amount) VALUES (%s, %s) RETURNING order_id",
                        [7, 70]).fetchone()[0]
        c.execute("UPDATE t_order SET amount = amount + 1 WHERE user_id = %s", [0])
    assert c.execute("SELECT amount FROM t_order WHERE order_id = %s AND user_id = 7", [key]).fetchone() == (70,)
    amounts = sorted(r[0] for r in c.execute("SELECT amount FROM t_order WHERE user_id = %b", [0], binary=True))
    assert amounts == [21, 41], amounts
    # Binary parameters of other types in a sharded statement: decoded, written into the
    # nodes' SQL as literals, and read back.
    d, u, n = datetime.date(2024, 2, 29), uuid.uuid4(), decimal.Decimal("-12345.6789")
    ts, b = datetime.datetime(2024, 2, 29, 13, 45, 56, 123456), b"\x00\xff'"
    row = c.execute("SELECT %b::date, %b::uuid, %b::numeric, %b::timestamp, %b::bytea, %b::bool, %b::float8 "
                    "FROM t_order WHERE user_id = %b AND order_id = %b",
                    [d, u, n, ts, b, True, 1.5, 1, 3]).fetchone()
    assert row == (d, u, n, ts, b, True, 1.5), row
print("ok")
"#;

/// node-postgres on the sharded tables: parameterized and named statements.
const NODE_SHARDED: &str = r#"
const { Client } = require('pg');
(async () => {
  const [port, database] = process.argv.slice(1);
  const c = new Client({ host: '127.0.0.1', port: +port, user: 'app', password: 'app-secret', database });
  await c.connect();
  for (let i = 1; i <= 4; i++) {
    await c.query({ name: 'ins', text: 'INSERT INTO t_order (order_id, user_id, amount) VALUES ($1, $2, $3)', values: [i, i % 2, i * 10] });
  }
  for (let i = 1; i <= 4; i++) {
    const r = await c.query({ name: 'sel', text: 'SELECT amount FROM t_order WHERE user_id = $1 AND order_id = $2', values: [i % 2, i] });
    if (r.rows.length !== 1 || r.rows[0].amount !== i * 10) throw new Error('row ' + i + ': ' + JSON.stringify(r.rows));
  }
  const all = await c.query('SELECT order_id FROM t_order WHERE amount > $1', [15]);
  if (all.rowCount !== 3) throw new Error('rowCount ' + all.rowCount);
  await c.query('BEGIN');
  await c.query('DELETE FROM t_order WHERE order_id = $1 OR order_id = $2', [1, 2]);
  await c.query('ROLLBACK');
  const left = await c.query('SELECT order_id FROM t_order');
  if (left.rowCount !== 4) throw new Error('after rollback ' + left.rowCount);
  await c.end();
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
"#;

async fn run_inline(program: &str, flag: &str, code: &str, env: &[(&str, &str)]) {
    let db = ShardedDb::pg_orders().await;
    let args = [
        flag.to_string(),
        code.to_string(),
        db.proxy.postgres_port().to_string(),
        db.logical.clone(),
    ];
    let out = run_program(program, &args, env).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_prepares_and_binds_binary_parameters_on_sharded_tables() {
    run_inline("python3", "-c", PSYCOPG_SHARDED, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pg_named_statements_on_sharded_tables() {
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers/node_modules");
    run_inline("node", "-e", NODE_SHARDED, &[("NODE_PATH", modules)]).await;
}

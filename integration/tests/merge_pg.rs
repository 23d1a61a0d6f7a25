//! Cross-shard merging on PostgreSQL, differentially: one dataset loaded through dbmesh into
//! `ORDERS_RULES` (2 data sources × 2 tables) and into a plain reference database, and every
//! query run both ways — simple protocol (text) and extended protocol (tokio-postgres, binary
//! results) — must give the same rows (in order where the SQL fixes one, as multisets
//! otherwise), the same column types and the same bytes.

use dbmesh_integration::pg_frontend::{bind, describe, execute, parse, sync};
use dbmesh_integration::{
    pg_connect, pg_port, pg_sqlstate, PgDatabase, PgMsg, PgRaw, ShardedDb, ORDERS_RULES,
};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

const DDL: [&str; 2] = [
    "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, \
     amount INT, note TEXT, price NUMERIC(10,2), created DATE, score FLOAT8, qty SMALLINT)",
    "CREATE TABLE t_order_item (item_id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL, \
     user_id INT NOT NULL, sku VARCHAR(32))",
];

const ORDERS: i64 = 2000;
const NOTES: [&str; 8] = [
    "apple",
    "Apple",
    "banana",
    "BANANA",
    "cherry",
    "",
    "apple pie",
    "Zed",
];

/// The INSERT statements of the dataset: NULLs, duplicates, mixed case, negatives,
/// decimals, dates, floats that add up exactly in any order.
fn dataset() -> Vec<String> {
    let mut statements = Vec::new();
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for i in 1..=ORDERS {
        let user = i % 37;
        let amount = if i % 11 == 0 {
            "NULL".to_string()
        } else {
            ((i * 37) % 201 - 100).to_string()
        };
        let note = if i % 13 == 0 {
            "NULL".to_string()
        } else {
            format!("'{}'", NOTES[(i % 8) as usize])
        };
        let price = if i % 17 == 0 {
            "NULL".to_string()
        } else {
            format!("{} / 100.0", (i * 113) % 10000 - 3000)
        };
        let created = format!("DATE '2024-01-01' + {}", (i * 3) % 400);
        let score = if i % 19 == 0 {
            "NULL".to_string()
        } else {
            format!("{}", (i % 50) as f64 * 0.25 - 3.0)
        };
        let qty = (i % 9) - 4;
        rows.push(format!(
            "({i}, {user}, {amount}, {note}, {price}, {created}, {score}, {qty})"
        ));
        for k in 0..(i % 3) {
            items.push(format!(
                "({}, {i}, {user}, 'SKU-{}')",
                i * 10 + k,
                (i + k) % 23
            ));
        }
        if rows.len() == 100 {
            statements.push(format!(
                "INSERT INTO t_order (order_id, user_id, amount, note, price, created, score, qty) VALUES {}",
                rows.join(", ")
            ));
            rows.clear();
        }
        if items.len() >= 100 {
            statements.push(format!(
                "INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES {}",
                items.join(", ")
            ));
            items.clear();
        }
    }
    if !items.is_empty() {
        statements.push(format!(
            "INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES {}",
            items.join(", ")
        ));
    }
    statements
}

/// Whether the query's order is fixed (compare in order) or not (compare as multisets).
#[derive(Clone, Copy, PartialEq)]
enum Order {
    Fixed,
    Any,
}
use Order::{Any, Fixed};

/// The differential queries. Every ordered query's ORDER BY determines the order of the
/// rows it returns (ties only between identical rows).
const QUERIES: &[(Order, &str)] = &[
    // ORDER BY, several keys, ASC/DESC, NULLS defaults and explicit
    (Fixed, "SELECT order_id, user_id, amount FROM t_order ORDER BY order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount NULLS FIRST, order_id DESC"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC NULLS LAST, order_id"),
    (Fixed, "SELECT order_id, note FROM t_order ORDER BY note, order_id"),
    (Fixed, "SELECT order_id, note FROM t_order ORDER BY note DESC, order_id DESC"),
    (Fixed, "SELECT order_id, price, created FROM t_order ORDER BY price DESC, created, order_id"),
    (Fixed, "SELECT order_id, created FROM t_order ORDER BY created DESC, order_id"),
    (Fixed, "SELECT order_id, score FROM t_order ORDER BY score, order_id"),
    (Fixed, "SELECT * FROM t_order ORDER BY user_id DESC, order_id"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY user_id, amount DESC, order_id"),
    (Fixed, "SELECT order_id, amount * 2 AS twice FROM t_order ORDER BY twice, order_id"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY 1 DESC"),
    (Fixed, "SELECT order_id, qty FROM t_order WHERE user_id IN (1, 2, 3) ORDER BY qty, order_id"),
    // LIMIT / OFFSET
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY order_id LIMIT 5"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id LIMIT 10 OFFSET 7"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id DESC LIMIT 3 OFFSET 1995"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 5000"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id OFFSET 1990"),
    (Fixed, "SELECT order_id, note FROM t_order ORDER BY note NULLS FIRST, order_id LIMIT 20"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY price, order_id LIMIT 600"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 0"),
    // GROUP BY and aggregates
    (Any, "SELECT user_id, count(*) FROM t_order GROUP BY user_id"),
    (Fixed, "SELECT user_id, count(*), sum(amount), min(amount), max(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT user_id, avg(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT user_id, avg(price), sum(price) FROM t_order GROUP BY user_id ORDER BY user_id DESC"),
    (Fixed, "SELECT user_id, avg(score), sum(score), min(score), max(score) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT note, count(*), count(amount) FROM t_order GROUP BY note ORDER BY note"),
    (Fixed, "SELECT note, count(*) FROM t_order GROUP BY note ORDER BY note DESC NULLS LAST"),
    (Fixed, "SELECT created, count(*), min(order_id) FROM t_order GROUP BY created ORDER BY created"),
    (Fixed, "SELECT qty, sum(qty), avg(qty), sum(order_id), avg(order_id) FROM t_order GROUP BY qty ORDER BY qty"),
    (Fixed, "SELECT user_id, count(*) AS n FROM t_order GROUP BY user_id ORDER BY n DESC, user_id"),
    (Fixed, "SELECT user_id, sum(amount) FROM t_order GROUP BY user_id ORDER BY sum(amount), user_id"),
    (Fixed, "SELECT user_id, note, count(*) FROM t_order GROUP BY user_id, note ORDER BY user_id, note"),
    (Fixed, "SELECT min(note), max(note) FROM t_order"),
    (Fixed, "SELECT count(*), sum(amount), avg(amount), min(created), max(created) FROM t_order"),
    (Fixed, "SELECT avg(price), sum(price), min(price), max(price) FROM t_order"),
    (Fixed, "SELECT avg(score), count(score) FROM t_order"),
    (Fixed, "SELECT count(*) FROM t_order WHERE amount > 1000"),
    (Fixed, "SELECT sum(amount), avg(amount), max(note) FROM t_order WHERE amount > 1000"),
    (Fixed, "SELECT user_id, max(created) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 5 OFFSET 3"),
    (Any, "SELECT note, sum(price) FROM t_order GROUP BY note"),
    // COUNT(DISTINCT), SUM(DISTINCT)
    (Fixed, "SELECT count(DISTINCT user_id) FROM t_order"),
    (Fixed, "SELECT count(DISTINCT note), count(DISTINCT amount) FROM t_order"),
    (Fixed, "SELECT note, count(DISTINCT user_id) FROM t_order GROUP BY note ORDER BY note"),
    (Fixed, "SELECT user_id, sum(DISTINCT amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    // DISTINCT
    (Any, "SELECT DISTINCT note FROM t_order"),
    (Fixed, "SELECT DISTINCT note FROM t_order ORDER BY note"),
    (Fixed, "SELECT DISTINCT user_id, qty FROM t_order ORDER BY user_id DESC, qty"),
    (Fixed, "SELECT DISTINCT created FROM t_order ORDER BY created LIMIT 10 OFFSET 5"),
    (Any, "SELECT DISTINCT amount FROM t_order WHERE amount < 0"),
    // HAVING
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id HAVING count(*) > 54 ORDER BY user_id"),
    (Fixed, "SELECT user_id, sum(amount) FROM t_order GROUP BY user_id HAVING sum(amount) < 0 ORDER BY user_id"),
    (Fixed, "SELECT note, avg(amount) FROM t_order GROUP BY note HAVING avg(amount) > 0 OR count(*) < 250 ORDER BY note"),
    (Fixed, "SELECT user_id FROM t_order GROUP BY user_id HAVING max(amount) >= 99 AND min(amount) <= -99 ORDER BY user_id"),
    // UNION
    (Any, "SELECT user_id FROM t_order WHERE amount > 90 UNION SELECT user_id FROM t_order WHERE amount < -90"),
    (Any, "SELECT note FROM t_order WHERE user_id = 3 UNION ALL SELECT note FROM t_order WHERE user_id = 4"),
    (Any, "SELECT user_id FROM t_order WHERE amount > 90 UNION ALL SELECT user_id FROM t_order WHERE amount < -90"),
    // binding-table joins
    (Fixed, "SELECT o.order_id, i.item_id, i.sku FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id ORDER BY i.item_id"),
    (Fixed, "SELECT i.sku, count(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY i.sku ORDER BY i.sku"),
    (Fixed, "SELECT o.user_id, sum(o.amount), count(i.item_id) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY o.user_id ORDER BY o.user_id LIMIT 7"),
    // negatives, numerics, dates, expressions
    (Fixed, "SELECT order_id, price FROM t_order WHERE price < 0 ORDER BY price DESC, order_id LIMIT 25"),
    (Fixed, "SELECT sum(price * 3), avg(price / 7) FROM t_order"),
    (Fixed, "SELECT created, sum(amount) FROM t_order WHERE created BETWEEN DATE '2024-03-01' AND DATE '2024-04-01' GROUP BY created ORDER BY created DESC"),
    (Fixed, "SELECT qty, min(score), max(price) FROM t_order GROUP BY qty ORDER BY qty DESC"),
    (Fixed, "SELECT order_id, lower(note) AS l FROM t_order ORDER BY l, order_id LIMIT 50"),
    // plain concatenation still
    (Any, "SELECT order_id, note FROM t_order WHERE amount = 7"),
];

/// A column value as raw bytes (binary format), whatever its type.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

type TextRows = Vec<Vec<Option<String>>>;

/// Rows as text and the CommandComplete count of a simple query.
async fn simple(client: &Client, sql: &str) -> Result<(TextRows, Vec<u64>), tokio_postgres::Error> {
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    for m in client.simple_query(sql).await? {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(n) => counts.push(n),
            _ => {}
        }
    }
    Ok((rows, counts))
}

/// Column types and binary rows of an extended-protocol query.
async fn extended(client: &Client, sql: &str) -> (Vec<Type>, Vec<Vec<Raw>>) {
    let statement = client
        .prepare(sql)
        .await
        .unwrap_or_else(|e| panic!("prepare {sql}: {e:?}"));
    let types = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let rows = client
        .query(&statement, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let rows = rows
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Raw>(i)).collect())
        .collect();
    (types, rows)
}

struct Setup {
    sharded: ShardedDb,
    _reference: PgDatabase,
    proxy: Client,
    reference: Client,
}

async fn setup() -> Setup {
    let sharded = ShardedDb::postgres_with_raw_user(ORDERS_RULES, 2, ("raw", "raw-secret")).await;
    let reference_db = PgDatabase::create("mergeref");
    let proxy = sharded.pg_client().await;
    let reference = pg_connect(&reference_db.direct_dsn())
        .await
        .expect("reference database");
    for sql in DDL.iter().map(|s| s.to_string()).chain(dataset()) {
        proxy
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("through dbmesh: {sql}: {e}"));
        reference
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("reference: {sql}: {e}"));
    }
    Setup {
        sharded,
        _reference: reference_db,
        proxy,
        reference,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_results_match_a_single_database() {
    let s = setup().await;
    let collation: String = s
        .reference
        .query_one(
            "SELECT datcollate::text FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        dbmesh::wire::postgres::row_codec::collation_from_datcollate(&collation).is_some(),
        "the suite expects a byte-order collation, the server has {collation}"
    );
    let mut failures = Vec::new();
    for (order, sql) in QUERIES {
        // Simple protocol, text.
        let (mut got, got_counts) = simple(&s.proxy, sql)
            .await
            .unwrap_or_else(|e| panic!("through dbmesh: {sql}: {e:?}"));
        let (mut want, want_counts) = simple(&s.reference, sql).await.unwrap();
        if *order == Any {
            got.sort();
            want.sort();
        }
        if got != want || got_counts != want_counts {
            let at = got.iter().zip(&want).position(|(a, b)| a != b);
            failures.push(format!(
                "simple: {sql}\n  {} rows (tag {got_counts:?}) vs {} (tag {want_counts:?}); first difference at {at:?}: {:?} vs {:?}",
                got.len(),
                want.len(),
                at.and_then(|i| got.get(i)),
                at.and_then(|i| want.get(i)),
            ));
        }
        // Extended protocol, binary.
        let (got_types, mut got) = extended(&s.proxy, sql).await;
        let (want_types, mut want) = extended(&s.reference, sql).await;
        if *order == Any {
            got.sort();
            want.sort();
        }
        if got_types != want_types {
            failures.push(format!("types: {sql}\n  {got_types:?} vs {want_types:?}"));
        }
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b);
            failures.push(format!(
                "extended: {sql}\n  {} rows vs {}; first difference at {at:?}: {:?} vs {:?}",
                got.len(),
                want.len(),
                at.and_then(|i| got.get(i)),
                at.and_then(|i| want.get(i)),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ:\n{}",
        failures.len(),
        QUERIES.len(),
        failures.join("\n")
    );
    assert!(QUERIES.len() >= 60);
    drop(s.sharded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_leaves_connections_usable() {
    let s = setup().await;
    let c = &s.proxy;
    for _ in 0..3 {
        let (rows, _) = simple(c, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 2")
            .await
            .unwrap();
        assert_eq!(rows, [[Some("1".to_string())], [Some("2".to_string())]]);
        let rows = c
            .query(
                "SELECT order_id FROM t_order ORDER BY amount, order_id LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
    }
    // Inside a transaction, then several statements in one Query.
    c.batch_execute("BEGIN").await.unwrap();
    let (rows, _) = simple(
        c,
        "SELECT order_id FROM t_order ORDER BY order_id DESC LIMIT 1",
    )
    .await
    .unwrap();
    assert_eq!(rows, [[Some(ORDERS.to_string())]]);
    let (rows, _) = simple(c, "SELECT count(*) FROM t_order").await.unwrap();
    assert_eq!(rows, [[Some(ORDERS.to_string())]]);
    c.batch_execute("COMMIT").await.unwrap();
    let (rows, counts) = simple(
        c,
        "SELECT order_id FROM t_order ORDER BY order_id LIMIT 1; SELECT count(*) FROM t_order_item",
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(counts, [1, 1]);
    let (rows, _) = simple(c, "SELECT sum(amount) FROM t_order").await.unwrap();
    let (want, _) = simple(&s.reference, "SELECT sum(amount) FROM t_order")
        .await
        .unwrap();
    assert_eq!(rows, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_constructs_give_0a000_and_the_connection_stays_usable() {
    let s = setup().await;
    for sql in [
        "SELECT order_id, row_number() OVER (ORDER BY order_id) FROM t_order",
        "SELECT string_agg(note, ',') FROM t_order",
        "SELECT user_id FROM t_order EXCEPT SELECT user_id FROM t_order_item",
    ] {
        let e = s.proxy.simple_query(sql).await.expect_err(sql);
        assert_eq!(pg_sqlstate(&e), "0A000", "{sql}: {e}");
        let e = s.proxy.query(sql, &[]).await.expect_err(sql);
        assert_eq!(pg_sqlstate(&e), "0A000", "{sql}: {e}");
        let (rows, _) = simple(&s.proxy, "SELECT count(*) FROM t_order")
            .await
            .unwrap();
        assert_eq!(rows, [[Some(ORDERS.to_string())]]);
    }
}

/// The columns of a RowDescription as (name, type OID, type size, type modifier, format):
/// what a client sees but the table OIDs, which differ between databases.
fn columns(m: &PgMsg) -> Vec<(String, u32, i16, i32, i16)> {
    let b = &m.body;
    let count = i16::from_be_bytes([b[0], b[1]]);
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..count {
        let end = at + b[at..].iter().position(|c| *c == 0).unwrap();
        let name = String::from_utf8_lossy(&b[at..end]).into_owned();
        let f = &b[end + 1..end + 19];
        out.push((
            name,
            u32::from_be_bytes([f[6], f[7], f[8], f[9]]),
            i16::from_be_bytes([f[10], f[11]]),
            i32::from_be_bytes([f[12], f[13], f[14], f[15]]),
            i16::from_be_bytes([f[16], f[17]]),
        ));
        at = end + 19;
    }
    out
}

/// The RowDescriptions and DataRows of a batch of messages ending in Sync.
async fn described(
    c: &mut PgRaw,
    messages: &[Vec<u8>],
) -> (Vec<Vec<(String, u32, i16, i32, i16)>>, Vec<Vec<u8>>) {
    c.send(&messages.concat()).await;
    let syncs = messages.iter().filter(|m| m[0] == b'S').count();
    let got = c.read_until_ready(syncs).await;
    assert!(
        got.iter().all(|m| m.tag != b'E'),
        "{:?}",
        got.iter().map(PgMsg::summary).collect::<Vec<_>>()
    );
    let descriptions = got.iter().filter(|m| m.tag == b'T').map(columns).collect();
    let rows = got
        .iter()
        .filter(|m| m.tag == b'D')
        .map(|m| m.body.clone())
        .collect();
    (descriptions, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn described_portals_show_the_merged_columns() {
    let s = setup().await;
    let port = s.sharded.proxy.postgres_port();
    let mut through = PgRaw::login(port, "raw", "raw-secret", &s.sharded.logical).await;
    let mut direct = PgRaw::login(pg_port(), "postgres", "", &s._reference.name).await;
    for sql in [
        "SELECT user_id, avg(amount), avg(score), avg(price) FROM t_order GROUP BY user_id ORDER BY user_id",
        "SELECT count(DISTINCT note), sum(DISTINCT amount), sum(DISTINCT order_id) FROM t_order",
        "SELECT * FROM t_order ORDER BY amount DESC, order_id LIMIT 5",
        "SELECT note FROM t_order GROUP BY note HAVING count(*) > 1 ORDER BY note",
        "SELECT order_id FROM t_order ORDER BY user_id, created DESC, order_id LIMIT 3",
    ] {
        // Describe with its Execute in one batch, then a Describe of its own.
        let together = [parse("", sql), bind("", ""), describe(b'P', ""), execute(""), sync()];
        let apart = [
            parse("", sql),
            bind("", ""),
            describe(b'P', ""),
            sync(),
            parse("", sql),
            bind("", ""),
            execute(""),
            sync(),
        ];
        for batch in [&together[..], &apart[..]] {
            let (got, got_rows) = described(&mut through, batch).await;
            let (want, want_rows) = described(&mut direct, batch).await;
            assert_eq!(got, want, "{sql}");
            assert_eq!(got.len(), 1, "{sql}");
            assert_eq!(got_rows, want_rows, "{sql}");
        }
    }
}

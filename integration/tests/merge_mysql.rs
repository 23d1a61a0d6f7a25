//! Cross-shard SELECTs give the answer one database holding all the rows gives: the same
//! dataset is loaded through dbmesh into ORDERS_RULES (2 data sources × 2 tables) and into
//! a plain MariaDB database, and every query runs both ways, over the text protocol and as
//! a prepared statement (binary protocol). Rows must agree one for one (in order where the
//! SQL fixes it, as multisets otherwise), and so must the column metadata the client sees
//! (names, types, decimals).

use dbmesh_integration::{server_error, MysqlDatabase, ShardedDb, ORDERS_DDL, ORDERS_RULES};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

/// `t_order` with more column types than ORDERS_DDL's: mixed-case strings, decimals, dates.
const ORDER_DDL: &str = "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, \
    user_id INT NOT NULL, amount INT, status VARCHAR(16), price DECIMAL(10,2), created DATE)";

const ORDERS: i64 = 240;

/// The dataset as multi-row INSERTs: NULLs in every nullable column, negative numbers,
/// duplicates, strings that differ only in case.
fn inserts() -> Vec<String> {
    let statuses = [
        "'open'",
        "'OPEN'",
        "'Open'",
        "'closed'",
        "'Closed'",
        "'shipped'",
        "NULL",
    ];
    let skus = ["'A1'", "'a1'", "'B2'", "NULL"];
    let mut orders = Vec::new();
    let mut items = Vec::new();
    for n in 1..=ORDERS {
        let user = n * 7 % 13;
        let amount = if n % 11 == 0 {
            "NULL".to_string()
        } else {
            ((n * 37) % 201 - 100).to_string()
        };
        let price = if n % 9 == 0 {
            "NULL".to_string()
        } else {
            let cents = (n * 5347) % 200_000 - 50_000;
            let sign = if cents < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
        };
        let created = if n % 13 == 0 {
            "NULL".to_string()
        } else {
            let k = n * 29 % 400;
            format!("'{}-{:02}-{:02}'", 2023 + k / 336, 1 + k % 12, 1 + k % 28)
        };
        let status = statuses[(n % 7) as usize];
        orders.push(format!(
            "({n}, {user}, {amount}, {status}, {price}, {created})"
        ));
        for j in 0..n % 3 {
            let sku = skus[((n + j) % 4) as usize];
            items.push(format!("({}, {n}, {user}, {sku})", n * 10 + j));
        }
    }
    let mut statements = Vec::new();
    for chunk in orders.chunks(60) {
        statements.push(format!(
            "INSERT INTO t_order (order_id, user_id, amount, status, price, created) VALUES {}",
            chunk.join(", ")
        ));
    }
    for chunk in items.chunks(60) {
        statements.push(format!(
            "INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES {}",
            chunk.join(", ")
        ));
    }
    statements
}

/// Whether the SQL fixes the order of the rows.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    Fixed,
    Any,
}

/// How values compare: exactly, or strings case-folded (which of `open` / `OPEN` stands
/// for a group or a MIN under a `_ci` collation is not defined on one database either).
#[derive(Clone, Copy, PartialEq)]
enum Strings {
    Exact,
    Folded,
}

use Order::{Any, Fixed};
use Strings::{Exact, Folded};

const QUERIES: &[(Order, Strings, &str)] = &[
    // ORDER BY, several keys, ASC/DESC, NULLs (first ascending, last descending)
    (Fixed, Exact, "SELECT order_id, user_id, amount FROM t_order ORDER BY order_id"),
    (Fixed, Exact, "SELECT * FROM t_order ORDER BY order_id DESC"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, price FROM t_order ORDER BY price DESC, order_id DESC"),
    (Fixed, Exact, "SELECT order_id, created FROM t_order ORDER BY created, order_id"),
    (Fixed, Exact, "SELECT order_id, created FROM t_order ORDER BY created DESC, amount, order_id"),
    (Fixed, Folded, "SELECT order_id, status FROM t_order ORDER BY status, order_id"),
    (Fixed, Folded, "SELECT order_id, status FROM t_order ORDER BY status DESC, order_id DESC"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY user_id, amount DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY 2, 1"),
    (Fixed, Exact, "SELECT order_id AS id, amount AS a FROM t_order ORDER BY a DESC, id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order WHERE amount < 0 ORDER BY amount, order_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order WHERE created >= '2023-06-01' ORDER BY created, order_id"),
    (Fixed, Exact, "SELECT order_id, user_id FROM t_order WHERE order_id IN (1, 2, 3, 50, 51, 52) ORDER BY user_id, order_id"),
    (Fixed, Exact, "SELECT * FROM t_order ORDER BY price, order_id LIMIT 10"),
    // LIMIT / OFFSET, past the end too
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id LIMIT 7"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id LIMIT 5 OFFSET 20"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 235"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 1000"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 0"),
    (Fixed, Exact, "SELECT order_id, price FROM t_order ORDER BY price, order_id LIMIT 3, 4"),
    (Fixed, Exact, "SELECT amount FROM t_order WHERE amount IS NOT NULL ORDER BY amount DESC, order_id LIMIT 20 OFFSET 5"),
    (Any, Exact, "SELECT order_id FROM t_order LIMIT 1000"),
    // GROUP BY with every aggregate
    (Any, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id"),
    (Fixed, Exact, "SELECT user_id, COUNT(*), SUM(amount), MIN(amount), MAX(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, AVG(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, AVG(price), SUM(price) FROM t_order GROUP BY user_id ORDER BY user_id DESC"),
    (Fixed, Exact, "SELECT COUNT(*), COUNT(amount), SUM(amount), AVG(amount), MIN(price), MAX(price) FROM t_order"),
    (Fixed, Exact, "SELECT COUNT(*) FROM t_order WHERE amount > 1000"),
    (Fixed, Exact, "SELECT SUM(amount), AVG(amount), MIN(created) FROM t_order WHERE amount > 1000"),
    (Fixed, Exact, "SELECT MIN(created), MAX(created) FROM t_order"),
    (Fixed, Folded, "SELECT status, COUNT(*) FROM t_order GROUP BY status ORDER BY status"),
    (Fixed, Folded, "SELECT status, SUM(amount), AVG(price) FROM t_order GROUP BY status ORDER BY status DESC"),
    (Any, Folded, "SELECT status, COUNT(*) FROM t_order GROUP BY status"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) c FROM t_order GROUP BY user_id ORDER BY c DESC, user_id"),
    (Fixed, Exact, "SELECT user_id, SUM(amount) s FROM t_order GROUP BY user_id ORDER BY s, user_id LIMIT 5"),
    (Fixed, Exact, "SELECT user_id, AVG(amount) a FROM t_order GROUP BY user_id ORDER BY a DESC, user_id"),
    (Fixed, Exact, "SELECT user_id, MIN(created), MAX(created) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Folded, "SELECT user_id, MIN(status), MAX(status) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT created, COUNT(*) FROM t_order GROUP BY created ORDER BY created LIMIT 10"),
    (Fixed, Exact, "SELECT price, COUNT(*) FROM t_order GROUP BY price ORDER BY price DESC LIMIT 10"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 3 OFFSET 2"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 5 OFFSET 100"),
    // HAVING
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id HAVING COUNT(*) > 18 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, SUM(amount) FROM t_order GROUP BY user_id HAVING SUM(amount) < 0 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, MAX(amount) m FROM t_order GROUP BY user_id HAVING m >= 90 OR m < -90 ORDER BY user_id"),
    // COUNT(DISTINCT), SUM(DISTINCT)
    (Fixed, Exact, "SELECT user_id, COUNT(DISTINCT status) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT amount) FROM t_order"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT status) FROM t_order"),
    (Fixed, Exact, "SELECT SUM(DISTINCT amount) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, SUM(DISTINCT amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    // DISTINCT
    (Any, Exact, "SELECT DISTINCT user_id FROM t_order"),
    (Fixed, Exact, "SELECT DISTINCT user_id FROM t_order ORDER BY user_id DESC"),
    (Any, Folded, "SELECT DISTINCT status FROM t_order"),
    (Fixed, Folded, "SELECT DISTINCT status FROM t_order ORDER BY status"),
    (Any, Exact, "SELECT DISTINCT user_id % 3 FROM t_order"),
    (Fixed, Exact, "SELECT DISTINCT created FROM t_order ORDER BY created LIMIT 10"),
    // UNION
    (Any, Exact, "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item"),
    (Any, Exact, "SELECT amount FROM t_order WHERE amount > 50 UNION ALL SELECT amount FROM t_order WHERE amount < -50"),
    (Any, Folded, "SELECT status FROM t_order UNION SELECT sku FROM t_order_item"),
    // binding-table joins
    (Fixed, Exact, "SELECT o.order_id, i.item_id, i.sku FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id ORDER BY o.order_id, i.item_id"),
    (Any, Exact, "SELECT o.user_id, COUNT(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.user_id"),
    (Fixed, Exact, "SELECT o.user_id, COUNT(i.item_id), SUM(o.amount) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.user_id ORDER BY o.user_id"),
    (Fixed, Folded, "SELECT i.sku, COUNT(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY i.sku ORDER BY i.sku"),
    (Fixed, Exact, "SELECT o.order_id, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id ORDER BY i.item_id DESC LIMIT 15"),
    (Fixed, Exact, "SELECT COUNT(*) FROM t_order_item"),
    (Fixed, Folded, "SELECT sku, COUNT(*), COUNT(DISTINCT user_id) FROM t_order_item GROUP BY sku ORDER BY sku"),
];

/// What a client sees of a result: each column's (name, type, decimals), and the rows.
type Answer = (Vec<(String, ColumnType, u8)>, Vec<Vec<Value>>);

async fn text(conn: &mut Conn, sql: &str) -> Result<Answer, mysql_async::Error> {
    let mut result = conn.query_iter(sql).await?;
    let columns = describe(result.columns());
    let rows: Vec<Row> = result.collect().await?;
    Ok((columns, rows.into_iter().map(Row::unwrap).collect()))
}

async fn prepared(conn: &mut Conn, sql: &str) -> Result<Answer, mysql_async::Error> {
    let stmt = conn.prep(sql).await?;
    let mut result = conn.exec_iter(&stmt, ()).await?;
    let columns = describe(result.columns());
    let rows: Vec<Row> = result.collect().await?;
    conn.close(stmt).await?;
    Ok((columns, rows.into_iter().map(Row::unwrap).collect()))
}

fn describe(
    columns: Option<std::sync::Arc<[mysql_async::Column]>>,
) -> Vec<(String, ColumnType, u8)> {
    columns
        .map(|c| {
            c.iter()
                .map(|c| (c.name_str().into_owned(), c.column_type(), c.decimals()))
                .collect()
        })
        .unwrap_or_default()
}

/// The answer as compared: strings folded when asked, rows sorted when the order is free.
fn normalise(answer: Answer, order: Order, strings: Strings) -> Answer {
    let (columns, mut rows) = answer;
    if strings == Folded {
        for row in &mut rows {
            for v in row.iter_mut() {
                if let Value::Bytes(b) = v {
                    b.make_ascii_lowercase();
                }
            }
        }
    }
    if order == Any {
        rows.sort_by_key(|r| format!("{r:?}"));
    }
    (columns, rows)
}

/// The sharded database through dbmesh and the reference, both loaded with the dataset.
async fn both() -> (ShardedDb, Conn, MysqlDatabase, Conn) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut sharded = Conn::new(db.mysql_opts()).await.unwrap();
    let reference_db = MysqlDatabase::create("merge_ref");
    let mut reference = Conn::new(reference_db.direct_opts()).await.unwrap();
    for ddl in [ORDER_DDL, ORDERS_DDL[1], ORDERS_DDL[2]] {
        sharded.query_drop(ddl).await.unwrap();
        reference.query_drop(ddl).await.unwrap();
    }
    for insert in inserts() {
        sharded.query_drop(&insert).await.unwrap();
        reference.query_drop(&insert).await.unwrap();
    }
    (db, sharded, reference_db, reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_selects_answer_as_one_database_does() {
    let (_db, mut sharded, _ref_db, mut reference) = both().await;
    assert!(QUERIES.len() >= 60);
    let mut failures = Vec::new();
    for &(order, strings, sql) in QUERIES {
        for protocol in ["text", "prepared"] {
            let (got, want) = if protocol == "text" {
                (
                    text(&mut sharded, sql).await,
                    text(&mut reference, sql).await,
                )
            } else {
                (
                    prepared(&mut sharded, sql).await,
                    prepared(&mut reference, sql).await,
                )
            };
            let want = normalise(
                want.unwrap_or_else(|e| panic!("{sql}: {e}")),
                order,
                strings,
            );
            match got {
                Ok(got) => {
                    let got = normalise(got, order, strings);
                    if got != want {
                        failures.push(format!(
                            "{protocol}: {sql}\n  dbmesh:    {got:?}\n  reference: {want:?}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("{protocol}: {sql}\n  dbmesh failed: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers differ:\n{}",
        failures.len(),
        QUERIES.len() * 2,
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_leaves_the_connections_usable() {
    let (_db, mut sharded, _ref_db, _reference) = both().await;
    // HAVING keeps LIMIT off the shards: most of their rows are left unread by the merge.
    let limited = "SELECT order_id, COUNT(*) FROM t_order GROUP BY order_id HAVING COUNT(*) > 0 ORDER BY order_id LIMIT 2";
    for _ in 0..3 {
        let rows: Vec<(i64, i64)> = sharded.query(limited).await.unwrap();
        assert_eq!(rows, [(1, 1), (2, 1)]);
        let count: Option<i64> = sharded
            .query_first("SELECT COUNT(*) FROM t_order")
            .await
            .unwrap();
        assert_eq!(count, Some(ORDERS));
        let stmt = sharded
            .prep("SELECT order_id FROM t_order ORDER BY order_id DESC LIMIT 1")
            .await
            .unwrap();
        let last: Option<i64> = sharded.exec_first(&stmt, ()).await.unwrap();
        assert_eq!(last, Some(ORDERS));
    }
    // Inside a transaction too (the connections must stay, and stay clean).
    sharded.query_drop("BEGIN").await.unwrap();
    let rows: Vec<(i64, i64)> = sharded.query(limited).await.unwrap();
    assert_eq!(rows.len(), 2);
    let count: Option<i64> = sharded
        .query_first("SELECT COUNT(*) FROM t_order")
        .await
        .unwrap();
    assert_eq!(count, Some(ORDERS));
    sharded.query_drop("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_construct_is_refused_with_1235() {
    let (_db, mut sharded, _ref_db, _reference) = both().await;
    let sql = "SELECT order_id, ROW_NUMBER() OVER (ORDER BY order_id) FROM t_order";
    let (code, state, message) = server_error(sharded.query_drop(sql).await);
    assert_eq!((code, state.as_str()), (1235, "0A000"), "{message}");
    let stmt = sharded.prep(sql).await;
    let refused = match stmt {
        Ok(stmt) => sharded.exec_drop(&stmt, ()).await,
        Err(e) => Err(e),
    };
    let (code, state, _) = server_error(refused);
    assert_eq!((code, state.as_str()), (1235, "0A000"));
    // The connection is still usable.
    let count: Option<i64> = sharded
        .query_first("SELECT COUNT(*) FROM t_order")
        .await
        .unwrap();
    assert_eq!(count, Some(ORDERS));
}

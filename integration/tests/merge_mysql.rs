//! Cross-shard SELECTs give the answer one database holding all the rows gives: the
//! dataset of `merge_dataset` (3000 orders, their items, a broadcast table) is loaded
//! through dbmesh into ORDERS_RULES (2 data sources × 2 tables) and into a plain MariaDB
//! database, and every query runs both ways, over the text protocol and as a prepared
//! statement (binary protocol). Rows must agree one for one (in order where the SQL fixes
//! it, group by group where the ORDER BY leaves ties, as multisets otherwise), and so must
//! the column metadata the client sees (names, types, decimals).
//!
//! The queries are grouped by concept, one test per group, so that a failure names the
//! concept and the groups run in parallel.

use dbmesh_integration::{
    merge_inserts, same_rows, server_error, MysqlDatabase, RowOrder, ShardedDb, MERGE_MYSQL_DDL,
    MERGE_ORDERS, ORDERS_RULES,
};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use RowOrder::{Any, Fixed, Ties};

/// How strings compare: exactly, or folded (lowercased, trailing spaces dropped): which of
/// `open` / `OPEN` / `open ` stands for a group, a DISTINCT value or a MIN under a `_ci`
/// collation is not defined on one database either.
#[derive(Clone, Copy, PartialEq)]
enum Strings {
    Exact,
    Folded,
}
use Strings::{Exact, Folded};

type Query = (RowOrder, Strings, &'static str);

/// ORDER BY: several keys, ASC / DESC, NULLs (first ascending, last descending), keys by
/// position, alias, expression, or not selected at all; ties compared group by group.
#[rustfmt::skip]
const ORDERING: &[Query] = &[
    (Fixed, Exact, "SELECT order_id, user_id, amount FROM t_order ORDER BY order_id"),
    (Fixed, Exact, "SELECT * FROM t_order ORDER BY order_id DESC"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id DESC"),
    (Ties(&[1]), Exact, "SELECT order_id, amount FROM t_order ORDER BY amount"),
    (Ties(&[0]), Exact, "SELECT amount, order_id, qty FROM t_order ORDER BY amount DESC"),
    (Fixed, Exact, "SELECT order_id, price FROM t_order ORDER BY price, order_id"),
    (Fixed, Exact, "SELECT order_id, price FROM t_order ORDER BY price DESC, order_id"),
    (Ties(&[1, 2]), Exact, "SELECT order_id, price, qty FROM t_order ORDER BY price DESC, qty"),
    (Fixed, Exact, "SELECT order_id, created FROM t_order ORDER BY created, order_id"),
    (Fixed, Exact, "SELECT order_id, created, amount FROM t_order ORDER BY created DESC, amount, order_id"),
    (Ties(&[0]), Exact, "SELECT created, order_id FROM t_order ORDER BY created DESC"),
    (Fixed, Folded, "SELECT order_id, status FROM t_order ORDER BY status, order_id"),
    (Fixed, Folded, "SELECT order_id, status FROM t_order ORDER BY status DESC, order_id DESC"),
    (Ties(&[0]), Folded, "SELECT status, order_id FROM t_order ORDER BY status"),
    (Ties(&[0, 1]), Folded, "SELECT status, qty, order_id FROM t_order ORDER BY status DESC, qty"),
    (Fixed, Exact, "SELECT order_id, score FROM t_order ORDER BY score, order_id"),
    (Fixed, Exact, "SELECT order_id, score FROM t_order ORDER BY score DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, qty, price FROM t_order ORDER BY qty, price DESC, order_id"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY user_id, amount DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, status FROM t_order ORDER BY created, score DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY 2, 1"),
    (Fixed, Exact, "SELECT order_id AS id, amount AS a FROM t_order ORDER BY a DESC, id"),
    (Fixed, Exact, "SELECT order_id, amount * qty AS v FROM t_order ORDER BY v, order_id"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY amount * qty DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, ABS(amount) FROM t_order ORDER BY ABS(amount), order_id"),
    (Fixed, Exact, "SELECT order_id, COALESCE(amount, 0) AS c FROM t_order ORDER BY c, order_id DESC"),
    (Fixed, Exact, "SELECT order_id, created FROM t_order ORDER BY YEAR(created), MONTH(created) DESC, order_id"),
    (Fixed, Folded, "SELECT order_id, LOWER(status) AS s FROM t_order ORDER BY s DESC, order_id"),
    (Fixed, Exact, "SELECT order_id, status FROM t_order ORDER BY status IS NULL, order_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order WHERE amount < 0 ORDER BY amount, order_id"),
    (Fixed, Exact, "SELECT order_id, created FROM t_order WHERE created BETWEEN '2024-02-01' AND '2024-03-31' ORDER BY created, order_id"),
    (Fixed, Exact, "SELECT order_id, user_id FROM t_order WHERE order_id IN (1, 2, 3, 50, 51, 52, 2999) ORDER BY user_id, order_id"),
    (Fixed, Exact, "SELECT order_id, user_id FROM t_order WHERE user_id IN (3, 4) ORDER BY user_id DESC, order_id"),
    (Fixed, Exact, "SELECT * FROM t_order WHERE user_id = 7 ORDER BY order_id"),
    (Fixed, Exact, "SELECT order_id, price FROM t_order WHERE price IS NULL ORDER BY order_id"),
    (Fixed, Folded, "SELECT order_id, status, amount FROM t_order WHERE status = 'open' ORDER BY amount, order_id"),
    (Fixed, Exact, "SELECT order_id, province_id FROM t_order ORDER BY province_id, order_id DESC"),
    (Ties(&[0, 1]), Exact, "SELECT user_id, qty, order_id FROM t_order ORDER BY user_id, qty DESC"),
    (Fixed, Exact, "SELECT item_id, sku, quantity FROM t_order_item ORDER BY quantity DESC, item_id"),
    (Fixed, Folded, "SELECT item_id, sku FROM t_order_item ORDER BY sku, item_id"),
    (Fixed, Exact, "SELECT item_id, unit_price FROM t_order_item ORDER BY unit_price DESC, item_id"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order WHERE amount > 100000 ORDER BY amount"),
    (Fixed, Exact, "SELECT order_id, status FROM t_order ORDER BY BINARY status, order_id"),
    (Fixed, Exact, "SELECT order_id, status FROM t_order ORDER BY status COLLATE utf8mb4_bin DESC, order_id"),
    (Fixed, Exact, "SELECT CAST(price AS CHAR) AS p, order_id FROM t_order ORDER BY p, order_id"),
    (Fixed, Exact, "SELECT order_id, created + INTERVAL 1 DAY AS d FROM t_order ORDER BY d DESC, order_id"),
    (Fixed, Exact, "SELECT *, order_id * 2 AS d FROM t_order ORDER BY d DESC"),
    (Fixed, Exact, "SELECT o.*, i.sku FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id ORDER BY i.item_id"),
    (Fixed, Exact, "SELECT order_id, updated FROM t_order ORDER BY updated DESC, order_id"),
    (Ties(&[0]), Exact, "SELECT updated, order_id FROM t_order ORDER BY updated"),
];

/// LIMIT / OFFSET: in range, at and past the end, `LIMIT m, n`, `LIMIT 0`, over sorted
/// rows with total keys (a LIMIT cutting through ties has no one answer).
#[rustfmt::skip]
const LIMITS: &[Query] = &[
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id LIMIT 7"),
    (Fixed, Exact, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id LIMIT 5 OFFSET 20"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 2995"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 3000"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 100000"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 0"),
    (Fixed, Exact, "SELECT order_id, price FROM t_order ORDER BY price, order_id LIMIT 3, 4"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY score DESC, order_id LIMIT 2995, 10"),
    (Fixed, Exact, "SELECT amount FROM t_order WHERE amount IS NOT NULL ORDER BY amount DESC, order_id LIMIT 20 OFFSET 5"),
    (Any, Exact, "SELECT order_id FROM t_order LIMIT 5000"),
    (Fixed, Exact, "SELECT * FROM t_order ORDER BY price, order_id LIMIT 10"),
    (Fixed, Exact, "SELECT order_id, created FROM t_order ORDER BY created DESC, order_id LIMIT 1"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY created, order_id LIMIT 100 OFFSET 1000"),
    (Fixed, Folded, "SELECT order_id, status FROM t_order ORDER BY status, order_id LIMIT 50"),
    (Fixed, Exact, "SELECT order_id FROM t_order WHERE user_id = 5 ORDER BY order_id LIMIT 3 OFFSET 2"),
    (Fixed, Exact, "SELECT item_id FROM t_order_item ORDER BY item_id DESC LIMIT 25 OFFSET 10"),
    (Fixed, Exact, "SELECT order_id, qty FROM t_order ORDER BY qty, order_id DESC LIMIT 1000"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY amount * qty, order_id LIMIT 5"),
    (Fixed, Exact, "SELECT order_id, user_id FROM t_order ORDER BY user_id DESC, order_id LIMIT 40 OFFSET 40"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id DESC LIMIT 18446744073709551615"),
    (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 2990, 18446744073709551615"),
    (Fixed, Exact, "SELECT * FROM t_order ORDER BY amount DESC, order_id LIMIT 5"),
];

/// GROUP BY with every aggregate, group keys of every type (NULL groups too), expressions
/// as keys, ORDER BY an aggregate; aggregates without GROUP BY, over no rows too.
#[rustfmt::skip]
const GROUPING: &[Query] = &[
    (Any, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id"),
    (Fixed, Exact, "SELECT user_id, COUNT(*), COUNT(amount), SUM(amount), MIN(amount), MAX(amount), AVG(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, AVG(price), SUM(price), MIN(price), MAX(price) FROM t_order GROUP BY user_id ORDER BY user_id DESC"),
    (Fixed, Exact, "SELECT user_id, SUM(score), AVG(score), MIN(score), MAX(score) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT qty, SUM(qty), AVG(qty), COUNT(*) FROM t_order GROUP BY qty ORDER BY qty"),
    (Fixed, Exact, "SELECT province_id, COUNT(*), AVG(amount) FROM t_order GROUP BY province_id ORDER BY province_id"),
    (Fixed, Exact, "SELECT province_id, COUNT(*), COUNT(province_id) FROM t_order GROUP BY province_id ORDER BY province_id DESC"),
    (Fixed, Folded, "SELECT status, COUNT(*) FROM t_order GROUP BY status ORDER BY status"),
    (Fixed, Folded, "SELECT status, SUM(amount), AVG(price), MIN(created) FROM t_order GROUP BY status ORDER BY status DESC"),
    (Any, Folded, "SELECT status, COUNT(*), MAX(score) FROM t_order GROUP BY status"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) c FROM t_order GROUP BY user_id ORDER BY c DESC, user_id"),
    (Fixed, Exact, "SELECT user_id, SUM(amount) s FROM t_order GROUP BY user_id ORDER BY s, user_id LIMIT 5"),
    (Fixed, Exact, "SELECT user_id, AVG(amount) a FROM t_order GROUP BY user_id ORDER BY a DESC, user_id"),
    (Fixed, Exact, "SELECT user_id FROM t_order GROUP BY user_id ORDER BY SUM(price) DESC, user_id"),
    (Ties(&[1]), Exact, "SELECT qty, COUNT(*) FROM t_order GROUP BY qty ORDER BY COUNT(*)"),
    (Fixed, Exact, "SELECT user_id, MIN(created), MAX(created) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Folded, "SELECT user_id, MIN(status), MAX(status) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT created, COUNT(*) FROM t_order GROUP BY created ORDER BY created LIMIT 10"),
    (Fixed, Exact, "SELECT price, COUNT(*) FROM t_order GROUP BY price ORDER BY price DESC LIMIT 10"),
    (Fixed, Exact, "SELECT score, COUNT(*), SUM(amount) FROM t_order GROUP BY score ORDER BY score"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 3 OFFSET 2"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 5 OFFSET 100"),
    (Fixed, Exact, "SELECT user_id, qty, COUNT(*), SUM(amount) FROM t_order GROUP BY user_id, qty ORDER BY user_id, qty"),
    (Fixed, Exact, "SELECT qty, user_id, COUNT(*) FROM t_order GROUP BY user_id, qty ORDER BY qty DESC, user_id"),
    (Fixed, Exact, "SELECT user_id % 5 AS m, COUNT(*), SUM(price) FROM t_order GROUP BY m ORDER BY m"),
    (Fixed, Exact, "SELECT YEAR(created) AS y, COUNT(*), AVG(amount) FROM t_order GROUP BY YEAR(created) ORDER BY y"),
    (Fixed, Exact, "SELECT YEAR(created), MONTH(created), COUNT(*) FROM t_order GROUP BY YEAR(created), MONTH(created) ORDER BY 1, 2"),
    (Fixed, Exact, "SELECT COUNT(*) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT COUNT(*), COUNT(amount), SUM(amount), AVG(amount), MIN(price), MAX(price), AVG(price) FROM t_order"),
    (Fixed, Exact, "SELECT SUM(score), AVG(score), MIN(score), MAX(score), COUNT(score) FROM t_order"),
    (Fixed, Exact, "SELECT MIN(created), MAX(created), COUNT(created) FROM t_order"),
    (Fixed, Folded, "SELECT MIN(status), MAX(status), COUNT(status) FROM t_order"),
    (Fixed, Exact, "SELECT SUM(amount * qty), AVG(amount * qty), SUM(price * qty) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, SUM(amount * qty), MAX(price * qty) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT COUNT(*), MIN(order_id), MAX(order_id), SUM(order_id), AVG(order_id) FROM t_order"),
    (Fixed, Exact, "SELECT AVG(qty), SUM(qty), MIN(qty) FROM t_order"),
    (Fixed, Exact, "SELECT SUM(price), AVG(price) FROM t_order WHERE price < 0"),
    (Fixed, Exact, "SELECT COUNT(*), SUM(amount) FROM t_order WHERE user_id = 3"),
    (Fixed, Exact, "SELECT created, SUM(amount) FROM t_order WHERE created BETWEEN '2024-03-01' AND '2024-04-01' GROUP BY created ORDER BY created DESC"),
    (Fixed, Exact, "SELECT COUNT(*) FROM t_order WHERE amount > 100000"),
    (Fixed, Folded, "SELECT COUNT(*), COUNT(amount), SUM(amount), AVG(amount), MIN(created), MAX(status) FROM t_order WHERE amount > 100000"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order WHERE amount > 100000 GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT COUNT(*), SUM(quantity), AVG(unit_price), MAX(unit_price) FROM t_order_item"),
    (Fixed, Folded, "SELECT sku, COUNT(*), SUM(quantity), AVG(unit_price) FROM t_order_item GROUP BY sku ORDER BY sku"),
    (Fixed, Folded, "SELECT status COLLATE utf8mb4_bin AS s, COUNT(*) FROM t_order GROUP BY s ORDER BY s"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY 1 ORDER BY 1 DESC"),
    (Fixed, Exact, "SELECT COUNT(*), user_id FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, SUM(amount) FROM t_order GROUP BY user_id ORDER BY SUM(amount) DESC, user_id LIMIT 3"),
    (Fixed, Exact, "SELECT qty, AVG(price) FROM t_order GROUP BY qty ORDER BY AVG(price), qty"),
    (Fixed, Exact, "SELECT DATE_FORMAT(created, '%Y-%m') AS m, COUNT(*) FROM t_order GROUP BY m ORDER BY m"),
    (Fixed, Folded, "SELECT status, COUNT(*) FROM t_order WHERE status IS NOT NULL GROUP BY status ORDER BY COUNT(*) DESC, status"),
    (Fixed, Folded, "SELECT user_id, MAX(status) FROM t_order WHERE status <> '' GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT MIN(amount), MAX(amount) FROM t_order ORDER BY 1"),
    (Fixed, Exact, "SELECT COUNT(*) FROM t_order LIMIT 1 OFFSET 1"),
    (Any, Exact, "SELECT DISTINCT user_id % 4, COUNT(*) FROM t_order GROUP BY user_id"),
    (Fixed, Exact, "SELECT user_id, MIN(price), MAX(created), SUM(amount) FROM t_order WHERE price IS NULL GROUP BY user_id ORDER BY user_id"),
    (Ties(&[0]), Exact, "SELECT COUNT(*) c FROM t_order GROUP BY user_id HAVING c > 70 ORDER BY c DESC"),
    (Fixed, Exact, "SELECT user_id, 1 AS one, 'k' AS k, COUNT(*) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT 'all' AS scope, COUNT(*), MAX(order_id) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id, user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT MIN(order_id) FROM t_order GROUP BY user_id ORDER BY MIN(order_id)"),
    (Fixed, Exact, "SELECT user_id, COUNT(amount), COUNT(DISTINCT amount), SUM(DISTINCT amount), SUM(amount), AVG(amount), MIN(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "WITH x AS (SELECT user_id, amount FROM t_order) SELECT user_id, SUM(amount) FROM x GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT DATE(updated) AS d, COUNT(*), MIN(updated), MAX(updated) FROM t_order GROUP BY DATE(updated) ORDER BY d"),
    (Fixed, Exact, "SELECT MIN(updated), MAX(updated), COUNT(updated), COUNT(DISTINCT updated) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, MAX(updated) FROM t_order GROUP BY user_id ORDER BY MAX(updated) DESC, user_id LIMIT 5"),
    (Fixed, Exact, "SELECT updated, COUNT(*) FROM t_order GROUP BY updated ORDER BY updated DESC LIMIT 20"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT status), SUM(DISTINCT amount), AVG(amount), COUNT(amount), MIN(amount) FROM t_order WHERE amount IS NULL"),
    (Fixed, Exact, "SELECT amount, COUNT(*), SUM(qty) FROM t_order WHERE amount IS NULL GROUP BY amount"),
    (Fixed, Exact, "SELECT COUNT(1), COUNT(0), COUNT(NULL), SUM(1), MIN(NULL), MAX(1) FROM t_order"),
    (Fixed, Exact, "SELECT 1 FROM t_order ORDER BY order_id LIMIT 3"),
    (Fixed, Exact, "SELECT user_id, SUM(CASE WHEN amount > 0 THEN 1 ELSE 0 END) AS pos, COUNT(CASE WHEN qty < 0 THEN 1 END) AS neg FROM t_order GROUP BY user_id ORDER BY user_id"),
];

/// HAVING on aggregates, aliases and keys; COUNT(DISTINCT) and SUM(DISTINCT), by group and
/// over everything, over `_ci` strings too.
#[rustfmt::skip]
const HAVING_AND_DISTINCT_AGGREGATES: &[Query] = &[
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id HAVING COUNT(*) > 75 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, SUM(amount) FROM t_order GROUP BY user_id HAVING SUM(amount) < 0 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, MAX(amount) m FROM t_order GROUP BY user_id HAVING m >= 499 OR m < 490 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id FROM t_order GROUP BY user_id HAVING MAX(amount) >= 490 AND MIN(amount) <= -490 ORDER BY user_id"),
    (Fixed, Folded, "SELECT status, AVG(amount) FROM t_order GROUP BY status HAVING AVG(amount) > 0 OR COUNT(*) < 250 ORDER BY status"),
    (Fixed, Exact, "SELECT qty, COUNT(*) FROM t_order GROUP BY qty HAVING NOT COUNT(*) > 145 ORDER BY qty"),
    (Fixed, Exact, "SELECT user_id, AVG(price) a FROM t_order GROUP BY user_id HAVING a > 100 ORDER BY a DESC, user_id"),
    (Fixed, Exact, "SELECT province_id, COUNT(*) FROM t_order GROUP BY province_id HAVING province_id > 2 ORDER BY province_id"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id HAVING COUNT(*) > 0 ORDER BY user_id LIMIT 4 OFFSET 3"),
    (Fixed, Exact, "SELECT user_id, SUM(price) FROM t_order GROUP BY user_id HAVING SUM(price) > 1000000 ORDER BY user_id"),
    (Fixed, Exact, "SELECT created, COUNT(*) FROM t_order GROUP BY created HAVING MIN(created) >= '2025-06-01' ORDER BY created"),
    (Fixed, Exact, "SELECT user_id, COUNT(DISTINCT status) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT amount), COUNT(DISTINCT price) FROM t_order"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT status) FROM t_order"),
    (Fixed, Exact, "SELECT SUM(DISTINCT amount), SUM(DISTINCT price) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, SUM(DISTINCT amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Exact, "SELECT qty, COUNT(DISTINCT user_id), SUM(DISTINCT qty) FROM t_order GROUP BY qty ORDER BY qty"),
    (Fixed, Folded, "SELECT status, COUNT(DISTINCT created) FROM t_order GROUP BY status ORDER BY status"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT created), COUNT(DISTINCT score) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, COUNT(DISTINCT qty), COUNT(*) FROM t_order GROUP BY user_id HAVING COUNT(DISTINCT qty) > 20 ORDER BY user_id"),
    (Fixed, Exact, "SELECT province_id, COUNT(DISTINCT user_id) c FROM t_order GROUP BY province_id ORDER BY c DESC, province_id"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT user_id), SUM(DISTINCT amount) FROM t_order WHERE 1 = 0"),
    (Fixed, Exact, "SELECT COUNT(DISTINCT sku) FROM t_order_item"),
    (Fixed, Exact, "SELECT AVG(DISTINCT amount), AVG(DISTINCT price), AVG(DISTINCT score), AVG(DISTINCT qty) FROM t_order"),
    (Fixed, Exact, "SELECT user_id, AVG(DISTINCT amount), AVG(amount), COUNT(DISTINCT amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, Folded, "SELECT status, AVG(DISTINCT price) a FROM t_order GROUP BY status HAVING AVG(DISTINCT price) > 100 ORDER BY a DESC, status"),
    (Fixed, Exact, "SELECT AVG(DISTINCT amount), AVG(DISTINCT price) FROM t_order WHERE 1 = 0"),
    (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id HAVING COUNT(*) BETWEEN 70 AND 80 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, SUM(amount) FROM t_order GROUP BY user_id HAVING SUM(amount) > 0 AND user_id < 20 ORDER BY user_id"),
    (Fixed, Exact, "SELECT COUNT(*) AS n FROM t_order HAVING n > 10"),
    (Fixed, Exact, "SELECT COUNT(*) FROM t_order HAVING COUNT(*) > 100000"),
    (Fixed, Exact, "SELECT user_id, SUM(score) FROM t_order GROUP BY user_id HAVING SUM(score) > 10.5 ORDER BY user_id"),
    (Fixed, Exact, "SELECT user_id, MIN(updated) FROM t_order GROUP BY user_id HAVING MIN(updated) < '2023-01-02 12:00:00' ORDER BY user_id"),
];

/// SELECT DISTINCT: one and several columns, `_ci` strings, with ORDER BY and LIMIT.
#[rustfmt::skip]
const DISTINCT: &[Query] = &[
    (Any, Exact, "SELECT DISTINCT user_id FROM t_order"),
    (Fixed, Exact, "SELECT DISTINCT user_id FROM t_order ORDER BY user_id DESC"),
    (Any, Folded, "SELECT DISTINCT status FROM t_order"),
    (Fixed, Folded, "SELECT DISTINCT status FROM t_order ORDER BY status"),
    (Any, Exact, "SELECT DISTINCT user_id % 3 FROM t_order"),
    (Fixed, Exact, "SELECT DISTINCT created FROM t_order ORDER BY created LIMIT 10"),
    (Fixed, Exact, "SELECT DISTINCT user_id, qty FROM t_order ORDER BY user_id DESC, qty"),
    (Any, Exact, "SELECT DISTINCT qty, province_id FROM t_order"),
    (Fixed, Exact, "SELECT DISTINCT price FROM t_order WHERE price < 0 ORDER BY price DESC LIMIT 5 OFFSET 3"),
    (Fixed, Exact, "SELECT DISTINCT amount FROM t_order ORDER BY amount LIMIT 10 OFFSET 995"),
    (Fixed, Exact, "SELECT DISTINCT province_id FROM t_order ORDER BY province_id LIMIT 100 OFFSET 5"),
    (Any, Exact, "SELECT DISTINCT score FROM t_order"),
    (Any, Folded, "SELECT DISTINCT sku FROM t_order_item"),
    (Fixed, Folded, "SELECT DISTINCT status, province_id FROM t_order ORDER BY status, province_id"),
    (Fixed, Exact, "SELECT DISTINCT YEAR(created) FROM t_order ORDER BY 1"),
    (Fixed, Exact, "SELECT DISTINCT qty FROM t_order ORDER BY qty DESC LIMIT 3"),
    (Fixed, Exact, "SELECT DISTINCT user_id FROM t_order WHERE amount > 100000 ORDER BY user_id"),
    (Any, Folded, "SELECT DISTINCT LOWER(status), user_id % 2 FROM t_order"),
    (Any, Folded, "SELECT DISTINCT status COLLATE utf8mb4_bin FROM t_order"),
    (Fixed, Exact, "SELECT DISTINCT * FROM t_order ORDER BY amount, order_id LIMIT 10"),
    (Fixed, Exact, "SELECT DISTINCT updated FROM t_order WHERE updated < '2023-01-03' ORDER BY updated"),
    (Fixed, Exact, "SELECT DISTINCT user_id FROM t_order ORDER BY user_id LIMIT 0"),
];

/// UNION and UNION ALL (with ORDER BY and LIMIT of their own); joins of binding tables,
/// inner and LEFT; joins with the broadcast table; a derived table and an IN subquery
/// that each shard can answer for its rows.
#[rustfmt::skip]
const UNIONS_AND_JOINS: &[Query] = &[
    (Any, Exact, "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item"),
    (Any, Exact, "SELECT amount FROM t_order WHERE amount > 450 UNION ALL SELECT amount FROM t_order WHERE amount < -450"),
    (Any, Folded, "SELECT status FROM t_order UNION SELECT sku FROM t_order_item"),
    (Fixed, Exact, "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item ORDER BY user_id"),
    (Fixed, Exact, "SELECT order_id FROM t_order WHERE amount > 490 UNION ALL SELECT order_id FROM t_order_item WHERE quantity = 6 ORDER BY 1 DESC LIMIT 20"),
    (Any, Exact, "SELECT qty, province_id FROM t_order UNION SELECT quantity, user_id FROM t_order_item"),
    (Any, Exact, "SELECT created FROM t_order WHERE qty = 1 UNION ALL SELECT created FROM t_order WHERE qty = -1"),
    (Fixed, Exact, "SELECT price FROM t_order WHERE price < -100 UNION SELECT unit_price FROM t_order_item WHERE unit_price < -8 ORDER BY price"),
    (Any, Exact, "SELECT user_id, amount FROM t_order WHERE amount > 100000 UNION SELECT user_id, quantity FROM t_order_item WHERE quantity > 100"),
    (Fixed, Exact, "SELECT order_id, 'o' AS kind FROM t_order WHERE order_id < 20 UNION ALL SELECT item_id, 'i' FROM t_order_item WHERE order_id < 20 ORDER BY 1, 2 LIMIT 10 OFFSET 5"),
    (Any, Exact, "SELECT user_id FROM t_order WHERE qty = 10 UNION SELECT user_id FROM t_order WHERE qty = -10 UNION SELECT user_id FROM t_order_item WHERE quantity = 6"),
    (Fixed, Exact, "SELECT o.order_id, i.item_id, i.sku FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id ORDER BY o.order_id, i.item_id"),
    (Any, Exact, "SELECT o.user_id, COUNT(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.user_id"),
    (Fixed, Exact, "SELECT o.user_id, COUNT(i.item_id), SUM(o.amount), SUM(i.quantity * i.unit_price) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.user_id ORDER BY o.user_id"),
    (Fixed, Folded, "SELECT i.sku, COUNT(*), AVG(o.price) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY i.sku ORDER BY i.sku"),
    (Fixed, Exact, "SELECT o.order_id, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id ORDER BY i.item_id DESC LIMIT 15"),
    (Fixed, Exact, "SELECT COUNT(*), SUM(i.quantity), AVG(i.unit_price) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id"),
    (Fixed, Exact, "SELECT o.order_id, COUNT(i.item_id) FROM t_order o LEFT JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.order_id ORDER BY o.order_id LIMIT 30"),
    (Fixed, Exact, "SELECT o.order_id, i.item_id FROM t_order o LEFT JOIN t_order_item i ON o.order_id = i.order_id WHERE i.item_id IS NULL ORDER BY o.order_id"),
    (Fixed, Folded, "SELECT o.status, COUNT(DISTINCT i.sku) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.status ORDER BY o.status"),
    (Fixed, Exact, "SELECT o.created, i.unit_price, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id ORDER BY o.created DESC, i.unit_price, i.item_id LIMIT 40"),
    (Fixed, Exact, "SELECT DISTINCT o.user_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE i.quantity > 5 ORDER BY o.user_id"),
    (Fixed, Exact, "SELECT o.user_id, i.quantity, COUNT(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id GROUP BY o.user_id, i.quantity HAVING COUNT(*) > 5 ORDER BY o.user_id, i.quantity"),
    (Fixed, Exact, "SELECT o.order_id, p.name FROM t_order o JOIN t_province p ON o.province_id = p.id ORDER BY o.order_id LIMIT 50"),
    (Fixed, Folded, "SELECT p.name, COUNT(*), SUM(o.amount) FROM t_order o JOIN t_province p ON o.province_id = p.id GROUP BY p.name ORDER BY p.name"),
    (Fixed, Exact, "SELECT p.id, COUNT(o.order_id), MAX(o.created) FROM t_province p JOIN t_order o ON o.province_id = p.id GROUP BY p.id ORDER BY p.id DESC"),
    (Fixed, Exact, "SELECT d.user_id, COUNT(*), SUM(d.amount) FROM (SELECT user_id, amount FROM t_order WHERE amount > 0) d GROUP BY d.user_id ORDER BY d.user_id"),
    (Fixed, Exact, "SELECT order_id FROM t_order WHERE order_id IN (SELECT order_id FROM t_order_item WHERE quantity = 6) ORDER BY order_id"),
    (Fixed, Exact, "SELECT o.order_id, (SELECT COUNT(*) FROM t_order_item i WHERE i.order_id = o.order_id) AS n FROM t_order o ORDER BY n DESC, o.order_id LIMIT 30"),
    (Fixed, Exact, "SELECT order_id FROM t_order o WHERE EXISTS (SELECT 1 FROM t_order_item i WHERE i.order_id = o.order_id AND i.quantity < 0) ORDER BY order_id"),
    (Fixed, Exact, "SELECT COUNT(*), SUM(quantity) FROM t_order JOIN t_order_item USING (order_id, user_id)"),
    (Fixed, Exact, "SELECT a.order_id, b.amount FROM t_order a JOIN t_order b ON a.order_id = b.order_id ORDER BY a.order_id DESC LIMIT 20"),
    (Fixed, Folded, "SELECT DISTINCT p.name FROM t_order o JOIN t_province p ON o.province_id = p.id WHERE o.amount > 490 ORDER BY p.name"),
    (Fixed, Folded, "SELECT o.status, p.name, COUNT(*) FROM t_order o JOIN t_province p ON o.province_id = p.id GROUP BY o.status, p.name ORDER BY o.status, p.name"),
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

/// The rows as compared: each value as its debug text (values of one column are of one
/// kind, so this keeps equality), strings folded when asked.
fn comparable(rows: Vec<Vec<Value>>, strings: Strings) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v {
                    Value::Bytes(mut b) if strings == Folded => {
                        b.make_ascii_lowercase();
                        while b.last() == Some(&b' ') {
                            b.pop();
                        }
                        format!("{:?}", Value::Bytes(b))
                    }
                    v => format!("{v:?}"),
                })
                .collect()
        })
        .collect()
}

/// The sharded database through dbmesh and the reference, both loaded with the dataset.
async fn both() -> (ShardedDb, Conn, MysqlDatabase, Conn) {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut sharded = Conn::new(db.mysql_opts()).await.unwrap();
    let reference_db = MysqlDatabase::create("merge_ref");
    let mut reference = Conn::new(reference_db.direct_opts()).await.unwrap();
    for sql in MERGE_MYSQL_DDL
        .iter()
        .map(|s| s.to_string())
        .chain(merge_inserts())
    {
        sharded
            .query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("through dbmesh: {e}"));
        reference.query_drop(&sql).await.unwrap();
    }
    (db, sharded, reference_db, reference)
}

/// Runs every query both ways over both protocols; fails listing every disagreement.
async fn differential(queries: &[Query]) {
    let (_db, mut sharded, _ref_db, mut reference) = both().await;
    let mut failures = Vec::new();
    for &(order, strings, sql) in queries {
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
            let (want_columns, want) = want.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let want = comparable(want, strings);
            match got {
                Ok((got_columns, got)) => {
                    let got = comparable(got, strings);
                    if got_columns != want_columns {
                        failures.push(format!(
                            "{protocol}: {sql}\n  columns {got_columns:?}\n  reference {want_columns:?}"
                        ));
                    }
                    if !same_rows(order, &got, &want) {
                        let at = got.iter().zip(&want).position(|(a, b)| a != b);
                        failures.push(format!(
                            "{protocol}: {sql}\n  {} rows vs {}; first difference at {at:?}: {:?} vs {:?}",
                            got.len(),
                            want.len(),
                            at.and_then(|i| got.get(i)),
                            at.and_then(|i| want.get(i)),
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
        queries.len() * 2,
        failures.join("\n")
    );
}

#[test]
fn the_suite_has_at_least_150_distinct_queries() {
    let mut all: Vec<&str> = [
        ORDERING,
        LIMITS,
        GROUPING,
        HAVING_AND_DISTINCT_AGGREGATES,
        DISTINCT,
        UNIONS_AND_JOINS,
    ]
    .iter()
    .flat_map(|list| list.iter().map(|q| q.2))
    .collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "a query is listed twice");
    assert!(total >= 150, "{total} queries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_by_merges_as_one_database_sorts() {
    differential(ORDERING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_and_offset_count_over_the_merged_order() {
    differential(LIMITS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_and_aggregates_merge_partial_results() {
    differential(GROUPING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn having_and_distinct_aggregates_see_every_shard() {
    differential(HAVING_AND_DISTINCT_AGGREGATES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_distinct_removes_duplicates_across_shards() {
    differential(DISTINCT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unions_and_colocated_joins_merge_like_selects() {
    differential(UNIONS_AND_JOINS).await;
}

/// Prepared statements with parameters: dbmesh plans a merged statement per execution
/// with the values written in (LIMIT ?, HAVING ... > ?, ? in the select list), so each is
/// run twice with different values. Numbers come as integers, doubles (what mysql2 binds)
/// and strings; dates as dates.
fn parameterised() -> Vec<(RowOrder, Strings, &'static str, [Vec<Value>; 2])> {
    use Value::{Bytes as S, Double as F, Int as I};
    let s = |v: &str| S(v.as_bytes().to_vec());
    let day = |y, m, d| Value::Date(y, m, d, 0, 0, 0, 0);
    vec![
        (Fixed, Exact, "SELECT order_id, amount FROM t_order WHERE amount > ? ORDER BY amount, order_id LIMIT ?", [vec![I(400), I(10)], vec![I(-500), I(3000)]]),
        (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id LIMIT ?, ?", [vec![I(2995), I(10)], vec![I(0), I(0)]]),
        (Fixed, Exact, "SELECT order_id FROM t_order ORDER BY order_id DESC LIMIT ? OFFSET ?", [vec![F(7.0), F(3.0)], vec![s("4"), s("2990")]]),
        (Fixed, Exact, "SELECT user_id, COUNT(*) FROM t_order WHERE created >= ? GROUP BY user_id HAVING COUNT(*) > ? ORDER BY user_id", [vec![day(2024, 6, 1), I(30)], vec![s("2025-01-01"), I(0)]]),
        (Any, Folded, "SELECT status, SUM(price), COUNT(*) FROM t_order WHERE status = ? GROUP BY status", [vec![s("OPEN")], vec![s("closed")]]),
        (Fixed, Exact, "SELECT COUNT(*), AVG(price), SUM(amount) FROM t_order WHERE price BETWEEN ? AND ?", [vec![F(-10.5), s("100.25")], vec![I(100000), I(200000)]]),
        (Fixed, Exact, "SELECT DISTINCT user_id FROM t_order WHERE qty = ? ORDER BY user_id LIMIT ? OFFSET ?", [vec![I(3), I(5), I(2)], vec![I(-10), I(100), I(0)]]),
        (Fixed, Exact, "SELECT order_id FROM t_order WHERE user_id IN (?, ?) ORDER BY order_id DESC LIMIT ?", [vec![I(3), I(4), F(7.0)], vec![I(8), I(8), I(1)]]),
        (Fixed, Exact, "SELECT user_id, SUM(amount) FROM t_order GROUP BY user_id HAVING SUM(amount) > ? ORDER BY user_id", [vec![I(0)], vec![F(-1000.5)]]),
        (Fixed, Exact, "SELECT o.order_id, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE i.quantity = ? ORDER BY i.item_id LIMIT ?", [vec![I(6), I(20)], vec![I(-2), I(5)]]),
        (Any, Exact, "SELECT amount FROM t_order WHERE amount > ? UNION SELECT quantity FROM t_order_item WHERE quantity < ?", [vec![I(480), I(0)], vec![I(100000), I(-100)]]),
        (Fixed, Exact, "SELECT created, COUNT(*) FROM t_order WHERE created < ? GROUP BY created ORDER BY created DESC LIMIT ?", [vec![day(2023, 3, 1), I(5)], vec![day(2030, 1, 1), I(1)]]),
        (Fixed, Exact, "SELECT order_id, price FROM t_order WHERE price > ? ORDER BY price DESC, order_id LIMIT ?", [vec![s("123.45"), I(15)], vec![I(0), I(2)]]),
        (Fixed, Exact, "SELECT ? AS tag, COUNT(*), MAX(amount) FROM t_order WHERE amount < ?", [vec![s("x"), I(0)], vec![I(7), I(-1000)]]),
        (Fixed, Exact, "SELECT order_id, amount + ? AS a FROM t_order ORDER BY a DESC, order_id LIMIT 5", [vec![I(1000)], vec![F(0.5)]]),
        (Fixed, Exact, "SELECT user_id, COUNT(DISTINCT qty) FROM t_order WHERE amount BETWEEN ? AND ? GROUP BY user_id ORDER BY user_id", [vec![I(-100), I(100)], vec![Value::NULL, I(0)]]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_parameters_merge_per_execution() {
    let (_db, mut sharded, _ref_db, mut reference) = both().await;
    let mut failures = Vec::new();
    for (order, strings, sql, runs) in parameterised() {
        let stmt = sharded
            .prep(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let direct = reference.prep(sql).await.unwrap();
        for params in runs {
            let want: Vec<Row> = reference
                .exec(&direct, params.clone())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let want = comparable(want.into_iter().map(Row::unwrap).collect(), strings);
            match sharded.exec::<Row, _, _>(&stmt, params.clone()).await {
                Ok(got) => {
                    let got = comparable(got.into_iter().map(Row::unwrap).collect(), strings);
                    if !same_rows(order, &got, &want) {
                        failures.push(format!(
                            "{sql} {params:?}\n  {} rows vs {}: {:?} vs {:?}",
                            got.len(),
                            want.len(),
                            got.first(),
                            want.first()
                        ));
                    }
                }
                Err(e) => failures.push(format!("{sql} {params:?}\n  dbmesh failed: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
        assert_eq!(count, Some(MERGE_ORDERS));
        let stmt = sharded
            .prep("SELECT order_id FROM t_order ORDER BY order_id DESC LIMIT 1")
            .await
            .unwrap();
        let last: Option<i64> = sharded.exec_first(&stmt, ()).await.unwrap();
        assert_eq!(last, Some(MERGE_ORDERS));
    }
    // Inside a transaction too (the connections must stay, and stay clean).
    sharded.query_drop("BEGIN").await.unwrap();
    let rows: Vec<(i64, i64)> = sharded.query(limited).await.unwrap();
    assert_eq!(rows.len(), 2);
    let count: Option<i64> = sharded
        .query_first("SELECT COUNT(*) FROM t_order")
        .await
        .unwrap();
    assert_eq!(count, Some(MERGE_ORDERS));
    sharded.query_drop("COMMIT").await.unwrap();
}

/// Constructs the merge cannot answer as one database would: each must be refused with
/// 1235 / 0A000 on both protocols, never answered with per-shard results.
const REFUSED: &[&str] = &[
    "SELECT order_id, ROW_NUMBER() OVER (ORDER BY order_id) FROM t_order",
    "SELECT user_id, GROUP_CONCAT(status) FROM t_order GROUP BY user_id",
    "SELECT SUM(amount) / COUNT(amount) FROM t_order",
    "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id WITH ROLLUP",
    "SELECT user_id FROM t_order EXCEPT SELECT user_id FROM t_order_item",
    "SELECT user_id FROM t_order INTERSECT SELECT user_id FROM t_order_item",
    "SELECT user_id, COUNT(*) FROM t_order GROUP BY user_id HAVING COUNT(*) > (SELECT 1)",
    "SELECT c, COUNT(*) FROM (SELECT user_id, COUNT(*) AS c FROM t_order GROUP BY user_id) d GROUP BY c",
    "(SELECT order_id FROM t_order) ORDER BY order_id LIMIT 3",
    "SELECT p.id, o.order_id FROM t_province p LEFT JOIN t_order o ON o.province_id = p.id AND o.amount > 498",
    "SELECT p.id FROM t_province p WHERE EXISTS (SELECT 1 FROM t_order o WHERE o.province_id = p.id)",
    "SELECT a.order_id FROM t_order a JOIN t_order b ON a.user_id = b.user_id",
    "SELECT COUNT(*) FROM t_order o JOIN t_order_item i ON o.user_id = i.user_id",
    "SELECT order_id FROM t_order WHERE user_id IN (SELECT user_id FROM t_order_item WHERE quantity = 6) ORDER BY order_id",
    "SELECT user_id, c FROM (SELECT user_id, COUNT(*) AS c FROM t_order GROUP BY user_id) d",
    "SELECT COUNT(*) FROM t_order WHERE amount > (SELECT AVG(amount) FROM t_order)",
    "SELECT * FROM (SELECT DISTINCT user_id FROM t_order) d",
    "SELECT d.order_id FROM (SELECT order_id FROM t_order ORDER BY order_id LIMIT 5) d ORDER BY d.order_id",
    "SELECT MAX(amount) - MIN(amount) FROM t_order",
    "SELECT COUNT(DISTINCT user_id, qty) FROM t_order",
    "SELECT sku, SUM(quantity) FROM t_order_item GROUP BY sku HAVING sku LIKE 'a%'",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_construct_is_refused_with_1235() {
    let (_db, mut sharded, _ref_db, _reference) = both().await;
    for &sql in REFUSED {
        let (code, state, message) = server_error(sharded.query_drop(sql).await);
        assert_eq!((code, state.as_str()), (1235, "0A000"), "{sql}: {message}");
        let stmt = sharded.prep(sql).await;
        let refused = match stmt {
            Ok(stmt) => sharded.exec_drop(&stmt, ()).await,
            Err(e) => Err(e),
        };
        let (code, state, message) = server_error(refused);
        assert_eq!((code, state.as_str()), (1235, "0A000"), "{sql}: {message}");
        // The connection is still usable.
        let count: Option<i64> = sharded
            .query_first("SELECT COUNT(*) FROM t_order")
            .await
            .unwrap();
        assert_eq!(count, Some(MERGE_ORDERS));
    }
}

/// MariaDB's default `utf8mb4_general_ci` ignores accents as well as case: `'café'`,
/// `'CAFÉ'`, `'cafe'` and `'Cafe '` are one value, wherever their rows live. The merge
/// groups, counts DISTINCT and sorts them as one, as one database does; a `_bin` column
/// keeps them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accents_fold_under_the_generic_ci_collations() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    conn.query_drop(
        "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, \
         name VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, \
         exact VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)",
    )
    .await
    .unwrap();
    // Every spelling on another node (user_id % 2 picks the data source, order_id % 2 the
    // table).
    let names = ["café", "CAFÉ", "cafe", "Cafe ", "thé", "the", "tea"];
    for (i, name) in names.iter().enumerate() {
        conn.exec_drop(
            "INSERT INTO t_order (order_id, user_id, name, exact) VALUES (?, ?, ?, ?)",
            (i as i64, (i / 2) as i32, *name, *name),
        )
        .await
        .unwrap();
    }
    let counts: Vec<i64> = conn
        .query("SELECT COUNT(*) c FROM t_order GROUP BY name ORDER BY c")
        .await
        .unwrap();
    assert_eq!(counts, [1, 2, 4]);
    let distinct: (i64, i64) = conn
        .query_first("SELECT COUNT(DISTINCT name), COUNT(DISTINCT exact) FROM t_order")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(distinct, (3, 7));
    // Sorted by the letters under the accents: the four cafés, tea, then the two thés.
    let order: Vec<i64> = conn
        .query("SELECT order_id FROM t_order ORDER BY name, order_id")
        .await
        .unwrap();
    assert_eq!(order, [0, 1, 2, 3, 6, 4, 5]);
    let distinct_names: Vec<String> = conn
        .query("SELECT DISTINCT name FROM t_order")
        .await
        .unwrap();
    assert_eq!(distinct_names.len(), 3, "{distinct_names:?}");
}

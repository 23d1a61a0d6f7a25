//! Cross-shard merging on PostgreSQL, differentially: the dataset of `merge_dataset` (3000
//! orders, their items, a broadcast table) loaded through dbmesh into `ORDERS_RULES` (2
//! data sources × 2 tables) and into a plain reference database, and every query run both
//! ways — simple protocol (text) and extended protocol (tokio-postgres, binary results) —
//! must give the same rows (in order where the SQL fixes one, tie group by tie group where
//! the ORDER BY leaves ties, as multisets otherwise), the same column types and the same
//! bytes.
//!
//! The queries are grouped by concept, one test per group, so that a failure names the
//! concept and the groups run in parallel.

use dbmesh_integration::pg_frontend::{bind, describe, execute, parse, sync};
use dbmesh_integration::{
    merge_inserts, pg_connect, pg_port, pg_sqlstate, same_rows, PgDatabase, PgMsg, PgRaw, RowOrder,
    ShardedDb, MERGE_ORDERS, MERGE_PG_DDL, ORDERS_RULES,
};
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};
use RowOrder::{Any, Fixed, Ties};

/// A query and the order its SQL fixes. Strings compare exactly: the suite runs under a
/// byte-order collation, where `open`, `OPEN` and `open ` are three values.
type Query = (RowOrder, &'static str);

/// ORDER BY: several keys, ASC / DESC, NULLS FIRST / LAST and the defaults (last
/// ascending, first descending), keys by position, alias, expression, or not selected;
/// ties compared group by group.
#[rustfmt::skip]
const ORDERING: &[Query] = &[
    (Fixed, "SELECT order_id, user_id, amount FROM t_order ORDER BY order_id"),
    (Fixed, "SELECT * FROM t_order ORDER BY order_id DESC"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id DESC"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount NULLS FIRST, order_id DESC"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC NULLS LAST, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount ASC NULLS LAST, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC NULLS FIRST, order_id"),
    (Ties(&[1]), "SELECT order_id, amount FROM t_order ORDER BY amount"),
    (Ties(&[0]), "SELECT amount, order_id, qty FROM t_order ORDER BY amount DESC NULLS LAST"),
    (Fixed, "SELECT order_id, price FROM t_order ORDER BY price, order_id"),
    (Fixed, "SELECT order_id, price FROM t_order ORDER BY price DESC, order_id"),
    (Ties(&[1, 2]), "SELECT order_id, price, qty FROM t_order ORDER BY price DESC, qty NULLS FIRST"),
    (Fixed, "SELECT order_id, created FROM t_order ORDER BY created, order_id"),
    (Fixed, "SELECT order_id, created, amount FROM t_order ORDER BY created DESC NULLS LAST, amount NULLS FIRST, order_id"),
    (Ties(&[0]), "SELECT created, order_id FROM t_order ORDER BY created DESC"),
    (Fixed, "SELECT order_id, status FROM t_order ORDER BY status, order_id"),
    (Fixed, "SELECT order_id, status FROM t_order ORDER BY status DESC, order_id DESC"),
    (Fixed, "SELECT order_id, status FROM t_order ORDER BY status NULLS FIRST, order_id"),
    (Ties(&[0]), "SELECT status, order_id FROM t_order ORDER BY status"),
    (Ties(&[0, 1]), "SELECT status, qty, order_id FROM t_order ORDER BY status DESC, qty"),
    (Fixed, "SELECT order_id, score FROM t_order ORDER BY score, order_id"),
    (Fixed, "SELECT order_id, score FROM t_order ORDER BY score DESC NULLS LAST, order_id"),
    (Fixed, "SELECT order_id, qty, price FROM t_order ORDER BY qty, price DESC, order_id"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY user_id, amount DESC, order_id"),
    (Fixed, "SELECT order_id, status FROM t_order ORDER BY created, score DESC, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY 2, 1"),
    (Fixed, "SELECT order_id AS id, amount AS a FROM t_order ORDER BY a DESC, id"),
    (Fixed, "SELECT order_id, amount * qty AS v FROM t_order ORDER BY v, order_id"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY amount * qty DESC, order_id"),
    (Fixed, "SELECT order_id, abs(amount) FROM t_order ORDER BY abs(amount), order_id"),
    (Fixed, "SELECT order_id, coalesce(amount, 0) AS c FROM t_order ORDER BY c, order_id DESC"),
    (Fixed, "SELECT order_id, created FROM t_order ORDER BY extract(year FROM created), extract(month FROM created) DESC, order_id"),
    (Fixed, "SELECT order_id, lower(status) AS s FROM t_order ORDER BY s DESC, order_id"),
    (Fixed, "SELECT order_id, status FROM t_order ORDER BY status IS NULL, order_id"),
    (Fixed, "SELECT order_id, amount > 0 AS positive FROM t_order ORDER BY positive, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order WHERE amount < 0 ORDER BY amount, order_id"),
    (Fixed, "SELECT order_id, created FROM t_order WHERE created BETWEEN DATE '2024-02-01' AND DATE '2024-03-31' ORDER BY created, order_id"),
    (Fixed, "SELECT order_id, user_id FROM t_order WHERE order_id IN (1, 2, 3, 50, 51, 52, 2999) ORDER BY user_id, order_id"),
    (Fixed, "SELECT order_id, user_id FROM t_order WHERE user_id IN (3, 4) ORDER BY user_id DESC, order_id"),
    (Fixed, "SELECT * FROM t_order WHERE user_id = 7 ORDER BY order_id"),
    (Fixed, "SELECT order_id, price FROM t_order WHERE price IS NULL ORDER BY order_id"),
    (Fixed, "SELECT order_id, status, amount FROM t_order WHERE status = 'open' ORDER BY amount, order_id"),
    (Fixed, "SELECT order_id, province_id FROM t_order ORDER BY province_id NULLS FIRST, order_id DESC"),
    (Ties(&[0, 1]), "SELECT user_id, qty, order_id FROM t_order ORDER BY user_id, qty DESC"),
    (Fixed, "SELECT item_id, sku, quantity FROM t_order_item ORDER BY quantity DESC, item_id"),
    (Fixed, "SELECT item_id, sku FROM t_order_item ORDER BY sku, item_id"),
    (Fixed, "SELECT item_id, unit_price FROM t_order_item ORDER BY unit_price DESC, item_id"),
    (Fixed, "SELECT order_id, created + 1 AS d FROM t_order ORDER BY d DESC, order_id"),
    (Fixed, "SELECT *, order_id * 2 AS d FROM t_order ORDER BY d DESC"),
    (Fixed, "SELECT o.*, i.sku FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id ORDER BY i.item_id"),
    (Fixed, "SELECT price::text AS p, order_id FROM t_order ORDER BY p, order_id"),
    (Fixed, "SELECT order_id, amount FROM t_order WHERE amount > 100000 ORDER BY amount"),
    (Fixed, "SELECT order_id, updated FROM t_order ORDER BY updated DESC, order_id"),
    (Ties(&[0]), "SELECT updated, order_id FROM t_order ORDER BY updated NULLS FIRST"),
];

/// LIMIT / OFFSET / FETCH: in range, at and past the end, OFFSET alone, LIMIT 0 and ALL,
/// over sorted rows with total keys (a LIMIT cutting through ties has no one answer).
#[rustfmt::skip]
const LIMITS: &[Query] = &[
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount DESC, order_id LIMIT 7"),
    (Fixed, "SELECT order_id, amount FROM t_order ORDER BY amount, order_id LIMIT 5 OFFSET 20"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 2995"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 3000"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 100000"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT 0"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id DESC OFFSET 2990"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT ALL OFFSET 2995"),
    (Fixed, "SELECT order_id, price FROM t_order ORDER BY price NULLS FIRST, order_id OFFSET 3 ROWS FETCH FIRST 4 ROWS ONLY"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY score DESC, order_id FETCH FIRST ROW ONLY"),
    (Fixed, "SELECT amount FROM t_order WHERE amount IS NOT NULL ORDER BY amount DESC, order_id LIMIT 20 OFFSET 5"),
    (Any, "SELECT order_id FROM t_order LIMIT 5000"),
    (Fixed, "SELECT * FROM t_order ORDER BY price, order_id LIMIT 10"),
    (Fixed, "SELECT order_id, created FROM t_order ORDER BY created DESC, order_id LIMIT 1"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY created, order_id LIMIT 100 OFFSET 1000"),
    (Fixed, "SELECT order_id, status FROM t_order ORDER BY status NULLS FIRST, order_id LIMIT 50"),
    (Fixed, "SELECT order_id FROM t_order WHERE user_id = 5 ORDER BY order_id LIMIT 3 OFFSET 2"),
    (Fixed, "SELECT item_id FROM t_order_item ORDER BY item_id DESC LIMIT 25 OFFSET 10"),
    (Fixed, "SELECT order_id, qty FROM t_order ORDER BY qty, order_id DESC LIMIT 1000"),
    (Fixed, "SELECT order_id FROM t_order ORDER BY amount * qty, order_id LIMIT 5"),
    (Fixed, "SELECT order_id, user_id FROM t_order ORDER BY user_id DESC, order_id LIMIT 40 OFFSET 40"),
    (Fixed, "SELECT * FROM t_order ORDER BY amount DESC NULLS LAST, order_id LIMIT 5"),
];

/// GROUP BY with every aggregate, group keys of every type (NULL groups too), expressions
/// as keys, ORDER BY an aggregate; aggregates without GROUP BY, over no rows too.
#[rustfmt::skip]
const GROUPING: &[Query] = &[
    (Any, "SELECT user_id, count(*) FROM t_order GROUP BY user_id"),
    (Fixed, "SELECT user_id, count(*), count(amount), sum(amount), min(amount), max(amount), avg(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT user_id, avg(price), sum(price), min(price), max(price) FROM t_order GROUP BY user_id ORDER BY user_id DESC"),
    (Fixed, "SELECT user_id, sum(score), avg(score), min(score), max(score) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT qty, sum(qty), avg(qty), count(*) FROM t_order GROUP BY qty ORDER BY qty"),
    (Fixed, "SELECT province_id, count(*), avg(amount) FROM t_order GROUP BY province_id ORDER BY province_id"),
    (Fixed, "SELECT province_id, count(*), count(province_id) FROM t_order GROUP BY province_id ORDER BY province_id DESC"),
    (Fixed, "SELECT province_id, count(*) FROM t_order GROUP BY province_id ORDER BY province_id NULLS FIRST"),
    (Fixed, "SELECT status, count(*) FROM t_order GROUP BY status ORDER BY status"),
    (Fixed, "SELECT status, sum(amount), avg(price), min(created) FROM t_order GROUP BY status ORDER BY status DESC"),
    (Any, "SELECT status, count(*), max(score) FROM t_order GROUP BY status"),
    (Fixed, "SELECT user_id, count(*) AS c FROM t_order GROUP BY user_id ORDER BY c DESC, user_id"),
    (Fixed, "SELECT user_id, sum(amount) AS s FROM t_order GROUP BY user_id ORDER BY s, user_id LIMIT 5"),
    (Fixed, "SELECT user_id, avg(amount) AS a FROM t_order GROUP BY user_id ORDER BY a DESC, user_id"),
    (Fixed, "SELECT user_id FROM t_order GROUP BY user_id ORDER BY sum(price) DESC, user_id"),
    (Ties(&[1]), "SELECT qty, count(*) FROM t_order GROUP BY qty ORDER BY count(*)"),
    (Fixed, "SELECT user_id, min(created), max(created) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT user_id, min(status), max(status) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT created, count(*) FROM t_order GROUP BY created ORDER BY created LIMIT 10"),
    (Fixed, "SELECT price, count(*) FROM t_order GROUP BY price ORDER BY price DESC LIMIT 10"),
    (Fixed, "SELECT score, count(*), sum(amount) FROM t_order GROUP BY score ORDER BY score"),
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 3 OFFSET 2"),
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id ORDER BY user_id LIMIT 5 OFFSET 100"),
    (Fixed, "SELECT user_id, qty, count(*), sum(amount) FROM t_order GROUP BY user_id, qty ORDER BY user_id, qty"),
    (Fixed, "SELECT qty, user_id, count(*) FROM t_order GROUP BY user_id, qty ORDER BY qty DESC, user_id"),
    (Fixed, "SELECT user_id % 5 AS m, count(*), sum(price) FROM t_order GROUP BY m ORDER BY m"),
    (Fixed, "SELECT extract(year FROM created) AS y, count(*), avg(amount) FROM t_order GROUP BY extract(year FROM created) ORDER BY y"),
    (Fixed, "SELECT date_trunc('month', created)::date AS m, count(*) FROM t_order GROUP BY 1 ORDER BY 1 DESC"),
    (Fixed, "SELECT count(*) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY 1 ORDER BY 1 DESC"),
    (Fixed, "SELECT count(*), user_id FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT user_id, sum(amount) FROM t_order GROUP BY user_id ORDER BY sum(amount) DESC, user_id LIMIT 3"),
    (Fixed, "SELECT qty, avg(price) FROM t_order GROUP BY qty ORDER BY avg(price), qty"),
    (Fixed, "SELECT status, count(*) FROM t_order WHERE status IS NOT NULL GROUP BY status ORDER BY count(*) DESC, status"),
    (Fixed, "SELECT count(*), count(amount), sum(amount), avg(amount), min(price), max(price), avg(price) FROM t_order"),
    (Fixed, "SELECT sum(score), avg(score), min(score), max(score), count(score) FROM t_order"),
    (Fixed, "SELECT min(created), max(created), count(created) FROM t_order"),
    (Fixed, "SELECT min(status), max(status), count(status) FROM t_order"),
    (Fixed, "SELECT sum(amount * qty), avg(amount * qty), sum(price * qty) FROM t_order"),
    (Fixed, "SELECT user_id, sum(amount * qty), max(price * qty) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT count(*), min(order_id), max(order_id), sum(order_id), avg(order_id) FROM t_order"),
    (Fixed, "SELECT avg(qty), sum(qty), min(qty) FROM t_order"),
    (Fixed, "SELECT sum(price), avg(price) FROM t_order WHERE price < 0"),
    (Fixed, "SELECT count(*), sum(amount) FROM t_order WHERE user_id = 3"),
    (Fixed, "SELECT created, sum(amount) FROM t_order WHERE created BETWEEN DATE '2024-03-01' AND DATE '2024-04-01' GROUP BY created ORDER BY created DESC"),
    (Fixed, "SELECT count(*) FROM t_order WHERE amount > 100000"),
    (Fixed, "SELECT count(*), count(amount), sum(amount), avg(amount), min(created), max(status) FROM t_order WHERE amount > 100000"),
    (Fixed, "SELECT user_id, count(*) FROM t_order WHERE amount > 100000 GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT count(*) FROM t_order WHERE false"),
    (Fixed, "SELECT min(amount), max(amount) FROM t_order ORDER BY 1"),
    (Fixed, "SELECT count(*) FROM t_order LIMIT 1 OFFSET 1"),
    (Fixed, "SELECT count(*), sum(quantity), avg(unit_price), max(unit_price) FROM t_order_item"),
    (Fixed, "SELECT sku, count(*), sum(quantity), avg(unit_price) FROM t_order_item GROUP BY sku ORDER BY sku"),
    (Fixed, "SELECT sum(price * 3), avg(price / 7) FROM t_order"),
    (Fixed, "SELECT user_id, min(price), max(created), sum(amount) FROM t_order WHERE price IS NULL GROUP BY user_id ORDER BY user_id"),
    (Ties(&[0]), "SELECT count(*) AS c FROM t_order GROUP BY user_id HAVING count(*) > 70 ORDER BY c DESC"),
    (Fixed, "SELECT user_id, 1 AS one, 'k' AS k, count(*) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT 'all' AS scope, count(*), max(order_id) FROM t_order"),
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id, user_id ORDER BY user_id"),
    (Fixed, "SELECT min(order_id) FROM t_order GROUP BY user_id ORDER BY min(order_id)"),
    (Fixed, "SELECT user_id, count(amount), count(DISTINCT amount), sum(DISTINCT amount), sum(amount), avg(amount), min(amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "WITH x AS (SELECT user_id, amount FROM t_order) SELECT user_id, sum(amount) FROM x GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT updated::date AS d, count(*), min(updated), max(updated) FROM t_order GROUP BY updated::date ORDER BY d"),
    (Fixed, "SELECT min(updated), max(updated), count(updated), count(DISTINCT updated) FROM t_order"),
    (Fixed, "SELECT user_id, max(updated) FROM t_order GROUP BY user_id ORDER BY max(updated) DESC, user_id LIMIT 5"),
    (Fixed, "SELECT updated, count(*) FROM t_order GROUP BY updated ORDER BY updated DESC LIMIT 20"),
    (Fixed, "SELECT count(DISTINCT status), sum(DISTINCT amount), avg(amount), count(amount), min(amount) FROM t_order WHERE amount IS NULL"),
    (Fixed, "SELECT amount, count(*), sum(qty) FROM t_order WHERE amount IS NULL GROUP BY amount"),
    (Fixed, "SELECT count(1), count(NULL), sum(1), max(1) FROM t_order"),
    (Fixed, "SELECT 1 FROM t_order ORDER BY order_id LIMIT 3"),
    (Fixed, "SELECT user_id, count(*) FILTER (WHERE amount > 0), sum(amount) FILTER (WHERE qty < 0), avg(price) FILTER (WHERE status = 'open') FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT count(*) FILTER (WHERE amount > 0), avg(amount) FILTER (WHERE amount < 0) FROM t_order"),
    (Fixed, "SELECT user_id, sum(CASE WHEN amount > 0 THEN 1 ELSE 0 END) AS pos FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT status FROM t_order GROUP BY status ORDER BY status COLLATE \"C\" DESC"),
];

/// HAVING on aggregates and keys; count(DISTINCT) and sum(DISTINCT), by group and over
/// everything.
#[rustfmt::skip]
const HAVING_AND_DISTINCT_AGGREGATES: &[Query] = &[
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id HAVING count(*) > 75 ORDER BY user_id"),
    (Fixed, "SELECT user_id, sum(amount) FROM t_order GROUP BY user_id HAVING sum(amount) < 0 ORDER BY user_id"),
    (Fixed, "SELECT user_id, max(amount) FROM t_order GROUP BY user_id HAVING max(amount) >= 499 OR max(amount) < 490 ORDER BY user_id"),
    (Fixed, "SELECT user_id FROM t_order GROUP BY user_id HAVING max(amount) >= 490 AND min(amount) <= -490 ORDER BY user_id"),
    (Fixed, "SELECT status, avg(amount) FROM t_order GROUP BY status HAVING avg(amount) > 0 OR count(*) < 250 ORDER BY status"),
    (Fixed, "SELECT qty, count(*) FROM t_order GROUP BY qty HAVING NOT count(*) > 145 ORDER BY qty"),
    (Fixed, "SELECT user_id, avg(price) AS a FROM t_order GROUP BY user_id HAVING avg(price) > 100 ORDER BY a DESC, user_id"),
    (Fixed, "SELECT province_id, count(*) FROM t_order GROUP BY province_id HAVING province_id > 2 ORDER BY province_id"),
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id HAVING count(*) > 0 ORDER BY user_id LIMIT 4 OFFSET 3"),
    (Fixed, "SELECT user_id, sum(price) FROM t_order GROUP BY user_id HAVING sum(price) > 1000000 ORDER BY user_id"),
    (Fixed, "SELECT created, count(*) FROM t_order GROUP BY created HAVING min(created) >= '2025-06-01' ORDER BY created"),
    (Fixed, "SELECT created, count(*) FROM t_order GROUP BY created HAVING created < DATE '2023-02-01' ORDER BY created"),
    (Fixed, "SELECT user_id, count(*) FROM t_order GROUP BY user_id HAVING count(*) BETWEEN 70 AND 80 ORDER BY user_id"),
    (Fixed, "SELECT user_id, sum(amount) FROM t_order GROUP BY user_id HAVING sum(amount) > 0 AND user_id < 20 ORDER BY user_id"),
    (Fixed, "SELECT count(*) FROM t_order HAVING count(*) > 10"),
    (Fixed, "SELECT count(*) FROM t_order HAVING count(*) > 100000"),
    (Fixed, "SELECT user_id, sum(score) FROM t_order GROUP BY user_id HAVING sum(score) > 10.5 ORDER BY user_id"),
    (Fixed, "SELECT user_id, count(DISTINCT status) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT count(DISTINCT user_id), count(DISTINCT amount), count(DISTINCT price) FROM t_order"),
    (Fixed, "SELECT count(DISTINCT status) FROM t_order"),
    (Fixed, "SELECT sum(DISTINCT amount), sum(DISTINCT price) FROM t_order"),
    (Fixed, "SELECT user_id, sum(DISTINCT amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT qty, count(DISTINCT user_id), sum(DISTINCT qty) FROM t_order GROUP BY qty ORDER BY qty"),
    (Fixed, "SELECT status, count(DISTINCT created) FROM t_order GROUP BY status ORDER BY status"),
    (Fixed, "SELECT count(DISTINCT created), count(DISTINCT score), sum(DISTINCT score) FROM t_order"),
    (Fixed, "SELECT user_id, count(DISTINCT qty), count(*) FROM t_order GROUP BY user_id HAVING count(DISTINCT qty) > 20 ORDER BY user_id"),
    (Fixed, "SELECT province_id, count(DISTINCT user_id) AS c FROM t_order GROUP BY province_id ORDER BY c DESC, province_id"),
    (Fixed, "SELECT count(DISTINCT user_id), sum(DISTINCT amount) FROM t_order WHERE false"),
    (Fixed, "SELECT count(DISTINCT sku), sum(DISTINCT unit_price) FROM t_order_item"),
    (Fixed, "SELECT sum(DISTINCT order_id), sum(DISTINCT qty) FROM t_order"),
    (Fixed, "SELECT avg(DISTINCT amount), avg(DISTINCT price), avg(DISTINCT score), avg(DISTINCT qty) FROM t_order"),
    (Fixed, "SELECT user_id, avg(DISTINCT amount), avg(amount), count(DISTINCT amount) FROM t_order GROUP BY user_id ORDER BY user_id"),
    (Fixed, "SELECT status, avg(DISTINCT price) AS a FROM t_order GROUP BY status HAVING avg(DISTINCT price) > 100 ORDER BY a DESC, status"),
    (Fixed, "SELECT avg(DISTINCT amount), avg(DISTINCT price) FROM t_order WHERE false"),
    (Fixed, "SELECT user_id, min(updated) FROM t_order GROUP BY user_id HAVING min(updated) < TIMESTAMP '2023-01-02 12:00:00' ORDER BY user_id"),
];

/// SELECT DISTINCT: one and several columns, with ORDER BY and LIMIT.
#[rustfmt::skip]
const DISTINCT: &[Query] = &[
    (Any, "SELECT DISTINCT user_id FROM t_order"),
    (Fixed, "SELECT DISTINCT user_id FROM t_order ORDER BY user_id DESC"),
    (Any, "SELECT DISTINCT status FROM t_order"),
    (Fixed, "SELECT DISTINCT status FROM t_order ORDER BY status"),
    (Fixed, "SELECT DISTINCT status FROM t_order ORDER BY status DESC NULLS LAST"),
    (Any, "SELECT DISTINCT user_id % 3 FROM t_order"),
    (Fixed, "SELECT DISTINCT created FROM t_order ORDER BY created LIMIT 10"),
    (Fixed, "SELECT DISTINCT user_id, qty FROM t_order ORDER BY user_id DESC, qty"),
    (Any, "SELECT DISTINCT qty, province_id FROM t_order"),
    (Fixed, "SELECT DISTINCT price FROM t_order WHERE price < 0 ORDER BY price DESC LIMIT 5 OFFSET 3"),
    (Fixed, "SELECT DISTINCT amount FROM t_order ORDER BY amount LIMIT 10 OFFSET 995"),
    (Fixed, "SELECT DISTINCT province_id FROM t_order ORDER BY province_id LIMIT 100 OFFSET 5"),
    (Any, "SELECT DISTINCT score FROM t_order"),
    (Any, "SELECT DISTINCT sku FROM t_order_item"),
    (Fixed, "SELECT DISTINCT status, province_id FROM t_order ORDER BY status, province_id NULLS FIRST"),
    (Fixed, "SELECT DISTINCT extract(year FROM created) FROM t_order ORDER BY 1"),
    (Fixed, "SELECT DISTINCT qty FROM t_order ORDER BY qty DESC LIMIT 3"),
    (Fixed, "SELECT DISTINCT user_id FROM t_order WHERE amount > 100000 ORDER BY user_id"),
    (Any, "SELECT DISTINCT lower(status), user_id % 2 FROM t_order"),
    (Any, "SELECT DISTINCT user_id % 4, count(*) FROM t_order GROUP BY user_id"),
    (Fixed, "SELECT DISTINCT * FROM t_order ORDER BY amount, order_id LIMIT 10"),
    (Fixed, "SELECT DISTINCT updated FROM t_order WHERE updated < '2023-01-03' ORDER BY updated"),
    (Fixed, "SELECT DISTINCT user_id FROM t_order ORDER BY user_id LIMIT 0"),
];

/// UNION and UNION ALL (with ORDER BY and LIMIT of their own); joins of binding tables,
/// inner and LEFT; joins with the broadcast table; a derived table and an IN subquery
/// that each shard can answer for its rows.
#[rustfmt::skip]
const UNIONS_AND_JOINS: &[Query] = &[
    (Any, "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item"),
    (Any, "SELECT amount FROM t_order WHERE amount > 450 UNION ALL SELECT amount FROM t_order WHERE amount < -450"),
    (Any, "SELECT status FROM t_order UNION SELECT sku FROM t_order_item"),
    (Fixed, "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item ORDER BY user_id"),
    (Fixed, "SELECT order_id FROM t_order WHERE amount > 490 UNION ALL SELECT order_id FROM t_order_item WHERE quantity = 6 ORDER BY 1 DESC LIMIT 20"),
    (Any, "SELECT qty, province_id FROM t_order UNION SELECT quantity, user_id FROM t_order_item"),
    (Any, "SELECT created FROM t_order WHERE qty = 1 UNION ALL SELECT created FROM t_order WHERE qty = -1"),
    (Fixed, "SELECT price FROM t_order WHERE price < -100 UNION SELECT unit_price FROM t_order_item WHERE unit_price < -8 ORDER BY price"),
    (Any, "SELECT user_id, amount FROM t_order WHERE amount > 100000 UNION SELECT user_id, quantity FROM t_order_item WHERE quantity > 100"),
    (Fixed, "SELECT order_id, 'o' AS kind FROM t_order WHERE order_id < 20 UNION ALL SELECT item_id, 'i' FROM t_order_item WHERE order_id < 20 ORDER BY 1, 2 LIMIT 10 OFFSET 5"),
    (Any, "SELECT user_id FROM t_order WHERE qty = 10 UNION SELECT user_id FROM t_order WHERE qty = -10 UNION SELECT user_id FROM t_order_item WHERE quantity = 6"),
    (Fixed, "SELECT status FROM t_order UNION SELECT sku FROM t_order_item ORDER BY status NULLS FIRST"),
    (Fixed, "SELECT o.order_id, i.item_id, i.sku FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id ORDER BY o.order_id, i.item_id"),
    (Any, "SELECT o.user_id, count(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY o.user_id"),
    (Fixed, "SELECT o.user_id, count(i.item_id), sum(o.amount), sum(i.quantity * i.unit_price) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY o.user_id ORDER BY o.user_id"),
    (Fixed, "SELECT i.sku, count(*), avg(o.price) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY i.sku ORDER BY i.sku"),
    (Fixed, "SELECT o.order_id, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id ORDER BY i.item_id DESC LIMIT 15"),
    (Fixed, "SELECT count(*), sum(i.quantity), avg(i.unit_price) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id"),
    (Fixed, "SELECT o.order_id, count(i.item_id) FROM t_order o LEFT JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY o.order_id ORDER BY o.order_id LIMIT 30"),
    (Fixed, "SELECT o.order_id, i.item_id FROM t_order o LEFT JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id WHERE i.item_id IS NULL ORDER BY o.order_id"),
    (Fixed, "SELECT o.status, count(DISTINCT i.sku) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY o.status ORDER BY o.status"),
    (Fixed, "SELECT o.created, i.unit_price, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id ORDER BY o.created DESC, i.unit_price NULLS FIRST, i.item_id LIMIT 40"),
    (Fixed, "SELECT DISTINCT o.user_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id WHERE i.quantity > 5 ORDER BY o.user_id"),
    (Fixed, "SELECT o.user_id, i.quantity, count(*) FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id GROUP BY o.user_id, i.quantity HAVING count(*) > 5 ORDER BY o.user_id, i.quantity"),
    (Fixed, "SELECT o.order_id, p.name FROM t_order o JOIN t_province p ON o.province_id = p.id ORDER BY o.order_id LIMIT 50"),
    (Fixed, "SELECT p.name, count(*), sum(o.amount) FROM t_order o JOIN t_province p ON o.province_id = p.id GROUP BY p.name ORDER BY p.name"),
    (Fixed, "SELECT p.id, count(o.order_id), max(o.created) FROM t_province p JOIN t_order o ON o.province_id = p.id GROUP BY p.id ORDER BY p.id DESC"),
    (Fixed, "SELECT d.user_id, count(*), sum(d.amount) FROM (SELECT user_id, amount FROM t_order WHERE amount > 0) d GROUP BY d.user_id ORDER BY d.user_id"),
    (Fixed, "SELECT order_id FROM t_order WHERE order_id IN (SELECT order_id FROM t_order_item WHERE quantity = 6) ORDER BY order_id"),
    (Fixed, "SELECT o.order_id, (SELECT count(*) FROM t_order_item i WHERE i.order_id = o.order_id AND i.user_id = o.user_id) AS n FROM t_order o ORDER BY n DESC, o.order_id LIMIT 30"),
    (Fixed, "SELECT order_id FROM t_order o WHERE EXISTS (SELECT 1 FROM t_order_item i WHERE i.order_id = o.order_id AND i.user_id = o.user_id AND i.quantity < 0) ORDER BY order_id"),
    (Fixed, "SELECT count(*), sum(quantity) FROM t_order JOIN t_order_item USING (order_id, user_id)"),
    (Fixed, "SELECT a.order_id, b.amount FROM t_order a JOIN t_order b ON a.order_id = b.order_id ORDER BY a.order_id DESC LIMIT 20"),
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
async fn extended(
    client: &Client,
    sql: &str,
) -> Result<(Vec<Type>, Vec<Vec<Raw>>), tokio_postgres::Error> {
    let statement = client.prepare(sql).await?;
    let types = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let rows = client.query(&statement, &[]).await?;
    let rows = rows
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Raw>(i)).collect())
        .collect();
    Ok((types, rows))
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
    for sql in MERGE_PG_DDL
        .iter()
        .map(|s| s.to_string())
        .chain(merge_inserts())
    {
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

/// A difference between two answers, shown by its row counts and first differing row.
fn difference<T: std::fmt::Debug + PartialEq>(got: &[T], want: &[T]) -> String {
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    format!(
        "{} rows vs {}; first difference at {at:?}: {:?} vs {:?}",
        got.len(),
        want.len(),
        at.and_then(|i| got.get(i)),
        at.and_then(|i| want.get(i)),
    )
}

/// Runs every query both ways over both protocols; fails listing every disagreement.
async fn differential(queries: &[Query]) {
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
    for &(order, sql) in queries {
        // Simple protocol, text.
        let (want, want_counts) = simple(&s.reference, sql)
            .await
            .unwrap_or_else(|e| panic!("reference: {sql}: {e:?}"));
        match simple(&s.proxy, sql).await {
            Ok((got, got_counts)) => {
                if !same_rows(order, &got, &want) || got_counts != want_counts {
                    failures.push(format!(
                        "simple: {sql}\n  tags {got_counts:?} vs {want_counts:?}, {}",
                        difference(&got, &want)
                    ));
                }
            }
            Err(e) => failures.push(format!("simple: {sql}\n  dbmesh failed: {e:?}")),
        }
        // Extended protocol, binary.
        let (want_types, want) = extended(&s.reference, sql)
            .await
            .unwrap_or_else(|e| panic!("reference: {sql}: {e:?}"));
        match extended(&s.proxy, sql).await {
            Ok((got_types, got)) => {
                if got_types != want_types {
                    failures.push(format!("types: {sql}\n  {got_types:?} vs {want_types:?}"));
                }
                if !same_rows(order, &got, &want) {
                    failures.push(format!("extended: {sql}\n  {}", difference(&got, &want)));
                }
            }
            Err(e) => failures.push(format!("extended: {sql}\n  dbmesh failed: {e:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers differ:\n{}",
        failures.len(),
        queries.len() * 2,
        failures.join("\n")
    );
    drop(s.sharded);
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
    .flat_map(|list| list.iter().map(|q| q.1))
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

/// Values of one execution of a parameterised statement.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// Prepared statements with parameters: dbmesh plans a merged statement per execution
/// with the values written in (LIMIT $n, HAVING ... > $n, $n in the select list), so each
/// is run twice with different values.
fn parameterised() -> Vec<(RowOrder, &'static str, [Params; 2])> {
    fn p<T: ToSql + Sync + Send + 'static>(v: T) -> Box<dyn ToSql + Sync + Send> {
        Box::new(v)
    }
    vec![
        (Fixed, "SELECT order_id, amount FROM t_order WHERE amount > $1 ORDER BY amount, order_id LIMIT $2", [vec![p(400i32), p(10i64)], vec![p(-500i32), p(3000i64)]]),
        (Fixed, "SELECT order_id FROM t_order ORDER BY order_id LIMIT $1 OFFSET $2", [vec![p(10i64), p(2995i64)], vec![p(0i64), p(0i64)]]),
        (Fixed, "SELECT user_id, count(*) FROM t_order WHERE created >= $1::text::date GROUP BY user_id HAVING count(*) > $2 ORDER BY user_id", [vec![p("2024-06-01"), p(30i64)], vec![p("2025-01-01"), p(0i64)]]),
        (Any, "SELECT status, sum(price), count(*) FROM t_order WHERE status = $1 GROUP BY status", [vec![p("OPEN")], vec![p("open ")]]),
        (Fixed, "SELECT count(*), avg(price), sum(amount) FROM t_order WHERE price::float8 BETWEEN $1 AND $2", [vec![p(-10.5f64), p(100.25f64)], vec![p(100000f64), p(200000f64)]]),
        (Fixed, "SELECT DISTINCT user_id FROM t_order WHERE qty = $1 ORDER BY user_id LIMIT $2 OFFSET $3", [vec![p(3i16), p(5i64), p(2i64)], vec![p(-10i16), p(100i64), p(0i64)]]),
        (Fixed, "SELECT order_id FROM t_order WHERE user_id IN ($1, $2) ORDER BY order_id DESC LIMIT $3", [vec![p(3i32), p(4i32), p(7i64)], vec![p(8i32), p(8i32), p(1i64)]]),
        (Fixed, "SELECT user_id, sum(amount) FROM t_order GROUP BY user_id HAVING sum(amount) > $1 ORDER BY user_id", [vec![p(0i64)], vec![p(-1000i64)]]),
        (Fixed, "SELECT o.order_id, i.item_id FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id WHERE i.quantity = $1 ORDER BY i.item_id LIMIT $2", [vec![p(6i32), p(20i64)], vec![p(-2i32), p(5i64)]]),
        (Any, "SELECT amount FROM t_order WHERE amount > $1 UNION SELECT quantity FROM t_order_item WHERE quantity < $2", [vec![p(480i32), p(0i32)], vec![p(100000i32), p(-100i32)]]),
        (Fixed, "SELECT created, count(*) FROM t_order WHERE created < $1::text::date GROUP BY created ORDER BY created DESC LIMIT $2", [vec![p("2023-03-01"), p(5i64)], vec![p("2030-01-01"), p(1i64)]]),
        (Fixed, "SELECT $1::text AS tag, count(*), max(amount) FROM t_order WHERE amount < $2", [vec![p("x"), p(0i32)], vec![p("it's"), p(-1000i32)]]),
        (Fixed, "SELECT order_id, amount + $1 AS a FROM t_order ORDER BY a DESC, order_id LIMIT 5", [vec![p(1000i32)], vec![p(-7i32)]]),
        (Fixed, "SELECT order_id, score * $1 AS a FROM t_order ORDER BY a DESC NULLS LAST, order_id LIMIT 5", [vec![p(0.5f64)], vec![p(-2.25f64)]]),
        (Fixed, "SELECT user_id, count(DISTINCT qty) FROM t_order WHERE amount BETWEEN $1 AND $2 GROUP BY user_id ORDER BY user_id", [vec![p(-100i32), p(100i32)], vec![p(None::<i32>), p(0i32)]]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_parameters_merge_per_execution() {
    let s = setup().await;
    let mut failures = Vec::new();
    for (order, sql, runs) in parameterised() {
        for params in runs {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let raw = |rows: Vec<tokio_postgres::Row>| -> Vec<Vec<Raw>> {
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| r.get::<_, Raw>(i)).collect())
                    .collect()
            };
            let want = raw(s
                .reference
                .query(sql, &refs)
                .await
                .unwrap_or_else(|e| panic!("reference: {sql}: {e:?}")));
            match s.proxy.query(sql, &refs).await {
                Ok(got) => {
                    let got = raw(got);
                    if !same_rows(order, &got, &want) {
                        failures.push(format!("{sql} {params:?}\n  {}", difference(&got, &want)));
                    }
                }
                Err(e) => failures.push(format!("{sql} {params:?}\n  dbmesh failed: {e:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
    assert_eq!(rows, [[Some(MERGE_ORDERS.to_string())]]);
    let (rows, _) = simple(c, "SELECT count(*) FROM t_order").await.unwrap();
    assert_eq!(rows, [[Some(MERGE_ORDERS.to_string())]]);
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
        "SELECT string_agg(status, ',') FROM t_order",
        "SELECT user_id FROM t_order EXCEPT SELECT user_id FROM t_order_item",
        "SELECT user_id FROM t_order INTERSECT SELECT user_id FROM t_order_item",
        "SELECT sum(amount) / count(amount) FROM t_order",
        "SELECT user_id, bool_or(amount > 0) FROM t_order GROUP BY user_id",
        "SELECT DISTINCT ON (user_id) user_id, order_id FROM t_order ORDER BY user_id, order_id",
        "SELECT user_id, count(*) FROM t_order GROUP BY ROLLUP (user_id)",
        "SELECT user_id, count(*) FROM t_order GROUP BY user_id HAVING count(*) > (SELECT 1)",
        "SELECT sku, sum(quantity) FROM t_order_item GROUP BY sku HAVING sku LIKE 'a%'",
        "SELECT c, count(*) FROM (SELECT user_id, count(*) AS c FROM t_order GROUP BY user_id) d GROUP BY c",
        "(SELECT order_id FROM t_order) ORDER BY order_id LIMIT 3",
        "SELECT p.id, o.order_id FROM t_province p LEFT JOIN t_order o ON o.province_id = p.id AND o.amount > 498",
        "SELECT p.id FROM t_province p WHERE EXISTS (SELECT 1 FROM t_order o WHERE o.province_id = p.id)",
        "SELECT a.order_id FROM t_order a JOIN t_order b ON a.user_id = b.user_id",
        "SELECT count(*) FROM t_order o JOIN t_order_item i ON o.user_id = i.user_id",
        "SELECT order_id FROM t_order WHERE user_id IN (SELECT user_id FROM t_order_item WHERE quantity = 6) ORDER BY order_id",
        "SELECT d.order_id FROM (SELECT order_id FROM t_order ORDER BY order_id LIMIT 5) d ORDER BY d.order_id",
        "SELECT * FROM (SELECT DISTINCT user_id FROM t_order) d",
        "SELECT count(*) FROM t_order WHERE amount > (SELECT avg(amount) FROM t_order)",
        "WITH u AS (SELECT user_id, count(*) AS c FROM t_order GROUP BY user_id) SELECT * FROM u",
    ] {
        let e = s.proxy.simple_query(sql).await.expect_err(sql);
        assert_eq!(pg_sqlstate(&e), "0A000", "{sql}: {e}");
        let e = s.proxy.query(sql, &[]).await.expect_err(sql);
        assert_eq!(pg_sqlstate(&e), "0A000", "{sql}: {e}");
        let (rows, _) = simple(&s.proxy, "SELECT count(*) FROM t_order")
            .await
            .unwrap();
        assert_eq!(rows, [[Some(MERGE_ORDERS.to_string())]]);
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
        "SELECT count(DISTINCT status), sum(DISTINCT amount), sum(DISTINCT order_id) FROM t_order",
        "SELECT * FROM t_order ORDER BY amount DESC, order_id LIMIT 5",
        "SELECT status FROM t_order GROUP BY status HAVING count(*) > 1 ORDER BY status",
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

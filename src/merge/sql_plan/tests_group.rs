//! Plans and shard SQL of grouped multi-shard SELECTs: GROUP BY, aggregates, HAVING.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;

use super::tests::{key, my, pg, refused, shard_sql};
use crate::merge::{Aggregate, AggregateFunction, CompareOp, Having, MergePlan, NullOrder, Value};
use crate::sql::analyze::Dialect;

use NullOrder::{First, Last};

fn agg(column: usize, function: AggregateFunction) -> Aggregate {
    Aggregate { column, function }
}

fn cmp(column: usize, op: CompareOp, value: Value) -> Having {
    Having::Compare { column, op, value }
}

#[test]
fn group_by_gets_an_order_by_on_its_keys_so_groups_stream() {
    let m = my("SELECT user_id, count(*) FROM t_order GROUP BY user_id");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, count(*) FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 2,
            group_by: vec![0],
            group_by_streamed: true,
            group_by_order: vec![key(0, false, First)],
            aggregates: vec![agg(1, AggregateFunction::Count)],
            order_by: vec![key(0, false, First)],
            ..MergePlan::default()
        }
    );
    // PostgreSQL sorts NULL keys last.
    let m = pg("SELECT user_id, count(*) FROM t_order GROUP BY user_id");
    assert_eq!(m.plan.group_by_order, vec![key(0, false, Last)]);
}

#[test]
fn group_keys_not_selected_are_derived() {
    let m = pg("SELECT sum(amount), max(created_at) FROM t_order GROUP BY user_id, status");
    assert_eq!(
        shard_sql(&m),
        "SELECT sum(amount), max(created_at), user_id AS dbmesh_group_0, status AS dbmesh_group_1 FROM t_order GROUP BY user_id, status ORDER BY user_id, status"
    );
    assert_eq!(m.plan.visible_columns, 2);
    assert_eq!(m.plan.group_by, vec![2, 3]);
    assert_eq!(
        m.plan.aggregates,
        vec![
            agg(0, AggregateFunction::Sum),
            agg(1, AggregateFunction::Max)
        ]
    );
}

#[test]
fn group_by_positions_aliases_and_qualified_columns_find_the_selected_item() {
    let m = my("SELECT DATE(created_at) AS day, o.status, min(amount) FROM t_order o GROUP BY day, status ORDER BY 1");
    assert_eq!(m.plan.group_by, vec![0, 1]);
    assert_eq!(m.plan.visible_columns, 3);
    assert_eq!(
        shard_sql(&m),
        "SELECT DATE(created_at) AS day, o.status, min(amount) FROM t_order o GROUP BY day, status ORDER BY 1, status"
    );
}

#[test]
fn client_order_over_the_group_keys_is_the_stream_order_and_keeps_the_limit() {
    let m =
        my("SELECT a, b, count(*) FROM t_order GROUP BY a, b ORDER BY b DESC, a LIMIT 3 OFFSET 2");
    assert_eq!(
        shard_sql(&m),
        "SELECT a, b, count(*) FROM t_order GROUP BY a, b ORDER BY b DESC, a LIMIT 5"
    );
    assert_eq!(m.plan.group_by, vec![1, 0]);
    assert_eq!(
        m.plan.group_by_order,
        vec![key(1, true, Last), key(0, false, First)]
    );
    assert_eq!(m.plan.order_by, m.plan.group_by_order);
    assert_eq!((m.plan.offset, m.plan.limit), (2, Some(3)));
}

#[test]
fn client_order_on_some_group_keys_is_completed_with_the_others() {
    let m = pg("SELECT a, b, count(*) FROM t_order GROUP BY a, b ORDER BY a DESC LIMIT 10");
    assert_eq!(
        shard_sql(&m),
        "SELECT a, b, count(*) FROM t_order GROUP BY a, b ORDER BY a DESC, b LIMIT 10"
    );
    assert_eq!(
        m.plan.order_by,
        vec![key(0, true, First), key(1, false, Last)]
    );
    assert_eq!(m.plan.group_by_order, m.plan.order_by);
}

#[test]
fn ordering_by_an_aggregate_sorts_after_grouping_and_drops_the_shard_limit() {
    let m = my("SELECT user_id, sum(amount) AS total FROM t_order GROUP BY user_id ORDER BY total DESC LIMIT 10");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, sum(amount) AS total FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 2,
            group_by: vec![0],
            group_by_streamed: true,
            group_by_order: vec![key(0, false, First)],
            aggregates: vec![agg(1, AggregateFunction::Sum)],
            order_by: vec![key(1, true, Last)],
            limit: Some(10),
            ..MergePlan::default()
        }
    );
}

#[test]
fn ordering_by_an_unselected_aggregate_derives_and_merges_it() {
    let m = pg("SELECT user_id FROM t_order GROUP BY user_id ORDER BY count(*) DESC, user_id");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, count(*) AS dbmesh_order_0 FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(m.plan.visible_columns, 1);
    assert_eq!(m.plan.aggregates, vec![agg(1, AggregateFunction::Count)]);
    assert_eq!(
        m.plan.order_by,
        vec![key(1, true, First), key(0, false, Last)]
    );
}

#[test]
fn avg_becomes_sum_in_place_with_a_derived_count_keeping_the_column_name() {
    let m = my("SELECT user_id, AVG(amount) FROM t_order GROUP BY user_id");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, SUM(amount) AS `AVG(amount)`, COUNT(amount) AS dbmesh_avg_count_0 FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(m.plan.visible_columns, 2);
    assert_eq!(
        m.plan.aggregates,
        vec![agg(1, AggregateFunction::Avg { count_column: 2 })]
    );
    let m = pg("SELECT avg(amount), avg(price) AS p FROM t_order");
    assert_eq!(
        shard_sql(&m),
        "SELECT SUM(amount) AS \"avg\", SUM(price) AS p, COUNT(amount) AS dbmesh_avg_count_0, COUNT(price) AS dbmesh_avg_count_1 FROM t_order"
    );
    assert_eq!(
        m.plan.aggregates,
        vec![
            agg(0, AggregateFunction::Avg { count_column: 2 }),
            agg(1, AggregateFunction::Avg { count_column: 3 })
        ]
    );
}

#[test]
fn avg_with_filter_keeps_the_filter_on_both_halves() {
    let m = pg("SELECT avg(amount) FILTER (WHERE status = 'paid') AS paid FROM t_order");
    assert_eq!(
        shard_sql(&m),
        "SELECT SUM(amount) FILTER (WHERE status = 'paid') AS paid, COUNT(amount) FILTER (WHERE status = 'paid') AS dbmesh_avg_count_0 FROM t_order"
    );
}

#[test]
fn aggregates_without_group_by_are_one_group_and_ignore_order_and_limit_on_shards() {
    let m = my("SELECT count(*), min(amount), max(amount) FROM t_order ORDER BY 1 LIMIT 1");
    assert_eq!(
        shard_sql(&m),
        "SELECT count(*), min(amount), max(amount) FROM t_order"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 3,
            group_by_streamed: true,
            aggregates: vec![
                agg(0, AggregateFunction::Count),
                agg(1, AggregateFunction::Min),
                agg(2, AggregateFunction::Max)
            ],
            limit: Some(1),
            ..MergePlan::default()
        }
    );
}

#[test]
fn count_distinct_returns_the_distinct_values_grouped_on_the_shards() {
    let m = my("SELECT user_id, COUNT(DISTINCT item_id), sum(amount) FROM t_order GROUP BY user_id LIMIT 10");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, item_id AS `COUNT(DISTINCT item_id)`, sum(amount) FROM t_order GROUP BY user_id, item_id ORDER BY user_id"
    );
    assert_eq!(
        m.plan.aggregates,
        vec![
            agg(1, AggregateFunction::CountDistinct),
            agg(2, AggregateFunction::Sum)
        ]
    );
    assert_eq!(m.plan.group_by, vec![0]);
    assert_eq!(
        m.plan.limit,
        Some(10),
        "merged, not pushed: shards return several rows per group"
    );
}

#[test]
fn sum_distinct_without_group_by_groups_the_shards_by_its_argument() {
    let m = pg("SELECT sum(DISTINCT amount) AS s, count(DISTINCT amount) FROM t_order");
    assert_eq!(
        shard_sql(&m),
        "SELECT amount AS s, amount AS \"count\" FROM t_order GROUP BY amount"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 2,
            group_by_streamed: true,
            aggregates: vec![
                agg(0, AggregateFunction::SumDistinct),
                agg(1, AggregateFunction::CountDistinct)
            ],
            ..MergePlan::default()
        }
    );
}

#[test]
fn aggregate_inside_an_expression_is_refused_naming_it() {
    let message = refused(
        Dialect::MySql,
        "SELECT user_id, SUM(amount) / COUNT(amount) FROM t_order GROUP BY user_id",
    );
    assert_eq!(
        message,
        "aggregate `SUM(amount)` inside the expression `SUM(amount) / COUNT(amount)` is not supported across shards: select the aggregate alone and compute in the application"
    );
    let plus_one = refused(Dialect::Postgres, "SELECT count(*) + 1 FROM t_order");
    assert!(
        plus_one.starts_with("aggregate `count(*)` inside the expression `count(*) + 1`"),
        "{plus_one}"
    );
}

#[test]
fn aggregates_that_cannot_be_combined_are_refused_naming_them() {
    let concat = refused(
        Dialect::MySql,
        "SELECT user_id, GROUP_CONCAT(note SEPARATOR ',') FROM t_order GROUP BY user_id",
    );
    assert!(
        concat.starts_with("aggregate `GROUP_CONCAT(note SEPARATOR ',')`"),
        "{concat}"
    );
    let string_agg = refused(
        Dialect::Postgres,
        "SELECT string_agg(note, ',') FROM t_order",
    );
    assert_eq!(
        string_agg,
        "aggregate `string_agg(note, ',')` is not supported across shards: only COUNT, SUM, MIN, MAX and AVG are merged"
    );
    let stddev = refused(Dialect::MySql, "SELECT STDDEV(amount) FROM t_order");
    assert!(stddev.starts_with("aggregate `STDDEV(amount)`"), "{stddev}");
    let filtered = refused(
        Dialect::Postgres,
        "SELECT avg(DISTINCT amount) FILTER (WHERE amount > 1) FROM t_order",
    );
    assert!(filtered.contains("with DISTINCT and FILTER"), "{filtered}");
    let several = refused(
        Dialect::MySql,
        "SELECT COUNT(DISTINCT user_id, status) FROM t_order",
    );
    assert!(several.contains("of several expressions"), "{several}");
}

#[test]
fn rollup_and_grouping_sets_are_refused() {
    let mysql = refused(
        Dialect::MySql,
        "SELECT user_id, count(*) FROM t_order GROUP BY user_id WITH ROLLUP",
    );
    assert_eq!(
        mysql,
        "GROUP BY ... WITH ROLLUP is not supported across shards"
    );
    let postgres = refused(
        Dialect::Postgres,
        "SELECT user_id, count(*) FROM t_order GROUP BY ROLLUP (user_id)",
    );
    assert!(postgres.starts_with("GROUP BY `ROLLUP"), "{postgres}");
}

#[test]
fn having_on_a_selected_aggregate_moves_to_the_merge() {
    let m = my("SELECT user_id, count(*) FROM t_order GROUP BY user_id HAVING count(*) > 5 ORDER BY user_id LIMIT 3");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, count(*) FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(m.plan.having, Some(cmp(1, CompareOp::Gt, Value::Int(5))));
    assert_eq!(
        m.plan.limit,
        Some(3),
        "a HAVING may drop groups: no limit on shards"
    );
}

#[test]
fn having_finds_aliases_and_flips_literals_on_the_left() {
    let m = my("SELECT user_id, sum(amount) AS total FROM t_order GROUP BY user_id HAVING 100 <= total AND user_id <> 7");
    assert_eq!(
        m.plan.having,
        Some(Having::And(
            Box::new(cmp(1, CompareOp::GtEq, Value::Int(100))),
            Box::new(cmp(0, CompareOp::NotEq, Value::Int(7)))
        ))
    );
}

#[test]
fn having_on_unselected_aggregates_derives_them() {
    let m = pg("SELECT user_id FROM t_order GROUP BY user_id HAVING sum(amount) > 10.50 OR avg(amount) < -2 ORDER BY sum(amount)");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, sum(amount) AS dbmesh_having_0, SUM(amount) AS dbmesh_having_1, COUNT(amount) AS dbmesh_avg_count_0 FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(
        m.plan.aggregates,
        vec![
            agg(1, AggregateFunction::Sum),
            agg(2, AggregateFunction::Avg { count_column: 3 })
        ],
        "ORDER BY sum(amount) reuses HAVING's column"
    );
    assert_eq!(
        m.plan.having,
        Some(Having::Or(
            Box::new(cmp(
                1,
                CompareOp::Gt,
                Value::Decimal("10.50".parse::<BigDecimal>().unwrap())
            )),
            Box::new(cmp(2, CompareOp::Lt, Value::Int(-2)))
        ))
    );
    assert_eq!(m.plan.order_by, vec![key(1, false, Last)]);
    assert_eq!(m.plan.visible_columns, 1);
}

#[test]
fn having_reads_not_between_strings_dates_and_null() {
    let m = pg("SELECT status, max(created_on) AS last FROM t_order GROUP BY status HAVING NOT (status = 'paid') AND count(*) NOT BETWEEN 2 AND 4 AND last >= DATE '2024-01-31' AND max(amount) <> NULL");
    let Some(having) = m.plan.having else {
        panic!("no HAVING")
    };
    let date = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
    let expected = Having::And(
        Box::new(Having::And(
            Box::new(Having::And(
                Box::new(Having::Not(Box::new(cmp(
                    0,
                    CompareOp::Eq,
                    Value::Text("paid".into()),
                )))),
                Box::new(Having::Not(Box::new(Having::And(
                    Box::new(cmp(2, CompareOp::GtEq, Value::Int(2))),
                    Box::new(cmp(2, CompareOp::LtEq, Value::Int(4))),
                )))),
            )),
            Box::new(cmp(1, CompareOp::GtEq, Value::Date(date))),
        )),
        Box::new(cmp(3, CompareOp::NotEq, Value::Null)),
    );
    assert_eq!(having, expected);
}

#[test]
fn having_beyond_comparisons_with_literals_is_refused() {
    let expression = refused(
        Dialect::MySql,
        "SELECT user_id FROM t_order GROUP BY user_id HAVING count(*) + 1 > 2",
    );
    assert!(
        expression.starts_with("aggregate `count(*)` inside the expression `count(*) + 1`"),
        "{expression}"
    );
    let two_columns = refused(
        Dialect::MySql,
        "SELECT user_id FROM t_order GROUP BY user_id HAVING max(amount) > min(amount)",
    );
    assert_eq!(
        two_columns,
        "HAVING condition `max(amount) > min(amount)` is not supported across shards: dbmesh evaluates comparisons of aggregates and group keys with literals, joined by AND, OR and NOT"
    );
    let is_null = refused(
        Dialect::Postgres,
        "SELECT user_id FROM t_order GROUP BY user_id HAVING max(note) IS NULL",
    );
    assert!(
        is_null.starts_with("HAVING condition `max(note) IS NULL`"),
        "{is_null}"
    );
    let parameter = refused(
        Dialect::Postgres,
        "SELECT user_id FROM t_order GROUP BY user_id HAVING count(*) > $1",
    );
    assert!(
        parameter.starts_with("the parameter `$1` in HAVING"),
        "{parameter}"
    );
}

#[test]
fn select_distinct_over_groups_is_merged_without_a_shard_limit() {
    let m = my("SELECT DISTINCT status, count(*) FROM t_order GROUP BY status, user_id ORDER BY status LIMIT 5");
    assert_eq!(
        shard_sql(&m),
        "SELECT DISTINCT status, count(*), user_id AS dbmesh_group_0 FROM t_order GROUP BY status, user_id ORDER BY status, user_id"
    );
    assert!(m.plan.distinct);
    assert_eq!(m.plan.group_by, vec![0, 2]);
    assert_eq!(
        m.plan.order_by,
        vec![key(0, false, First), key(2, false, First)]
    );
    assert_eq!(m.plan.limit, Some(5));
}

#[test]
fn group_by_with_select_star_resolves_the_aggregate_after_the_wildcard() {
    let m = pg("SELECT t.*, count(*) FROM t_order t GROUP BY t.order_id");
    assert_eq!(
        shard_sql(&m),
        "SELECT t.*, count(*), t.order_id AS dbmesh_group_0 FROM t_order t GROUP BY t.order_id ORDER BY t.order_id"
    );
    assert_eq!(m.plan.aggregates, vec![agg(0, AggregateFunction::Count)]);
    let plan = m.resolve(6); // 4 columns of t.*, count, the group key
    assert_eq!(plan.aggregates, vec![agg(4, AggregateFunction::Count)]);
    assert_eq!(plan.group_by, vec![5]);
    assert_eq!(plan.group_by_order, vec![key(5, false, Last)]);
    assert_eq!(plan.visible_columns, 5);
}

#[test]
fn a_distinct_aggregate_of_a_group_key_adds_nothing_to_the_shard_group_by() {
    let m = my("SELECT user_id, count(DISTINCT user_id) AS n FROM t_order GROUP BY user_id");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id, user_id AS n FROM t_order GROUP BY user_id ORDER BY user_id"
    );
    assert_eq!(
        m.plan.aggregates,
        vec![agg(1, AggregateFunction::CountDistinct)]
    );
}

#[test]
fn an_aggregate_only_in_order_by_still_makes_one_group() {
    let m = my("SELECT 1 AS one FROM t_order ORDER BY count(*)");
    assert_eq!(
        shard_sql(&m),
        "SELECT 1 AS one, count(*) AS dbmesh_order_0 FROM t_order"
    );
    assert_eq!(m.plan.aggregates, vec![agg(1, AggregateFunction::Count)]);
    assert_eq!(m.plan.visible_columns, 1);
    assert!(m.plan.order_by.is_empty());
}

#[test]
fn distinct_over_groups_ordered_by_an_unselected_key_is_refused() {
    let message = refused(
        Dialect::Postgres,
        "SELECT DISTINCT status FROM t_order GROUP BY status, user_id ORDER BY user_id",
    );
    assert!(
        message.starts_with("ORDER BY `user_id` with SELECT DISTINCT"),
        "{message}"
    );
}

//! Plans and shard SQL of multi-shard SELECTs without grouping: concatenation, ORDER BY,
//! LIMIT, DISTINCT, UNION, subqueries; and how a refusal reaches the client.

use sqlparser::ast::Statement;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

use super::{plan_select, SelectMerge};
use crate::error::Error;
use crate::merge::{MergePlan, NullOrder, SortKey};
use crate::sql::analyze::Dialect;

pub(super) fn parse(dialect: Dialect, sql: &str) -> Statement {
    let mut statements = match dialect {
        Dialect::MySql => Parser::parse_sql(&MySqlDialect {}, sql),
        Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(statements.len(), 1, "{sql}");
    statements.remove(0)
}

/// The merge of `sql`, which must need one.
pub(super) fn merge(dialect: Dialect, sql: &str) -> SelectMerge {
    plan_select(&parse(dialect, sql), dialect)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: planned as a concatenation"))
}

pub(super) fn my(sql: &str) -> SelectMerge {
    merge(Dialect::MySql, sql)
}

pub(super) fn pg(sql: &str) -> SelectMerge {
    merge(Dialect::Postgres, sql)
}

/// The shard statement as the shards would get it (before table renames).
pub(super) fn shard_sql(m: &SelectMerge) -> String {
    m.shard_statement.to_string()
}

/// The message of the refusal of `sql`.
pub(super) fn refused(dialect: Dialect, sql: &str) -> String {
    match plan_select(&parse(dialect, sql), dialect) {
        Err(Error::MergeUnsupported(message)) => message,
        other => panic!("{sql}: expected a refusal, got {other:?}"),
    }
}

pub(super) fn key(column: usize, descending: bool, nulls: NullOrder) -> SortKey {
    SortKey {
        column,
        descending,
        nulls,
    }
}

fn concatenates(dialect: Dialect, sql: &str) -> bool {
    plan_select(&parse(dialect, sql), dialect)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .is_none()
}

use NullOrder::{First, Last};

#[test]
fn plain_selects_and_union_all_are_concatenated() {
    assert!(concatenates(
        Dialect::MySql,
        "SELECT order_id, user_id FROM t_order WHERE user_id IN (1, 2)"
    ));
    assert!(concatenates(
        Dialect::Postgres,
        "SELECT * FROM t_order UNION ALL SELECT * FROM t_order_item"
    ));
    assert!(concatenates(
        Dialect::MySql,
        "INSERT INTO t_order (user_id) VALUES (1)"
    ));
    // Without grouping, HAVING filters rows: each shard applies it to its own.
    assert!(concatenates(
        Dialect::MySql,
        "SELECT amount * 2 AS twice FROM t_order HAVING twice > 10"
    ));
}

#[test]
fn order_by_a_selected_column_keeps_the_shard_order_and_merges_by_it() {
    let m = my("SELECT order_id, amount FROM t_order ORDER BY amount");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id, amount FROM t_order ORDER BY amount"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 2,
            order_by: vec![key(1, false, First)],
            ..MergePlan::default()
        }
    );
    assert_eq!(m.wildcard_at, None);
}

#[test]
fn default_null_order_follows_the_dialect_and_direction() {
    let sql = "SELECT a, b FROM t_order ORDER BY a, b DESC";
    assert_eq!(
        my(sql).plan.order_by,
        vec![key(0, false, First), key(1, true, Last)]
    );
    assert_eq!(
        pg(sql).plan.order_by,
        vec![key(0, false, Last), key(1, true, First)]
    );
}

#[test]
fn nulls_first_and_last_are_honoured_on_postgres() {
    let m = pg("SELECT a, b FROM t_order ORDER BY a NULLS FIRST, b DESC NULLS LAST");
    assert_eq!(
        m.plan.order_by,
        vec![key(0, false, First), key(1, true, Last)]
    );
    assert_eq!(
        shard_sql(&m),
        "SELECT a, b FROM t_order ORDER BY a NULLS FIRST, b DESC NULLS LAST"
    );
}

#[test]
fn order_by_finds_aliases_positions_column_names_and_same_expressions() {
    let m = my("SELECT o.user_id, amount * 2 AS twice, note FROM t_order o ORDER BY twice DESC, 3, user_id, AMOUNT * 2");
    assert_eq!(
        m.plan.order_by,
        vec![
            key(1, true, Last),
            key(2, false, First),
            key(0, false, First),
            key(1, false, First)
        ]
    );
    assert_eq!(m.plan.visible_columns, 3);
    assert_eq!(m.columns, 3, "nothing derived");
}

#[test]
fn order_by_an_unselected_expression_is_derived_and_hidden() {
    let m = pg("SELECT order_id FROM t_order ORDER BY created_at DESC, lower(note)");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id, created_at AS dbmesh_order_0, lower(note) AS dbmesh_order_1 FROM t_order ORDER BY created_at DESC, lower(note)"
    );
    assert_eq!(m.plan.visible_columns, 1);
    assert_eq!(
        m.plan.order_by,
        vec![key(1, true, First), key(2, false, Last)]
    );
}

#[test]
fn select_star_derives_the_sort_column_and_resolves_after_expansion() {
    let m = my("SELECT * FROM t_order ORDER BY user_id DESC LIMIT 3");
    assert_eq!(
        shard_sql(&m),
        "SELECT *, user_id AS dbmesh_order_0 FROM t_order ORDER BY user_id DESC LIMIT 3"
    );
    assert_eq!(m.wildcard_at, Some(0));
    assert_eq!(m.columns, 1);
    // The shards answer with 5 columns: 4 from `*`, then the derived one.
    let plan = m.resolve(5);
    assert_eq!(plan.visible_columns, 4);
    assert_eq!(plan.order_by, vec![key(4, true, Last)]);
    assert_eq!(plan.limit, Some(3));
}

#[test]
fn columns_before_a_wildcard_keep_their_index_and_after_it_move() {
    let m = pg("SELECT order_id, t.*, amount FROM t_order t ORDER BY order_id, amount");
    assert_eq!(m.wildcard_at, Some(1));
    assert_eq!(
        m.plan.order_by,
        vec![key(0, false, Last), key(1, false, Last)]
    );
    let plan = m.resolve(6); // order_id, 4 columns of t.*, amount
    assert_eq!(
        plan.order_by,
        vec![key(0, false, Last), key(5, false, Last)]
    );
    assert_eq!(plan.visible_columns, 6);
    assert_eq!(m.resolve(6), m.resolve(6), "resolving is repeatable");
}

#[test]
fn items_between_two_wildcards_are_derived_again() {
    let m = my("SELECT o.*, o.amount, i.* FROM t_order o JOIN t_order_item i USING (order_id) ORDER BY amount");
    assert_eq!(
        shard_sql(&m),
        "SELECT o.*, o.amount, i.*, amount AS dbmesh_order_0 FROM t_order o JOIN t_order_item i USING(order_id) ORDER BY amount"
    );
    assert_eq!(m.resolve(9).order_by, vec![key(8, false, First)]);
}

#[test]
fn a_position_inside_a_wildcard_is_refused() {
    let message = refused(Dialect::MySql, "SELECT * FROM t_order ORDER BY 2");
    assert_eq!(
        message,
        "ORDER BY 2 with `*` in the select list is not supported across shards: name the column instead"
    );
}

#[test]
fn order_by_using_an_operator_is_refused() {
    let message = refused(
        Dialect::Postgres,
        "SELECT a FROM t_order ORDER BY a USING <",
    );
    assert!(message.contains("USING <"), "{message}");
}

#[test]
fn limit_offset_becomes_a_larger_limit_on_the_shards() {
    let m = my("SELECT order_id FROM t_order ORDER BY order_id LIMIT 10 OFFSET 5");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id FROM t_order ORDER BY order_id LIMIT 15"
    );
    assert_eq!((m.plan.offset, m.plan.limit), (5, Some(10)));
}

#[test]
fn mysql_offset_comma_limit_is_read_in_its_order() {
    let m = my("SELECT order_id FROM t_order ORDER BY order_id LIMIT 5, 10");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id FROM t_order ORDER BY order_id LIMIT 15"
    );
    assert_eq!((m.plan.offset, m.plan.limit), (5, Some(10)));
}

#[test]
fn postgres_fetch_first_becomes_a_limit() {
    let m =
        pg("SELECT order_id FROM t_order ORDER BY order_id OFFSET 5 ROWS FETCH FIRST 3 ROWS ONLY");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id FROM t_order ORDER BY order_id LIMIT 8"
    );
    assert_eq!((m.plan.offset, m.plan.limit), (5, Some(3)));
    let one = pg("SELECT order_id FROM t_order FETCH FIRST ROW ONLY");
    assert_eq!(shard_sql(&one), "SELECT order_id FROM t_order LIMIT 1");
    assert_eq!(one.plan.limit, Some(1));
}

#[test]
fn offset_alone_reaches_the_shards_as_nothing() {
    let m = pg("SELECT order_id FROM t_order ORDER BY order_id OFFSET 20");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id FROM t_order ORDER BY order_id"
    );
    assert_eq!((m.plan.offset, m.plan.limit), (20, None));
}

#[test]
fn limit_without_order_by_still_caps_each_shard() {
    let m = my("SELECT order_id FROM t_order LIMIT 7");
    assert_eq!(shard_sql(&m), "SELECT order_id FROM t_order LIMIT 7");
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 1,
            limit: Some(7),
            ..MergePlan::default()
        }
    );
}

#[test]
fn parameters_in_limit_are_refused_until_bound() {
    let mysql = refused(Dialect::MySql, "SELECT a FROM t_order ORDER BY a LIMIT ?");
    assert!(mysql.contains("a parameter in LIMIT (`?`)"), "{mysql}");
    let postgres = refused(
        Dialect::Postgres,
        "SELECT a FROM t_order ORDER BY a LIMIT 10 OFFSET $1",
    );
    assert!(
        postgres.contains("a parameter in OFFSET (`$1`)"),
        "{postgres}"
    );
}

#[test]
fn fetch_with_ties_is_refused() {
    let message = refused(
        Dialect::Postgres,
        "SELECT a FROM t_order ORDER BY a FETCH FIRST 3 ROWS WITH TIES",
    );
    assert!(message.contains("WITH TIES"), "{message}");
}

#[test]
fn distinct_stays_on_the_shards_and_is_merged_with_the_limit_pushed() {
    let m = my("SELECT DISTINCT user_id FROM t_order ORDER BY user_id LIMIT 10");
    assert_eq!(
        shard_sql(&m),
        "SELECT DISTINCT user_id FROM t_order ORDER BY user_id LIMIT 10"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 1,
            distinct: true,
            order_by: vec![key(0, false, First)],
            limit: Some(10),
            ..MergePlan::default()
        }
    );
}

#[test]
fn distinct_ordered_by_an_unselected_expression_is_refused() {
    let message = refused(
        Dialect::MySql,
        "SELECT DISTINCT user_id FROM t_order ORDER BY amount",
    );
    assert_eq!(
        message,
        "ORDER BY `amount` with SELECT DISTINCT is not supported across shards: the expression must be in the select list"
    );
    // With `*` the column is among the selected ones: deriving it changes nothing.
    let m = pg("SELECT DISTINCT * FROM t_order ORDER BY amount");
    assert!(m.plan.distinct);
    assert_eq!(m.resolve(4).visible_columns, 3);
}

#[test]
fn distinct_on_is_refused() {
    let message = refused(
        Dialect::Postgres,
        "SELECT DISTINCT ON (user_id) user_id, amount FROM t_order ORDER BY user_id, amount",
    );
    assert_eq!(message, "SELECT DISTINCT ON is not supported across shards");
}

#[test]
fn window_functions_are_refused_even_without_other_merging() {
    let message = refused(
        Dialect::Postgres,
        "SELECT order_id, row_number() OVER (ORDER BY amount) FROM t_order",
    );
    assert_eq!(
        message,
        "window function `row_number() OVER (ORDER BY amount)` is not supported across shards"
    );
    let message = refused(
        Dialect::MySql,
        "SELECT order_id FROM t_order ORDER BY sum(amount) OVER (PARTITION BY user_id)",
    );
    assert!(
        message.starts_with("window function `sum(amount) OVER"),
        "{message}"
    );
}

#[test]
fn union_removes_duplicates_across_shards() {
    let m = my("SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item");
    assert_eq!(
        shard_sql(&m),
        "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 1,
            distinct: true,
            ..MergePlan::default()
        }
    );
}

#[test]
fn union_all_with_order_by_and_limit_is_merged_by_result_columns() {
    let m = pg("SELECT order_id, amount AS total FROM t_order UNION ALL SELECT order_id, price FROM t_order_item ORDER BY total DESC, 1 LIMIT 5 OFFSET 5");
    assert_eq!(
        shard_sql(&m),
        "SELECT order_id, amount AS total FROM t_order UNION ALL SELECT order_id, price FROM t_order_item ORDER BY total DESC, 1 LIMIT 10"
    );
    assert_eq!(
        m.plan,
        MergePlan {
            visible_columns: 2,
            order_by: vec![key(1, true, First), key(0, false, Last)],
            offset: 5,
            limit: Some(5),
            ..MergePlan::default()
        }
    );
}

#[test]
fn union_over_union_all_is_distinct_but_union_all_over_union_is_refused() {
    let m =
        my("SELECT a FROM t_order UNION ALL SELECT a FROM t_order_item UNION SELECT a FROM t_user");
    assert!(m.plan.distinct);
    let message = refused(
        Dialect::MySql,
        "SELECT a FROM t_order UNION SELECT a FROM t_order_item UNION ALL SELECT a FROM t_user",
    );
    assert!(message.starts_with("UNION ALL over a UNION"), "{message}");
}

#[test]
fn union_order_by_an_expression_that_is_no_result_column_is_refused() {
    let message = refused(
        Dialect::Postgres,
        "SELECT a FROM t_order UNION SELECT a FROM t_order_item ORDER BY a + 1",
    );
    assert_eq!(
        message,
        "ORDER BY `a + 1` on a UNION is not supported across shards: order a UNION by a result column's position or name"
    );
}

#[test]
fn except_intersect_and_grouped_or_limited_union_branches_are_refused() {
    let except = refused(
        Dialect::Postgres,
        "SELECT a FROM t_order EXCEPT SELECT a FROM t_order_item",
    );
    assert_eq!(except, "EXCEPT is not supported across shards");
    let intersect = refused(
        Dialect::MySql,
        "SELECT a FROM t_order INTERSECT SELECT a FROM t_order_item",
    );
    assert_eq!(intersect, "INTERSECT is not supported across shards");
    let grouped = refused(
        Dialect::MySql,
        "SELECT a FROM t_order UNION ALL SELECT count(*) FROM t_order_item",
    );
    assert!(
        grouped.starts_with("GROUP BY or aggregates inside the UNION branch"),
        "{grouped}"
    );
    let limited = refused(
        Dialect::Postgres,
        "(SELECT a FROM t_order LIMIT 2) UNION ALL (SELECT a FROM t_order_item)",
    );
    assert!(
        limited.starts_with("ORDER BY or LIMIT inside the UNION branch"),
        "{limited}"
    );
    let distinct_branch = refused(
        Dialect::MySql,
        "SELECT DISTINCT a FROM t_order UNION ALL SELECT a FROM t_order_item",
    );
    assert!(
        distinct_branch.starts_with("SELECT DISTINCT inside UNION ALL"),
        "{distinct_branch}"
    );
}

#[test]
fn a_parenthesised_select_is_planned_as_the_select() {
    let m = pg("(SELECT a FROM t_order ORDER BY a LIMIT 2)");
    assert_eq!(shard_sql(&m), "SELECT a FROM t_order ORDER BY a LIMIT 2");
    assert_eq!(m.plan.limit, Some(2));
}

#[test]
fn aggregating_over_a_subquery_that_groups_per_shard_is_refused() {
    let message = refused(
        Dialect::MySql,
        "SELECT count(*) FROM (SELECT user_id FROM t_order GROUP BY user_id) AS u",
    );
    assert_eq!(
        message,
        "the subquery `(SELECT user_id FROM t_order GROUP BY user_id)` that spans shards is not supported across shards: as a derived table it groups, aggregates, de-duplicates or limits rows shard by shard, so each shard would answer with its own rows only; run it on one data source or write it as one query"
    );
    let cte = refused(
        Dialect::Postgres,
        "WITH top AS (SELECT user_id FROM t_order ORDER BY amount DESC LIMIT 10) SELECT user_id, count(*) FROM top GROUP BY user_id",
    );
    assert!(
        cte.starts_with(
            "the subquery `(SELECT user_id FROM t_order ORDER BY amount DESC LIMIT 10)`"
        ),
        "{cte}"
    );
}

#[test]
fn subqueries_that_answer_per_shard_are_refused_whatever_the_outer_query_does() {
    for (dialect, sql, what) in [
        (
            Dialect::MySql,
            "SELECT d.order_id FROM (SELECT order_id FROM t_order ORDER BY order_id LIMIT 5) d ORDER BY d.order_id",
            "a derived table",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM (SELECT DISTINCT user_id FROM t_order) d",
            "a derived table",
        ),
        (
            Dialect::MySql,
            "SELECT o.a FROM t_order o JOIN (SELECT user_id, count(*) AS c FROM t_order_item GROUP BY user_id) i ON o.user_id = i.user_id",
            "a derived table",
        ),
        (
            Dialect::Postgres,
            "WITH u AS (SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item) SELECT * FROM u",
            "a WITH query",
        ),
        (
            Dialect::MySql,
            "SELECT count(*) FROM t_order WHERE amount > (SELECT avg(amount) FROM t_order)",
            "an uncorrelated subquery",
        ),
        (
            Dialect::Postgres,
            "SELECT order_id FROM t_order WHERE user_id IN (SELECT user_id FROM t_order_item GROUP BY user_id HAVING count(*) > 2) ORDER BY order_id",
            "an uncorrelated subquery",
        ),
        (
            Dialect::MySql,
            "SELECT order_id, (SELECT max(amount) FROM t_order) FROM t_order",
            "an uncorrelated subquery",
        ),
    ] {
        let message = refused(dialect, sql);
        assert!(message.contains(&format!("as {what} it groups")), "{sql}: {message}");
    }
}

#[test]
fn subqueries_that_filter_rows_or_are_correlated_are_merged() {
    for sql in [
        "SELECT order_id FROM t_order WHERE order_id IN (SELECT order_id FROM t_order_item WHERE sku = 'x') ORDER BY order_id",
        "SELECT o.order_id, (SELECT count(*) FROM t_order_item i WHERE i.order_id = o.order_id) AS n FROM t_order o ORDER BY n",
        "SELECT order_id FROM t_order o WHERE EXISTS (SELECT 1 FROM t_order_item i WHERE i.order_id = o.order_id) ORDER BY order_id",
        "SELECT order_id FROM t_order WHERE EXISTS (SELECT 1 FROM t_order_item) ORDER BY order_id",
        "SELECT d.user_id FROM (SELECT user_id FROM t_order WHERE amount > 0) d ORDER BY d.user_id",
    ] {
        assert!(plan_select(&parse(Dialect::MySql, sql), Dialect::MySql).is_ok(), "{sql}");
    }
}

#[test]
fn aggregating_over_a_plain_subquery_is_merged() {
    let m = my("SELECT count(*) FROM (SELECT user_id FROM t_order WHERE amount > 10) AS big");
    assert_eq!(
        shard_sql(&m),
        "SELECT count(*) FROM (SELECT user_id FROM t_order WHERE amount > 10) AS big"
    );
    assert_eq!(m.plan.aggregates.len(), 1);
}

#[test]
fn refusals_reach_clients_as_not_supported_yet_with_sqlstate_0a000() {
    let e = Error::MergeUnsupported("x is not supported across shards".into());
    let mysql = crate::wire::mysql::err::MysqlError::from(&e);
    assert_eq!((mysql.code, &mysql.state), (1235, b"0A000"));
    assert_eq!(mysql.message, "x is not supported across shards");
    let (state, message) = crate::wire::postgres::error::sqlstate(&e);
    assert_eq!(
        (state, message.as_str()),
        ("0A000", "x is not supported across shards")
    );
}

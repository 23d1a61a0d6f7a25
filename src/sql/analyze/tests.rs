//! SELECT analysis: conditions (DNF), values, parameters, tables and joins.

use std::ops::Bound;
use std::path::Path;

use super::*;
use crate::config::rules::parse_rules;
use crate::route::algorithms::ShardingValue;

pub(super) fn rules() -> ShardingRules {
    let text = r#"
binding_tables   = [["t_order", "t_order_item"]]
broadcast_tables = ["t_province"]

[tables.t_order]
nodes             = "ds_${0..1}.t_order_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }

[tables.t_order_item]
nodes             = "ds_${0..1}.t_order_item_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }

[tables.t_user]
nodes             = "ds_${0..1}.t_user"
database_strategy = { column = "user_id",  algorithm = "db_inline" }

[algorithms.db_inline]
type       = "INLINE"
expression = "ds_${user_id % 2}"

[algorithms.order_mod]
type           = "MOD"
sharding_count = 2
"#;
    parse_rules(
        text,
        Path::new("rules/shop.toml"),
        "shop",
        &["ds_0", "ds_1"],
    )
    .unwrap()
}

pub(super) fn mysql(sql: &str) -> Analysis {
    analyze(sql, Dialect::MySql, &rules()).unwrap()
}

pub(super) fn pg(sql: &str) -> Analysis {
    analyze(sql, Dialect::Postgres, &rules()).unwrap()
}

pub(super) fn int(v: i64) -> ValueRef {
    ValueRef::Literal(ShardingValue::from(v))
}

fn values(v: &[ValueRef]) -> ColumnCondition {
    ColumnCondition::Values(v.to_vec())
}

fn range(lower: Bound<ValueRef>, upper: Bound<ValueRef>) -> ColumnCondition {
    ColumnCondition::Range { lower, upper }
}

/// The single group's condition on `table.column`.
fn only(a: &Analysis, table: &str, column: &str) -> Option<ColumnCondition> {
    assert_eq!(a.conditions.len(), 1, "{:?}", a.conditions);
    a.conditions[0].get(table, column).cloned()
}

#[test]
fn equality_on_sharding_column_is_a_value() {
    let a = mysql("SELECT * FROM t_order WHERE user_id = 7");
    assert_eq!(a.kind, SqlKind::Select { locking: false });
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(7)])));
    assert_eq!(only(&a, "t_order", "order_id"), None);
}

#[test]
fn value_on_left_side_works_too() {
    let a = mysql("SELECT * FROM t_order WHERE 7 = user_id AND 10 < order_id");
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(7)])));
    assert_eq!(
        only(&a, "t_order", "order_id"),
        Some(range(Bound::Excluded(int(10)), Bound::Unbounded))
    );
}

#[test]
fn non_sharding_columns_are_not_conditions() {
    let a = mysql("SELECT * FROM t_order WHERE status = 1");
    assert!(a.conditions[0].is_empty());
}

#[test]
fn in_list_gives_every_value() {
    let a = mysql("SELECT * FROM t_order WHERE user_id IN (7, 8, -3)");
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[int(7), int(8), int(-3)]))
    );
}

#[test]
fn not_in_and_not_are_ignored() {
    for sql in [
        "SELECT * FROM t_order WHERE user_id NOT IN (1, 2)",
        "SELECT * FROM t_order WHERE NOT user_id = 1",
        "SELECT * FROM t_order WHERE user_id <> 1",
        "SELECT * FROM t_order WHERE user_id NOT BETWEEN 1 AND 5",
        "SELECT * FROM t_order WHERE user_id + 1 = 3",
        "SELECT * FROM t_order WHERE user_id = order_id",
        "SELECT * FROM t_order WHERE user_id = NOW()",
        "SELECT * FROM t_order WHERE user_id IN (1, order_id)",
    ] {
        let a = mysql(sql);
        assert!(
            a.conditions.len() == 1 && a.conditions[0].is_empty(),
            "{sql}: {:?}",
            a.conditions
        );
    }
}

#[test]
fn comparisons_give_ranges() {
    let a = mysql("SELECT * FROM t_order WHERE order_id >= 10 AND order_id <= 20");
    assert_eq!(
        only(&a, "t_order", "order_id"),
        Some(range(Bound::Included(int(10)), Bound::Included(int(20))))
    );
}

#[test]
fn between_is_an_inclusive_range() {
    let a = mysql("SELECT * FROM t_order WHERE order_id BETWEEN 1 AND 5");
    assert_eq!(
        only(&a, "t_order", "order_id"),
        Some(range(Bound::Included(int(1)), Bound::Included(int(5))))
    );
}

#[test]
fn ranges_on_one_column_are_intersected() {
    let a = mysql(
        "SELECT * FROM t_order WHERE order_id > 3 AND order_id BETWEEN 1 AND 5 AND order_id < 9",
    );
    assert_eq!(
        only(&a, "t_order", "order_id"),
        Some(range(Bound::Excluded(int(3)), Bound::Included(int(5))))
    );
}

#[test]
fn values_in_one_and_group_are_intersected() {
    let a = mysql("SELECT * FROM t_order WHERE user_id IN (1, 2, 3) AND user_id IN (2, 3, 4)");
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[int(2), int(3)]))
    );
    let a = mysql("SELECT * FROM t_order WHERE user_id IN (1, 5, 9) AND user_id > 4");
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[int(5), int(9)]))
    );
}

#[test]
fn contradiction_gives_no_values() {
    let a = mysql("SELECT * FROM t_order WHERE user_id = 1 AND user_id = 2");
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[])));
}

#[test]
fn string_literal_equal_to_number_intersects_as_same_value() {
    let a = mysql("SELECT * FROM t_order WHERE user_id = '7' AND user_id = 7");
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[ValueRef::Literal(ShardingValue::Text(
            "7".into()
        ))]))
    );
}

#[test]
fn params_and_literals_intersect_to_the_literal() {
    let a = mysql("SELECT * FROM t_order WHERE user_id = ? AND user_id = 3");
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(3)])));
}

#[test]
fn or_gives_one_group_per_branch() {
    let a = mysql("SELECT * FROM t_order WHERE user_id = 1 OR user_id = 2");
    assert_eq!(a.conditions.len(), 2);
    assert_eq!(
        a.conditions[0].get("t_order", "user_id"),
        Some(&values(&[int(1)]))
    );
    assert_eq!(
        a.conditions[1].get("t_order", "user_id"),
        Some(&values(&[int(2)]))
    );
}

#[test]
fn and_of_ors_multiplies_out() {
    let a = mysql(
        "SELECT * FROM t_order WHERE (user_id = 1 OR user_id = 2) AND (order_id = 10 OR order_id = 11)",
    );
    assert_eq!(a.conditions.len(), 4);
    let pairs: Vec<_> = a
        .conditions
        .iter()
        .map(|g| {
            (
                g.get("t_order", "user_id").cloned(),
                g.get("t_order", "order_id").cloned(),
            )
        })
        .collect();
    assert_eq!(
        pairs[0],
        (Some(values(&[int(1)])), Some(values(&[int(10)])))
    );
    assert_eq!(
        pairs[3],
        (Some(values(&[int(2)])), Some(values(&[int(11)])))
    );
}

#[test]
fn or_with_an_unconstrained_branch_is_unconstrained() {
    let a = mysql("SELECT * FROM t_order WHERE user_id = 1 OR status = 'x'");
    assert_eq!(a.conditions.len(), 1);
    assert!(a.conditions[0].is_empty());
}

#[test]
fn mysql_question_marks_are_numbered_in_order() {
    let a = mysql("SELECT * FROM t_order WHERE status = ? AND user_id = ? AND order_id IN (?, ?)");
    assert_eq!(a.param_count, 4);
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[ValueRef::Param(1)]))
    );
    assert_eq!(
        only(&a, "t_order", "order_id"),
        Some(values(&[ValueRef::Param(2), ValueRef::Param(3)]))
    );
}

#[test]
fn postgres_dollar_params_are_zero_based() {
    let a = pg("SELECT * FROM t_order WHERE user_id = $2 AND order_id BETWEEN $1 AND $3");
    assert_eq!(a.param_count, 3);
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[ValueRef::Param(1)]))
    );
    assert_eq!(
        only(&a, "t_order", "order_id"),
        Some(range(
            Bound::Included(ValueRef::Param(0)),
            Bound::Included(ValueRef::Param(2))
        ))
    );
}

#[test]
fn literals_of_every_kind_are_read() {
    let a = mysql("SELECT * FROM t_order WHERE user_id IN (-5, 'abc', NULL, 4.50, (7))");
    assert_eq!(
        only(&a, "t_order", "user_id"),
        Some(values(&[
            int(-5),
            ValueRef::Literal(ShardingValue::Text("abc".into())),
            ValueRef::Literal(ShardingValue::Null),
            ValueRef::Literal(ShardingValue::Decimal("4.5".into())),
            int(7),
        ]))
    );
}

#[test]
fn aliases_qualify_columns() {
    let a = mysql("SELECT * FROM t_order o WHERE o.user_id = 7 AND O.order_id = 3");
    assert_eq!(a.tables[0].alias.as_deref(), Some("o"));
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(7)])));
    assert_eq!(only(&a, "t_order", "order_id"), Some(values(&[int(3)])));
}

#[test]
fn table_name_and_schema_qualify_columns() {
    let a =
        mysql("SELECT * FROM shop.T_Order WHERE t_order.user_id = 7 AND shop.t_order.order_id = 1");
    assert_eq!(a.tables[0].name, "t_order");
    assert_eq!(a.tables[0].schema.as_deref(), Some("shop"));
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(7)])));
    assert_eq!(only(&a, "t_order", "order_id"), Some(values(&[int(1)])));
}

#[test]
fn unqualified_columns_owned_by_two_tables_are_ambiguous() {
    let a = mysql(
        "SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE user_id = 7",
    );
    assert!(a.conditions[0].get("t_order", "user_id").is_none());
    assert!(a.conditions[0].get("t_order_item", "user_id").is_none());
}

#[test]
fn unqualified_column_goes_to_the_only_sharded_owner() {
    let a = mysql(
        "SELECT * FROM t_order JOIN t_province p ON p.id = t_order.province_id WHERE user_id = 7",
    );
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(7)])));
}

#[test]
fn binding_join_propagates_values_to_the_joined_table() {
    let a = mysql(
        "SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id AND o.user_id = i.user_id \
         WHERE o.user_id = 7 AND o.order_id IN (1, 2)",
    );
    assert_eq!(only(&a, "t_order_item", "user_id"), Some(values(&[int(7)])));
    assert_eq!(
        only(&a, "t_order_item", "order_id"),
        Some(values(&[int(1), int(2)]))
    );
    assert_eq!(a.sharded_tables(), vec!["t_order", "t_order_item"]);
    assert!(a.sharded_tables_are_bound(&rules()));
}

#[test]
fn outer_join_on_conditions_do_not_filter() {
    let a = mysql("SELECT * FROM t_order o LEFT JOIN t_order_item i ON i.order_id = o.order_id AND o.user_id = 1");
    assert!(a.conditions[0].get("t_order", "user_id").is_none());
    let a = mysql("SELECT * FROM t_order o INNER JOIN t_order_item i ON i.order_id = o.order_id AND o.user_id = 1");
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(1)])));
}

#[test]
fn subquery_tables_and_conditions_are_collected() {
    let a = mysql(
        "SELECT * FROM t_order WHERE user_id = 1 AND order_id IN \
         (SELECT order_id FROM t_order_item WHERE user_id = 1 AND order_id = 5)",
    );
    let names: Vec<_> = a.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t_order", "t_order_item"]);
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(1)])));
    assert_eq!(
        only(&a, "t_order_item", "order_id"),
        Some(values(&[int(5)]))
    );
}

#[test]
fn derived_tables_exists_and_ctes_are_walked() {
    let a = mysql(
        "WITH recent AS (SELECT * FROM t_order WHERE user_id = 3) \
         SELECT * FROM recent r, (SELECT * FROM t_user WHERE user_id = 3) u \
         WHERE EXISTS (SELECT 1 FROM t_province p WHERE p.id = r.province_id)",
    );
    let names: Vec<_> = a.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t_order", "t_user", "t_province"]);
    assert_eq!(only(&a, "t_order", "user_id"), Some(values(&[int(3)])));
    assert_eq!(only(&a, "t_user", "user_id"), Some(values(&[int(3)])));
}

#[test]
fn union_branches_are_ored() {
    let a = mysql(
        "SELECT * FROM t_order WHERE user_id = 1 UNION ALL SELECT * FROM t_order WHERE user_id = 2",
    );
    assert_eq!(a.conditions.len(), 2);
}

#[test]
fn locking_reads_are_marked() {
    assert_eq!(
        mysql("SELECT * FROM t_order FOR UPDATE").kind,
        SqlKind::Select { locking: true }
    );
    assert_eq!(
        pg("SELECT * FROM t_order FOR SHARE").kind,
        SqlKind::Select { locking: true }
    );
    let a = mysql("SELECT * FROM t_order WHERE user_id = ? LOCK IN SHARE MODE;");
    assert_eq!(a.kind, SqlKind::Select { locking: true });
    assert!(a.lock_in_share_mode);
    assert_eq!(a.param_count, 1);
    assert_eq!(
        a.statement.to_string(),
        "SELECT * FROM t_order WHERE user_id = ?"
    );
}

#[test]
fn broadcast_and_single_tables_are_told_apart() {
    let a = mysql("SELECT * FROM t_province");
    assert!(a.is_broadcast_only());
    assert_eq!(a.tables[0].role, TableRole::Broadcast);
    let a = mysql("SELECT * FROM t_config c JOIN t_other o ON c.id = o.id");
    assert!(a.is_single_only());
    assert_eq!(a.tables[1].alias.as_deref(), Some("o"));
    let a = mysql("SELECT * FROM t_order JOIN t_user ON t_user.user_id = t_order.user_id");
    assert!(!a.is_single_only() && !a.sharded_tables_are_bound(&rules()));
}

#[test]
fn hint_comment_is_attached() {
    let a = mysql("/* dbmesh: data_source=ds_1 */ SELECT * FROM t_order");
    assert_eq!(a.hint.unwrap().data_source.as_deref(), Some("ds_1"));
}

#[test]
fn typed_date_literals_become_dates() {
    let a = pg("SELECT * FROM t_order WHERE user_id = DATE '2024-01-31'");
    let Some(ColumnCondition::Values(v)) = only(&a, "t_order", "user_id") else {
        panic!()
    };
    assert!(matches!(v[0], ValueRef::Literal(ShardingValue::Date(_))));
}

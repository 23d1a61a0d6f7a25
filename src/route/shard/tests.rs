//! Route cases over the reference rule file of docs/sharding.md.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::rules::parse_rules;

const ORDERS: &str = r#"
binding_tables   = [["t_order", "t_order_item"]]
broadcast_tables = ["t_province"]

[tables.t_order]
nodes             = "ds_${0..1}.t_order_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }
key_generator     = { column = "order_id", generator = "snowflake" }

[tables.t_order_item]
nodes             = "ds_${0..1}.t_order_item_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }

[tables.t_log]
nodes             = "ds_0.t_log_${0..3}"
table_strategy    = { column = "id", algorithm = "log_range" }

[algorithms.db_inline]
type       = "INLINE"
expression = "ds_${user_id % 2}"

[algorithms.order_mod]
type           = "MOD"
sharding_count = 2

[algorithms.log_range]
type           = "VOLUME_RANGE"
range_lower    = 100
range_upper    = 300
sharding_volume = 100

[key_generators.snowflake]
type      = "SNOWFLAKE"
worker_id = 1
"#;

pub(super) fn router(dialect: Dialect) -> ShardRouter {
    let rules = parse_rules(ORDERS, Path::new("orders.toml"), "shop", &["ds_0", "ds_1"])
        .unwrap_or_else(|e| panic!("{e}"));
    ShardRouter::build(
        "shop",
        dialect,
        "ds_0",
        vec!["ds_0".into(), "ds_1".into()],
        Arc::new(rules),
    )
}

pub(super) fn mysql() -> ShardRouter {
    router(Dialect::MySql)
}

/// (data source, SQL) per unit.
pub(super) fn units(plan: &Plan, original: &str) -> Vec<(String, String)> {
    plan.units
        .iter()
        .map(|u| {
            (
                u.data_source.clone(),
                u.sql.clone().unwrap_or_else(|| original.to_string()),
            )
        })
        .collect()
}

pub(super) fn route(r: &ShardRouter, sql: &str) -> Vec<(String, String)> {
    units(
        &r.route_text(sql).unwrap_or_else(|e| panic!("{sql}: {e}")),
        sql,
    )
}

pub(super) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(d, s)| (d.to_string(), s.to_string()))
        .collect()
}

#[test]
fn routes_point_select_to_one_node() {
    assert_eq!(
        route(
            &mysql(),
            "SELECT * FROM t_order WHERE user_id = 7 AND order_id = 12"
        ),
        pairs(&[(
            "ds_1",
            "SELECT * FROM t_order_0 WHERE user_id = 7 AND order_id = 12"
        )])
    );
}

#[test]
fn routes_database_column_alone_to_every_table_of_that_data_source() {
    let r = route(&mysql(), "SELECT * FROM t_order WHERE user_id = 8");
    assert_eq!(
        r,
        pairs(&[
            ("ds_0", "SELECT * FROM t_order_0 WHERE user_id = 8"),
            ("ds_0", "SELECT * FROM t_order_1 WHERE user_id = 8"),
        ])
    );
}

#[test]
fn routes_without_conditions_to_every_node() {
    let r = route(&mysql(), "SELECT count(*) FROM t_order");
    assert_eq!(r.len(), 4);
    assert_eq!(
        r[3],
        ("ds_1".into(), "SELECT count(*) FROM t_order_1".into())
    );
}

#[test]
fn routes_in_list_to_each_owning_shard_and_prunes_it() {
    let r = route(
        &mysql(),
        "SELECT * FROM t_order WHERE user_id IN (7, 8, 9) AND order_id = 2",
    );
    assert_eq!(
        r,
        pairs(&[
            (
                "ds_0",
                "SELECT * FROM t_order_0 WHERE user_id IN (8) AND order_id = 2"
            ),
            (
                "ds_1",
                "SELECT * FROM t_order_0 WHERE user_id IN (7, 9) AND order_id = 2"
            ),
        ])
    );
}

#[test]
fn never_prunes_a_negated_in_list() {
    let r = route(
        &mysql(),
        "SELECT * FROM t_order WHERE NOT user_id IN (7, 8)",
    );
    assert_eq!(r.len(), 4);
    assert!(r.iter().all(|(_, sql)| sql.contains("(7, 8)")), "{r:?}");
}

#[test]
fn or_branches_union_their_nodes() {
    let r = route(
        &mysql(),
        "SELECT * FROM t_order WHERE (user_id = 7 AND order_id = 1) OR (user_id = 8 AND order_id = 2)",
    );
    let nodes: Vec<(String, bool)> = r
        .iter()
        .map(|(ds, sql)| (ds.clone(), sql.contains("t_order_1")))
        .collect();
    assert_eq!(nodes, vec![("ds_0".into(), false), ("ds_1".into(), true)]);
}

#[test]
fn range_conditions_prune_on_range_algorithms_and_not_on_mod() {
    // t_log: VOLUME_RANGE tables of 100 ids from 100 (t_log_1 holds 100..199).
    let r = route(&mysql(), "SELECT * FROM t_log WHERE id BETWEEN 120 AND 180");
    assert_eq!(
        r,
        pairs(&[("ds_0", "SELECT * FROM t_log_1 WHERE id BETWEEN 120 AND 180")])
    );
    let r = route(
        &mysql(),
        "SELECT * FROM t_order WHERE order_id > 5 AND user_id = 1",
    );
    assert_eq!(r.len(), 2, "{r:?}");
}

#[test]
fn binding_tables_route_pair_by_pair() {
    let sql = "SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE o.user_id = 7";
    let r = route(&mysql(), sql);
    assert_eq!(
        r,
        pairs(&[
            ("ds_1", "SELECT * FROM t_order_0 o JOIN t_order_item_0 i ON o.order_id = i.order_id WHERE o.user_id = 7"),
            ("ds_1", "SELECT * FROM t_order_1 o JOIN t_order_item_1 i ON o.order_id = i.order_id WHERE o.user_id = 7"),
        ])
    );
}

#[test]
fn broadcast_reads_go_to_the_default_data_source_and_writes_everywhere() {
    let r = mysql();
    let sql = "SELECT * FROM t_province WHERE id = 1";
    let plan = r.route_text(sql).unwrap();
    assert_eq!(plan.kind, PlanKind::Query);
    assert_eq!(units(&plan, sql), pairs(&[("ds_0", sql)]));
    assert!(
        plan.units[0].sql.is_none(),
        "unchanged SQL is forwarded as sent"
    );
    let sql = "INSERT INTO t_province (id, name) VALUES (1, 'x')";
    assert_eq!(route(&r, sql), pairs(&[("ds_0", sql), ("ds_1", sql)]));
}

#[test]
fn single_tables_go_to_the_default_data_source_unparsed_or_not() {
    let r = mysql();
    let prepared = r.prepare("SELECT * FROM t_user WHERE id = ?").unwrap();
    assert!(prepared.analysis.is_none());
    assert_eq!(prepared.kind, PlanKind::Query);
    // Vendor syntax sqlparser rejects, naming no sharded table.
    let sql = "XA START 'x'";
    assert_eq!(route(&r, sql), pairs(&[("ds_0", sql)]));
    let sql = "SELECT 1; SELECT 2";
    assert_eq!(route(&r, sql), pairs(&[("ds_0", sql)]));
}

#[test]
fn unparseable_statement_on_a_sharded_table_is_an_error_naming_it() {
    let e = mysql()
        .route_text("SELECT * FROM t_order WHERE user_id = 1; DELETE FROM t_order")
        .unwrap_err();
    assert!(matches!(e, Error::SqlParse(_)));
    assert!(e.to_string().contains("`t_order`"), "{e}");
}

#[test]
fn joins_a_single_table_only_on_the_default_data_source() {
    let r = mysql();
    assert_eq!(
        route(
            &r,
            "SELECT * FROM t_order o JOIN t_user u ON o.user_id = u.id WHERE o.user_id = 8"
        )
        .len(),
        2
    );
    let e = r
        .route_text("SELECT * FROM t_order o JOIN t_user u ON o.user_id = u.id WHERE o.user_id = 7")
        .unwrap_err();
    assert!(e.to_string().contains("`t_user`"), "{e}");
}

#[test]
fn hints_force_a_data_source() {
    let r = mysql();
    let sql = "/* dbmesh: data_source=ds_1 */ SELECT * FROM t_user";
    assert_eq!(route(&r, sql), pairs(&[("ds_1", sql)]));
    let e = r
        .route_text("/* dbmesh: data_source=ds_9 */ SELECT 1")
        .unwrap_err();
    assert!(e.to_string().contains("ds_9"), "{e}");
    let r2 = route(&r, "/* dbmesh: data_source=ds_1 */ SELECT * FROM t_order");
    assert_eq!(r2.len(), 2);
    assert!(r2.iter().all(|(ds, _)| ds == "ds_1"));
}

#[test]
fn preview_lists_every_unit() {
    let rows = mysql()
        .preview("DELETE FROM t_order WHERE order_id = 3")
        .unwrap();
    assert_eq!(
        rows,
        pairs(&[
            ("ds_0", "DELETE FROM t_order_1 WHERE order_id = 3"),
            ("ds_1", "DELETE FROM t_order_1 WHERE order_id = 3"),
        ])
    );
}

#[test]
fn statements_the_analysis_cannot_follow_on_sharded_tables_are_refused() {
    let pg = router(Dialect::Postgres);
    let e = pg.route_text("COPY t_order TO STDOUT").unwrap_err();
    assert!(matches!(e, Error::Unroutable(_)), "{e}");
    assert!(
        e.to_string().contains("`COPY`") && e.to_string().contains("`t_order`"),
        "{e}"
    );
    let e = mysql()
        .route_text("SHOW CREATE TABLE t_order_item")
        .unwrap_err();
    assert!(e.to_string().contains("`SHOW CREATE`"), "{e}");
    // Broadcast and single tables exist on the default data source: fine there.
    let sql = "SHOW CREATE TABLE t_province";
    assert_eq!(route(&mysql(), sql), pairs(&[("ds_0", sql)]));
    let sql = "COPY t_user TO STDOUT";
    assert_eq!(route(&pg, sql), pairs(&[("ds_0", sql)]));
}

#[test]
fn describing_a_sharded_table_asks_its_first_actual_table() {
    let r = mysql();
    for (sql, actual) in [
        ("DESCRIBE t_order", "DESCRIBE t_order_0"),
        ("DESC `shop`.`t_order_item`", "DESC `t_order_item_0`"),
        ("EXPLAIN t_order", "EXPLAIN t_order_0"),
        (
            "SHOW FULL COLUMNS FROM t_order",
            "SHOW FULL COLUMNS FROM t_order_0",
        ),
        (
            "SHOW FIELDS FROM t_order FROM shop",
            "SHOW COLUMNS FROM t_order_0",
        ),
    ] {
        assert_eq!(route(&r, sql), pairs(&[("ds_0", actual)]), "{sql}");
        assert_eq!(r.route_text(sql).unwrap().kind, PlanKind::Query, "{sql}");
    }
    // Broadcast and single tables: the default data source, unchanged (never every data
    // source, as a write to a broadcast table would be).
    for sql in ["DESCRIBE t_province", "SHOW COLUMNS FROM t_user"] {
        assert_eq!(route(&r, sql), pairs(&[("ds_0", sql)]), "{sql}");
    }
}

#[test]
fn multi_unit_selects_carry_a_merge_plan_when_the_wire_layer_merges() {
    let sql = "SELECT user_id, AVG(amount) FROM t_order WHERE user_id IN (7, 8) GROUP BY user_id ORDER BY user_id LIMIT 5";
    // Without merging, the units run the client's statement (pruned) and concatenate.
    let plain = mysql().route_text(sql).unwrap();
    assert!(plain.merge.is_none());
    assert!(plain.units[0]
        .sql
        .as_deref()
        .unwrap()
        .contains("AVG(amount)"));
    let merging = mysql().with_merge(true);
    let plan = merging.route_text(sql).unwrap();
    let merge = plan.merge.as_ref().expect("a merge plan");
    assert_eq!(merge.plan.visible_columns, 2);
    assert_eq!(plan.units.len(), 4);
    for unit in &plan.units {
        let sql = unit.sql.as_deref().unwrap();
        assert!(
            sql.contains("SUM(amount)") && sql.contains("COUNT(amount)"),
            "{sql}"
        );
    }
    // A single unit needs no merge.
    let one = merging
        .route_text("SELECT AVG(amount) FROM t_order WHERE user_id = 7 AND order_id = 1")
        .unwrap();
    assert!(one.merge.is_none());
    // Prepared: merged statements run with values written in.
    let prepared = merging
        .prepare("SELECT * FROM t_order WHERE user_id = ? ORDER BY order_id")
        .unwrap();
    let plan = merging
        .plan(&prepared, Some(&[ParamValue::Int(7)]), ParamMode::Keep)
        .unwrap();
    assert!(plan.merge.is_some());
    assert_eq!(plan.params, ParamMode::Inline);
    assert!(plan.units[0]
        .sql
        .as_deref()
        .unwrap()
        .contains("user_id = 7"));
}

#[test]
fn binding_tables_must_be_combined_on_their_sharding_column() {
    let r = mysql();
    let plan = |sql: &str| {
        let prepared = r.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        r.plan(&prepared, None, ParamMode::Inline)
    };
    for sql in [
        "SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id",
        "SELECT * FROM t_order o JOIN t_order_item i ON i.order_id = o.order_id AND o.user_id = i.user_id",
        "SELECT * FROM t_order, t_order_item WHERE t_order.order_id = t_order_item.order_id AND amount > 1",
        "SELECT * FROM t_order JOIN t_order_item USING (order_id, user_id)",
        "SELECT order_id FROM t_order WHERE order_id IN (SELECT order_id FROM t_order_item WHERE sku = 'x')",
        "SELECT o.order_id FROM t_order o WHERE o.order_id IN (SELECT i.order_id FROM t_order_item i)",
        "SELECT o.order_id, (SELECT COUNT(*) FROM t_order_item i WHERE i.order_id = o.order_id) FROM t_order o",
        "SELECT order_id FROM t_order o WHERE EXISTS (SELECT 1 FROM t_order_item i WHERE i.order_id = o.order_id)",
        "SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item",
        "SELECT a.order_id FROM t_order a JOIN t_order b ON a.order_id = b.order_id",
        "SELECT order_id FROM t_order WHERE amount > 0",
    ] {
        assert!(plan(sql).is_ok(), "{sql}: {:?}", plan(sql).err());
    }
    for sql in [
        "SELECT COUNT(*) FROM t_order o JOIN t_order_item i ON o.user_id = i.user_id",
        "SELECT * FROM t_order, t_order_item",
        "SELECT order_id FROM t_order WHERE user_id IN (SELECT user_id FROM t_order_item WHERE sku = 'x')",
        "SELECT o.order_id, (SELECT COUNT(*) FROM t_order_item i WHERE i.user_id = o.user_id) FROM t_order o",
        "SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.item_id",
    ] {
        match plan(sql) {
            Err(Error::MergeUnsupported(message)) => assert!(
                message.starts_with(
                    "combining binding tables `t_order` and `t_order_item` without equating their sharding columns (`order_id`, `order_id`)"
                ),
                "{sql}: {message}"
            ),
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
    for sql in [
        "SELECT a.order_id FROM t_order a JOIN t_order b ON a.user_id = b.user_id",
        "SELECT o.order_id, (SELECT MAX(amount) FROM t_order x WHERE x.user_id = o.user_id) FROM t_order o",
    ] {
        match plan(sql) {
            Err(Error::MergeUnsupported(message)) => assert!(
                message.starts_with("combining `t_order` with itself without equating"),
                "{sql}: {message}"
            ),
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn rows_every_unit_holds_whole_must_not_stand_on_their_own() {
    let r = mysql();
    let plan = |sql: &str| {
        let prepared = r.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        r.plan(&prepared, None, ParamMode::Inline)
    };
    for sql in [
        "SELECT p.id, o.order_id FROM t_order o JOIN t_province p ON o.province_id = p.id",
        "SELECT p.id, o.order_id FROM t_order o LEFT JOIN t_province p ON o.province_id = p.id",
        "SELECT p.id, o.order_id FROM t_province p RIGHT JOIN t_order o ON o.province_id = p.id",
        "SELECT o.order_id FROM t_order o WHERE EXISTS (SELECT 1 FROM t_province p WHERE p.id = o.province_id)",
        "SELECT p.id, o.order_id FROM t_province p LEFT JOIN t_order o ON o.province_id = p.id WHERE o.user_id = 7 AND o.order_id = 2",
    ] {
        assert!(plan(sql).is_ok(), "{sql}: {:?}", plan(sql).err());
    }
    for (sql, what) in [
        ("SELECT p.id, o.order_id FROM t_province p LEFT JOIN t_order o ON o.province_id = p.id", "an outer join"),
        ("SELECT p.id, o.order_id FROM t_order o RIGHT JOIN t_province p ON o.province_id = p.id", "an outer join"),
        ("SELECT p.id FROM t_province p WHERE EXISTS (SELECT 1 FROM t_order o WHERE o.province_id = p.id)", "a subquery"),
        ("SELECT (SELECT COUNT(*) FROM t_order)", "a subquery"),
    ] {
        match plan(sql) {
            Err(Error::MergeUnsupported(message)) => {
                assert!(message.starts_with(what), "{sql}: {message}")
            }
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
}

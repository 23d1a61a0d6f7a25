//! Router tests: INSERT row splitting and generated keys, UPDATE of sharding columns, DDL
//! fan-out, transaction statements, and learning a table's columns.

use super::tests::{mysql, pairs, route};
use super::*;

#[test]
fn multi_row_insert_splits_rows_per_node() {
    let sql = "INSERT INTO t_order (user_id, order_id, amount) VALUES (7, 12, 1), (8, 12, 2), (7, 13, 3), (7, 14, 4)";
    assert_eq!(
        route(&mysql(), sql),
        pairs(&[
            (
                "ds_0",
                "INSERT INTO t_order_0 (user_id, order_id, amount) VALUES (8, 12, 2)"
            ),
            (
                "ds_1",
                "INSERT INTO t_order_0 (user_id, order_id, amount) VALUES (7, 12, 1), (7, 14, 4)"
            ),
            (
                "ds_1",
                "INSERT INTO t_order_1 (user_id, order_id, amount) VALUES (7, 13, 3)"
            ),
        ])
    );
}

#[test]
fn insert_without_key_gets_generated_keys_that_route_it() {
    let r = mysql();
    let plan = r
        .route_text("INSERT INTO t_order (user_id, amount) VALUES (7, 10), (7, 11)")
        .unwrap();
    assert_eq!(plan.generated_keys.len(), 2);
    let keys: Vec<i64> = plan
        .generated_keys
        .iter()
        .map(|k| match k {
            GeneratedKey::Int(v) => *v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(keys[1] > keys[0]);
    for unit in &plan.units {
        let sql = unit.sql.as_deref().unwrap();
        assert_eq!(unit.data_source, "ds_1");
        assert!(sql.contains("(user_id, amount, order_id)"), "{sql}");
        for key in &keys {
            if sql.contains(&key.to_string()) {
                let table = if key % 2 == 0 {
                    "t_order_0 "
                } else {
                    "t_order_1 "
                };
                assert!(sql.contains(table), "{sql}");
            }
        }
    }
    let total: usize = plan
        .units
        .iter()
        .map(|u| {
            keys.iter()
                .filter(|k| u.sql.as_deref().unwrap().contains(&k.to_string()))
                .count()
        })
        .sum();
    assert_eq!(total, 2);
}

#[test]
fn insert_must_give_the_database_sharding_column() {
    let e = mysql()
        .route_text("INSERT INTO t_order (order_id, amount) VALUES (1, 2)")
        .unwrap_err();
    assert!(e.to_string().contains("`user_id`"), "{e}");
}

#[test]
fn update_may_set_the_sharding_column_to_its_current_value_only() {
    let r = mysql();
    assert_eq!(
        route(
            &r,
            "UPDATE t_order SET user_id = 7, amount = 1 WHERE user_id = 7 AND order_id = 1"
        )
        .len(),
        1
    );
    let e = r
        .route_text("UPDATE t_order SET user_id = 8 WHERE user_id = 7")
        .unwrap_err();
    assert!(matches!(e, Error::ShardingKeyChange { .. }), "{e}");
    assert!(r
        .route_text("UPDATE t_order SET order_id = 3 WHERE user_id = 7")
        .is_err());
}

#[test]
fn ddl_fans_out_to_every_actual_table_with_unique_index_names() {
    let r = mysql();
    let sql = "CREATE TABLE t_order (order_id BIGINT PRIMARY KEY, user_id INT)";
    let plan = r.route_text(sql).unwrap();
    assert_eq!(plan.kind, PlanKind::Ddl);
    assert_eq!(plan.units.len(), 4);
    assert_eq!(
        plan.units[1].sql.as_deref(),
        Some("CREATE TABLE t_order_1 (order_id BIGINT PRIMARY KEY, user_id INT)")
    );
    let r2 = route(&r, "CREATE INDEX idx_user ON t_order (user_id)");
    assert_eq!(r2.len(), 4);
    assert!(r2[0].1.contains("idx_user_t_order_0"), "{r2:?}");
}

#[test]
fn transaction_statements_are_classified() {
    let r = mysql();
    assert_eq!(r.route_text("BEGIN").unwrap().kind, PlanKind::Begin);
    assert_eq!(
        r.route_text("START TRANSACTION READ ONLY").unwrap().kind,
        PlanKind::Begin
    );
    assert_eq!(r.route_text("COMMIT").unwrap().kind, PlanKind::Commit);
    assert_eq!(r.route_text("ROLLBACK").unwrap().kind, PlanKind::Rollback);
    assert_eq!(
        r.route_text("SAVEPOINT a").unwrap().kind,
        PlanKind::Savepoint
    );
    assert_eq!(
        r.route_text("ROLLBACK TO SAVEPOINT a").unwrap().kind,
        PlanKind::Savepoint
    );
}

#[test]
fn insert_with_a_null_sharding_value_is_an_error() {
    let e = mysql()
        .route_text("INSERT INTO t_order (user_id, order_id) VALUES (NULL, 1)")
        .unwrap_err();
    assert!(matches!(e, Error::Routing(_)), "{e}");
    assert!(e.to_string().contains("`user_id`"), "{e}");
}

#[test]
fn an_insert_without_a_column_list_routes_once_the_columns_are_learnt() {
    let r = mysql();
    let sql = "INSERT INTO t_order VALUES (12, 7, 'a'), (13, 8, 'b')";
    assert!(r.route_text(sql).is_err());
    let wanted = r.columns_wanted(sql).expect("the columns are wanted");
    assert_eq!(wanted.table, "t_order");
    assert_eq!(
        wanted.unit,
        Unit {
            data_source: "ds_0".into(),
            sql: Some("SHOW COLUMNS FROM `t_order_0`".into())
        }
    );
    r.learn_columns(
        "t_order",
        vec!["order_id".into(), "User_Id".into(), "note".into()],
    );
    assert_eq!(
        route(&r, sql),
        pairs(&[
            ("ds_0", "INSERT INTO t_order_1 VALUES (13, 8, 'b')"),
            ("ds_1", "INSERT INTO t_order_0 VALUES (12, 7, 'a')"),
        ])
    );
    assert!(r.columns_wanted(sql).is_none());
    // Rows that no longer fit (the table changed elsewhere): asked again.
    let wider = "INSERT INTO t_order VALUES (12, 7, 'a', 1)";
    assert!(r.route_text(wider).is_err());
    assert!(r.columns_wanted(wider).is_some());
    assert!(r.route_text(sql).is_err(), "forgotten");
    // DDL through dbmesh forgets them too.
    r.learn_columns(
        "t_order",
        vec!["order_id".into(), "user_id".into(), "note".into()],
    );
    r.route_text("ALTER TABLE t_order ADD COLUMN amount INT")
        .unwrap();
    assert!(r.columns_wanted(sql).is_some());
    // Statements that fail for other reasons want nothing.
    assert!(r
        .columns_wanted("INSERT INTO t_order (order_id) VALUES (1)")
        .is_none());
    assert!(r.columns_wanted("SELEC 1").is_none());
}

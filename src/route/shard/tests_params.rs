//! Router tests: parameters of prepared statements (rerouting per execution, inline
//! literals, escapes, numeric forms) and the rewrite keeping what the parser drops.

use super::tests::{mysql, pairs, route, router, units};
use super::*;

#[test]
fn prepared_statements_reroute_per_execution_keeping_placeholders() {
    let r = mysql();
    let prepared = r
        .prepare("SELECT * FROM t_order WHERE user_id = ? AND order_id = ?")
        .unwrap();
    assert_eq!(prepared.param_count, 2);
    let plan = r
        .plan(
            &prepared,
            Some(&[ParamValue::Int(7), ParamValue::Int(13)]),
            ParamMode::Keep,
        )
        .unwrap();
    assert_eq!(plan.params, ParamMode::Keep);
    assert_eq!(
        units(&plan, ""),
        pairs(&[(
            "ds_1",
            "SELECT * FROM t_order_1 WHERE user_id = ? AND order_id = ?"
        )])
    );
    let plan = r
        .plan(
            &prepared,
            Some(&[ParamValue::Text("8".into()), ParamValue::Int(2)]),
            ParamMode::Keep,
        )
        .unwrap();
    assert_eq!(
        units(&plan, ""),
        pairs(&[(
            "ds_0",
            "SELECT * FROM t_order_0 WHERE user_id = ? AND order_id = ?"
        )])
    );
    let describe = r.describe_target(&prepared).unwrap();
    assert_eq!(describe.data_source, "ds_0");
    assert_eq!(
        describe.sql.as_deref(),
        Some("SELECT * FROM t_order_0 WHERE user_id = ? AND order_id = ?")
    );
}

#[test]
fn inline_mode_writes_escaped_literals_in_place_of_parameters() {
    let r = mysql();
    let prepared = r
        .prepare("INSERT INTO t_order (user_id, order_id, note) VALUES (?, ?, ?), (?, ?, ?)")
        .unwrap();
    let params = [
        ParamValue::Int(7),
        ParamValue::Int(1),
        ParamValue::Text(r"it's a \ back".into()),
        ParamValue::Int(8),
        ParamValue::Int(1),
        ParamValue::Null,
    ];
    // Keep cannot split rows: the plan comes back inline.
    let plan = r.plan(&prepared, Some(&params), ParamMode::Keep).unwrap();
    assert_eq!(plan.params, ParamMode::Inline);
    assert_eq!(
        units(&plan, ""),
        pairs(&[
            (
                "ds_0",
                "INSERT INTO t_order_1 (user_id, order_id, note) VALUES (8, 1, NULL)"
            ),
            (
                "ds_1",
                r"INSERT INTO t_order_1 (user_id, order_id, note) VALUES (7, 1, 'it''s a \\ back')"
            ),
        ])
    );
}

#[test]
fn postgres_parameters_route_and_inline() {
    let r = router(Dialect::Postgres);
    let prepared = r
        .prepare("SELECT * FROM t_order WHERE user_id = $1 AND order_id IN ($2, $3)")
        .unwrap();
    let params = [
        ParamValue::Int(7),
        ParamValue::Int(2),
        ParamValue::Bytes(b"3".to_vec()),
    ];
    let plan = r.plan(&prepared, Some(&params), ParamMode::Inline).unwrap();
    assert_eq!(plan.params, ParamMode::Inline);
    assert_eq!(
        units(&plan, ""),
        pairs(&[
            (
                "ds_1",
                "SELECT * FROM t_order_0 WHERE user_id = 7 AND order_id IN (2)"
            ),
            (
                "ds_1",
                "SELECT * FROM t_order_1 WHERE user_id = 7 AND order_id IN ('\\x33'::BYTEA)"
            ),
        ])
    );
}

#[test]
fn mysql_escapes_survive_the_rewrite() {
    let sql = r"SELECT * FROM t_order WHERE user_id = 7 AND order_id = 1 AND note = 'a\'b\\c'";
    assert_eq!(
        route(&mysql(), sql),
        pairs(&[(
            "ds_1",
            r"SELECT * FROM t_order_1 WHERE user_id = 7 AND order_id = 1 AND note = 'a\'b\\c'"
        )])
    );
}

#[test]
fn lock_in_share_mode_is_put_back() {
    let r = route(
        &mysql(),
        "SELECT * FROM t_order WHERE user_id = 7 AND order_id = 1 LOCK IN SHARE MODE",
    );
    assert_eq!(
        r[0].1,
        "SELECT * FROM t_order_1 WHERE user_id = 7 AND order_id = 1 LOCK IN SHARE MODE"
    );
}

#[test]
fn row_counts_bound_as_doubles_or_strings_are_written_as_integers() {
    let r = mysql();
    let sql =
        "SELECT user_id FROM t_order WHERE user_id = ? AND amount >= ? ORDER BY amount LIMIT ?, ?";
    let prepared = r.prepare(sql).unwrap();
    let values = [
        ParamValue::Int(7),
        ParamValue::Float(1.0),
        ParamValue::Float(2.0),
        ParamValue::Text("3".into()),
    ];
    let plan = r.plan(&prepared, Some(&values), ParamMode::Inline).unwrap();
    assert_eq!(
        units(&plan, sql)[0].1,
        "SELECT user_id FROM t_order_0 WHERE user_id = 7 AND amount >= 1e0 ORDER BY amount LIMIT 2, 3"
    );
    let sql = "SELECT user_id FROM t_order WHERE user_id = ? LIMIT ? OFFSET ?";
    let prepared = r.prepare(sql).unwrap();
    let values = [
        ParamValue::Int(7),
        ParamValue::UInt(5),
        ParamValue::Float(2.5),
    ];
    let plan = r.plan(&prepared, Some(&values), ParamMode::Inline).unwrap();
    // What is not a whole number stays what it is, for the server to refuse.
    assert!(
        units(&plan, sql)[0].1.ends_with("LIMIT 5 OFFSET 2.5e0"),
        "{:?}",
        units(&plan, sql)
    );
}

#[test]
fn floats_are_written_as_float_literals() {
    // `0.5` would be DECIMAL / numeric and change the type of `amount + ?`.
    let sql = "SELECT amount + ?, amount - ? FROM t_order WHERE user_id = 7 AND order_id = 2";
    let r = mysql();
    let prepared = r.prepare(sql).unwrap();
    let values = [ParamValue::Float(0.5), ParamValue::Float(-1250.0)];
    let plan = r.plan(&prepared, Some(&values), ParamMode::Inline).unwrap();
    assert_eq!(
        units(&plan, sql)[0].1,
        "SELECT amount + 5e-1, amount - -1.25e3 FROM t_order_0 WHERE user_id = 7 AND order_id = 2"
    );
    let sql = "SELECT amount + $1, amount - $2 FROM t_order WHERE user_id = 7 AND order_id = 2";
    let r = router(Dialect::Postgres);
    let prepared = r.prepare(sql).unwrap();
    let plan = r.plan(&prepared, Some(&values), ParamMode::Inline).unwrap();
    assert_eq!(
        units(&plan, sql)[0].1,
        "SELECT amount + 5e-1::DOUBLE PRECISION, amount - -1.25e3::DOUBLE PRECISION FROM t_order_0 WHERE user_id = 7 AND order_id = 2"
    );
}

//! INSERT, UPDATE, DELETE and DDL analysis, and errors.

use super::tests::{int, mysql, pg, rules};
use super::*;

#[test]
fn insert_multi_row_with_params_numbers_each_placeholder() {
    let a =
        mysql("INSERT INTO t_order (user_id, order_id, status) VALUES (?, ?, 'new'), (?, 12, ?)");
    assert_eq!(a.kind, SqlKind::Insert);
    assert_eq!(a.param_count, 4);
    let insert = a.insert.unwrap();
    assert_eq!(insert.table.name, "t_order");
    assert_eq!(insert.columns, ["user_id", "order_id", "status"]);
    assert_eq!(insert.column_index("ORDER_ID"), Some(1));
    assert_eq!(
        insert.rows,
        vec![
            vec![
                ValueRef::Param(0),
                ValueRef::Param(1),
                ValueRef::Literal("new".into())
            ],
            vec![ValueRef::Param(2), int(12), ValueRef::Param(3)],
        ]
    );
    assert!(!insert.from_select);
    assert_eq!(insert.upsert, None);
}

#[test]
fn insert_postgres_params_and_expressions() {
    let a = pg("INSERT INTO t_order (user_id, created) VALUES ($1, now()) ON CONFLICT (order_id) DO NOTHING");
    let insert = a.insert.unwrap();
    assert_eq!(
        insert.rows,
        vec![vec![ValueRef::Param(0), ValueRef::Unknown]]
    );
    assert_eq!(insert.upsert, Some(Upsert::OnConflict));
}

#[test]
fn insert_on_duplicate_key_update_is_an_upsert() {
    let a = mysql(
        "INSERT INTO t_order (user_id, order_id) VALUES (1, 2) ON DUPLICATE KEY UPDATE status = 1",
    );
    assert_eq!(a.insert.unwrap().upsert, Some(Upsert::OnDuplicateKeyUpdate));
}

#[test]
fn insert_without_a_column_list_takes_the_known_columns() {
    let known = |table: &str| {
        (table == "t_order").then(|| vec!["order_id".to_string(), "user_id".into(), "note".into()])
    };
    let a = analyze_with_columns(
        "INSERT INTO t_order VALUES (12, 7, 'a'), (13, ?, 'b')",
        Dialect::MySql,
        &rules(),
        &known,
    )
    .unwrap();
    let insert = a.insert.as_ref().unwrap();
    assert_eq!(insert.columns, ["order_id", "user_id", "note"]);
    assert_eq!(insert.column_index("user_id"), Some(1));
    assert_eq!(insert.rows[1][1], ValueRef::Param(0));
    // A row of another width is an error naming it, not a guess.
    let e = analyze_with_columns(
        "INSERT INTO t_order VALUES (1, 2)",
        Dialect::MySql,
        &rules(),
        &known,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            AnalyzeError::RowWidth {
                row: 1,
                values: 2,
                columns: 3,
                ..
            }
        ),
        "{e}"
    );
}

/// PostgreSQL fills the columns a row without a column list leaves out, so rows may give
/// the table's first columns only (all rows as many); more values than columns, or rows of
/// several widths, are still errors.
#[test]
fn postgres_rows_without_a_column_list_may_give_the_first_columns() {
    let known = |table: &str| {
        (table == "t_order").then(|| vec!["order_id".to_string(), "user_id".into(), "note".into()])
    };
    let pg = |sql: &str| analyze_with_columns(sql, Dialect::Postgres, &rules(), &known);
    let a = pg("INSERT INTO t_order VALUES (12, 7), (13, $1)").unwrap();
    let insert = a.insert.as_ref().unwrap();
    assert_eq!(insert.columns, ["order_id", "user_id"]);
    assert_eq!(insert.column_index("user_id"), Some(1));
    for sql in [
        "INSERT INTO t_order VALUES (1, 2, 'a', 4)",
        "INSERT INTO t_order VALUES (1, 2), (3, 4, 'c')",
    ] {
        assert!(
            matches!(pg(sql), Err(AnalyzeError::RowWidth { .. })),
            "{sql}"
        );
    }
    // An explicit column list must be matched exactly, as PostgreSQL wants.
    let e = pg("INSERT INTO t_order (order_id, user_id) VALUES (1)").unwrap_err();
    assert!(matches!(e, AnalyzeError::RowWidth { .. }), "{e}");
}

#[test]
fn insert_into_sharded_table_needs_a_column_list() {
    let err = analyze(
        "INSERT INTO t_order VALUES (1, 2)",
        Dialect::MySql,
        &rules(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "INSERT into sharded table t_order without a column list"
    );
    assert!(matches!(err, AnalyzeError::NoColumnList { ref table } if table == "t_order"));
    // Other tables may leave it out.
    let a = mysql("INSERT INTO t_log VALUES (1, 2)");
    assert!(a.insert.as_ref().unwrap().columns.is_empty());
    assert!(a.is_single_only());
}

#[test]
fn insert_rows_must_match_the_column_list() {
    let err = analyze(
        "INSERT INTO t_order (user_id, order_id) VALUES (1, 2), (3)",
        Dialect::MySql,
        &rules(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "INSERT into t_order: row 2 has 1 values for 2 columns"
    );
}

#[test]
fn insert_set_form_gives_columns_and_one_row() {
    let a = mysql("INSERT INTO t_order SET user_id = 7, order_id = ?");
    let insert = a.insert.unwrap();
    assert_eq!(insert.columns, ["user_id", "order_id"]);
    assert_eq!(insert.rows, vec![vec![int(7), ValueRef::Param(0)]]);
}

#[test]
fn insert_select_keeps_the_query_conditions() {
    let a = mysql("INSERT INTO t_order_item (user_id, order_id) SELECT user_id, order_id FROM t_order WHERE user_id = 4");
    let insert = a.insert.as_ref().unwrap();
    assert!(insert.from_select && insert.rows.is_empty());
    assert_eq!(a.tables.len(), 2);
    assert_eq!(
        a.conditions[0].get("t_order", "user_id"),
        Some(&ColumnCondition::Values(vec![int(4)]))
    );
}

#[test]
fn replace_is_its_own_kind() {
    let a = mysql("REPLACE INTO t_order (user_id, order_id) VALUES (1, 2)");
    assert_eq!(a.kind, SqlKind::Replace);
    assert_eq!(a.insert.unwrap().rows, vec![vec![int(1), int(2)]]);
}

#[test]
fn update_reports_sets_and_conditions() {
    let a = mysql("UPDATE t_order o SET o.status = ?, user_id = 9, note = CONCAT(note, 'x') WHERE o.order_id = ? AND o.user_id = 3");
    assert_eq!(a.kind, SqlKind::Update);
    assert_eq!(a.param_count, 2);
    let sets: Vec<_> = a
        .update_sets
        .iter()
        .map(|s| (s.qualifier.as_deref(), s.column.as_str(), s.value.clone()))
        .collect();
    assert_eq!(
        sets,
        vec![
            (Some("o"), "status", ValueRef::Param(0)),
            (None, "user_id", int(9)),
            (None, "note", ValueRef::Unknown),
        ]
    );
    let group = &a.conditions[0];
    assert_eq!(
        group.get("t_order", "order_id"),
        Some(&ColumnCondition::Values(vec![ValueRef::Param(1)]))
    );
    assert_eq!(
        group.get("t_order", "user_id"),
        Some(&ColumnCondition::Values(vec![int(3)]))
    );
}

#[test]
fn update_with_subquery_collects_its_tables() {
    let a = pg("UPDATE t_order SET status = 1 WHERE order_id IN (SELECT order_id FROM t_order_item WHERE user_id = $1)");
    let names: Vec<_> = a.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t_order", "t_order_item"]);
    assert_eq!(
        a.conditions[0].get("t_order_item", "user_id"),
        Some(&ColumnCondition::Values(vec![ValueRef::Param(0)]))
    );
}

#[test]
fn delete_reports_conditions() {
    let a = mysql("DELETE FROM t_order WHERE user_id = 5 OR user_id IN (6, 7)");
    assert_eq!(a.kind, SqlKind::Delete);
    assert_eq!(a.tables.len(), 1);
    assert_eq!(a.conditions.len(), 2);
    assert_eq!(
        a.conditions[1].get("t_order", "user_id"),
        Some(&ColumnCondition::Values(vec![int(6), int(7)]))
    );
}

#[test]
fn postgres_delete_using_joins_tables() {
    let a = pg("DELETE FROM t_order_item i USING t_order o WHERE i.order_id = o.order_id AND o.order_id = 8");
    assert_eq!(a.tables.len(), 2);
    assert_eq!(
        a.conditions[0].get("t_order_item", "order_id"),
        Some(&ColumnCondition::Values(vec![int(8)]))
    );
}

#[test]
fn ddl_kinds_and_their_tables() {
    let cases = [
        (
            "CREATE TABLE t_order (order_id BIGINT PRIMARY KEY, user_id INT)",
            DdlKind::CreateTable,
        ),
        (
            "ALTER TABLE t_order ADD COLUMN note TEXT",
            DdlKind::AlterTable,
        ),
        ("DROP TABLE t_order", DdlKind::DropTable),
        ("TRUNCATE TABLE t_order", DdlKind::TruncateTable),
        (
            "CREATE INDEX idx_user ON t_order (user_id)",
            DdlKind::CreateIndex,
        ),
        ("DROP INDEX idx_user ON t_order", DdlKind::DropIndex),
    ];
    for (sql, kind) in cases {
        let a = mysql(sql);
        assert_eq!(a.kind, SqlKind::Ddl(kind), "{sql}");
        assert_eq!(a.sharded_tables(), ["t_order"], "{sql}");
    }
    let a = pg("DROP TABLE t_order, t_province");
    assert_eq!(a.tables.len(), 2);
    assert_eq!(a.tables[1].role, TableRole::Broadcast);
}

#[test]
fn other_statements_have_no_tables() {
    let a = mysql("SHOW TABLES");
    assert_eq!(a.kind, SqlKind::Other);
    assert!(a.tables.is_empty() && a.conditions[0].is_empty());
}

#[test]
fn parse_errors_carry_the_message_and_statement_start() {
    let sql = format!("SELEKT * FROM t_order WHERE {}", "x = 1 AND ".repeat(20));
    let err = analyze(&sql, Dialect::MySql, &rules()).unwrap_err();
    let AnalyzeError::Parse { message, statement } = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("SELEKT"), "{message}");
    assert_eq!(statement.chars().count(), 83);
    assert!(statement.starts_with("SELEKT * FROM t_order") && statement.ends_with("..."));
}

#[test]
fn exactly_one_statement_is_required() {
    let err = analyze("SELECT 1; SELECT 2", Dialect::MySql, &rules()).unwrap_err();
    assert!(matches!(err, AnalyzeError::StatementCount { count: 2, .. }));
    let err = analyze("  ", Dialect::Postgres, &rules()).unwrap_err();
    assert!(matches!(err, AnalyzeError::StatementCount { count: 0, .. }));
    assert_eq!(mysql("SELECT 1;").param_count, 0);
}

#[test]
fn dialect_follows_the_backend() {
    assert_eq!(
        Dialect::from(crate::config::BackendKind::Postgres),
        Dialect::Postgres
    );
    assert_eq!(
        Dialect::from(crate::config::BackendKind::Mysql),
        Dialect::MySql
    );
}

#[test]
fn placeholders_inside_strings_are_not_params() {
    let a = mysql("SELECT * FROM t_order WHERE note = '?' AND user_id = ?");
    assert_eq!(a.param_count, 1);
    assert_eq!(
        a.conditions[0].get("t_order", "user_id"),
        Some(&ColumnCondition::Values(vec![ValueRef::Param(0)]))
    );
}

//! INSERT row splitting and generated keys.
//!
//! A multi-row `INSERT ... VALUES` whose rows land on different actual data nodes is split:
//! each target keeps only its rows. A key column the INSERT left out gets the generated keys
//! of the kept rows, added as the last column. MySQL's `INSERT ... SET` is one row.

use sqlparser::ast::{
    Assignment, AssignmentTarget, Expr, Ident, ObjectName, SetExpr, Statement, Value,
};

use super::error::RewriteError;
use super::GeneratedKeyColumn;
use crate::route::keygen::GeneratedKey;

/// Keeps rows `rows` (all when `None`) and appends the generated key column.
pub(crate) fn apply(
    statement: &mut Statement,
    rows: Option<&[usize]>,
    key: Option<&GeneratedKeyColumn>,
) -> Result<(), RewriteError> {
    let Statement::Insert(insert) = statement else {
        return Err(RewriteError::NotInsertValues {
            construct: "a statement other than INSERT",
        });
    };
    if !insert.assignments.is_empty() {
        // INSERT ... SET: exactly one row.
        keep_rows(&mut vec![()], rows)?;
        if let Some(key) = key {
            check_key(
                key,
                1,
                insert
                    .assignments
                    .iter()
                    .any(|a| sets(&a.target, &key.column)),
            )?;
            insert.assignments.push(Assignment {
                target: AssignmentTarget::ColumnName(ObjectName::from(Ident::new(&key.column))),
                value: literal(&key.values[0]),
            });
        }
        return Ok(());
    }
    let Some(source) = insert.source.as_deref_mut() else {
        return Err(RewriteError::NotInsertValues {
            construct: "INSERT without VALUES",
        });
    };
    let SetExpr::Values(values) = source.body.as_mut() else {
        return Err(RewriteError::NotInsertValues {
            construct: "INSERT ... SELECT",
        });
    };
    keep_rows(&mut values.rows, rows)?;
    if let Some(key) = key {
        if insert.columns.is_empty() {
            return Err(RewriteError::GeneratedKeyWithoutColumnList {
                column: key.column.clone(),
            });
        }
        let present = insert.columns.iter().any(|c| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case(&key.column))
        });
        check_key(key, values.rows.len(), present)?;
        // Quote the new column like the ones the application wrote.
        let quote_style = insert
            .columns
            .last()
            .and_then(|c| c.0.last())
            .and_then(|p| p.as_ident())
            .and_then(|i| i.quote_style);
        insert.columns.push(ObjectName::from(Ident {
            value: key.column.clone(),
            quote_style,
            span: sqlparser::tokenizer::Span::empty(),
        }));
        for (row, value) in values.rows.iter_mut().zip(&key.values) {
            row.content.push(literal(value));
        }
    }
    Ok(())
}

/// Keeps the elements at `keep`, in that order; all when `None`.
fn keep_rows<T>(rows: &mut Vec<T>, keep: Option<&[usize]>) -> Result<(), RewriteError> {
    let Some(keep) = keep else {
        return Ok(());
    };
    if keep.is_empty() {
        return Err(RewriteError::NoInsertRows);
    }
    if let Some(&index) = keep.iter().find(|&&i| i >= rows.len()) {
        return Err(RewriteError::InsertRowOutOfRange {
            rows: rows.len(),
            index,
        });
    }
    let mut taken: Vec<Option<T>> = std::mem::take(rows).into_iter().map(Some).collect();
    // A row listed twice is kept once, where first listed.
    *rows = keep.iter().filter_map(|&i| taken[i].take()).collect();
    Ok(())
}

fn check_key(key: &GeneratedKeyColumn, rows: usize, present: bool) -> Result<(), RewriteError> {
    if present {
        return Err(RewriteError::GeneratedKeyColumnPresent {
            column: key.column.clone(),
        });
    }
    if key.values.len() != rows {
        return Err(RewriteError::GeneratedKeyCount {
            column: key.column.clone(),
            keys: key.values.len(),
            rows,
        });
    }
    Ok(())
}

fn sets(target: &AssignmentTarget, column: &str) -> bool {
    match target {
        AssignmentTarget::ColumnName(name) => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case(column)),
        AssignmentTarget::Tuple(_) => false,
    }
}

/// A generated key as an SQL literal: a number, or a quoted string.
fn literal(key: &GeneratedKey) -> Expr {
    let value = match key {
        GeneratedKey::Int(value) => Value::Number(value.to_string(), false),
        GeneratedKey::Text(text) => Value::SingleQuotedString(text.clone()),
    };
    Expr::value(value)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{parse, renames};
    use super::super::{rewrite, Dialect, GeneratedKeyColumn, RewriteError, TargetRewrite};
    use crate::route::keygen::GeneratedKey;

    fn split(
        dialect: Dialect,
        sql: &str,
        rows: &[usize],
        keys: Option<Vec<GeneratedKey>>,
    ) -> Result<String, RewriteError> {
        let plan = TargetRewrite {
            insert_rows: Some(rows.to_vec()),
            generated_key: keys.map(|values| GeneratedKeyColumn {
                column: "order_id".into(),
                values,
            }),
            ..renames(&[("t_order", "t_order_1")])
        };
        rewrite(&parse(dialect, sql), &plan, dialect, &["shop"])
    }

    #[test]
    fn splits_a_multi_row_insert_and_adds_generated_keys() {
        let sql = split(
            Dialect::MySql,
            "INSERT INTO t_order (user_id, amount) VALUES (7, 10), (8, 20), (9, 30)",
            &[0, 2],
            Some(vec![GeneratedKey::Int(1001), GeneratedKey::Int(1003)]),
        );
        assert_eq!(
            sql.unwrap(),
            "INSERT INTO t_order_1 (user_id, amount, order_id) VALUES (7, 10, 1001), (9, 30, 1003)"
        );
    }

    #[test]
    fn splits_rows_without_a_generated_key() {
        let sql = split(
            Dialect::Postgres,
            "INSERT INTO t_order (order_id, user_id) VALUES ($1, $2), ($3, $4)",
            &[1],
            None,
        );
        assert_eq!(
            sql.unwrap(),
            "INSERT INTO t_order_1 (order_id, user_id) VALUES ($3, $4)"
        );
    }

    #[test]
    fn quotes_text_keys_and_matches_column_quoting() {
        let sql = split(
            Dialect::MySql,
            "INSERT INTO `t_order` (`user_id`) VALUES (?)",
            &[0],
            Some(vec![GeneratedKey::Text("0a1b'c".into())]),
        );
        assert_eq!(
            sql.unwrap(),
            "INSERT INTO `t_order_1` (`user_id`, `order_id`) VALUES (?, '0a1b''c')"
        );
    }

    #[test]
    fn adds_a_generated_key_to_insert_set() {
        let sql = split(
            Dialect::MySql,
            "INSERT INTO t_order SET user_id = 7",
            &[0],
            Some(vec![GeneratedKey::Int(5)]),
        );
        assert_eq!(
            sql.unwrap(),
            "INSERT INTO t_order_1 SET user_id = 7, order_id = 5"
        );
    }

    #[test]
    fn refuses_plans_that_do_not_fit_the_insert() {
        let values = "INSERT INTO t_order (user_id) VALUES (1), (2)";
        assert_eq!(
            split(Dialect::MySql, values, &[], None),
            Err(RewriteError::NoInsertRows)
        );
        assert_eq!(
            split(Dialect::MySql, values, &[2], None),
            Err(RewriteError::InsertRowOutOfRange { rows: 2, index: 2 })
        );
        assert!(matches!(
            split(
                Dialect::MySql,
                values,
                &[0, 1],
                Some(vec![GeneratedKey::Int(1)])
            ),
            Err(RewriteError::GeneratedKeyCount {
                keys: 1,
                rows: 2,
                ..
            })
        ));
        assert!(matches!(
            split(
                Dialect::MySql,
                "INSERT INTO t_order VALUES (1)",
                &[0],
                Some(vec![GeneratedKey::Int(1)])
            ),
            Err(RewriteError::GeneratedKeyWithoutColumnList { .. })
        ));
        assert!(matches!(
            split(
                Dialect::MySql,
                "INSERT INTO t_order (ORDER_ID) VALUES (1)",
                &[0],
                Some(vec![GeneratedKey::Int(1)])
            ),
            Err(RewriteError::GeneratedKeyColumnPresent { .. })
        ));
        assert!(matches!(
            split(
                Dialect::MySql,
                "INSERT INTO t_order (user_id) SELECT user_id FROM t_user",
                &[0],
                None
            ),
            Err(RewriteError::NotInsertValues {
                construct: "INSERT ... SELECT"
            })
        ));
        assert!(matches!(
            split(Dialect::MySql, "SELECT 1", &[0], None),
            Err(RewriteError::NotInsertValues { .. })
        ));
    }
}

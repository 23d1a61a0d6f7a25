//! What routing needs from INSERT, REPLACE and UPDATE beyond their conditions: the rows
//! an INSERT writes and the columns an UPDATE assigns.

use sqlparser::ast::{
    Assignment, AssignmentTarget, Expr, Insert, ObjectName, OnInsert, SetExpr, TableObject,
};

use super::conditions::{unconstrained, Dnf};
use super::error::AnalyzeError;
use super::scope::Walker;
use super::tables::{TableRef, TableRole};
use super::value::ValueRef;

/// What an INSERT or REPLACE writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertInfo {
    /// The target table.
    pub table: TableRef,
    /// The column list, lower case; from `SET col = ...` for MySQL's `INSERT ... SET`.
    /// Empty only for a non-sharded table written without one.
    pub columns: Vec<String>,
    /// Each `VALUES` row, one value per column. Empty for `INSERT ... SELECT`.
    pub rows: Vec<Vec<ValueRef>>,
    /// `ON DUPLICATE KEY UPDATE` or `ON CONFLICT`, if any.
    pub upsert: Option<Upsert>,
    /// Whether the rows come from a query (`INSERT ... SELECT`); that query's conditions
    /// are the analysis's conditions.
    pub from_select: bool,
}

impl InsertInfo {
    /// The position of `column` (any case) in the column list.
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
    }
}

/// How an INSERT handles rows that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// MySQL `ON DUPLICATE KEY UPDATE`.
    OnDuplicateKeyUpdate,
    /// PostgreSQL `ON CONFLICT`.
    OnConflict,
}

/// One `SET column = value` of an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSet {
    /// The column, lower case, without its table qualifier.
    pub column: String,
    /// The table qualifier as written (`o` in `SET o.status = 1`), if any.
    pub qualifier: Option<String>,
    /// The assigned value.
    pub value: ValueRef,
}

/// Analyses an INSERT: its target, rows and (for INSERT ... SELECT) the query's conditions.
/// `known_columns` gives a table's columns in order, for an INSERT into a sharded table
/// that leaves its column list out; with `partial_rows` (PostgreSQL) such rows may give
/// only the table's first columns, all rows as many.
pub(super) fn insert(
    walker: &mut Walker<'_>,
    insert: &Insert,
    known_columns: &dyn Fn(&str) -> Option<Vec<String>>,
    partial_rows: bool,
) -> Result<(InsertInfo, Dnf), AnalyzeError> {
    let TableObject::TableName(name) = &insert.table else {
        return Err(AnalyzeError::unsupported(
            format!("INSERT into table function {}", insert.table),
            "",
        ));
    };
    let table = TableRef::new(name, None, walker.rules);
    walker.add_table(table.clone());
    let mut columns: Vec<String> = insert.columns.iter().map(column_name).collect();
    let mut rows: Vec<Vec<ValueRef>> = Vec::new();
    let mut from_select = false;
    let mut dnf = unconstrained();
    match insert.source.as_deref() {
        Some(query) => match query.body.as_ref() {
            SetExpr::Values(values) => {
                for row in &values.rows {
                    rows.push(
                        row.content
                            .iter()
                            .map(|e| ValueRef::from_expr(e, walker.placeholders))
                            .collect(),
                    );
                }
            }
            _ => {
                from_select = true;
                dnf = walker.query(query);
            }
        },
        None if !insert.assignments.is_empty() => {
            columns = insert
                .assignments
                .iter()
                .flat_map(target_columns)
                .map(|(_, c)| c)
                .collect();
            rows.push(
                insert
                    .assignments
                    .iter()
                    .map(|a| ValueRef::from_expr(&a.value, walker.placeholders))
                    .collect(),
            );
        }
        None => {}
    }
    if table.role == TableRole::Sharded && columns.is_empty() {
        columns = known_columns(&table.name).ok_or_else(|| AnalyzeError::NoColumnList {
            table: table.name.clone(),
        })?;
        if partial_rows {
            if let Some(width) = rows.first().map(Vec::len) {
                if width < columns.len() && rows.iter().all(|r| r.len() == width) {
                    columns.truncate(width);
                }
            }
        }
    }
    if !columns.is_empty() {
        if let Some((row, values)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != columns.len())
        {
            return Err(AnalyzeError::RowWidth {
                table: table.name.clone(),
                row: row + 1,
                values: values.len(),
                columns: columns.len(),
            });
        }
    }
    let upsert = insert.on.as_ref().map(|on| match on {
        OnInsert::DuplicateKeyUpdate(_) => Upsert::OnDuplicateKeyUpdate,
        _ => Upsert::OnConflict,
    });
    let info = InsertInfo {
        table,
        columns,
        rows,
        upsert,
        from_select,
    };
    Ok((info, dnf))
}

/// The `SET` list of an UPDATE. A tuple target (`(a, b) = (SELECT ...)`) gives each column
/// an unknown value.
pub(super) fn update_sets(assignments: &[Assignment], walker: &Walker<'_>) -> Vec<UpdateSet> {
    let mut sets = Vec::new();
    for assignment in assignments {
        let single = matches!(assignment.target, AssignmentTarget::ColumnName(_));
        for (qualifier, column) in target_columns(assignment) {
            let value = if single {
                ValueRef::from_expr(&assignment.value, walker.placeholders)
            } else {
                ValueRef::Unknown
            };
            sets.push(UpdateSet {
                column,
                qualifier,
                value,
            });
        }
    }
    sets
}

/// The assigned values (they may hold subqueries).
pub(super) fn assignment_values(assignments: &[Assignment]) -> Vec<&Expr> {
    assignments.iter().map(|a| &a.value).collect()
}

/// (qualifier, lower-case column) of each assigned column.
fn target_columns(assignment: &Assignment) -> Vec<(Option<String>, String)> {
    let names: Vec<&ObjectName> = match &assignment.target {
        AssignmentTarget::ColumnName(name) => vec![name],
        AssignmentTarget::Tuple(names) => names.iter().collect(),
    };
    names
        .into_iter()
        .map(|name| {
            let parts = &name.0;
            let qualifier = parts.len().checked_sub(2).map(|at| part_text(&parts[at]));
            (qualifier, column_name(name))
        })
        .collect()
}

/// The last part of `name`, lower case.
fn column_name(name: &ObjectName) -> String {
    name.0
        .last()
        .map(part_text)
        .unwrap_or_default()
        .to_lowercase()
}

fn part_text(part: &sqlparser::ast::ObjectNamePart) -> String {
    match part.as_ident() {
        Some(ident) => ident.value.clone(),
        None => part.to_string(),
    }
}

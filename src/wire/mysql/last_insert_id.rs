//! `SELECT LAST_INSERT_ID()` on a sharded database, answered by dbmesh.
//!
//! The id a client means is the one of its own last INSERT, which ran on whatever data
//! nodes its plan named, or was a key dbmesh generated that no backend ever saw as an
//! auto-increment value. Sent to the default data source, the query would answer with that
//! one connection's own last id, usually 0. So the session remembers the last non-zero
//! last-insert-id of the OKs it passed to the client (forwarded from a backend or merged
//! by dbmesh), as the server does for its connection, and answers the plain query itself.
//! Any other use of the function (`LAST_INSERT_ID(expr)`, inside a larger statement, in a
//! prepared statement) still runs on a backend.

use sqlparser::ast::{
    Expr, FunctionArguments, GroupByExpr, SelectItem, SetExpr, Statement, TableFactor,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::frontend::ClientConn;
use super::resultset::{write_text_resultset, ColumnDef, BINARY, TYPE_LONGLONG};

impl ClientConn {
    /// Notes the last-insert-id of an OK the client got: a non-zero one replaces the
    /// session's (zero means the statement generated none, and leaves it alone).
    pub(crate) fn note_last_insert_id(&mut self, id: u64) {
        if id != 0 {
            self.last_insert_id = id;
        }
    }

    /// Answers `sql` when it is `SELECT LAST_INSERT_ID() [[AS] alias]`; false (nothing
    /// sent) for any other statement.
    pub(crate) fn answer_last_insert_id(&mut self, sql: &str) -> bool {
        let Some(name) = last_insert_id_query(sql) else {
            return false;
        };
        let column = ColumnDef {
            name,
            column_type: TYPE_LONGLONG,
            charset: BINARY,
            length: 21,
            flags: 0x0001 | 0x0020 | 0x0080, // NOT_NULL | UNSIGNED | BINARY, as the server
        };
        let status = self.status_flags();
        let format = self.result_format();
        write_text_resultset(
            &mut self.writer,
            &mut self.seq,
            format,
            status,
            &[column],
            &[vec![Some(self.last_insert_id.to_string())]],
        );
        true
    }
}

/// The result column's name when `sql` is exactly `SELECT LAST_INSERT_ID()`, with an
/// optional alias and `FROM DUAL`: the alias, or the call as written.
fn last_insert_id_query(sql: &str) -> Option<String> {
    // Cheap test first: this runs for every statement on a sharded database.
    if sql.len() > 200 || !sql.to_ascii_lowercase().contains("last_insert_id") {
        return None;
    }
    let mut statements = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    let Some(Statement::Query(query)) = statements.pop().filter(|_| statements.is_empty()) else {
        return None;
    };
    if query.with.is_some()
        || query.order_by.is_some()
        || query.limit_clause.is_some()
        || !query.locks.is_empty()
    {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let no_from = match select.from.as_slice() {
        [] => true,
        [from] => {
            from.joins.is_empty()
                && matches!(&from.relation, TableFactor::Table { name, .. }
                    if name.to_string().eq_ignore_ascii_case("dual"))
        }
        _ => false,
    };
    let plain = no_from
        && select.selection.is_none()
        && select.having.is_none()
        && select.distinct.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    let [item] = select.projection.as_slice() else {
        return None;
    };
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(expr) => (expr, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
        _ => return None,
    };
    let Expr::Function(function) = expr else {
        return None;
    };
    let no_args = match &function.args {
        FunctionArguments::None => true,
        FunctionArguments::List(list) => list.args.is_empty(),
        FunctionArguments::Subquery(_) => false,
    };
    let called = function
        .name
        .to_string()
        .eq_ignore_ascii_case("last_insert_id")
        && no_args
        && function.over.is_none()
        && function.filter.is_none();
    (plain && called).then(|| alias.unwrap_or_else(|| expr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::last_insert_id_query;

    #[test]
    fn recognises_the_plain_query_only() {
        for (sql, name) in [
            ("SELECT LAST_INSERT_ID()", "LAST_INSERT_ID()"),
            ("select last_insert_id();", "last_insert_id()"),
            ("SELECT LAST_INSERT_ID() AS id", "id"),
            ("SELECT last_insert_id() `key` FROM DUAL", "key"),
        ] {
            assert_eq!(last_insert_id_query(sql).as_deref(), Some(name), "{sql}");
        }
        for sql in [
            "SELECT LAST_INSERT_ID(5)",
            "SELECT LAST_INSERT_ID(), 1",
            "SELECT LAST_INSERT_ID() FROM t_order",
            "SELECT LAST_INSERT_ID() WHERE 1 = 0",
            "SELECT 1",
            "INSERT INTO t (id) VALUES (LAST_INSERT_ID())",
            "SELECT LAST_INSERT_ID(); SELECT 1",
        ] {
            assert_eq!(last_insert_id_query(sql), None, "{sql}");
        }
    }
}

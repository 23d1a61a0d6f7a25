//! Table renaming: every reference to a logical table becomes the target's actual table.
//!
//! Covered: relations wherever sqlparser's visitor sees one (FROM/JOIN, subqueries, INSERT /
//! UPDATE / DELETE targets, CREATE / ALTER / TRUNCATE TABLE, CREATE INDEX ... ON, DESCRIBE),
//! the table of `SHOW COLUMNS FROM`, the names of a multi-table `DELETE t1, t2 FROM ...`, and
//! qualifiers of column references (`t_order.user_id`), wildcards (`t_order.*`) and
//! assignment targets (`SET t_order.status = 1`). A qualifier that is a table alias is left
//! alone, as the alias is what the query names. A schema qualifier naming the client's own
//! database (the logical database, or on MySQL the default data source's physical one) is
//! dropped; other schema qualifiers are kept.
//!
//! Not covered: a CTE named like a logical table (it is renamed as if it were the table),
//! foreign key `REFERENCES` in CREATE / ALTER TABLE, and table names inside strings.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AssignmentTarget, Expr, Ident, ObjectName, ObjectNamePart, OnInsert, Select, SelectItem,
    SelectItemQualifiedWildcardKind, Statement, VisitMut, VisitorMut,
};

use super::aliases::Aliases;

/// The rename map of one target, looked up case-insensitively without allocating.
pub(crate) struct TableMap<'a> {
    entries: Vec<(&'a str, &'a str)>,
    /// Schema qualifiers that name the client's own database (see [`super::rewrite`]).
    local_schemas: &'a [&'a str],
}

impl<'a> TableMap<'a> {
    pub(crate) fn new(tables: &'a HashMap<String, String>, local_schemas: &'a [&'a str]) -> Self {
        Self {
            entries: tables
                .iter()
                .map(|(l, a)| (l.as_str(), a.as_str()))
                .collect(),
            local_schemas,
        }
    }

    /// The actual table of logical table `name` (any case).
    pub(crate) fn actual(&self, name: &str) -> Option<&'a str> {
        self.entries
            .iter()
            .find(|(logical, _)| logical.eq_ignore_ascii_case(name))
            .map(|(_, actual)| *actual)
    }

    /// The single actual table, when the map has exactly one entry.
    pub(crate) fn only_actual(&self) -> Result<Option<&'a str>, usize> {
        match self.entries.as_slice() {
            [] => Ok(None),
            [(_, actual)] => Ok(Some(actual)),
            more => Err(more.len()),
        }
    }

    fn is_logical_database(&self, ident: &Ident) -> bool {
        self.local_schemas
            .iter()
            .any(|db| db.eq_ignore_ascii_case(&ident.value))
    }

    /// Renames a table name (`t_order`, `shop.t_order`, `other.t_order`) in place, keeping
    /// the quote style. Returns whether it named a logical table.
    pub(crate) fn rename_table(&self, name: &mut ObjectName) -> bool {
        let Some(mut idents) = idents_mut(name) else {
            return false;
        };
        let Some((table, qualifiers)) = idents.split_last_mut() else {
            return false;
        };
        let Some(actual) = self.actual(&table.value) else {
            return false;
        };
        let quote_style = table.quote_style;
        let drop_qualifiers = qualifiers
            .last()
            .is_some_and(|q| self.is_logical_database(q));
        let keep: Vec<Ident> = if actual.contains('.') || drop_qualifiers {
            Vec::new()
        } else {
            qualifiers.iter().map(|q| (*q).clone()).collect()
        };
        name.0 = keep
            .into_iter()
            .chain(actual.split('.').map(|part| Ident {
                value: part.to_string(),
                quote_style,
                span: table.span,
            }))
            .map(ObjectNamePart::Identifier)
            .collect();
        true
    }

    /// Renames the table part of a column qualifier (`t_order` in `t_order.user_id`, or
    /// `shop.t_order`), unless it is an alias. The actual table's own schema is not added:
    /// its bare name qualifies columns in both dialects.
    fn rename_qualifier(&self, qualifier: &mut Vec<Ident>, aliases: &Aliases) {
        let Some(table) = qualifier.last() else {
            return;
        };
        if qualifier.len() == 1 && aliases.contains(&table.value) {
            return;
        }
        let Some(actual) = self.actual(&table.value) else {
            return;
        };
        let bare = actual.rsplit('.').next().unwrap_or(actual);
        let at = qualifier.len() - 1;
        qualifier[at].value = bare.to_string();
        if at >= 1 && self.is_logical_database(&qualifier[at - 1]) {
            qualifier.drain(..at);
        }
    }

    fn rename_qualified_name(&self, name: &mut ObjectName, aliases: &Aliases) {
        let Some(idents) = idents_mut(name) else {
            return;
        };
        let mut qualifier: Vec<Ident> = idents.into_iter().map(|i| i.clone()).collect();
        self.rename_qualifier(&mut qualifier, aliases);
        *name = ObjectName::from(qualifier);
    }
}

/// The identifiers of an object name; `None` when a part is a function.
fn idents_mut(name: &mut ObjectName) -> Option<Vec<&mut Ident>> {
    name.0
        .iter_mut()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(ident),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// Renames every reference the visitor reaches, plus multi-table DELETE names and
/// assignment targets, which it does not.
pub(crate) fn apply(statement: &mut Statement, map: &TableMap<'_>, aliases: &Aliases) {
    match statement {
        Statement::Delete(delete) => {
            for name in &mut delete.tables {
                let is_alias = name.0.len() == 1
                    && name.0[0]
                        .as_ident()
                        .is_some_and(|i| aliases.contains(&i.value));
                if !is_alias {
                    map.rename_table(name);
                }
            }
        }
        Statement::Update(update) => {
            for assignment in &mut update.assignments {
                rename_assignment_target(&mut assignment.target, map, aliases);
            }
        }
        Statement::Insert(insert) => {
            if let Some(OnInsert::DuplicateKeyUpdate(assignments)) = &mut insert.on {
                for assignment in assignments {
                    rename_assignment_target(&mut assignment.target, map, aliases);
                }
            }
        }
        Statement::ShowColumns { show_options, .. } => {
            if let Some(name) = show_options
                .show_in
                .as_mut()
                .and_then(|s| s.parent_name.as_mut())
            {
                map.rename_table(name);
            }
        }
        _ => {}
    }
    let _ = statement.visit(&mut Renamer { map, aliases });
}

fn rename_assignment_target(target: &mut AssignmentTarget, map: &TableMap<'_>, aliases: &Aliases) {
    let names = match target {
        AssignmentTarget::ColumnName(name) => std::slice::from_mut(name),
        AssignmentTarget::Tuple(names) => names.as_mut_slice(),
    };
    for name in names.iter_mut().filter(|n| n.0.len() >= 2) {
        let Some(column) = name.0.pop() else { continue };
        map.rename_qualified_name(name, aliases);
        name.0.push(column);
    }
}

struct Renamer<'m, 'a> {
    map: &'m TableMap<'a>,
    aliases: &'m Aliases,
}

impl VisitorMut for Renamer<'_, '_> {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        self.map.rename_table(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in &mut select.projection {
            if let SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                _,
            ) = item
            {
                self.map.rename_qualified_name(name, self.aliases);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::CompoundIdentifier(idents) if idents.len() >= 2 => {
                let column = idents.pop();
                self.map.rename_qualifier(idents, self.aliases);
                idents.extend(column);
            }
            Expr::QualifiedWildcard(name, _) => self.map.rename_qualified_name(name, self.aliases),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{mysql, postgres};

    #[test]
    fn renames_the_table_of_a_simple_select() {
        assert_eq!(
            mysql("SELECT * FROM t_order WHERE order_id = 1"),
            "SELECT * FROM t_order_0 WHERE order_id = 1"
        );
    }

    #[test]
    fn matches_logical_names_case_insensitively() {
        assert_eq!(mysql("SELECT * FROM T_Order"), "SELECT * FROM t_order_0");
    }

    #[test]
    fn leaves_columns_qualified_by_an_alias_alone() {
        assert_eq!(
            mysql("SELECT o.user_id FROM t_order AS o WHERE o.order_id = 1"),
            "SELECT o.user_id FROM t_order_0 AS o WHERE o.order_id = 1"
        );
        assert_eq!(
            mysql("SELECT t_order.user_id FROM t_order t_order"),
            "SELECT t_order.user_id FROM t_order_0 t_order"
        );
    }

    #[test]
    fn renames_columns_qualified_by_an_unaliased_table() {
        assert_eq!(
            mysql("SELECT t_order.user_id, t_order.* FROM t_order WHERE t_order.order_id = 1 ORDER BY t_order.user_id"),
            "SELECT t_order_0.user_id, t_order_0.* FROM t_order_0 WHERE t_order_0.order_id = 1 ORDER BY t_order_0.user_id"
        );
    }

    #[test]
    fn renames_both_tables_of_a_binding_join() {
        assert_eq!(
            mysql("SELECT i.* FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE o.user_id = 7"),
            "SELECT i.* FROM t_order_0 o JOIN t_order_item_0 i ON o.order_id = i.order_id WHERE o.user_id = 7"
        );
        assert_eq!(
            mysql("SELECT * FROM t_order JOIN t_order_item ON t_order.order_id = t_order_item.order_id"),
            "SELECT * FROM t_order_0 JOIN t_order_item_0 ON t_order_0.order_id = t_order_item_0.order_id"
        );
    }

    #[test]
    fn renames_tables_inside_subqueries() {
        assert_eq!(
            mysql("SELECT * FROM t_order WHERE order_id IN (SELECT order_id FROM t_order_item WHERE t_order_item.status = 'x')"),
            "SELECT * FROM t_order_0 WHERE order_id IN (SELECT order_id FROM t_order_item_0 WHERE t_order_item_0.status = 'x')"
        );
        assert_eq!(
            mysql("SELECT c FROM (SELECT count(*) AS c FROM t_order) AS t WHERE EXISTS (SELECT 1 FROM t_order_item)"),
            "SELECT c FROM (SELECT count(*) AS c FROM t_order_0) AS t WHERE EXISTS (SELECT 1 FROM t_order_item_0)"
        );
    }

    #[test]
    fn leaves_other_tables_alone() {
        assert_eq!(
            mysql("SELECT * FROM t_user u JOIN t_order o ON u.id = o.user_id"),
            "SELECT * FROM t_user u JOIN t_order_0 o ON u.id = o.user_id"
        );
    }

    #[test]
    fn renames_update_targets_and_qualified_assignments() {
        assert_eq!(
            mysql("UPDATE t_order SET t_order.status = 'paid', amount = 2 WHERE t_order.order_id = ?"),
            "UPDATE t_order_0 SET t_order_0.status = 'paid', amount = 2 WHERE t_order_0.order_id = ?"
        );
    }

    #[test]
    fn renames_delete_targets() {
        assert_eq!(
            mysql("DELETE FROM t_order WHERE order_id = 1"),
            "DELETE FROM t_order_0 WHERE order_id = 1"
        );
        assert_eq!(
            mysql("DELETE t_order, i FROM t_order JOIN t_order_item i ON t_order.order_id = i.order_id"),
            "DELETE t_order_0, i FROM t_order_0 JOIN t_order_item_0 i ON t_order_0.order_id = i.order_id"
        );
    }

    #[test]
    fn drops_a_schema_qualifier_equal_to_the_logical_database() {
        assert_eq!(
            mysql("SELECT shop.t_order.user_id FROM shop.t_order"),
            "SELECT t_order_0.user_id FROM t_order_0"
        );
        assert_eq!(
            mysql("SELECT * FROM `SHOP`.`t_order`"),
            "SELECT * FROM `t_order_0`"
        );
    }

    #[test]
    fn drops_every_local_schema_qualifier() {
        let plan = super::super::test_support::renames(&[("t_order", "t_order_1")]);
        let statement = super::super::test_support::parse(
            super::super::Dialect::MySql,
            "SELECT shop_ds_0.t_order.user_id FROM `shop_ds_0`.t_order JOIN shop.t_order_item",
        );
        let sql = super::super::rename_only(
            &statement,
            &plan.tables,
            super::super::Dialect::MySql,
            &["shop", "shop_ds_0"],
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT t_order_1.user_id FROM t_order_1 JOIN shop.t_order_item"
        );
    }

    #[test]
    fn keeps_other_schema_qualifiers() {
        assert_eq!(
            postgres("SELECT * FROM public.t_order WHERE public.t_order.user_id = 1"),
            "SELECT * FROM public.t_order_0 WHERE public.t_order_0.user_id = 1"
        );
    }

    #[test]
    fn writes_an_actual_table_with_a_schema_in_full() {
        let plan = super::super::test_support::renames(&[("t_order", "sales.t_order_1")]);
        let statement = super::super::test_support::parse(
            super::super::Dialect::Postgres,
            "SELECT t_order.user_id FROM public.t_order",
        );
        let sql = super::super::rename_only(
            &statement,
            &plan.tables,
            super::super::Dialect::Postgres,
            &[],
        )
        .unwrap();
        assert_eq!(sql, "SELECT t_order_1.user_id FROM sales.t_order_1");
    }

    #[test]
    fn keeps_mysql_backticks() {
        assert_eq!(
            mysql("SELECT `t_order`.`user_id` FROM `t_order` WHERE `order_id` = ?"),
            "SELECT `t_order_0`.`user_id` FROM `t_order_0` WHERE `order_id` = ?"
        );
    }

    #[test]
    fn keeps_postgres_double_quotes_and_numbered_parameters() {
        assert_eq!(
            postgres(
                r#"SELECT "t_order"."user_id" FROM "t_order" WHERE order_id = $1 AND user_id = $2"#
            ),
            r#"SELECT "t_order_0"."user_id" FROM "t_order_0" WHERE order_id = $1 AND user_id = $2"#
        );
    }

    #[test]
    fn keeps_mysql_question_mark_parameters() {
        assert_eq!(
            mysql("SELECT * FROM t_order WHERE user_id = ? AND order_id IN (?, ?) LIMIT ?"),
            "SELECT * FROM t_order_0 WHERE user_id = ? AND order_id IN (?, ?) LIMIT ?"
        );
    }

    #[test]
    fn renames_insert_targets_and_on_duplicate_key_assignments() {
        assert_eq!(
            mysql("INSERT INTO t_order (order_id, status) VALUES (1, 'a') ON DUPLICATE KEY UPDATE t_order.status = VALUES(status)"),
            "INSERT INTO t_order_0 (order_id, status) VALUES (1, 'a') ON DUPLICATE KEY UPDATE t_order_0.status = VALUES(status)"
        );
    }

    #[test]
    fn renames_postgres_insert_returning() {
        assert_eq!(
            postgres("INSERT INTO t_order AS o (order_id) VALUES ($1) ON CONFLICT (order_id) DO UPDATE SET status = o.status RETURNING o.order_id"),
            "INSERT INTO t_order_0 AS o (order_id) VALUES ($1) ON CONFLICT(order_id) DO UPDATE SET status = o.status RETURNING o.order_id"
        );
    }
}

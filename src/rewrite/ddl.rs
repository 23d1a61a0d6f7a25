//! DDL names the generic walk does not rename: `DROP TABLE` names, and index names.
//!
//! Index names are made unique per actual table the way ShardingSphere does it: logical
//! index `idx` on actual table `t_order_0` is `idx_t_order_0`. PostgreSQL needs this (index
//! names are unique per schema, and all actual tables of a data source may share one); MySQL
//! does not, but the same name on both keeps `DROP INDEX` symmetric. `DROP INDEX idx`
//! without `ON table` (PostgreSQL) takes the table from the plan, which must then map
//! exactly one logical table.
//!
//! On MySQL the indexes a `CREATE TABLE` declares (`KEY idx (...)`, `INDEX`, `UNIQUE KEY`,
//! `FULLTEXT`, `SPATIAL`) and `ALTER TABLE ... ADD INDEX` / `DROP INDEX` are renamed the
//! same way, so an index can be dropped whichever statement created it. An index created
//! without a name is named by the server after its first column, which no rewrite can know:
//! it keeps that name, and a `DROP INDEX` naming it is renamed all the same and fails.
//!
//! Not renamed: PostgreSQL constraint names (ShardingSphere renames those too; not yet
//! here).

use sqlparser::ast::{
    AlterTableOperation, Ident, ObjectName, ObjectNamePart, ObjectType, Statement, TableConstraint,
};

use super::error::RewriteError;
use super::tables::TableMap;
use super::Dialect;

/// Renames DROP TABLE names and index names in place, before the generic walk.
pub(crate) fn apply(
    statement: &mut Statement,
    map: &TableMap<'_>,
    dialect: Dialect,
) -> Result<(), RewriteError> {
    match statement {
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => {
            for name in names {
                map.rename_table(name);
            }
        }
        Statement::Drop {
            object_type: ObjectType::Index,
            names,
            table,
            ..
        } => {
            let actual = match table {
                Some(table) => last_ident(table).and_then(|t| map.actual(&t.value)),
                None => map
                    .only_actual()
                    .map_err(|tables| RewriteError::AmbiguousIndexTable {
                        index: names.first().map(ToString::to_string).unwrap_or_default(),
                        tables,
                    })?,
            };
            if let Some(actual) = actual {
                for name in names {
                    rename_index(name, actual);
                    // PostgreSQL finds an index in its table's schema.
                    if let (Dialect::Postgres, Some((schema, _)), 1) =
                        (dialect, actual.split_once('.'), name.0.len())
                    {
                        let quote_style = last_ident(name).and_then(|i| i.quote_style);
                        name.0.insert(
                            0,
                            ObjectNamePart::Identifier(Ident {
                                value: schema.to_string(),
                                quote_style,
                                span: sqlparser::tokenizer::Span::empty(),
                            }),
                        );
                    }
                }
            }
            if let Some(table) = table {
                map.rename_table(table);
            }
        }
        Statement::CreateIndex(create) => {
            let actual = last_ident(&create.table_name).and_then(|t| map.actual(&t.value));
            if let (Some(name), Some(actual)) = (&mut create.name, actual) {
                rename_index(name, actual);
            }
        }
        Statement::CreateTable(create) if dialect == Dialect::MySql => {
            if let Some(actual) = last_ident(&create.name).and_then(|t| map.actual(&t.value)) {
                for constraint in &mut create.constraints {
                    rename_declared_index(constraint, actual);
                }
            }
        }
        Statement::AlterTable(alter) if dialect == Dialect::MySql => {
            if let Some(actual) = last_ident(&alter.name).and_then(|t| map.actual(&t.value)) {
                for operation in &mut alter.operations {
                    match operation {
                        AlterTableOperation::AddConstraint { constraint, .. } => {
                            rename_declared_index(constraint, actual)
                        }
                        AlterTableOperation::DropIndex { name } => rename_index_ident(name, actual),
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The name of the index a MySQL table constraint declares, renamed for `actual`. A
/// `UNIQUE` index is named by its index name, else by its constraint name.
fn rename_declared_index(constraint: &mut TableConstraint, actual: &str) {
    let name = match constraint {
        TableConstraint::Index(index) => index.name.as_mut(),
        TableConstraint::FulltextOrSpatial(index) => index.opt_index_name.as_mut(),
        TableConstraint::Unique(unique) => unique.index_name.as_mut().or(unique.name.as_mut()),
        _ => None,
    };
    if let Some(name) = name {
        rename_index_ident(name, actual);
    }
}

fn rename_index_ident(index: &mut Ident, actual: &str) {
    let bare = actual.rsplit('.').next().unwrap_or(actual);
    index.value = format!("{}_{bare}", index.value);
}

/// `idx` → `idx_<actual table without schema>`, keeping the quote style.
fn rename_index(name: &mut ObjectName, actual: &str) {
    let bare = actual.rsplit('.').next().unwrap_or(actual);
    if let Some(ObjectNamePart::Identifier(index)) = name.0.last_mut() {
        rename_index_ident(index, bare);
    }
}

fn last_ident(name: &ObjectName) -> Option<&Ident> {
    name.0.last().and_then(ObjectNamePart::as_ident)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{mysql, parse, postgres, renames};
    use super::super::{rename_only, Dialect, RewriteError};

    #[test]
    fn renames_create_table() {
        assert_eq!(
            mysql("CREATE TABLE IF NOT EXISTS t_order (order_id BIGINT NOT NULL, user_id INT, PRIMARY KEY (order_id))"),
            "CREATE TABLE IF NOT EXISTS t_order_0 (order_id BIGINT NOT NULL, user_id INT, PRIMARY KEY (order_id))"
        );
        assert_eq!(
            postgres(r#"CREATE TABLE "t_order" (order_id BIGINT PRIMARY KEY)"#),
            r#"CREATE TABLE "t_order_0" (order_id BIGINT PRIMARY KEY)"#
        );
    }

    #[test]
    fn renames_alter_table() {
        assert_eq!(
            mysql("ALTER TABLE t_order ADD COLUMN note VARCHAR(10)"),
            "ALTER TABLE t_order_0 ADD COLUMN note VARCHAR(10)"
        );
    }

    #[test]
    fn renames_every_table_of_drop_table() {
        assert_eq!(
            mysql("DROP TABLE IF EXISTS t_order, shop.t_order_item, t_user"),
            "DROP TABLE IF EXISTS t_order_0, t_order_item_0, t_user"
        );
    }

    #[test]
    fn renames_truncate_table() {
        assert_eq!(mysql("TRUNCATE TABLE t_order"), "TRUNCATE TABLE t_order_0");
        assert_eq!(postgres("TRUNCATE t_order"), "TRUNCATE t_order_0");
    }

    #[test]
    fn names_a_created_index_after_its_actual_table() {
        assert_eq!(
            mysql("CREATE INDEX idx_user ON t_order (user_id)"),
            "CREATE INDEX idx_user_t_order_0 ON t_order_0(user_id)"
        );
        assert_eq!(
            postgres(r#"CREATE UNIQUE INDEX "Idx" ON t_order (user_id)"#),
            r#"CREATE UNIQUE INDEX "Idx_t_order_0" ON t_order_0(user_id)"#
        );
    }

    #[test]
    fn names_a_dropped_index_after_its_actual_table() {
        assert_eq!(
            mysql("DROP INDEX idx_user ON t_order"),
            "DROP INDEX idx_user_t_order_0 ON t_order_0"
        );
        let plan = renames(&[("t_order", "t_order_1")]);
        let statement = parse(Dialect::Postgres, "DROP INDEX IF EXISTS idx_user");
        assert_eq!(
            rename_only(&statement, &plan.tables, Dialect::Postgres, &[]).unwrap(),
            "DROP INDEX IF EXISTS idx_user_t_order_1"
        );
    }

    #[test]
    fn names_the_indexes_a_mysql_create_table_declares_after_its_actual_table() {
        assert_eq!(
            mysql("CREATE TABLE t_order (order_id BIGINT PRIMARY KEY, user_id INT, note TEXT, KEY idx_user (user_id), UNIQUE KEY uk_note (note(10)), CONSTRAINT c_user UNIQUE (user_id, order_id), FULLTEXT INDEX ft (note), INDEX (note(5)))"),
            "CREATE TABLE t_order_0 (order_id BIGINT PRIMARY KEY, user_id INT, note TEXT, KEY idx_user_t_order_0 (user_id), UNIQUE KEY uk_note_t_order_0 (note(10)), CONSTRAINT c_user_t_order_0 UNIQUE (user_id, order_id), FULLTEXT INDEX ft_t_order_0 (note), INDEX (note(5)))"
        );
        // PostgreSQL constraints are left as they are.
        assert_eq!(
            postgres("CREATE TABLE t_order (a INT, CONSTRAINT c UNIQUE (a))"),
            "CREATE TABLE t_order_0 (a INT, CONSTRAINT c UNIQUE (a))"
        );
    }

    #[test]
    fn names_indexes_added_and_dropped_by_mysql_alter_table_after_the_actual_table() {
        assert_eq!(
            mysql("ALTER TABLE t_order ADD INDEX idx_amount (amount), DROP INDEX idx_user, ADD UNIQUE KEY uk (note)"),
            "ALTER TABLE t_order_0 ADD INDEX idx_amount_t_order_0 (amount), DROP INDEX idx_user_t_order_0, ADD UNIQUE KEY uk_t_order_0 (note)"
        );
    }

    #[test]
    fn qualifies_a_dropped_postgres_index_with_the_actual_schema() {
        let plan = renames(&[("t_order", "sales.t_order_1")]);
        let statement = parse(Dialect::Postgres, "DROP INDEX idx_user");
        assert_eq!(
            rename_only(&statement, &plan.tables, Dialect::Postgres, &[]).unwrap(),
            "DROP INDEX sales.idx_user_t_order_1"
        );
    }

    #[test]
    fn refuses_a_tableless_drop_index_with_several_tables() {
        let statement = parse(Dialect::Postgres, "DROP INDEX idx_user");
        let plan = renames(&[("t_order", "t_order_1"), ("t_order_item", "t_order_item_1")]);
        assert!(matches!(
            rename_only(&statement, &plan.tables, Dialect::Postgres, &[]),
            Err(RewriteError::AmbiguousIndexTable { tables: 2, .. })
        ));
    }
}

//! DDL names the generic walk does not rename: `DROP TABLE` names, and index names.
//!
//! Index names are made unique per actual table the way ShardingSphere does it: logical
//! index `idx` on actual table `t_order_0` is `idx_t_order_0`. PostgreSQL needs this (index
//! names are unique per schema, and all actual tables of a data source may share one); MySQL
//! does not, but the same name on both keeps `DROP INDEX` symmetric. `DROP INDEX idx`
//! without `ON table` (PostgreSQL) takes the table from the plan, which must then map
//! exactly one logical table.
//!
//! Not renamed: indexes declared inside CREATE TABLE or ALTER TABLE ... ADD INDEX, and
//! constraint names (ShardingSphere renames those too; not yet here).

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, ObjectType, Statement};

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
        _ => {}
    }
    Ok(())
}

/// `idx` → `idx_<actual table without schema>`, keeping the quote style.
fn rename_index(name: &mut ObjectName, actual: &str) {
    let bare = actual.rsplit('.').next().unwrap_or(actual);
    if let Some(ObjectNamePart::Identifier(index)) = name.0.last_mut() {
        index.value = format!("{}_{bare}", index.value);
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

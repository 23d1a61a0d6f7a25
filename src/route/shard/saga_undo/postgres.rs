//! The PostgreSQL side of SAGA undo planning (see the parent module): the table's shape
//! from the catalogs, and compensations written as typed literals under the settings the
//! before-image was read with.

use super::{has, refuse, TableShape, UndoPlan};
use crate::error::Error;
use crate::route::shard::row_move::quote_ident;
use crate::sql::analyze::Dialect;

impl TableShape {
    /// PostgreSQL: the catalog query whose rows [`from_pg_columns`](Self::from_pg_columns)
    /// reads, for `table` as the statement names it (quoted or schema-qualified alike:
    /// `regclass` parses it as SQL does). Per column in table order: name, type, position
    /// in the primary key, generated (`s`), identity (`a` / `d`).
    pub fn pg_columns_sql(table: &str) -> String {
        format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), \
             (SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i \
              WHERE i.indrelid = a.attrelid AND i.indisprimary), \
             a.attgenerated, a.attidentity \
             FROM pg_attribute a WHERE a.attrelid = {}::regclass \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            pg_string(table)
        )
    }

    pub fn from_pg_columns(rows: &[Vec<Option<String>>]) -> TableShape {
        let mut shape = TableShape::empty(Dialect::Postgres);
        let mut key: Vec<(u32, String)> = Vec::new();
        for row in rows {
            let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let name = get(0);
            if name.is_empty() || !get(3).is_empty() {
                continue;
            }
            if let Ok(position) = get(2).parse::<u32>() {
                key.push((position, name.clone()));
            }
            if get(4) == "a" {
                shape.identity_always.push(name.clone());
            }
            shape.columns.push(name);
            shape.types.push(get(1));
        }
        key.sort();
        shape.primary_key = key.into_iter().map(|(_, k)| k).collect();
        shape
    }
}

/// The session settings a PostgreSQL before-image is read with, and its undo run under.
pub(super) const PG_SETTINGS: [&str; 3] = ["DateStyle", "IntervalStyle", "TimeZone"];

/// `value` as a PostgreSQL string literal whatever `standard_conforming_strings` is.
pub(super) fn pg_string(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}
impl UndoPlan {
    /// PostgreSQL: [`undo_from_image`](Self::undo_from_image), each row being the
    /// columns' text and then the [`PG_SETTINGS`] it was read under. The undo sets those
    /// settings for its own transaction, then restores the rows.
    pub(super) fn pg_undo_from_image(
        &self,
        shape: &TableShape,
        rows: &[Vec<Option<String>>],
    ) -> Result<Vec<String>, Error> {
        let table = self.table();
        let width = shape.columns.len();
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        if let Some(row) = rows.iter().find(|r| r.len() != width + PG_SETTINGS.len()) {
            return Err(refuse(format!(
                "a write to `{table}` whose before-image came back with {} columns (the table has {width})",
                row.len().saturating_sub(PG_SETTINGS.len()),
            )));
        }
        let settings: Vec<String> = PG_SETTINGS
            .iter()
            .zip(&first[width..])
            .map(|(name, value)| {
                format!(
                    "SET LOCAL {name} = {}; ",
                    pg_string(value.as_deref().unwrap_or_default())
                )
            })
            .collect();
        let settings = settings.concat();
        let value = |i: usize, v: &Option<String>| match v {
            None => "NULL".to_string(),
            Some(v) => format!("{}::{}", pg_string(v), shape.types[i]),
        };
        let q = |c: &str| quote_ident(c, Dialect::Postgres);
        match self {
            UndoPlan::Update { .. } => Ok(rows
                .iter()
                .filter_map(|row| {
                    let mut sets = Vec::new();
                    let mut keys = Vec::new();
                    for (i, c) in shape.columns.iter().enumerate() {
                        let v = value(i, &row[i]);
                        if has(&shape.primary_key, c) {
                            keys.push(format!("{} = {v}", q(c)));
                        } else if !has(&shape.identity_always, c) {
                            // Every column, not only those assigned: triggers change
                            // more than the UPDATE names.
                            sets.push(format!("{} = {v}", q(c)));
                        }
                    }
                    (!sets.is_empty()).then(|| {
                        format!(
                            "{settings}UPDATE {table} SET {} WHERE {}",
                            sets.join(", "),
                            keys.join(" AND ")
                        )
                    })
                })
                .collect()),
            UndoPlan::Delete { .. } => {
                let names: Vec<String> = shape.columns.iter().map(|c| q(c)).collect();
                let values: Vec<String> = rows
                    .iter()
                    .map(|row| {
                        let v: Vec<String> = (0..width).map(|i| value(i, &row[i])).collect();
                        format!("({})", v.join(", "))
                    })
                    .collect();
                let overriding = if shape.identity_always.is_empty() {
                    ""
                } else {
                    " OVERRIDING SYSTEM VALUE"
                };
                let keys: Vec<String> = shape.primary_key.iter().map(|c| q(c)).collect();
                let sets: Vec<String> = shape
                    .columns
                    .iter()
                    .filter(|c| !has(&shape.primary_key, c))
                    .map(|c| format!("{0} = EXCLUDED.{0}", q(c)))
                    .collect();
                // Idempotent: a row put back already (or never deleted) is set again.
                let conflict = if sets.is_empty() {
                    "DO NOTHING".to_string()
                } else {
                    format!("DO UPDATE SET {}", sets.join(", "))
                };
                Ok(vec![format!(
                    "{settings}INSERT INTO {table} ({}){overriding} VALUES {} ON CONFLICT ({}) {conflict}",
                    names.join(", "),
                    values.join(", "),
                    keys.join(", ")
                )])
            }
            UndoPlan::Insert { .. } => Ok(Vec::new()),
        }
    }

    /// PostgreSQL: the INSERT `sql` asking for its rows' primary keys back.
    pub fn returning_sql(&self, sql: &str, shape: &TableShape) -> String {
        let keys: Vec<String> = shape
            .primary_key
            .iter()
            .map(|c| quote_ident(c, Dialect::Postgres))
            .collect();
        // On a line of its own: a trailing `--` comment cannot swallow it.
        format!(
            "{}\nRETURNING {}",
            sql.trim_end().trim_end_matches(';'),
            keys.join(", ")
        )
    }

    /// PostgreSQL: the compensation of an INSERT whose `RETURNING` gave `keys` (text, in
    /// primary key order).
    pub fn undo_returned_insert(
        &self,
        shape: &TableShape,
        keys: &[Vec<Option<String>>],
    ) -> Option<String> {
        if keys.is_empty() {
            return None;
        }
        let rows: Vec<String> = keys
            .iter()
            .map(|key| {
                let parts: Vec<String> = shape
                    .primary_key
                    .iter()
                    .zip(key)
                    .map(|(c, v)| {
                        let i = shape.columns.iter().position(|x| x == c).unwrap_or(0);
                        let ty = shape.types.get(i).map(String::as_str).unwrap_or("text");
                        match v {
                            Some(v) => format!(
                                "{} = {}::{ty}",
                                quote_ident(c, Dialect::Postgres),
                                pg_string(v)
                            ),
                            None => "FALSE".to_string(),
                        }
                    })
                    .collect();
                format!("({})", parts.join(" AND "))
            })
            .collect();
        Some(format!(
            "DELETE FROM {} WHERE {}",
            self.table(),
            rows.join(" OR ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan_undo;
    use super::*;

    fn pg_shape() -> TableShape {
        let row = |f: &str, t: &str, k: &str, g: &str, i: &str| {
            [f, t, k, g, i]
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .to_vec()
        };
        TableShape::from_pg_columns(&[
            row("id", "bigint", "1", "", "a"),
            row("note", "text", "", "", ""),
            row("at", "timestamp with time zone", "", "", ""),
            row("twice", "bigint", "", "s", ""),
        ])
    }

    #[test]
    fn postgres_catalog_rows_give_the_shape() {
        let shape = pg_shape();
        assert_eq!(shape.columns, vec!["id", "note", "at"]);
        assert_eq!(
            shape.types,
            vec!["bigint", "text", "timestamp with time zone"]
        );
        assert_eq!(shape.primary_key, vec!["id"]);
        assert_eq!(shape.identity_always, vec!["id"]);
        assert!(TableShape::pg_columns_sql("it's").contains("E'it''s'::regclass"));
    }

    #[test]
    fn postgres_undo_casts_literals_under_the_settings_read() {
        let shape = pg_shape();
        let plan = plan_undo(
            "UPDATE t_1 SET note = $$x$$ WHERE id = 7",
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(
            plan.before_image_sql(&shape).unwrap(),
            "SELECT \"id\", \"note\", \"at\", current_setting('DateStyle'), current_setting('IntervalStyle'), current_setting('TimeZone') FROM t_1 WHERE id = 7 FOR UPDATE"
        );
        let s = |v: &str| Some(v.to_string());
        let image = vec![
            s("7"),
            s("it's a \\ back"),
            None,
            s("ISO, MDY"),
            s("postgres"),
            s("UTC"),
        ];
        let set = "SET LOCAL DateStyle = E'ISO, MDY'; SET LOCAL IntervalStyle = E'postgres'; SET LOCAL TimeZone = E'UTC'; ";
        assert_eq!(
            plan.undo_from_image(&shape, std::slice::from_ref(&image)).unwrap(),
            vec![format!("{set}UPDATE t_1 SET \"note\" = E'it''s a \\\\ back'::text, \"at\" = NULL WHERE \"id\" = E'7'::bigint")]
        );
        let delete = plan_undo("DELETE FROM t_1 WHERE id = 7", Dialect::Postgres).unwrap();
        assert_eq!(
            delete.undo_from_image(&shape, &[image]).unwrap(),
            vec![format!("{set}INSERT INTO t_1 (\"id\", \"note\", \"at\") OVERRIDING SYSTEM VALUE VALUES (E'7'::bigint, E'it''s a \\\\ back'::text, NULL) ON CONFLICT (\"id\") DO UPDATE SET \"note\" = EXCLUDED.\"note\", \"at\" = EXCLUDED.\"at\"")]
        );
        let insert = plan_undo("INSERT INTO t_1 (note) SELECT 'a'", Dialect::Postgres).unwrap();
        insert.check(&shape, "t").unwrap();
        assert_eq!(
            insert.returning_sql("INSERT INTO t_1 (note) SELECT 'a'; ", &shape),
            "INSERT INTO t_1 (note) SELECT 'a'\nRETURNING \"id\""
        );
        assert_eq!(
            insert
                .undo_returned_insert(&shape, &[vec![s("1")], vec![s("2")]])
                .unwrap(),
            "DELETE FROM t_1 WHERE (\"id\" = E'1'::bigint) OR (\"id\" = E'2'::bigint)"
        );
        for sql in [
            "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
            "INSERT INTO t (id) VALUES (1) RETURNING id",
            "UPDATE t SET a = 1 FROM u WHERE t.id = u.id",
            "DELETE FROM t USING u WHERE t.id = u.id",
            "UPDATE t SET a = 1 RETURNING a",
        ] {
            let e = plan_undo(sql, Dialect::Postgres).unwrap_err();
            assert!(matches!(e, Error::NotSupported(_)), "{sql}: {e:?}");
        }
    }
}

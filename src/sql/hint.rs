//! Routing hints in comments, read before parsing (sqlparser drops comments).
//!
//! # Grammar
//! A hint is a block comment whose text, after leading spaces, starts with `dbmesh:`
//! (case-insensitive), followed by items separated by commas and/or whitespace:
//!
//! ```text
//! hint  := "/*" space* "dbmesh:" item ( ("," | space)+ item )* space* "*/"
//! item  := "primary"                      -- read from the primary (read/write split)
//!        | key "=" value                  -- a key/value pair
//! key   := [A-Za-z_][A-Za-z0-9_.]*        -- case-insensitive, stored lower case
//! value := bare | "'" text "'"            -- bare: up to the next comma, space or "*/"
//! ```
//!
//! Known keys: `data_source` (route to this data source), `table` (this actual table);
//! every other pair (e.g. `sharding_value=42`) is kept for HINT algorithms. Examples:
//! `/* dbmesh: data_source=ds_1, table=t_order_1 */`, `/* dbmesh: primary */`,
//! `/* dbmesh: sharding_value=42 */`.
//!
//! Comments anywhere in the statement count, but not text inside string literals or quoted
//! identifiers, nor `-- ` / `#` line comments, nor MySQL's executable `/*! */`. Several
//! hint comments merge, the later winning a key. Malformed items (`=1`, `key=`) are
//! skipped; a hint comment with no valid item is no hint.

use crate::route::algorithms::ShardingValues;

/// What a `/* dbmesh: ... */` comment asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint {
    /// `data_source=...`: route to this data source only.
    pub data_source: Option<String>,
    /// `table=...`: use this actual table.
    pub table: Option<String>,
    /// `primary`: read from the primary, not a replica.
    pub primary: bool,
    /// Every other `key=value`, keys lower case, in order (a repeated key replaced in place).
    pub values: Vec<(String, String)>,
}

impl Hint {
    /// The value of another key (any case), e.g. `sharding_value`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The other pairs as values for HINT algorithms (integers when they read as one).
    pub fn sharding_values(&self) -> ShardingValues {
        let mut values = ShardingValues::new();
        for (key, value) in &self.values {
            values.insert(
                key,
                crate::route::algorithms::ShardingValue::from_hint(value),
            );
        }
        values
    }

    fn set(&mut self, key: String, value: String) {
        match key.as_str() {
            "data_source" => self.data_source = Some(value),
            "table" => self.table = Some(value),
            _ => match self.values.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => self.values.push((key, value)),
            },
        }
    }
}

/// The hint in `sql`'s comments, if any.
pub fn parse_hint(sql: &str) -> Option<Hint> {
    let mut hint = Hint::default();
    let mut found = false;
    for body in block_comments(sql) {
        let body = body.trim_start();
        let Some(prefix) = body.get(..7) else {
            continue;
        };
        if prefix.eq_ignore_ascii_case("dbmesh:") {
            found |= parse_items(&body[7..], &mut hint);
        }
    }
    found.then_some(hint)
}

/// Parses the items of one hint comment into `hint`; whether any was valid.
fn parse_items(text: &str, hint: &mut Hint) -> bool {
    let mut any = false;
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return any;
        }
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let key = rest[..key_len].to_ascii_lowercase();
        rest = rest[key_len..].trim_start();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, remaining) = match after.strip_prefix('\'') {
                Some(quoted) => match quoted.find('\'') {
                    Some(end) => (&quoted[..end], &quoted[end + 1..]),
                    None => (quoted, ""),
                },
                None => {
                    let end = after
                        .find(|c: char| c == ',' || c.is_whitespace())
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            rest = remaining;
            let valid_key = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            if valid_key && !value.is_empty() {
                hint.set(key, value.to_string());
                any = true;
            }
        } else if key == "primary" {
            hint.primary = true;
            any = true;
        } else if key.is_empty() {
            // Skip one unexpected character.
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            rest = &rest[skip..];
        }
    }
}

/// The bodies of the `/* */` comments of `sql`, skipping quoted text and line comments.
fn block_comments(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes[i..].starts_with(b"--") => i = line_end(sql, i),
            b'#' => i = line_end(sql, i),
            b'/' if bytes[i..].starts_with(b"/*") => {
                let end = sql[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e);
                if !bytes[i..].starts_with(b"/*!") {
                    out.push(&sql[i + 2..end]);
                }
                i = end + 2;
            }
            _ => i += 1,
        }
    }
    out
}

/// The index just past the end of the line starting at `from`.
fn line_end(sql: &str, from: usize) -> usize {
    sql[from..].find('\n').map_or(sql.len(), |e| from + e + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::algorithms::ShardingValue;

    #[test]
    fn reads_data_source_and_table() {
        let hint = parse_hint("/* dbmesh: data_source=ds_1, table=t_order_1 */ SELECT 1").unwrap();
        assert_eq!(hint.data_source.as_deref(), Some("ds_1"));
        assert_eq!(hint.table.as_deref(), Some("t_order_1"));
        assert!(!hint.primary);
        assert!(hint.values.is_empty());
    }

    #[test]
    fn reads_primary_flag() {
        let hint = parse_hint("SELECT * FROM t /*dbmesh:primary*/").unwrap();
        assert!(hint.primary);
        assert_eq!(hint.data_source, None);
    }

    #[test]
    fn keeps_other_pairs_for_hint_algorithms() {
        let hint = parse_hint("/* DBMESH: Sharding_Value=42 region='eu west' */ SELECT 1").unwrap();
        assert_eq!(hint.value("sharding_value"), Some("42"));
        assert_eq!(hint.value("REGION"), Some("eu west"));
        let values = hint.sharding_values();
        assert_eq!(values.get("sharding_value"), Some(&ShardingValue::Int(42)));
    }

    #[test]
    fn merges_several_hint_comments_later_winning() {
        let hint = parse_hint("/* dbmesh: data_source=ds_0, k=1 */ SELECT /* dbmesh: data_source=ds_1 k=2 primary */ 1")
            .unwrap();
        assert_eq!(hint.data_source.as_deref(), Some("ds_1"));
        assert_eq!(hint.values, vec![("k".to_string(), "2".to_string())]);
        assert!(hint.primary);
    }

    #[test]
    fn ignores_comments_that_are_not_hints() {
        assert_eq!(parse_hint("SELECT 1"), None);
        assert_eq!(parse_hint("/* plain comment */ SELECT 1"), None);
        assert_eq!(parse_hint("/*+ INDEX(t idx) */ SELECT 1"), None);
        assert_eq!(parse_hint("/*!40101 dbmesh: primary */ SELECT 1"), None);
        assert_eq!(parse_hint("-- /* dbmesh: primary */\nSELECT 1"), None);
        assert_eq!(parse_hint("# /* dbmesh: primary */\nSELECT 1"), None);
    }

    #[test]
    fn ignores_hint_text_inside_string_literals() {
        assert_eq!(parse_hint("SELECT '/* dbmesh: primary */'"), None);
        assert_eq!(parse_hint("SELECT 'it''s /* dbmesh: primary */'"), None);
        assert_eq!(parse_hint(r"SELECT 'a\' /* dbmesh: primary */'"), None);
        assert_eq!(parse_hint("SELECT `/* dbmesh: primary */`"), None);
        assert!(parse_hint("SELECT 'x' /* dbmesh: primary */").is_some());
    }

    #[test]
    fn skips_malformed_items() {
        let hint = parse_hint("/* dbmesh: =5, data_source=, table=t_1, ?? */ SELECT 1").unwrap();
        assert_eq!(hint.table.as_deref(), Some("t_1"));
        assert_eq!(hint.data_source, None);
        assert_eq!(parse_hint("/* dbmesh: = , */ SELECT 1"), None);
    }

    #[test]
    fn unterminated_comment_still_reads() {
        let hint = parse_hint("SELECT 1 /* dbmesh: data_source=ds_0").unwrap();
        assert_eq!(hint.data_source.as_deref(), Some("ds_0"));
    }
}

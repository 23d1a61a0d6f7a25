//! From TOML text to raw sections: syntax errors, unknown keys and type
//! errors, each reported with its line.
//!
//! The document is deserialized section by section (`[server]`, each user,
//! each database, each data source) so that a wrong type in one place does
//! not hide problems elsewhere; unknown keys are all reported and then
//! dropped before serde sees them.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::{child_key, index_key, Report};
use super::field_names::field_names;
use super::raw::{RawDataSource, RawDatabase, RawServer, RawTransaction, RawUser};

/// Keys allowed at the top of the file.
const ROOT_KEYS: &[&str] = &["server", "transaction", "users", "databases"];

/// A config file split into its sections, each deserialized on its own.
pub(super) struct Document {
    /// `[server]`, if the file has one.
    pub server: Option<Section<RawServer>>,
    /// `[transaction]`, if the file has one.
    pub transaction: Option<Section<RawTransaction>>,
    /// `[[users]]`, in file order.
    pub users: Vec<Section<RawUser>>,
    /// `[databases.<name>]`, by name.
    pub databases: Vec<DatabaseSection>,
}

/// One table of the file and, if it deserialized, its contents.
pub(super) struct Section<T> {
    /// Key path, e.g. `databases.shop` or `users[0]`.
    pub key: String,
    /// Where the table is named (its header, or its first key).
    pub span: Range<usize>,
    /// `None` when the table had a problem serde could not get past (already reported).
    pub raw: Option<T>,
}

/// A `[databases.<name>]` table together with its data sources.
pub(super) struct DatabaseSection {
    pub name: String,
    pub section: Section<RawDatabase>,
    /// Data sources by name, in name order.
    pub data_sources: Vec<(String, Section<RawDataSource>)>,
}

/// Splits `text` into sections; `None` when it is not valid TOML at all
/// (every syntax error is reported).
pub(super) fn read(text: &str, report: &mut Report) -> Option<Document> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            report.at(
                error.span(),
                "",
                format!("invalid TOML: {}", error.message()),
            );
        }
        return None;
    }
    let mut root = root.into_inner();
    strip_unknown_keys(&mut root, ROOT_KEYS, "", report);

    let server = root
        .remove_entry("server")
        .map(|(key, value)| section::<RawServer>("server".into(), key.span(), value, report));

    let transaction = root.remove_entry("transaction").map(|(key, value)| {
        section::<RawTransaction>("transaction".into(), key.span(), value, report)
    });

    let users = match root.remove_entry("users") {
        None => Vec::new(),
        Some((key, value)) => {
            let span = value.span();
            match value.into_inner() {
                DeValue::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let item_span = item.span();
                        section::<RawUser>(index_key("users", i), item_span, item, report)
                    })
                    .collect(),
                other => {
                    let message = format!(
                        "expected [[users]] tables (an array), found {}",
                        other.type_str()
                    );
                    report.at(Some(key.span().start..span.end), "users", message);
                    Vec::new()
                }
            }
        }
    };

    let databases = match root.remove_entry("databases") {
        None => Vec::new(),
        Some((_, value)) => match table(value, "databases", report) {
            None => Vec::new(),
            Some(tables) => tables
                .into_iter()
                .map(|(name, value)| database(name, value, report))
                .collect(),
        },
    };

    Some(Document {
        server,
        transaction,
        users,
        databases,
    })
}

fn database(
    name: Spanned<std::borrow::Cow<'_, str>>,
    value: Spanned<DeValue<'_>>,
    report: &mut Report,
) -> DatabaseSection {
    let key = child_key("databases", name.get_ref());
    let span = name.span();
    let mut value = value;
    let mut data_sources = Vec::new();
    if let DeValue::Table(table_value) = value.get_mut() {
        strip_unknown_keys(table_value, field_names::<RawDatabase>(), &key, report);
        if let Some((_, sources)) = table_value.remove_entry("data_sources") {
            let sources_key = child_key(&key, "data_sources");
            if let Some(sources) = table(sources, &sources_key, report) {
                for (ds_name, ds_value) in sources {
                    let ds_key = child_key(&sources_key, ds_name.get_ref());
                    let ds = section::<RawDataSource>(ds_key, ds_name.span(), ds_value, report);
                    data_sources.push((ds_name.get_ref().to_string(), ds));
                }
            }
        }
    }
    DatabaseSection {
        name: name.get_ref().to_string(),
        section: section::<RawDatabase>(key, span, value, report),
        data_sources,
    }
}

/// Deserializes one table into `T`, reporting unknown keys and type errors.
pub(super) fn section<T: DeserializeOwned>(
    key: String,
    span: Range<usize>,
    mut value: Spanned<DeValue<'_>>,
    report: &mut Report,
) -> Section<T> {
    let DeValue::Table(table) = value.get_mut() else {
        let message = format!("expected a table, found {}", value.get_ref().type_str());
        report.at(Some(value.span()), key.clone(), message);
        return Section {
            key,
            span,
            raw: None,
        };
    };
    strip_unknown_keys(table, field_names::<T>(), &key, report);
    // Remember where each key is, to name the key a serde error points into.
    let children: Vec<(String, Range<usize>)> = table
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), k.span().start..v.span().end))
        .collect();
    let raw = match T::deserialize(ValueDeserializer::from(value)) {
        Ok(raw) => Some(raw),
        Err(error) => {
            let error_key = error
                .span()
                .and_then(|at| {
                    children
                        .iter()
                        .find(|(_, range)| range.contains(&at.start))
                        .map(|(child, _)| child_key(&key, child))
                })
                .unwrap_or_else(|| key.clone());
            report.at(
                error.span().or(Some(span.clone())),
                error_key,
                error.message(),
            );
            None
        }
    };
    Section { key, span, raw }
}

/// The entries of a table-valued key, or `None` (reported) if it is not a table.
pub(super) fn table<'i>(
    value: Spanned<DeValue<'i>>,
    key: &str,
    report: &mut Report,
) -> Option<DeTable<'i>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(table) => Some(table),
        other => {
            report.at(
                Some(span),
                key,
                format!("expected a table, found {}", other.type_str()),
            );
            None
        }
    }
}

/// Reports every key of `table` not in `expected`, then removes it.
pub(super) fn strip_unknown_keys(
    table: &mut DeTable<'_>,
    expected: &[&str],
    path: &str,
    report: &mut Report,
) {
    let unknown: Vec<(String, Range<usize>)> = table
        .iter()
        .filter(|(k, _)| !expected.contains(&k.get_ref().as_ref()))
        .map(|(k, _)| (k.get_ref().to_string(), k.span()))
        .collect();
    for (key, span) in unknown {
        report.at(
            Some(span),
            child_key(path, &key),
            unknown_key_message(&key, expected),
        );
        table.remove(key.as_str());
    }
}

fn unknown_key_message(key: &str, expected: &[&str]) -> String {
    let suggestion = expected
        .iter()
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min()
        .map(|(_, candidate)| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default();
    format!(
        "unknown key `{key}`{suggestion}; allowed keys here: {}",
        expected.join(", ")
    )
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_known_key() {
        let message = unknown_key_message("max_conections", &["url", "max_connections"]);
        assert!(
            message.starts_with("unknown key `max_conections` (did you mean `max_connections`?)")
        );
        let message = unknown_key_message("shards", &["url", "max_connections"]);
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}

//! From rule-file TOML to raw sections: syntax errors, unknown keys (also inside inline
//! strategy tables and per algorithm type) and value types, each reported with its line.

use std::borrow::Cow;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::super::document::{section, strip_unknown_keys, table, Section};
use super::super::error::{child_key, Report};
use super::super::field_names::field_names;
use super::raw::{RawKeyGen, RawStrategy, RawTable};
use crate::route::algorithms::{algorithm_properties, Properties, PropertyValue};
use crate::route::keygen::KeyGeneratorConfig;

/// Keys allowed at the top of a rule file.
const ROOT_KEYS: &[&str] = &[
    "binding_tables",
    "broadcast_tables",
    "tables",
    "algorithms",
    "key_generators",
];

/// A rule file split into its sections.
pub(super) struct RulesDocument {
    /// `binding_tables = [[...], ...]`, each name with its place.
    pub binding_tables: Vec<Vec<Spanned<String>>>,
    /// `broadcast_tables = [...]`.
    pub broadcast_tables: Vec<Spanned<String>>,
    /// `[tables.<name>]`, in file order.
    pub tables: Vec<(String, Section<RawTable>)>,
    /// `[algorithms.<name>]`.
    pub algorithms: Vec<PropertiesSection>,
    /// `[key_generators.<name>]`.
    pub key_generators: Vec<PropertiesSection>,
}

/// An `[algorithms.<name>]` or `[key_generators.<name>]` table: a `type` and properties.
pub(super) struct PropertiesSection {
    pub name: String,
    /// Key path, e.g. `algorithms.order_mod`.
    pub key: String,
    /// Where the name is.
    pub span: Range<usize>,
    /// `type = "..."`, when present and a string (otherwise already reported).
    pub kind: Option<Spanned<String>>,
    /// The other keys, unknown ones already reported and dropped.
    pub properties: Properties,
    /// Where each property is, to place problems.
    pub property_spans: Vec<(String, Range<usize>)>,
}

impl PropertiesSection {
    /// Where property `name` is written, or the section's name.
    pub fn span_of(&self, property: Option<&str>) -> (Range<usize>, String) {
        property
            .and_then(|p| self.property_spans.iter().find(|(n, _)| n == p))
            .map(|(n, span)| (span.clone(), child_key(&self.key, n)))
            .unwrap_or_else(|| (self.span.clone(), self.key.clone()))
    }
}

/// Reads a rule file; `None` when it is not valid TOML (every syntax error is reported).
pub(super) fn read(text: &str, report: &mut Report) -> Option<RulesDocument> {
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

    let binding_tables = root
        .remove("binding_tables")
        .and_then(|v| {
            typed::<Vec<Vec<Spanned<String>>>>(
                v,
                "binding_tables",
                "an array of arrays of table names, e.g. [[\"t_order\", \"t_order_item\"]]",
                report,
            )
        })
        .unwrap_or_default();
    let broadcast_tables = root
        .remove("broadcast_tables")
        .and_then(|v| {
            typed::<Vec<Spanned<String>>>(
                v,
                "broadcast_tables",
                "an array of table names, e.g. [\"t_province\"]",
                report,
            )
        })
        .unwrap_or_default();

    let tables = entries(&mut root, "tables", report)
        .into_iter()
        .map(|(name, mut value)| {
            let key = child_key("tables", name.get_ref());
            if let DeValue::Table(fields) = value.get_mut() {
                for (field, allowed) in [
                    ("database_strategy", field_names::<RawStrategy>()),
                    ("table_strategy", field_names::<RawStrategy>()),
                    ("key_generator", field_names::<RawKeyGen>()),
                ] {
                    if let Some(inner) = fields.get_mut(field) {
                        if let DeValue::Table(inner) = inner.get_mut() {
                            strip_unknown_keys(inner, allowed, &child_key(&key, field), report);
                        }
                    }
                }
            }
            let section = section::<RawTable>(key, name.span(), value, report);
            (name.get_ref().to_string(), section)
        })
        .collect();

    let algorithms = entries(&mut root, "algorithms", report)
        .into_iter()
        .map(|(name, value)| {
            properties_section("algorithms", name, value, algorithm_properties, report)
        })
        .collect();
    let key_generators = entries(&mut root, "key_generators", report)
        .into_iter()
        .map(|(name, value)| {
            properties_section(
                "key_generators",
                name,
                value,
                KeyGeneratorConfig::properties_of,
                report,
            )
        })
        .collect();

    Some(RulesDocument {
        binding_tables,
        broadcast_tables,
        tables,
        algorithms,
        key_generators,
    })
}

type Entry<'i> = (Spanned<Cow<'i, str>>, Spanned<DeValue<'i>>);

/// The entries of table-valued root key `key`, in file order (reported when not a table).
fn entries<'i>(root: &mut DeTable<'i>, key: &str, report: &mut Report) -> Vec<Entry<'i>> {
    match root.remove(key) {
        None => Vec::new(),
        Some(value) => {
            let mut entries: Vec<Entry<'i>> = table(value, key, report)
                .map(|t| t.into_iter().collect())
                .unwrap_or_default();
            // File order, so "defined twice" points at the second one.
            entries.sort_by_key(|(name, _)| name.span().start);
            entries
        }
    }
}

/// Deserializes a root value, reporting a type error with what was expected.
fn typed<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    key: &str,
    expected: &str,
    report: &mut Report,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            report.at(
                error.span().or(Some(span)),
                key,
                format!("expected {expected}: {}", error.message()),
            );
            None
        }
    }
}

fn properties_section(
    parent: &str,
    name: Spanned<Cow<'_, str>>,
    mut value: Spanned<DeValue<'_>>,
    allowed_for: fn(&str) -> Option<&'static [&'static str]>,
    report: &mut Report,
) -> PropertiesSection {
    let key = child_key(parent, name.get_ref());
    let mut section = PropertiesSection {
        name: name.get_ref().to_string(),
        key: key.clone(),
        span: name.span(),
        kind: None,
        properties: Properties::new(),
        property_spans: Vec::new(),
    };
    let value_span = value.span();
    let DeValue::Table(fields) = value.get_mut() else {
        let found = value.get_ref().type_str();
        report.at(
            Some(value_span),
            key,
            format!("expected a table with a `type`, found {found}"),
        );
        return section;
    };
    match fields.remove_entry("type") {
        None => report.at(
            Some(section.span.clone()),
            key.clone(),
            format!(
                "missing `type`, e.g. type = \"{}\"",
                if parent == "algorithms" {
                    "MOD"
                } else {
                    "SNOWFLAKE"
                }
            ),
        ),
        Some((_, kind)) => match kind.get_ref().as_str() {
            Some(text) => section.kind = Some(Spanned::new(kind.span(), text.to_string())),
            None => report.at(
                Some(kind.span()),
                child_key(&key, "type"),
                format!("expected a string, found {}", kind.get_ref().type_str()),
            ),
        },
    }
    if let Some(allowed) = section.kind.as_ref().and_then(|k| allowed_for(k.get_ref())) {
        // `type` is listed too, so the "allowed keys" message is complete.
        let mut with_type = vec!["type"];
        with_type.extend_from_slice(allowed);
        strip_unknown_keys(fields, &with_type, &key, report);
    }
    for (property, value) in fields.iter() {
        let span = property.span().start..value.span().end;
        let property = property.get_ref().to_string();
        section.property_spans.push((property.clone(), span));
        section
            .properties
            .insert(&property, property_value(value.get_ref()));
    }
    section
}

/// A TOML value as an algorithm property.
fn property_value(value: &DeValue<'_>) -> PropertyValue {
    match value {
        DeValue::String(text) => PropertyValue::Text(text.to_string()),
        DeValue::Integer(int) => i64::from_str_radix(int.as_str(), int.radix()).map_or(
            PropertyValue::Other("integer out of range"),
            PropertyValue::Int,
        ),
        DeValue::Float(float) => PropertyValue::Float(float.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => PropertyValue::Bool(*b),
        DeValue::Datetime(datetime) => PropertyValue::Text(datetime.to_string()),
        DeValue::Array(items) => {
            PropertyValue::List(items.iter().map(|i| property_value(i.get_ref())).collect())
        }
        DeValue::Table(_) => PropertyValue::Other("table"),
    }
}

//! Actual data nodes (`ds_0.t_order_1`) and the expressions that list them.
//!
//! A data node expression is a comma-separated list of items; each item is literal text with
//! `${...}` (or `$->{...}`) holes, and expands to the Cartesian product of its holes, the
//! first hole varying slowest (so `ds_${0..1}.t_order_${0..1}` lists `ds_0.t_order_0`,
//! `ds_0.t_order_1`, `ds_1.t_order_0`, `ds_1.t_order_1`: data-source major). A hole is
//!
//! - a range `${0..3}` (0, 1, 2, 3), `${0..<3}` (0, 1, 2) or `${3..0}` (3, 2, 1, 0);
//! - a list `${[0, 2, 4]}` or `${['a', 'b']}`;
//! - a single value `${7}` or `${'x'}`.
//!
//! Each expanded name is `data_source.table`, split at the *first* dot, so a PostgreSQL
//! table may be schema-qualified: `ds_0.sales.t_order`.

use std::collections::HashSet;
use std::fmt;

/// Most names one expression may expand to, so a typo like `${0..99999999}` fails fast.
pub const MAX_NODES: usize = 100_000;

/// One actual table on one data source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataNode {
    /// The data source's name, as in `[databases.<db>.data_sources.<name>]`.
    pub data_source: String,
    /// The actual table's name on that data source, exactly as the backend spells it.
    pub table: String,
}

impl DataNode {
    /// A node from its two parts.
    pub fn new(data_source: impl Into<String>, table: impl Into<String>) -> Self {
        DataNode {
            data_source: data_source.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for DataNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.data_source, self.table)
    }
}

/// What is wrong with a data node expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", position.map(|p| format!("at character {p}: ")).unwrap_or_default())]
pub struct DataNodeError {
    /// 1-based character position in the expression, when the problem is at one place.
    pub position: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn error_at(position: usize, message: impl Into<String>) -> DataNodeError {
    DataNodeError {
        position: Some(position + 1),
        message: message.into(),
    }
}

/// Expands a data node expression into nodes, in the documented order; duplicates and
/// names without a `data_source.table` dot are errors.
pub fn expand(expression: &str) -> Result<Vec<DataNode>, DataNodeError> {
    let names = expand_names(expression)?;
    let mut seen = HashSet::new();
    let mut nodes = Vec::with_capacity(names.len());
    for name in names {
        let node = match name.split_once('.') {
            Some((ds, table)) if !ds.is_empty() && !table.is_empty() => DataNode::new(ds, table),
            _ => {
                return Err(DataNodeError {
                    position: None,
                    message: format!(
                        "`{name}` is not a data node; write data_source.table, e.g. ds_0.t_order_0"
                    ),
                })
            }
        };
        if !seen.insert(node.clone()) {
            return Err(DataNodeError {
                position: None,
                message: format!("data node `{node}` is listed twice"),
            });
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(DataNodeError {
            position: None,
            message: "lists no data nodes".into(),
        });
    }
    Ok(nodes)
}

/// Expands an inline expression with ranges and lists into plain names (`ds_${0..1}` →
/// `ds_0`, `ds_1`), without interpreting them. Blank items are skipped.
pub fn expand_names(expression: &str) -> Result<Vec<String>, DataNodeError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut names = Vec::new();
    let mut pos = 0;
    while pos <= chars.len() {
        let (segments, next) = item(&chars, pos)?;
        let mut expanded = vec![String::new()];
        for segment in &segments {
            if expanded.len() * segment.len() > MAX_NODES {
                return Err(error_at(
                    pos,
                    format!("expands to more than {MAX_NODES} names"),
                ));
            }
            expanded = expanded
                .iter()
                .flat_map(|prefix| segment.iter().map(move |s| format!("{prefix}{s}")))
                .collect();
        }
        for name in expanded {
            let name = name.trim();
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
        if names.len() > MAX_NODES {
            return Err(error_at(
                pos,
                format!("expands to more than {MAX_NODES} names"),
            ));
        }
        pos = next + 1;
    }
    Ok(names)
}

/// One comma-separated item from `start`: its segments (each a list of choices) and the
/// position of the comma (or end) that ends it.
fn item(chars: &[char], start: usize) -> Result<(Vec<Vec<String>>, usize), DataNodeError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut pos = start;
    while pos < chars.len() && chars[pos] != ',' {
        let opener = if chars[pos..].starts_with(&['$', '{']) {
            2
        } else if chars[pos..].starts_with(&['$', '-', '>', '{']) {
            4
        } else {
            literal.push(chars[pos]);
            pos += 1;
            continue;
        };
        segments.push(vec![std::mem::take(&mut literal)]);
        let Some(close) = chars[pos..].iter().position(|&c| c == '}') else {
            return Err(error_at(pos, "`${` is not closed by `}`"));
        };
        let body: String = chars[pos + opener..pos + close].iter().collect();
        segments.push(hole(&body, pos + opener)?);
        pos += close + 1;
    }
    segments.push(vec![literal]);
    Ok((segments, pos))
}

/// The choices of one hole; `at` is where its body starts, for error positions.
fn hole(body: &str, at: usize) -> Result<Vec<String>, DataNodeError> {
    let trimmed = body.trim();
    if let Some(list) = trimmed.strip_prefix('[') {
        let Some(list) = list.strip_suffix(']') else {
            return Err(error_at(at, "a list must end with `]`, e.g. ${['a', 'b']}"));
        };
        return list.split(',').map(|item| scalar(item, at)).collect();
    }
    if let Some((from, to)) = trimmed.split_once("..") {
        let (to, exclusive) = match to.strip_prefix('<') {
            Some(to) => (to, true),
            None => (to, false),
        };
        let bound = |text: &str| {
            text.trim().parse::<i64>().map_err(|_| {
                error_at(
                    at,
                    format!(
                        "`{}` is not an integer; ranges are written ${{0..3}}",
                        text.trim()
                    ),
                )
            })
        };
        let (from, to) = (bound(from)?, bound(to)?);
        let count = from.abs_diff(to) + u64::from(!exclusive);
        if count > MAX_NODES as u64 {
            return Err(error_at(
                at,
                format!("range has more than {MAX_NODES} values"),
            ));
        }
        let values: Vec<i64> = match (from <= to, exclusive) {
            (true, false) => (from..=to).collect(),
            (true, true) => (from..to).collect(),
            (false, false) => (to..=from).rev().collect(),
            (false, true) => (to + 1..=from).rev().collect(),
        };
        return Ok(values.iter().map(i64::to_string).collect());
    }
    Ok(vec![scalar(trimmed, at)?])
}

/// An integer or a quoted string.
fn scalar(text: &str, at: usize) -> Result<String, DataNodeError> {
    let text = text.trim();
    for quote in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            if !inner.is_empty() || text.len() >= 2 {
                return Ok(inner.to_string());
            }
        }
    }
    match text.parse::<i64>() {
        Ok(value) => Ok(value.to_string()),
        Err(_) => Err(error_at(
            at,
            format!("`{text}` is neither an integer nor a quoted string; write ${{[0, 1]}} or ${{['a', 'b']}}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expression: &str) -> Vec<String> {
        expand_names(expression).unwrap()
    }

    fn nodes(expression: &str) -> Vec<String> {
        expand(expression)
            .unwrap()
            .iter()
            .map(DataNode::to_string)
            .collect()
    }

    #[test]
    fn expands_ranges_data_source_major() {
        assert_eq!(
            nodes("ds_${0..1}.t_order_${0..1}"),
            [
                "ds_0.t_order_0",
                "ds_0.t_order_1",
                "ds_1.t_order_0",
                "ds_1.t_order_1"
            ]
        );
        assert_eq!(nodes("ds_$->{0..1}.t"), ["ds_0.t", "ds_1.t"]);
    }

    #[test]
    fn expands_lists_exclusive_and_descending_ranges() {
        assert_eq!(names("t_${[0, 2, 4]}"), ["t_0", "t_2", "t_4"]);
        assert_eq!(names("t_${['a', \"b\"]}"), ["t_a", "t_b"]);
        assert_eq!(names("t_${0..<3}"), ["t_0", "t_1", "t_2"]);
        assert_eq!(names("t_${2..0}"), ["t_2", "t_1", "t_0"]);
        assert_eq!(names("t_${7}${'x'}"), ["t_7x"]);
        assert_eq!(
            names("t_${2024..2025}${['01','12']}"),
            ["t_202401", "t_202412", "t_202501", "t_202512"]
        );
    }

    #[test]
    fn plain_comma_separated_lists_and_mixed_items() {
        assert_eq!(nodes("ds_0.t_a, ds_1.t_a"), ["ds_0.t_a", "ds_1.t_a"]);
        assert_eq!(
            nodes("ds_0.t_${0..1}, ds_1.t_${[2,3]}"),
            ["ds_0.t_0", "ds_0.t_1", "ds_1.t_2", "ds_1.t_3"]
        );
        assert_eq!(nodes("ds_0.sales.t_order"), ["ds_0.sales.t_order"]);
        let node = &expand("ds_0.sales.t_order").unwrap()[0];
        assert_eq!(
            (node.data_source.as_str(), node.table.as_str()),
            ("ds_0", "sales.t_order")
        );
    }

    #[test]
    fn rejects_malformed_expressions_with_positions() {
        let err = expand("ds_${0..1.t").unwrap_err();
        assert_eq!(err.position, Some(4));
        assert!(err
            .to_string()
            .starts_with("at character 4: `${` is not closed"));
        assert!(expand("ds_${a..b}.t")
            .unwrap_err()
            .message
            .contains("`a` is not an integer"));
        assert!(expand("ds_${[x]}.t")
            .unwrap_err()
            .message
            .contains("neither an integer"));
        assert!(expand("t_order")
            .unwrap_err()
            .message
            .contains("not a data node"));
        assert!(expand("ds_0.t, ds_0.t")
            .unwrap_err()
            .message
            .contains("listed twice"));
        assert!(expand(" , ").unwrap_err().message.contains("no data nodes"));
        assert!(expand("ds_${0..1000}.t_${0..1000}")
            .unwrap_err()
            .message
            .contains("more than"));
    }
}

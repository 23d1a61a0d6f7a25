//! INLINE: the target is the value of an inline expression over one column.

use std::ops::Bound;

use super::{
    list_targets, ColumnUse, NoTarget, Properties, PropertyProblem, PropertyReader, RouteError,
    ShardingAlgorithm, ShardingValue, ShardingValues,
};
use crate::route::inline_expr::{EvalError, InlineExpr};

/// Most outputs validation derives from an expression (see [`InlineExpr::possible_outputs`]).
pub(super) const OUTPUT_LIMIT: usize = 10_000;

/// `type = "INLINE"`: `expression = "ds_${user_id % 2}"` names the target directly; the
/// expression reads exactly one column, the strategy's. Range conditions route to every
/// target unless `allow_range_query = false`, which makes them an error (ShardingSphere's
/// default is the error; dbmesh's default routes everywhere).
#[derive(Debug, Clone)]
pub struct InlineSharding {
    name: String,
    expression: InlineExpr,
    allow_range_query: bool,
}

impl InlineSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "INLINE";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &["expression", "allow_range_query"];

    /// From `expression` (which must read exactly one column) and `allow_range_query`
    /// (default `true`).
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let expression = expression_property(&mut reader, "\"ds_${user_id % 2}\"");
        if let Some(expression) = &expression {
            if expression.columns().len() != 1 {
                reader.problem(
                    Some("expression"),
                    format!(
                        "an INLINE expression reads exactly one column, this one reads {}; use COMPLEX_INLINE for several",
                        describe_columns(expression.columns())
                    ),
                );
            }
        }
        let allow_range_query = reader.bool("allow_range_query").unwrap_or(true);
        reader.finish(expression.map(|expression| InlineSharding {
            name: name.to_string(),
            expression,
            allow_range_query,
        }))
    }
}

/// "`a`, `b`" or "none".
pub(super) fn describe_columns(columns: &[String]) -> String {
    if columns.is_empty() {
        return "none".into();
    }
    columns
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads and parses the required `expression` property.
pub(super) fn expression_property(
    reader: &mut PropertyReader<'_>,
    example: &str,
) -> Option<InlineExpr> {
    let source = reader.required_text("expression", example)?;
    match InlineExpr::parse(&source) {
        Ok(expression) => Some(expression),
        Err(error) => {
            reader.problem(
                Some("expression"),
                format!("invalid inline expression `{source}`: {error}"),
            );
            None
        }
    }
}

/// Evaluates an inline expression and requires the result to be one of `targets`.
pub(super) fn evaluate_to_target(
    algorithm: &dyn ShardingAlgorithm,
    expression: &InlineExpr,
    targets: &[String],
    values: &ShardingValues,
) -> Result<Vec<String>, RouteError> {
    let name = expression.evaluate(values).map_err(|error| match error {
        EvalError::MissingValue(column) => RouteError::MissingValue {
            algorithm: algorithm.name().to_string(),
            column,
        },
        EvalError::Null(column) => RouteError::NullValue {
            algorithm: algorithm.name().to_string(),
            column,
        },
        other => RouteError::Expression {
            algorithm: algorithm.name().to_string(),
            message: format!("`{}`: {other}", expression.source()),
        },
    })?;
    match targets.iter().find(|t| **t == name) {
        Some(target) => Ok(vec![target.clone()]),
        None => {
            let columns: Vec<&str> = values.iter().map(|(column, _)| column).collect();
            let shown: Vec<String> = values.iter().map(|(_, value)| value.to_string()).collect();
            Err(RouteError::NoTarget(Box::new(NoTarget {
                algorithm: algorithm.name().to_string(),
                kind: algorithm.kind(),
                column: columns.join(", "),
                value: shown.join(", "),
                computed: name,
                targets: list_targets(targets),
            })))
        }
    }
}

/// Every derivable output of `expression` must be one of `targets`.
pub(super) fn check_expression_outputs(
    algorithm: &dyn ShardingAlgorithm,
    expression: &InlineExpr,
    targets: &[String],
) -> Vec<String> {
    let Some(outputs) = expression.possible_outputs(OUTPUT_LIMIT) else {
        return Vec::new();
    };
    let unknown: Vec<&str> = outputs
        .iter()
        .filter(|o| !targets.contains(o))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{} algorithm `{}`: expression `{}` can yield {}, which {} not among the targets ({})",
        algorithm.kind(),
        algorithm.name(),
        expression.source(),
        unknown.join(", "),
        if unknown.len() == 1 { "is" } else { "are" },
        list_targets(targets)
    )]
}

impl ShardingAlgorithm for InlineSharding {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn columns(&self) -> ColumnUse<'_> {
        ColumnUse::Expression {
            columns: self.expression.columns(),
            several: false,
        }
    }

    fn exact(
        &self,
        targets: &[String],
        values: &ShardingValues,
    ) -> Result<Vec<String>, RouteError> {
        evaluate_to_target(self, &self.expression, targets, values)
    }

    fn range(
        &self,
        targets: &[String],
        column: &str,
        _lower: Bound<&ShardingValue>,
        _upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError> {
        if !self.allow_range_query {
            return Err(RouteError::RangeNotAllowed {
                algorithm: self.name.clone(),
                kind: Self::KIND,
                column: column.to_string(),
            });
        }
        Ok(targets.to_vec())
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        check_expression_outputs(self, &self.expression, targets)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::targets;
    use super::super::PropertyValue;
    use super::*;

    fn algorithm(
        expression: &str,
        allow_range: Option<bool>,
    ) -> Result<InlineSharding, Vec<PropertyProblem>> {
        let mut props =
            Properties::new().with("expression", PropertyValue::Text(expression.into()));
        if let Some(allow) = allow_range {
            props.insert("allow_range_query", PropertyValue::Bool(allow));
        }
        InlineSharding::new("db_inline", &props)
    }

    #[test]
    fn evaluates_the_expression_to_a_target() {
        let alg = algorithm("ds_${user_id % 2}", None).unwrap();
        let t = targets(&["ds_0", "ds_1"]);
        assert_eq!(
            alg.exact(&t, &ShardingValues::single("user_id", 7i64))
                .unwrap(),
            ["ds_1"]
        );
        assert_eq!(
            alg.columns(),
            ColumnUse::Expression {
                columns: &["user_id".to_string()],
                several: false
            }
        );
        let err = alg
            .exact(&t[..1], &ShardingValues::single("user_id", 7i64))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharding algorithm `db_inline` (INLINE) computed `ds_1` for user_id = 7, but no target matches; targets: ds_0"
        );
        let err = alg
            .exact(&t, &ShardingValues::single("user_id", "x"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("'x' is not an integer (column `user_id`)"),
            "{err}"
        );
        let err = alg
            .exact(&t, &ShardingValues::single("order_id", 1i64))
            .unwrap_err();
        assert!(matches!(err, RouteError::MissingValue { .. }));
    }

    #[test]
    fn range_queries_route_everywhere_unless_disallowed() {
        let t = targets(&["ds_0", "ds_1"]);
        let v = ShardingValue::Int(1);
        let open = algorithm("ds_${user_id % 2}", None).unwrap();
        assert_eq!(
            open.range(&t, "user_id", Bound::Included(&v), Bound::Unbounded)
                .unwrap(),
            t
        );
        let strict = algorithm("ds_${user_id % 2}", Some(false)).unwrap();
        let err = strict
            .range(&t, "user_id", Bound::Included(&v), Bound::Unbounded)
            .unwrap_err();
        assert!(err.to_string().starts_with("range conditions on column `user_id` are not allowed by sharding algorithm `db_inline`"));
    }

    #[test]
    fn checks_derivable_outputs_against_targets() {
        let alg = algorithm("ds_${user_id % 3}", None).unwrap();
        let problems = alg.check_targets(&targets(&["ds_0", "ds_1"]));
        assert_eq!(problems, ["INLINE algorithm `db_inline`: expression `ds_${user_id % 3}` can yield ds_2, which is not among the targets (ds_0, ds_1)"]);
        assert!(algorithm("ds_${user_id}", None)
            .unwrap()
            .check_targets(&[])
            .is_empty());
    }

    #[test]
    fn expression_must_parse_and_read_one_column() {
        let problems = algorithm("ds_${a % }", None).unwrap_err();
        assert!(
            problems[0]
                .message
                .starts_with("invalid inline expression `ds_${a % }`: at character 10"),
            "{problems:?}"
        );
        let problems = algorithm("ds_${a + b}", None).unwrap_err();
        assert!(problems[0]
            .message
            .contains("reads `a`, `b`; use COMPLEX_INLINE"));
        assert!(algorithm("ds_0", None).unwrap_err()[0]
            .message
            .contains("reads none"));
    }
}

//! COMPLEX_INLINE: the target is the value of an inline expression over several columns.

use std::ops::Bound;

use super::inline::{check_expression_outputs, evaluate_to_target, expression_property};
use super::{
    ColumnUse, Properties, PropertyProblem, PropertyReader, RouteError, ShardingAlgorithm,
    ShardingValue, ShardingValues,
};
use crate::route::inline_expr::InlineExpr;

/// `type = "COMPLEX_INLINE"`: like INLINE, but the strategy names several columns
/// (`columns = ["user_id", "order_id"]`) and `expression` may read all of them:
/// `"t_order_${(user_id + order_id) % 4}"`. An exact route needs a value for every column
/// the expression reads; with a range condition (or a missing column) the statement
/// routes to every target, unless `allow_range_query = false` makes a range an error.
#[derive(Debug, Clone)]
pub struct ComplexInlineSharding {
    name: String,
    expression: InlineExpr,
    allow_range_query: bool,
}

impl ComplexInlineSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "COMPLEX_INLINE";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &["expression", "allow_range_query"];

    /// From `expression` (reading at least one column) and `allow_range_query` (default `true`).
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let expression = expression_property(&mut reader, "\"t_${(user_id + order_id) % 4}\"");
        if expression.as_ref().is_some_and(|e| e.columns().is_empty()) {
            reader.problem(
                Some("expression"),
                "the expression reads no column; name the strategy's columns in it",
            );
        }
        let allow_range_query = reader.bool("allow_range_query").unwrap_or(true);
        reader.finish(expression.map(|expression| ComplexInlineSharding {
            name: name.to_string(),
            expression,
            allow_range_query,
        }))
    }
}

impl ShardingAlgorithm for ComplexInlineSharding {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn columns(&self) -> ColumnUse<'_> {
        ColumnUse::Expression {
            columns: self.expression.columns(),
            several: true,
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

    fn algorithm(expression: &str) -> ComplexInlineSharding {
        let props = Properties::new()
            .with("expression", PropertyValue::Text(expression.into()))
            .with("allow_range_query", PropertyValue::Bool(false));
        ComplexInlineSharding::new("complex", &props).unwrap()
    }

    #[test]
    fn reads_several_columns() {
        let alg = algorithm("t_${(user_id + order_id) % 4}");
        let t = targets(&["t_0", "t_1", "t_2", "t_3"]);
        let values = ShardingValues::single("user_id", 3i64).with("order_id", 2i64);
        assert_eq!(alg.exact(&t, &values).unwrap(), ["t_1"]);
        assert!(alg.check_targets(&t).is_empty());
        let only_one = ShardingValues::single("user_id", 3i64);
        assert!(
            matches!(alg.exact(&t, &only_one), Err(RouteError::MissingValue { column, .. }) if column == "order_id")
        );
        assert_eq!(
            alg.columns(),
            ColumnUse::Expression {
                columns: &["user_id".into(), "order_id".into()],
                several: true
            }
        );
    }

    #[test]
    fn names_the_values_when_no_target_matches() {
        let alg = algorithm("t_${a}_${b}");
        let err = alg
            .exact(
                &targets(&["t_0_0"]),
                &ShardingValues::single("a", 1i64).with("b", "x"),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharding algorithm `complex` (COMPLEX_INLINE) computed `t_1_x` for a, b = 1, 'x', but no target matches; targets: t_0_0"
        );
    }

    #[test]
    fn range_is_an_error_when_disallowed() {
        let v = ShardingValue::Int(1);
        let err = algorithm("t_${a % 2}").range(
            &targets(&["t_0"]),
            "a",
            Bound::Included(&v),
            Bound::Unbounded,
        );
        assert!(matches!(err, Err(RouteError::RangeNotAllowed { .. })));
    }
}

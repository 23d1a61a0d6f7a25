//! HINT: the target is named by a hint comment, not by a column.

use std::ops::Bound;

use super::inline::{check_expression_outputs, describe_columns};
use super::{
    list_targets, ColumnUse, Properties, PropertyProblem, PropertyReader, RouteError,
    ShardingAlgorithm, ShardingValue, ShardingValues,
};
use crate::route::inline_expr::InlineExpr;

/// `type = "HINT"`: routes by the values of a `/* dbmesh: data_source=ds_1 */` or
/// `/* dbmesh: table=t_order_1 */` hint. Without `expression` a hint value names the target
/// itself; with one, e.g. `expression = "t_order_${value % 2}"`, the hint value is the
/// column `value` of the expression (an integer when it reads as one). A statement without
/// a hint routes to every target, as in ShardingSphere.
#[derive(Debug, Clone)]
pub struct HintSharding {
    name: String,
    expression: Option<InlineExpr>,
}

impl HintSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "HINT";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &["expression"];

    /// From an optional `expression` that reads only the column `value`.
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let expression = match reader.text("expression") {
            None => None,
            Some(source) => match InlineExpr::parse(&source) {
                Ok(expression) => Some(expression),
                Err(error) => {
                    reader.problem(
                        Some("expression"),
                        format!("invalid inline expression `{source}`: {error}"),
                    );
                    None
                }
            },
        };
        if let Some(expression) = &expression {
            if expression.columns() != ["value"] {
                reader.problem(
                    Some("expression"),
                    format!(
                        "a HINT expression reads the hint as `value`, e.g. \"t_order_${{value % 2}}\"; this one reads {}",
                        describe_columns(expression.columns())
                    ),
                );
            }
        }
        let built = HintSharding {
            name: name.to_string(),
            expression,
        };
        reader.finish(Some(built))
    }
}

impl ShardingAlgorithm for HintSharding {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn columns(&self) -> ColumnUse<'_> {
        ColumnUse::Hint
    }

    /// No hint: every target.
    fn exact(
        &self,
        targets: &[String],
        _values: &ShardingValues,
    ) -> Result<Vec<String>, RouteError> {
        Ok(targets.to_vec())
    }

    /// No hint: every target.
    fn range(
        &self,
        targets: &[String],
        _column: &str,
        _lower: Bound<&ShardingValue>,
        _upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError> {
        Ok(targets.to_vec())
    }

    fn hint(&self, targets: &[String], hint_values: &[String]) -> Result<Vec<String>, RouteError> {
        let mut chosen: Vec<&String> = Vec::new();
        for hint in hint_values {
            let name = match &self.expression {
                None => hint.trim().to_string(),
                Some(expression) => {
                    let values = ShardingValues::single("value", ShardingValue::from_hint(hint));
                    expression
                        .evaluate(&values)
                        .map_err(|error| RouteError::Expression {
                            algorithm: self.name.clone(),
                            message: format!(
                                "`{}` with value = {hint}: {error}",
                                expression.source()
                            ),
                        })?
                }
            };
            let target = targets.iter().find(|t| **t == name).ok_or_else(|| {
                RouteError::UnknownHintTarget {
                    algorithm: self.name.clone(),
                    hint: match &self.expression {
                        None => name.clone(),
                        Some(_) => format!("{} → {name}", hint.trim()),
                    },
                    targets: list_targets(targets),
                }
            })?;
            if !chosen.contains(&target) {
                chosen.push(target);
            }
        }
        Ok(targets
            .iter()
            .filter(|t| chosen.contains(t))
            .cloned()
            .collect())
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        match &self.expression {
            Some(expression) => check_expression_outputs(self, expression, targets),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::targets;
    use super::super::PropertyValue;
    use super::*;

    #[test]
    fn hint_values_name_targets() {
        let alg = HintSharding::new("by_hint", &Properties::new()).unwrap();
        let t = targets(&["ds_0", "ds_1", "ds_2"]);
        let hints = ["ds_2".to_string(), " ds_0 ".to_string(), "ds_2".to_string()];
        assert_eq!(alg.hint(&t, &hints).unwrap(), ["ds_0", "ds_2"]);
        let err = alg.hint(&t, &["ds_9".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "hint `ds_9` names no target of sharding algorithm `by_hint`; targets: ds_0, ds_1, ds_2");
        assert_eq!(alg.exact(&t, &ShardingValues::new()).unwrap(), t);
        assert_eq!(alg.columns(), ColumnUse::Hint);
    }

    #[test]
    fn an_expression_maps_hint_values() {
        let props = Properties::new().with(
            "expression",
            PropertyValue::Text("t_order_${value % 2}".into()),
        );
        let alg = HintSharding::new("by_hint", &props).unwrap();
        let t = targets(&["t_order_0", "t_order_1"]);
        assert_eq!(alg.hint(&t, &["7".to_string()]).unwrap(), ["t_order_1"]);
        assert!(alg.check_targets(&t).is_empty());
        let err = alg.hint(&t, &["x".to_string()]).unwrap_err();
        assert!(err.to_string().contains("'x' is not an integer"), "{err}");
    }

    #[test]
    fn expression_may_read_only_value() {
        let props =
            Properties::new().with("expression", PropertyValue::Text("t_${user_id % 2}".into()));
        let problems = HintSharding::new("h", &props).unwrap_err();
        assert!(problems[0].message.contains("this one reads `user_id`"));
    }

    #[test]
    fn other_algorithms_refuse_hints() {
        let props = Properties::new().with("sharding_count", PropertyValue::Int(2));
        let alg = super::super::ModSharding::new("m", &props).unwrap();
        assert!(matches!(
            alg.hint(&[], &[]),
            Err(RouteError::NotHint { .. })
        ));
    }
}

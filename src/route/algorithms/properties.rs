//! The properties of a sharding algorithm or key generator, as written in a rule file
//! (`sharding_count = 4`), independent of TOML so algorithms can be built from anywhere.
//!
//! Builders read properties through a [`PropertyReader`], which records one
//! [`PropertyProblem`] per missing, mistyped or out-of-range property, so a rule file gets
//! every problem of an algorithm at once.

/// One property value.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// An integer (`sharding_count = 4`).
    Int(i64),
    /// A float; no property takes one, but it is kept to say so.
    Float(f64),
    /// A boolean (`allow_range_query = false`).
    Bool(bool),
    /// A string, or a TOML date-time written without quotes (kept in ISO form).
    Text(String),
    /// An array (`sharding_ranges = [10, 20, 40]`).
    List(Vec<PropertyValue>),
    /// A table or anything else no property takes; the string names its type.
    Other(&'static str),
}

impl PropertyValue {
    fn type_name(&self) -> &'static str {
        match self {
            PropertyValue::Int(_) => "integer",
            PropertyValue::Float(_) => "float",
            PropertyValue::Bool(_) => "boolean",
            PropertyValue::Text(_) => "string",
            PropertyValue::List(_) => "array",
            PropertyValue::Other(name) => name,
        }
    }
}

/// The properties given to one algorithm or key generator, by name, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    entries: Vec<(String, PropertyValue)>,
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a property, builder style (a later value for the same name replaces the earlier).
    pub fn with(mut self, name: &str, value: PropertyValue) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds a property.
    pub fn insert(&mut self, name: &str, value: PropertyValue) {
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.to_string(), value));
    }

    /// The value of property `name`.
    pub fn get(&self, name: &str) -> Option<&PropertyValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Property names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
}

/// Something wrong with a property; `property` is `None` for problems of the whole
/// algorithm (e.g. `range_upper` not above `range_lower` is reported on `range_upper`, an
/// unknown type on no property).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyProblem {
    /// The property the problem is about.
    pub property: Option<String>,
    /// What is wrong and what would be right.
    pub message: String,
}

/// Reads typed properties, collecting problems instead of stopping at the first.
pub(crate) struct PropertyReader<'a> {
    properties: &'a Properties,
    pub(crate) problems: Vec<PropertyProblem>,
}

impl<'a> PropertyReader<'a> {
    /// Starts reading; reports every property not in `allowed` right away.
    pub(crate) fn new(properties: &'a Properties, kind: &str, allowed: &[&str]) -> Self {
        let mut reader = PropertyReader {
            properties,
            problems: Vec::new(),
        };
        for name in properties.names() {
            if !allowed.contains(&name) {
                let allowed = if allowed.is_empty() {
                    "(none)".to_string()
                } else {
                    allowed.join(", ")
                };
                reader.problem(
                    Some(name),
                    format!(
                        "unknown property `{name}` for type {kind}; allowed properties: {allowed}"
                    ),
                );
            }
        }
        reader
    }

    /// Records a problem.
    pub(crate) fn problem(&mut self, property: Option<&str>, message: impl Into<String>) {
        self.problems.push(PropertyProblem {
            property: property.map(str::to_string),
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, name: &str, expected: &str, found: &PropertyValue) {
        let message = format!("expected {expected}, found {}", found.type_name());
        self.problem(Some(name), message);
    }

    fn missing(&mut self, name: &str, example: &str) {
        self.problem(
            None,
            format!("missing property `{name}`, e.g. {name} = {example}"),
        );
    }

    /// An optional integer.
    pub(crate) fn int(&mut self, name: &str) -> Option<i64> {
        match self.properties.get(name)? {
            PropertyValue::Int(value) => Some(*value),
            other => {
                let other = other.clone();
                self.wrong_type(name, "an integer", &other);
                None
            }
        }
    }

    /// A required integer; `example` shows the reader how to write it.
    pub(crate) fn required_int(&mut self, name: &str, example: &str) -> Option<i64> {
        if self.properties.get(name).is_none() {
            self.missing(name, example);
            return None;
        }
        self.int(name)
    }

    /// An optional integer within `range` (inclusive), reported when outside.
    pub(crate) fn int_in(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.int(name)?;
        if !(min..=max).contains(&value) {
            self.problem(
                Some(name),
                format!("must be between {min} and {max}, got {value}"),
            );
            return None;
        }
        Some(value)
    }

    /// An optional boolean.
    pub(crate) fn bool(&mut self, name: &str) -> Option<bool> {
        match self.properties.get(name)? {
            PropertyValue::Bool(value) => Some(*value),
            other => {
                let other = other.clone();
                self.wrong_type(name, "true or false", &other);
                None
            }
        }
    }

    /// An optional string.
    pub(crate) fn text(&mut self, name: &str) -> Option<String> {
        match self.properties.get(name)? {
            PropertyValue::Text(value) => Some(value.clone()),
            other => {
                let other = other.clone();
                self.wrong_type(name, "a string", &other);
                None
            }
        }
    }

    /// A required string.
    pub(crate) fn required_text(&mut self, name: &str, example: &str) -> Option<String> {
        if self.properties.get(name).is_none() {
            self.missing(name, example);
            return None;
        }
        self.text(name)
    }

    /// A required array of integers.
    pub(crate) fn required_int_list(&mut self, name: &str, example: &str) -> Option<Vec<i64>> {
        let Some(value) = self.properties.get(name) else {
            self.missing(name, example);
            return None;
        };
        let PropertyValue::List(items) = value else {
            let value = value.clone();
            self.wrong_type(name, "an array of integers", &value);
            return None;
        };
        let ints: Option<Vec<i64>> = items
            .iter()
            .map(|item| match item {
                PropertyValue::Int(v) => Some(*v),
                _ => None,
            })
            .collect();
        if ints.is_none() {
            self.problem(Some(name), "expected an array of integers");
        }
        ints
    }

    /// Ends reading: the built value when no problem was recorded.
    pub(crate) fn finish<T>(self, built: Option<T>) -> Result<T, Vec<PropertyProblem>> {
        match built {
            Some(value) if self.problems.is_empty() => Ok(value),
            _ if self.problems.is_empty() => Err(vec![PropertyProblem {
                property: None,
                message: "invalid properties".into(),
            }]),
            _ => Err(self.problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_unknown_missing_and_mistyped_properties_together() {
        let props = Properties::new()
            .with("sharding_cuont", PropertyValue::Int(2))
            .with("allow_range_query", PropertyValue::Text("no".into()));
        let mut reader =
            PropertyReader::new(&props, "MOD", &["sharding_count", "allow_range_query"]);
        assert_eq!(reader.required_int("sharding_count", "4"), None);
        assert_eq!(reader.bool("allow_range_query"), None);
        let problems = reader.finish::<()>(None).unwrap_err();
        let messages: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown property `sharding_cuont` for type MOD; allowed properties: sharding_count, allow_range_query",
                "missing property `sharding_count`, e.g. sharding_count = 4",
                "expected true or false, found string",
            ]
        );
        assert_eq!(problems[0].property.as_deref(), Some("sharding_cuont"));
        assert_eq!(problems[1].property, None);
    }

    #[test]
    fn checks_integer_ranges() {
        let props = Properties::new().with("worker_id", PropertyValue::Int(2000));
        let mut reader = PropertyReader::new(&props, "SNOWFLAKE", &["worker_id"]);
        assert_eq!(reader.int_in("worker_id", 0, 1023), None);
        assert!(reader.problems[0].message.contains("between 0 and 1023"));
    }
}

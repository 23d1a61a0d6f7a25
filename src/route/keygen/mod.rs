//! Key generators: values for a sharding table's key column when an INSERT leaves it out,
//! so the row can be routed (and its key is unique across shards).
//!
//! A rule file configures generators by name (`[key_generators.snowflake]`) as plain data,
//! [`KeyGeneratorConfig`]; the runtime builds one [`KeyGenerator`] per name and shares it
//! between all sessions. Generators are thread-safe without a lock on the hot path.

mod snowflake;
mod uuid;

use std::fmt;
use std::sync::Arc;

pub use snowflake::{Snowflake, SnowflakeId, EPOCH_MS};
pub use uuid::UuidGenerator;

use crate::route::algorithms::{Properties, PropertyProblem, PropertyReader};

/// A generated key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeneratedKey {
    /// SNOWFLAKE: a positive BIGINT.
    Int(i64),
    /// UUID: 32 lowercase hex digits.
    Text(String),
}

/// Why no key could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyGenError {
    /// The system clock went back further than `max_tolerate_time_difference_ms`.
    #[error("the system clock moved back {by_ms} ms, more than the {tolerance_ms} ms key generator `SNOWFLAKE` waits out (max_tolerate_time_difference_ms); refusing to generate keys that could repeat")]
    ClockMovedBackwards { by_ms: u64, tolerance_ms: u64 },
    /// The clock reads before the snowflake epoch, or after its 41 bits of milliseconds run out.
    #[error("the system clock ({now_ms} ms since 1970) is outside the range of SNOWFLAKE keys (2016-11-01 to 2086-07-08)")]
    ClockOutOfRange { now_ms: u64 },
}

/// Generates keys; shared between sessions.
pub trait KeyGenerator: Send + Sync + fmt::Debug {
    /// Its type (`SNOWFLAKE`).
    fn kind(&self) -> &'static str;

    /// The next key. SNOWFLAKE may block for up to `max_tolerate_time_difference_ms` when
    /// the clock stepped back, or until the next millisecond after 4096 keys in one.
    fn next(&self) -> Result<GeneratedKey, KeyGenError>;
}

/// A configured key generator: `[key_generators.<name>]` in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyGeneratorConfig {
    /// `type = "SNOWFLAKE"`.
    Snowflake {
        /// `worker_id`, 0 ..= 1023 (default 0); must differ between proxies inserting into
        /// the same tables.
        worker_id: u16,
        /// `max_tolerate_time_difference_ms` (default 10): how far back the clock may step
        /// before generation fails instead of waiting.
        max_tolerate_time_difference_ms: u64,
        /// `max_vibration_offset`, 0 ..= 4095 (default 1): the sequence of a new millisecond
        /// starts at `ms % (max_vibration_offset + 1)`, so low-traffic keys are not all even.
        max_vibration_offset: u16,
    },
    /// `type = "UUID"`: random (version 4) UUIDs.
    Uuid,
}

impl KeyGeneratorConfig {
    /// Every generator type a rule file may name (case-insensitive).
    pub const TYPES: [&'static str; 2] = ["SNOWFLAKE", "UUID"];

    /// The properties of generator type `kind`; `None` for an unknown type.
    pub fn properties_of(kind: &str) -> Option<&'static [&'static str]> {
        match kind.to_ascii_uppercase().as_str() {
            "SNOWFLAKE" => Some(&[
                "worker_id",
                "max_tolerate_time_difference_ms",
                "max_vibration_offset",
            ]),
            "UUID" => Some(&[]),
            _ => None,
        }
    }

    /// Reads a generator of type `kind` from its properties, or every problem with them.
    pub fn from_properties(
        kind: &str,
        properties: &Properties,
    ) -> Result<Self, Vec<PropertyProblem>> {
        let Some(allowed) = Self::properties_of(kind) else {
            return Err(vec![PropertyProblem {
                property: None,
                message: format!(
                    "unknown key generator type `{kind}`; known types: {}",
                    Self::TYPES.join(", ")
                ),
            }]);
        };
        let kind = kind.to_ascii_uppercase();
        let mut reader = PropertyReader::new(properties, &kind, allowed);
        let config = match kind.as_str() {
            "SNOWFLAKE" => {
                let worker_id = reader.int_in("worker_id", 0, 1023).unwrap_or(0);
                let tolerance = reader
                    .int_in("max_tolerate_time_difference_ms", 0, 60_000)
                    .unwrap_or(10);
                let vibration = reader.int_in("max_vibration_offset", 0, 4095).unwrap_or(1);
                KeyGeneratorConfig::Snowflake {
                    worker_id: worker_id as u16,
                    max_tolerate_time_difference_ms: tolerance as u64,
                    max_vibration_offset: vibration as u16,
                }
            }
            _ => KeyGeneratorConfig::Uuid,
        };
        reader.finish(Some(config))
    }

    /// Its type (`SNOWFLAKE`).
    pub fn kind(&self) -> &'static str {
        match self {
            KeyGeneratorConfig::Snowflake { .. } => "SNOWFLAKE",
            KeyGeneratorConfig::Uuid => "UUID",
        }
    }

    /// A generator with this configuration, reading the system clock.
    pub fn build(&self) -> Arc<dyn KeyGenerator> {
        match self {
            KeyGeneratorConfig::Snowflake {
                worker_id,
                max_tolerate_time_difference_ms,
                max_vibration_offset,
            } => Arc::new(Snowflake::new(
                *worker_id,
                *max_tolerate_time_difference_ms,
                *max_vibration_offset,
            )),
            KeyGeneratorConfig::Uuid => Arc::new(UuidGenerator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::algorithms::PropertyValue;

    #[test]
    fn reads_snowflake_properties_with_defaults() {
        let config = KeyGeneratorConfig::from_properties("snowflake", &Properties::new()).unwrap();
        assert_eq!(
            config,
            KeyGeneratorConfig::Snowflake {
                worker_id: 0,
                max_tolerate_time_difference_ms: 10,
                max_vibration_offset: 1
            }
        );
        let props = Properties::new().with("worker_id", PropertyValue::Int(7));
        let config = KeyGeneratorConfig::from_properties("SNOWFLAKE", &props).unwrap();
        assert!(matches!(
            config,
            KeyGeneratorConfig::Snowflake { worker_id: 7, .. }
        ));
        assert!(matches!(config.build().next().unwrap(), GeneratedKey::Int(id) if id > 0));
    }

    #[test]
    fn rejects_unknown_types_and_properties() {
        let problems =
            KeyGeneratorConfig::from_properties("SEQUENCE", &Properties::new()).unwrap_err();
        assert!(problems[0].message.contains("known types: SNOWFLAKE, UUID"));
        let props = Properties::new().with("worker_id", PropertyValue::Int(1024));
        let problems = KeyGeneratorConfig::from_properties("SNOWFLAKE", &props).unwrap_err();
        assert!(problems[0].message.contains("between 0 and 1023"));
        let props = Properties::new().with("dashes", PropertyValue::Bool(true));
        let problems = KeyGeneratorConfig::from_properties("uuid", &props).unwrap_err();
        assert!(problems[0]
            .message
            .contains("unknown property `dashes` for type UUID"));
        let uuid = KeyGeneratorConfig::from_properties("uuid", &Properties::new()).unwrap();
        assert_eq!(uuid.kind(), "UUID");
    }
}

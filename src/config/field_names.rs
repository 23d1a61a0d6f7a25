//! The TOML keys a raw config struct accepts, read from its serde derive.
//!
//! serde stops at the first unknown key; we want all of them, each with a
//! "did you mean" hint. Asking the derive for its field list keeps that check
//! in step with the structs instead of with a hand-written copy of the keys.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::forward_to_deserialize_any;

/// The keys `T` accepts (after `#[serde(rename)]`), in declaration order.
pub(super) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The capture always "fails" once it has seen the field list.
    let _ = T::deserialize(Capture(&mut fields));
    fields
}

struct Capture<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for Capture<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs have field names"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names captured"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::super::raw::RawDataSource;
    use super::*;

    #[test]
    fn reads_the_keys_a_struct_accepts() {
        assert_eq!(
            field_names::<RawDataSource>(),
            [
                "url",
                "password_env",
                "max_connections",
                "min_connections",
                "idle_timeout_ms",
                "max_lifetime_ms",
                "replicas",
                "load_balancer",
                "transactional_read",
                "max_replica_lag_ms",
                "health_check_interval_ms",
                "read_your_writes_timeout_ms"
            ]
        );
        assert!(field_names::<String>().is_empty());
    }
}

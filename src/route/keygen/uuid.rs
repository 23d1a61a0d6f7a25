//! UUID keys: random version-4 UUIDs as 32 hex digits.

use super::{GeneratedKey, KeyGenError, KeyGenerator};

/// `type = "UUID"`: a random (version 4, RFC 9562) UUID written as 32 lowercase hex digits
/// without dashes, like ShardingSphere's `UUID.randomUUID().toString().replace("-", "")`
/// (`4b3c2f0e9a1d4c7e8f6a5b4c3d2e1f00`). Fits a `CHAR(32)` column. Each thread draws from
/// its own random generator, so there is no shared state.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidGenerator;

impl UuidGenerator {
    /// A new UUID string.
    pub fn generate() -> String {
        let random: u128 = rand::random();
        let uuid = (random & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        format!("{uuid:032x}")
    }
}

impl KeyGenerator for UuidGenerator {
    fn kind(&self) -> &'static str {
        "UUID"
    }

    fn next(&self) -> Result<GeneratedKey, KeyGenError> {
        Ok(GeneratedKey::Text(Self::generate()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_32_hex_digits_version_4_variant_1() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let GeneratedKey::Text(uuid) = UuidGenerator.next().unwrap() else {
                panic!("UUID keys are text");
            };
            assert_eq!(uuid.len(), 32);
            assert!(uuid
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert_eq!(&uuid[12..13], "4", "version nibble: {uuid}");
            assert!(
                matches!(&uuid[16..17], "8" | "9" | "a" | "b"),
                "variant: {uuid}"
            );
            assert!(seen.insert(uuid));
        }
    }
}

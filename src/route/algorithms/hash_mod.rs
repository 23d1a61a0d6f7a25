//! HASH_MOD: the target ending with `crc32(canonical text) mod sharding_count`.

use std::ops::Bound;

use super::modulo::sharding_count;
use super::{
    check_indexed_targets, no_target, sole_value, target_with_index, ColumnUse, Properties,
    PropertyProblem, PropertyReader, RouteError, ShardingAlgorithm, ShardingValue, ShardingValues,
};

/// `type = "HASH_MOD"`: any value; target = the one ending with
/// `crc32(bytes) mod sharding_count`.
///
/// `bytes` is the UTF-8 of the value's canonical text ([`ShardingValue::canonical_text`]):
/// integers in decimal with a `-` when negative (`42` hashes the two bytes `"42"`, so `42`
/// and `'42'` land together), text exactly as written (case and trailing spaces matter),
/// dates `2024-01-31`, date-times `2024-01-31 10:00:00`. The hash is CRC-32/IEEE (the one of
/// zlib, gzip, PNG and MySQL's `CRC32()`), so `SELECT CRC32('42') % 4` on any MySQL server
/// predicts the target. ShardingSphere hashes with Java's `hashCode`, so data placed by
/// ShardingSphere's HASH_MOD lands elsewhere. Range conditions route to every target.
#[derive(Debug, Clone)]
pub struct HashModSharding {
    name: String,
    sharding_count: u64,
}

impl HashModSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "HASH_MOD";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &["sharding_count"];

    /// From `sharding_count` (1 ..= 100000).
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let count = sharding_count(&mut reader);
        reader.finish(count.map(|sharding_count| HashModSharding {
            name: name.to_string(),
            sharding_count,
        }))
    }
}

impl ShardingAlgorithm for HashModSharding {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn columns(&self) -> ColumnUse<'_> {
        ColumnUse::One
    }

    fn exact(
        &self,
        targets: &[String],
        values: &ShardingValues,
    ) -> Result<Vec<String>, RouteError> {
        let (column, value) = sole_value(self, values)?;
        let index = u64::from(crc32(value.canonical_text().as_bytes())) % self.sharding_count;
        let target = target_with_index(targets, index.into())
            .ok_or_else(|| no_target(self, column, value, format!("suffix {index}"), targets))?;
        Ok(vec![target.clone()])
    }

    fn range(
        &self,
        targets: &[String],
        _column: &str,
        _lower: Bound<&ShardingValue>,
        _upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError> {
        Ok(targets.to_vec())
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        let what = format!(
            "HASH_MOD algorithm `{}` (sharding_count = {})",
            self.name, self.sharding_count
        );
        check_indexed_targets(targets, self.sharding_count.into(), &what)
    }
}

/// CRC-32/IEEE (reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF): zlib's
/// `crc32` and MySQL's `CRC32()`.
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &byte| {
        CRC32_TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::super::test_support::targets;
    use super::super::PropertyValue;
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"42"), 841_265_288);
        assert_eq!(crc32("你好".as_bytes()), 1_352_841_281);
    }

    #[test]
    fn places_values_by_crc32_of_their_canonical_text() {
        let alg = HashModSharding::new(
            "h",
            &Properties::new().with("sharding_count", PropertyValue::Int(4)),
        )
        .unwrap();
        let t = targets(&["t_0", "t_1", "t_2", "t_3"]);
        let exact = |v: ShardingValue| alg.exact(&t, &ShardingValues::single("k", v)).unwrap();
        // Python: zlib.crc32(b"alice") % 4 == 3, zlib.crc32(b"bob") % 4 == 0.
        assert_eq!(exact("alice".into()), ["t_3"]);
        assert_eq!(exact("bob".into()), ["t_0"]);
        assert_eq!(exact(ShardingValue::Int(42)), exact("42".into()));
        let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        assert_eq!(exact(date.into()), ["t_3"]);
        let open = alg
            .range(&t, "k", Bound::Unbounded, Bound::Unbounded)
            .unwrap();
        assert_eq!(open, t);
        assert!(alg.check_targets(&t).is_empty());
    }
}

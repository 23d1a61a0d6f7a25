//! `PREVIEW <sql>` on PostgreSQL: the (data source, actual SQL) pairs a statement would run,
//! as a result set with two text columns, `data_source_name` and `actual_sql` (the names
//! ShardingSphere's `PREVIEW` uses), one row per unit.

use bytes::BytesMut;
use pgwire::messages::data::{FieldDescription, RowDescription};

/// PostgreSQL's `text` type.
const TEXT_OID: u32 = 25;

/// The RowDescription of a PREVIEW result.
pub fn row_description() -> RowDescription {
    let column = |name: &str| FieldDescription::new(name.to_string(), 0, 0, TEXT_OID, -1, -1, 0);
    RowDescription::new(vec![column("data_source_name"), column("actual_sql")])
}

/// Appends one DataRow of text values to `buf` (the text form is also the binary form of
/// `text`, so it suits either result format).
pub fn write_data_row(buf: &mut BytesMut, values: &[&str]) {
    let len: usize = 4 + 2 + values.iter().map(|v| 4 + v.len()).sum::<usize>();
    buf.extend_from_slice(b"D");
    buf.extend_from_slice(&(len as i32).to_be_bytes());
    buf.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for v in values {
        buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
        buf.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rows_carry_their_length_and_values() {
        let mut b = BytesMut::new();
        write_data_row(&mut b, &["ds_0", "SELECT 1"]);
        assert_eq!(b[0], b'D');
        let len = i32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(len + 1, b.len());
        assert_eq!(&b[5..7], &2i16.to_be_bytes());
        assert_eq!(&b[7..11], &4i32.to_be_bytes());
        assert_eq!(&b[11..15], b"ds_0");
    }
}

//! Round trips and edge cases of the row codec, against `mysql_common`'s own codec.

use super::column::*;
use super::decode::*;
use super::encode::*;
use super::*;
use crate::merge::{AvgScale, Collation, Row, Value};
use crate::wire::mysql::ok::put_lenenc_str;
use bigdecimal::BigDecimal;
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime};
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;
use mysql_common::packets::Column;
use mysql_common::proto::Binary;
use mysql_common::row::RowDeserializer;
use mysql_common::value::ServerSide;
use std::str::FromStr;
use std::sync::Arc;

const UTF8MB4_GENERAL_CI: u16 = 45;
const LATIN1_SWEDISH_CI: u16 = 8;

/// A column-definition payload, optionally with MariaDB extended metadata.
fn definition(
    name: &str,
    column_type: ColumnType,
    flags: u16,
    charset: u16,
    length: u32,
    decimals: u8,
    extended: Option<&[(u8, &str)]>,
) -> Bytes {
    let mut p = Vec::new();
    for s in ["def", "db", "t", "t"] {
        put_lenenc_str(&mut p, s.as_bytes());
    }
    put_lenenc_str(&mut p, name.as_bytes());
    put_lenenc_str(&mut p, name.as_bytes());
    if let Some(pairs) = extended {
        let mut ext = Vec::new();
        for (k, v) in pairs {
            ext.push(*k);
            put_lenenc_str(&mut ext, v.as_bytes());
        }
        put_lenenc_str(&mut p, &ext);
    }
    p.push(0x0C);
    p.extend_from_slice(&charset.to_le_bytes());
    p.extend_from_slice(&length.to_le_bytes());
    p.push(column_type as u8);
    p.extend_from_slice(&flags.to_le_bytes());
    p.push(decimals);
    p.extend_from_slice(&[0, 0]);
    Bytes::from(p)
}

fn col(column_type: ColumnType, flags: u16, charset: u16, length: u32, decimals: u8) -> ColumnMeta {
    ColumnMeta::parse(
        definition("c", column_type, flags, charset, length, decimals, None),
        false,
    )
    .unwrap()
}

const UNSIGNED: u16 = ColumnFlags::UNSIGNED_FLAG.bits();
const BINARY: u16 = ColumnFlags::BINARY_FLAG.bits();
const ZEROFILL: u16 = ColumnFlags::ZEROFILL_FLAG.bits();

/// One column of each kind the merge meets, as MariaDB describes them.
fn all_columns() -> Vec<ColumnMeta> {
    use ColumnType::*;
    vec![
        col(MYSQL_TYPE_TINY, 0, 63, 4, 0),                        // 0
        col(MYSQL_TYPE_TINY, UNSIGNED, 63, 3, 0),                 // 1
        col(MYSQL_TYPE_SHORT, 0, 63, 6, 0),                       // 2
        col(MYSQL_TYPE_INT24, UNSIGNED, 63, 8, 0),                // 3
        col(MYSQL_TYPE_LONG, UNSIGNED | ZEROFILL, 63, 10, 0),     // 4
        col(MYSQL_TYPE_LONGLONG, 0, 63, 20, 0),                   // 5
        col(MYSQL_TYPE_LONGLONG, UNSIGNED, 63, 20, 0),            // 6
        col(MYSQL_TYPE_NEWDECIMAL, 0, 63, 67, 30),                // 7
        col(MYSQL_TYPE_NEWDECIMAL, 0, 63, 67, 0),                 // 8
        col(MYSQL_TYPE_FLOAT, 0, 63, 12, NOT_FIXED_DECIMALS),     // 9
        col(MYSQL_TYPE_DOUBLE, 0, 63, 22, NOT_FIXED_DECIMALS),    // 10
        col(MYSQL_TYPE_VAR_STRING, 0, UTF8MB4_GENERAL_CI, 40, 0), // 11
        col(MYSQL_TYPE_VAR_STRING, BINARY, 63, 10, 0),            // 12
        col(MYSQL_TYPE_BLOB, BINARY | 0x10, 63, 65535, 0),        // 13
        col(MYSQL_TYPE_DATE, BINARY, 63, 10, 0),                  // 14
        col(MYSQL_TYPE_DATETIME, BINARY, 63, 23, 3),              // 15
        col(MYSQL_TYPE_TIMESTAMP, BINARY, 63, 26, 6),             // 16
        col(MYSQL_TYPE_TIME, BINARY, 63, 17, 6),                  // 17
        col(MYSQL_TYPE_TIME, BINARY, 63, 10, 0),                  // 18
        col(MYSQL_TYPE_YEAR, UNSIGNED | ZEROFILL, 63, 4, 0),      // 19
        col(MYSQL_TYPE_BIT, UNSIGNED, 63, 10, 0),                 // 20
        col(MYSQL_TYPE_JSON, BINARY | 0x10, 63, 4294967295, 0),   // 21
        col(MYSQL_TYPE_STRING, 0, LATIN1_SWEDISH_CI, 3, 0),       // 22
        col(MYSQL_TYPE_DOUBLE, 0, 63, 12, 2),                     // 23
    ]
}

fn dec(s: &str) -> Value {
    Value::Decimal(BigDecimal::from_str(s).unwrap())
}

fn datetime(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

const BIG: &str = "-12345678901234567890123456789012345.123456789012345678901234567890";

/// The values of one row over [`all_columns`], and their text-protocol strings.
fn sample() -> Vec<(Value, &'static [u8])> {
    vec![
        (Value::Int(-128), b"-128"),
        (Value::UInt(255), b"255"),
        (Value::Int(-32768), b"-32768"),
        (Value::UInt(16777215), b"16777215"),
        (Value::UInt(42), b"0000000042"),
        (Value::Int(i64::MIN), b"-9223372036854775808"),
        (Value::UInt(u64::MAX), b"18446744073709551615"),
        (dec(BIG), BIG.as_bytes()),
        (dec("-5"), b"-5"),
        (Value::Float(1.23457), b"1.23457"),
        (Value::Float(-1.5e-16), b"-1.5e-16"),
        (Value::Text("Ünïcode ✓".into()), "Ünïcode ✓".as_bytes()),
        (Value::Bytes(vec![0, 0xff, b'a']), b"\x00\xffa"),
        (Value::Bytes(b"blob".to_vec()), b"blob"),
        (
            Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
            b"2024-02-29",
        ),
        (
            Value::DateTime(datetime("1999-12-31 23:59:59.120")),
            b"1999-12-31 23:59:59.120",
        ),
        (
            Value::DateTime(datetime("2038-01-19 03:14:07.000001")),
            b"2038-01-19 03:14:07.000001",
        ),
        (
            Value::Time(-(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 1),
            b"-838:59:59.000001",
        ),
        (Value::Time(3_723_000_000), b"01:02:03"),
        (Value::Int(2024), b"2024"),
        (Value::Bytes(vec![0x02, 0x0A]), b"\x02\x0A"),
        (Value::Text(r#"{"a": [1, 2]}"#.into()), br#"{"a": [1, 2]}"#),
        (Value::Text("åé".into()), b"\xe5\xe9"),
        (Value::Float(1.5), b"1.50"),
    ]
}

fn text_payload(fields: &[Option<&[u8]>]) -> Bytes {
    let mut p = Vec::new();
    for f in fields {
        match f {
            Some(s) => put_lenenc_str(&mut p, s),
            None => p.push(TEXT_NULL),
        }
    }
    Bytes::from(p)
}

fn everything(n: usize) -> Vec<usize> {
    (0..n).collect()
}

fn computed(row: &Row) -> Row {
    Row {
        raw: vec![None; row.raw.len()],
        values: row.values.clone(),
    }
}

#[test]
fn parses_column_definitions_of_mysql_and_mariadb() {
    let plain = definition(
        "total",
        ColumnType::MYSQL_TYPE_NEWDECIMAL,
        0x80,
        63,
        33,
        2,
        None,
    );
    let c = ColumnMeta::parse(plain.clone(), false).unwrap();
    assert_eq!(c.name, "total");
    assert_eq!(c.column_type, ColumnType::MYSQL_TYPE_NEWDECIMAL);
    assert_eq!((c.collation_id, c.column_length, c.decimals), (63, 33, 2));
    assert!(c.flags.contains(ColumnFlags::BINARY_FLAG));
    assert_eq!(c.definition, plain);
    // mysql_common reads the same fields from it.
    let theirs: Column = ParseBuf(&plain).parse(()).unwrap();
    assert_eq!(theirs.decimals(), 2);
    assert_eq!(theirs.column_length(), 33);

    let extended = definition(
        "doc",
        ColumnType::MYSQL_TYPE_BLOB,
        0x90,
        UTF8MB4_GENERAL_CI,
        u32::MAX,
        0,
        Some(&[(1, "json"), (7, "ignored")]),
    );
    let c = ColumnMeta::parse(extended.clone(), true).unwrap();
    assert_eq!(c.mariadb_format.as_deref(), Some("json"));
    assert_eq!(c.mariadb_type_name, None);
    assert_eq!(c.column_type, ColumnType::MYSQL_TYPE_BLOB);
    assert_eq!(c.collation_id, UTF8MB4_GENERAL_CI);
    // Without the capability the extended field is read as the fixed fields' length.
    assert!(ColumnMeta::parse(extended, false).is_err());
    assert!(ColumnMeta::parse(plain.slice(..plain.len() - 3), false).is_err());
}

#[test]
fn collations_follow_the_binary_flag_and_the_collation_name() {
    let text = |flags, charset| col(ColumnType::MYSQL_TYPE_VAR_STRING, flags, charset, 40, 0);
    // utf8mb4_general_ci and utf8mb4_unicode_ci fold accents too.
    assert_eq!(text(0, 45).collation(), Collation::AccentInsensitive);
    assert_eq!(text(0, 224).collation(), Collation::AccentInsensitive);
    assert_eq!(text(0, 232).collation(), Collation::CaseInsensitive); // utf8mb4_swedish_ci
    assert_eq!(text(0, 33).collation(), Collation::AccentInsensitive); // utf8mb3_general_ci
                                                                       // utf8mb4_bin columns arrive as the connection's collation plus the BINARY flag.
    assert_eq!(text(BINARY, 45).collation(), Collation::BinaryPadSpace);
    assert_eq!(text(0, 46).collation(), Collation::BinaryPadSpace); // utf8mb4_bin
    assert_eq!(text(0, 63).collation(), Collation::Binary); // binary
    assert_eq!(text(0, 255).collation(), Collation::AccentInsensitiveNoPad); // utf8mb4_0900_ai_ci
    assert_eq!(text(0, 305).collation(), Collation::CaseInsensitiveNoPad); // utf8mb4_0900_as_ci
    assert_eq!(text(0, 278).collation(), Collation::Binary); // utf8mb4_0900_as_cs
    assert_eq!(text(0, 8).collation(), Collation::CaseInsensitive); // latin1_swedish_ci
    assert_eq!(text(0, 47).collation(), Collation::BinaryPadSpace); // latin1_bin
    assert_eq!(text(0, 1069).collation(), Collation::AccentInsensitiveNoPad); // utf8mb4_general_nopad_ci
    assert_eq!(text(0, 1032).collation(), Collation::CaseInsensitiveNoPad); // latin1_swedish_nopad_ci
    assert_eq!(text(0, 1070).collation(), Collation::Binary); // utf8mb4_nopad_bin
    assert_eq!(text(0, 2304).collation(), Collation::CaseInsensitive); // utf8mb4_uca1400_ai_ci
    assert_eq!(text(0, 2307).collation(), Collation::BinaryPadSpace); // utf8mb4_uca1400_as_cs
    assert_eq!(text(BINARY, 1070).collation(), Collation::Binary); // utf8mb4_nopad_bin
    assert_eq!(text(0, 609).collation(), Collation::CaseInsensitive); // utf8mb4_myanmar_ci
    assert_eq!(text(0, 40000).collation(), Collation::CaseInsensitive); // unknown
    assert_eq!(collation_of_id(2304).unwrap().charset, "utf8mb4");
    assert_eq!(collation_of_id(1032).unwrap().charset, "latin1");
    assert_eq!(
        text(BINARY, 45).column_info().collation,
        Collation::BinaryPadSpace
    );
    let sum = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 33, 2).column_info();
    assert_eq!(sum.avg_scale, AvgScale::Fixed(6));
    assert!(sum.sum_is_decimal);
    let double = col(ColumnType::MYSQL_TYPE_DOUBLE, 0, 63, 23, NOT_FIXED_DECIMALS);
    assert_eq!(double.column_info().avg_scale, AvgScale::Fixed(4));
}

#[test]
fn decodes_every_type_of_a_text_row() {
    let columns = all_columns();
    let sample = sample();
    let payload = text_payload(&sample.iter().map(|(_, t)| Some(*t)).collect::<Vec<_>>());
    let row = decode_text_row(&payload, &columns, &everything(columns.len())).unwrap();
    for (i, (value, text)) in sample.iter().enumerate() {
        assert_eq!(&row.values[i], value, "column {i}");
        assert_eq!(row.raw[i].as_deref(), Some(*text), "column {i}");
    }
}

#[test]
fn decodes_only_the_columns_asked_for_and_keeps_nulls() {
    let columns = all_columns();
    let mut fields: Vec<Option<&[u8]>> = sample().iter().map(|(_, t)| Some(*t)).collect();
    fields[5] = None;
    let payload = text_payload(&fields);
    let row = decode_text_row(&payload, &columns, &[5, 7]).unwrap();
    assert_eq!(row.raw[5], None);
    assert_eq!(row.values[5], Value::Null);
    assert_eq!(row.values[7], dec(BIG));
    assert_eq!(row.values[0], Value::Null);
    assert_eq!(row.raw[0].as_deref(), Some(&b"-128"[..]));
    // Passthrough columns come out as they went in.
    let mut out = Vec::new();
    encode_text_row(&row, &columns, &mut out).unwrap();
    assert_eq!(out, payload);
}

#[test]
fn text_rows_round_trip_from_decoded_values() {
    let columns = all_columns();
    let mut fields: Vec<Option<&[u8]>> = sample().iter().map(|(_, t)| Some(*t)).collect();
    fields[3] = None;
    let payload = text_payload(&fields);
    let row = decode_text_row(&payload, &columns, &everything(columns.len())).unwrap();
    let mut out = Vec::new();
    encode_text_row(&computed(&row), &columns, &mut out).unwrap();
    assert_eq!(out, payload);
}

#[test]
fn text_rows_drop_columns_past_the_visible_ones() {
    let columns = all_columns();
    let payload = text_payload(&[Some(b"1"), Some(b"2"), Some(b"3")]);
    let row = decode_text_row(&payload, &columns[..3], &[]).unwrap();
    let mut out = Vec::new();
    encode_text_row(&row, &columns[..2], &mut out).unwrap();
    assert_eq!(out, text_payload(&[Some(b"1"), Some(b"2")]));
}

fn lenenc(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_lenenc_str(&mut v, b);
    v
}

/// A binary-protocol row of the sample values, written by hand from the protocol
/// description (not by the encoder under test).
fn binary_sample_payload(null: Option<usize>) -> Bytes {
    let mut v: Vec<Vec<u8>> = vec![
        vec![0x80],
        vec![0xff],
        (-32768i16).to_le_bytes().to_vec(),
        16777215u32.to_le_bytes().to_vec(),
        42u32.to_le_bytes().to_vec(),
        i64::MIN.to_le_bytes().to_vec(),
        u64::MAX.to_le_bytes().to_vec(),
        lenenc(BIG.as_bytes()),
        vec![2, b'-', b'5'],
        1.23457_f32.to_le_bytes().to_vec(),
        (-1.5e-16f64).to_le_bytes().to_vec(),
        lenenc("Ünïcode ✓".as_bytes()),
        vec![3, 0, 0xff, b'a'],
        lenenc(b"blob"),
        vec![4, 0xe8, 0x07, 2, 29],
        [
            &[11u8, 0xcf, 0x07, 12, 31, 23, 59, 59][..],
            &120_000u32.to_le_bytes(),
        ]
        .concat(),
        [
            &[11u8, 0xf6, 0x07, 1, 19, 3, 14, 7][..],
            &1u32.to_le_bytes(),
        ]
        .concat(),
        [
            &[12u8, 1][..],
            &34u32.to_le_bytes(),
            &[22, 59, 59],
            &1u32.to_le_bytes(),
        ]
        .concat(),
        [&[8u8, 0][..], &0u32.to_le_bytes(), &[1, 2, 3]].concat(),
        2024u16.to_le_bytes().to_vec(),
        vec![2, 0x02, 0x0A],
        lenenc(br#"{"a": [1, 2]}"#),
        vec![2, 0xe5, 0xe9],
        1.5f64.to_le_bytes().to_vec(),
    ];
    let n = v.len();
    let mut p = vec![0u8; 1 + (n + 9) / 8];
    if let Some(i) = null {
        p[1 + (i + 2) / 8] |= 1 << ((i + 2) % 8);
        v[i].clear();
    }
    for value in v {
        p.extend_from_slice(&value);
    }
    Bytes::from(p)
}

#[test]
fn decodes_every_type_of_a_binary_row() {
    let columns = all_columns();
    let payload = binary_sample_payload(None);
    let row = decode_binary_row(&payload, &columns, &everything(columns.len())).unwrap();
    for (i, (value, _)) in sample().iter().enumerate() {
        match (i, value) {
            // The binary protocol sends the float itself, not its 6-digit text.
            (9, _) => assert_eq!(row.values[i], Value::Float(f64::from(1.23457_f32))),
            (_, v) => assert_eq!(&row.values[i], v, "column {i}"),
        }
    }
    assert_eq!(row.raw[0].as_deref(), Some(&[0x80][..]));
    assert_eq!(row.raw[8].as_deref(), Some(&b"\x02-5"[..]));
}

#[test]
fn binary_rows_round_trip_from_decoded_values() {
    let columns = all_columns();
    for null in [None, Some(0), Some(7), Some(23)] {
        let payload = binary_sample_payload(null);
        let row = decode_binary_row(&payload, &columns, &everything(columns.len())).unwrap();
        let mut out = Vec::new();
        encode_binary_row(&computed(&row), &columns, &mut out).unwrap();
        assert_eq!(out, payload, "NULL at {null:?}");
        out.clear();
        encode_binary_row(&row, &columns, &mut out).unwrap();
        assert_eq!(out, payload, "raw, NULL at {null:?}");
    }
}

#[test]
fn computed_binary_rows_read_back_with_mysql_common() {
    use mysql_common::Value as My;
    let columns = all_columns();
    let row = Row {
        raw: vec![None; 6],
        values: vec![
            Value::Int(-7),
            Value::Null,
            dec("300"),
            Value::UInt(70000),
            Value::Int(12),
            Value::Int(-1),
        ],
    };
    let mut out = Vec::new();
    encode_binary_row(&row, &columns[..6], &mut out).unwrap();
    let theirs: Vec<Column> = columns[..6]
        .iter()
        .map(|c| ParseBuf(&c.definition).parse(()).unwrap())
        .collect();
    let parsed: mysql_common::Row = ParseBuf(&out)
        .parse::<RowDeserializer<ServerSide, Binary>>(Arc::from(theirs))
        .unwrap()
        .into();
    assert_eq!(
        parsed.unwrap(),
        vec![
            My::Int(-7),
            My::NULL,
            My::Int(300),
            // mysql_common widens unsigned values below 64 bits to Int.
            My::Int(70000),
            My::Int(12),
            My::Int(-1),
        ]
    );
}

#[test]
fn aggregates_are_written_in_the_column_type() {
    use ColumnType::*;
    let sum = col(MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 33, 2);
    let count = col(MYSQL_TYPE_LONGLONG, 0x81, 63, 21, 0);
    let avg = col(MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 16, 4);
    let double = col(MYSQL_TYPE_DOUBLE, BINARY, 63, 23, NOT_FIXED_DECIMALS);
    let columns = [sum, count, avg, double];
    let row = Row {
        raw: vec![None; 4],
        values: vec![
            dec("-1234.5"),
            Value::Int(3),
            dec("2.333333333"),
            Value::Float(0.1 + 0.2),
        ],
    };
    let mut out = Vec::new();
    encode_text_row(&row, &columns, &mut out).unwrap();
    assert_eq!(
        out,
        text_payload(&[
            Some(b"-1234.50"),
            Some(b"3"),
            Some(b"2.3333"),
            Some(b"0.30000000000000004"),
        ])
    );
    // Half away from zero, as MySQL rounds decimals.
    assert_eq!(
        decimal_text(&BigDecimal::from_str("-0.00005").unwrap(), 4),
        "-0.0001"
    );
    assert_eq!(
        decimal_text(&BigDecimal::from_str("0.00005").unwrap(), 4),
        "0.0001"
    );
    assert_eq!(
        decimal_text(&BigDecimal::from_str("1e3").unwrap(), NOT_FIXED_DECIMALS),
        "1000"
    );
}

#[test]
fn integers_out_of_the_column_range_are_refused() {
    let tiny = col(ColumnType::MYSQL_TYPE_TINY, 0, 63, 4, 0);
    let row = Row {
        raw: vec![None],
        values: vec![Value::Int(128)],
    };
    let e = encode_binary_row(&row, std::slice::from_ref(&tiny), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let row = Row {
        raw: vec![None],
        values: vec![Value::Text("x".into())],
    };
    assert!(encode_text_row(&row, &[tiny], &mut Vec::new()).is_err());
}

#[test]
fn floats_are_written_as_mysql_writes_them() {
    // Outputs of MariaDB 10.11 for the same doubles / floats.
    let double = |f| float_text(f, false, NOT_FIXED_DECIMALS);
    let single = |f: f32| float_text(f64::from(f), true, NOT_FIXED_DECIMALS);
    assert_eq!(double(1e15), "1e15");
    assert_eq!(double(1e14), "100000000000000");
    assert_eq!(double(0.00001), "0.00001");
    assert_eq!(double(1e-15), "0.000000000000001");
    assert_eq!(double(1.5e-15), "0.0000000000000015");
    assert_eq!(double(1e-16), "1e-16");
    assert_eq!(double(123456789012345678.0), "1.2345678901234568e17");
    assert_eq!(double(-1.2345678901234567e-5), "-0.000012345678901234568");
    assert_eq!(double(1234567890123456.0), "1.234567890123456e15");
    assert_eq!(double(1e100), "1e100");
    assert_eq!(double(0.0), "0");
    assert_eq!(double(-2.5), "-2.5");
    assert_eq!(single(1.1), "1.1");
    assert_eq!(single(123456789.0), "123457000");
    assert_eq!(single(1e20), "1e20");
    assert_eq!(single(1e-7), "0.0000001");
    assert_eq!(single(0.000123456), "0.000123456");
    assert_eq!(float_text(2.0 / 3.0, false, 3), "0.667");
}

#[test]
fn zero_dates_sort_first_and_round_trip() {
    let columns = [
        col(ColumnType::MYSQL_TYPE_DATE, BINARY, 63, 10, 0),
        col(ColumnType::MYSQL_TYPE_DATETIME, BINARY, 63, 19, 0),
    ];
    let payload = text_payload(&[Some(b"0000-00-00"), Some(b"0000-00-00 00:00:00")]);
    let row = decode_text_row(&payload, &columns, &[0, 1]).unwrap();
    assert_eq!(row.values[0], Value::Date(NaiveDate::MIN));
    assert_eq!(row.values[1], Value::DateTime(zero_datetime()));
    let mut out = Vec::new();
    encode_text_row(&computed(&row), &columns, &mut out).unwrap();
    assert_eq!(out, payload);
    out.clear();
    encode_binary_row(&computed(&row), &columns, &mut out).unwrap();
    assert_eq!(out, [0, 0, 0, 0]);
    let back = decode_binary_row(&Bytes::from(out), &columns, &[0, 1]).unwrap();
    assert_eq!(back.values, row.values);

    let partial = text_payload(&[Some(b"2020-00-15"), Some(b"2020-01-01 00:00:00")]);
    let e = decode_text_row(&partial, &columns, &[0]).unwrap_err();
    assert!(matches!(e, Error::NotSupported(_)), "{e}");
}

#[test]
fn malformed_rows_are_errors_naming_the_column() {
    let columns = all_columns();
    let e = decode_text_row(&text_payload(&[Some(b"12x")]), &columns[..1], &[0]).unwrap_err();
    assert!(e.to_string().contains("column 1 (`c`)"), "{e}");
    // Truncated, too long, bad header.
    assert!(decode_text_row(&Bytes::from_static(&[5, b'a']), &columns[..1], &[]).is_err());
    assert!(decode_text_row(&text_payload(&[Some(b"1"), Some(b"2")]), &columns[..1], &[]).is_err());
    assert!(decode_binary_row(&Bytes::from_static(&[0, 0, 1, 2]), &columns[..1], &[]).is_err());
    assert!(decode_binary_row(&Bytes::from_static(&[1, 0, 1]), &columns[..1], &[]).is_err());
    assert!(decode_binary_row(&Bytes::from_static(&[0, 0]), &columns[..1], &[]).is_err());
    let bad_date = col(ColumnType::MYSQL_TYPE_DATE, BINARY, 63, 10, 0);
    assert!(decode_binary_row(&Bytes::from_static(&[0, 0, 2, 1, 2]), &[bad_date], &[0]).is_err());
    assert!(decode_text_row(&text_payload(&[Some(b"1")]), &columns[..1], &[3]).is_err());
    let decimal = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, 0, 63, 10, 0);
    assert!(decode_text_row(&text_payload(&[Some(b"1e999999999")]), &[decimal], &[0]).is_err());
}

#[test]
fn merged_results_keep_the_first_shards_visible_definitions() {
    let columns = all_columns();
    let header = truncate_columns(&columns, 2);
    assert_eq!(header.len(), 3);
    assert_eq!(&header[0][..], &[2]);
    assert_eq!(header[1], columns[0].definition);
    assert_eq!(header[2], columns[1].definition);
    assert_eq!(truncate_columns(&columns[..1], 5).len(), 2);
}

#[test]
fn an_avg_column_takes_the_scale_a_single_database_reports() {
    let sum = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 33, 0);
    let avg = sum.with_decimals(4, 16);
    assert_eq!((avg.decimals, avg.column_length), (4, 16));
    assert_eq!(
        ColumnMeta::parse(avg.definition.clone(), false).unwrap(),
        avg
    );
    let row = Row {
        raw: vec![None],
        values: vec![dec("2.33333")],
    };
    let mut out = Vec::new();
    encode_text_row(&row, &[avg], &mut out).unwrap();
    assert_eq!(out, text_payload(&[Some(b"2.3333")]));
}

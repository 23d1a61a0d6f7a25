//! Bound parameter values, from a client's Bind to the router's [`ParamValue`]s.
//!
//! The router needs the values to pick shards (and writes them into the units' SQL as
//! literals), so each value is decoded by its type OID (from the client's Parse, or from
//! the ParameterDescription the data source gave) and its format. Text values of integer
//! and float types become numbers, `bytea` bytes, anything else text; binary values are
//! decoded for the common types, and any other binary type is refused with a message
//! naming it rather than guessed.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::extended_messages::BindMessage;
use crate::error::Error;
use crate::route::shard::ParamValue;

const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const CHAR: u32 = 18;
const NAME: u32 = 19;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const TEXT: u32 = 25;
const OID: u32 = 26;
const JSON: u32 = 114;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const UNKNOWN: u32 = 705;
const BPCHAR: u32 = 1042;
const VARCHAR: u32 = 1043;
const DATE: u32 = 1082;
const TIME: u32 = 1083;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const NUMERIC: u32 = 1700;
const UUID: u32 = 2950;
const JSONB: u32 = 3802;

/// Whether decoding `bind` needs type OIDs that `types` (0 = unspecified) lacks: a binary
/// value always does; a text value only to be read as a number or bytes, which an
/// unspecified type cannot ask for, so text values never need one.
pub fn needs_types(bind: &BindMessage, types: &[u32]) -> bool {
    (0..bind.params.len()).any(|i| {
        bind.param_format(i) != 0
            && types.get(i).copied().unwrap_or(0) == 0
            && bind.params[i].is_some()
    })
}

/// The values of `bind`, typed by `types` (parameter `i` has `types[i]`; missing or 0 means
/// unspecified, read as text).
pub fn decode_params(bind: &BindMessage, types: &[u32]) -> Result<Vec<ParamValue>, Error> {
    bind.params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let Some(v) = v else {
                return Ok(ParamValue::Null);
            };
            let oid = types.get(i).copied().unwrap_or(0);
            if bind.param_format(i) == 0 {
                decode_text(v, oid, i + 1)
            } else {
                decode_binary(v, oid, i + 1)
            }
        })
        .collect()
}

fn utf8(v: &[u8], n: usize) -> Result<String, Error> {
    String::from_utf8(v.to_vec())
        .map_err(|_| Error::Malformed(format!("invalid UTF-8 in bind parameter {n}")))
}

fn decode_text(v: &[u8], oid: u32, n: usize) -> Result<ParamValue, Error> {
    let text = utf8(v, n)?;
    Ok(match oid {
        INT2 | INT4 | INT8 | OID => match text.trim().parse() {
            Ok(i) => ParamValue::Int(i),
            Err(_) => ParamValue::Text(text),
        },
        FLOAT4 | FLOAT8 => match text.trim().parse() {
            Ok(f) => ParamValue::Float(f),
            Err(_) => ParamValue::Text(text),
        },
        BYTEA => match text.strip_prefix("\\x").and_then(hex) {
            Some(bytes) => ParamValue::Bytes(bytes),
            None => ParamValue::Text(text),
        },
        _ => ParamValue::Text(text),
    })
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn bad(n: usize) -> Error {
    Error::Malformed(format!(
        "incorrect binary data format in bind parameter {n}"
    ))
}

fn fixed<const N: usize>(v: &[u8], n: usize) -> Result<[u8; N], Error> {
    v.try_into().map_err(|_| bad(n))
}

fn decode_binary(v: &[u8], oid: u32, n: usize) -> Result<ParamValue, Error> {
    Ok(match oid {
        INT2 => ParamValue::Int(i16::from_be_bytes(fixed(v, n)?).into()),
        INT4 => ParamValue::Int(i32::from_be_bytes(fixed(v, n)?).into()),
        INT8 => ParamValue::Int(i64::from_be_bytes(fixed(v, n)?)),
        OID => ParamValue::Int(u32::from_be_bytes(fixed(v, n)?).into()),
        FLOAT4 => ParamValue::Float(f32::from_be_bytes(fixed(v, n)?).into()),
        FLOAT8 => ParamValue::Float(f64::from_be_bytes(fixed(v, n)?)),
        BOOL => ParamValue::Text(if fixed::<1>(v, n)?[0] != 0 { "true" } else { "false" }.into()),
        TEXT | VARCHAR | BPCHAR | NAME | CHAR | UNKNOWN | JSON => ParamValue::Text(utf8(v, n)?),
        JSONB => match v.split_first() {
            Some((1, json)) => ParamValue::Text(utf8(json, n)?),
            _ => return Err(bad(n)),
        },
        BYTEA => ParamValue::Bytes(v.to_vec()),
        UUID => ParamValue::Text(uuid(&fixed::<16>(v, n)?)),
        DATE => ParamValue::Text(date(i32::from_be_bytes(fixed(v, n)?))),
        TIME => ParamValue::Text(time(i64::from_be_bytes(fixed(v, n)?)).ok_or_else(|| bad(n))?),
        TIMESTAMP => ParamValue::Text(timestamp(i64::from_be_bytes(fixed(v, n)?)).ok_or_else(|| bad(n))?),
        TIMESTAMPTZ => ParamValue::Text(
            timestamp(i64::from_be_bytes(fixed(v, n)?))
                .map(|t| if t.ends_with("infinity") { t } else { format!("{t}+00") })
                .ok_or_else(|| bad(n))?,
        ),
        NUMERIC => ParamValue::Text(numeric(v).ok_or_else(|| bad(n))?),
        0 => {
            return Err(Error::NotSupported(format!(
                "a binary-format bind parameter ${n} of unspecified type"
            )))
        }
        other => {
            return Err(Error::NotSupported(format!(
                "binary format for bind parameter ${n} of type OID {other} on a sharded database (send it in text format)"
            )))
        }
    })
}

fn uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .expect("valid date")
        .and_time(NaiveTime::MIN)
}

/// Days since 2000-01-01, as `YYYY-MM-DD` (or `infinity`).
fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => (epoch() + Duration::days(d.into())).date().to_string(),
    }
}

/// Microseconds since midnight, as `HH:MM:SS[.ffffff]`.
fn time(micros: i64) -> Option<String> {
    let t = NaiveTime::MIN + Duration::microseconds(micros);
    Some(t.format("%H:%M:%S%.f").to_string())
}

/// Microseconds since 2000-01-01 00:00:00, as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn timestamp(micros: i64) -> Option<String> {
    match micros {
        i64::MAX => Some("infinity".into()),
        i64::MIN => Some("-infinity".into()),
        m => {
            let t = epoch().checked_add_signed(Duration::microseconds(m))?;
            Some(t.format("%Y-%m-%d %H:%M:%S%.f").to_string())
        }
    }
}

/// PostgreSQL's binary numeric: digit count, weight (of the first base-10000 digit), sign,
/// display scale, then the base-10000 digits.
fn numeric(v: &[u8]) -> Option<String> {
    let word = |i: usize| v.get(i..i + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let ndigits = usize::try_from(word(0)?).ok()?;
    let weight = i64::from(word(2)?);
    let sign = word(4)? as u16;
    let dscale = usize::try_from(word(6)?).ok()?;
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digit = |i: i64| -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bind(values: Vec<Option<&'static [u8]>>, formats: Vec<i16>) -> BindMessage {
        BindMessage {
            portal: String::new(),
            statement: String::new(),
            param_formats: formats,
            params: values
                .into_iter()
                .map(|v| v.map(Bytes::from_static))
                .collect(),
            result_formats: vec![],
        }
    }

    #[test]
    fn reads_text_values_by_their_declared_types() {
        let b = bind(
            vec![
                Some(b"42"),
                Some(b"1.5"),
                Some(b"\\x00ff"),
                Some(b"abc"),
                None,
                Some(b"7"),
            ],
            vec![],
        );
        let v = decode_params(&b, &[INT8, FLOAT8, BYTEA, VARCHAR, INT4, 0]).unwrap();
        assert_eq!(
            v,
            vec![
                ParamValue::Int(42),
                ParamValue::Float(1.5),
                ParamValue::Bytes(vec![0, 255]),
                ParamValue::Text("abc".into()),
                ParamValue::Null,
                ParamValue::Text("7".into()),
            ]
        );
    }

    #[test]
    fn reads_binary_integers_floats_and_text() {
        let b = bind(
            vec![
                Some(&[0, 7]),
                Some(&[0, 0, 0, 9]),
                Some(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]),
                Some(&[0x3f, 0xc0, 0, 0]),
                Some(b"hi"),
                Some(&[1]),
            ],
            vec![1],
        );
        let v = decode_params(&b, &[INT2, INT4, INT8, FLOAT4, TEXT, BOOL]).unwrap();
        assert_eq!(
            v,
            vec![
                ParamValue::Int(7),
                ParamValue::Int(9),
                ParamValue::Int(-2),
                ParamValue::Float(1.5),
                ParamValue::Text("hi".into()),
                ParamValue::Text("true".into()),
            ]
        );
    }

    #[test]
    fn reads_binary_dates_timestamps_uuids_and_numerics() {
        let b = bind(
            vec![
                Some(&[0, 0, 0x21, 0xb7]),                // 8631 days
                Some(&[0, 0, 0, 0, 0, 0x0f, 0x42, 0x40]), // 1 s
                Some(&[
                    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7,
                ]),
                // 12345.67: 3 digits (1, 2345, 6700), weight 1, positive, scale 2.
                Some(&[0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c]),
            ],
            vec![1],
        );
        let v = decode_params(&b, &[DATE, TIMESTAMP, UUID, NUMERIC]).unwrap();
        assert_eq!(
            v,
            vec![
                ParamValue::Text("2023-08-19".into()),
                ParamValue::Text("2000-01-01 00:00:01".into()),
                ParamValue::Text("12345678-9abc-def0-0001-020304050607".into()),
                ParamValue::Text("12345.67".into()),
            ]
        );
        assert_eq!(
            numeric(&[0, 1, 0xff, 0xff, 0x40, 0, 0, 3, 0x13, 0x88]).as_deref(),
            Some("-0.500")
        );
    }

    #[test]
    fn refuses_wrong_lengths_and_unknown_binary_types_by_name() {
        let b = bind(vec![Some(&[0, 0, 1])], vec![1]);
        assert!(matches!(
            decode_params(&b, &[INT4]),
            Err(Error::Malformed(_))
        ));
        let e = decode_params(&b, &[600]).unwrap_err().to_string();
        assert!(e.contains("OID 600"), "{e}");
        assert!(needs_types(&b, &[0]));
        assert!(!needs_types(&bind(vec![Some(b"1")], vec![]), &[0]));
    }
}

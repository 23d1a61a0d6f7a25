//! COM_STMT_EXECUTE packets of sharded statements: reading the bound parameters (so the
//! planner can route by them, or write them into the SQL), and rewriting the packet for the
//! backend statement of each unit.
//!
//! Unsharded statements never come here: their execute packets are forwarded with only the
//! statement id replaced. Values are decoded by hand rather than with `mysql_common`'s
//! `Value::deserialize_bin`, which panics on a type byte it does not know, and a client
//! must not be able to do that to a connection task.

use std::collections::BTreeMap;

use crate::route::shard::ParamValue;

/// The parts of an execute packet (`0x17, stmt_id u32, flags u8, iterations u32,
/// null_bitmap, new_params_bound u8, [types], values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execute<'a> {
    pub flags: u8,
    /// One bit per parameter, parameter 0 in the lowest bit of the first byte.
    pub null_bitmap: &'a [u8],
    /// Two bytes per parameter (type, then 0x80 for unsigned), when the client sent them
    /// with this execute.
    pub types: Option<&'a [u8]>,
    /// The values of the parameters that are neither NULL nor sent as long data.
    pub values: &'a [u8],
}

/// Splits an execute packet for a statement with `params` parameters; `None` when it is
/// too short for that.
pub fn parse_execute(payload: &[u8], params: usize) -> Option<Execute<'_>> {
    let flags = *payload.get(5)?;
    payload.get(6..10)?;
    if params == 0 {
        return Some(Execute {
            flags,
            null_bitmap: &[],
            types: None,
            values: &[],
        });
    }
    let bitmap_end = 10 + params.div_ceil(8);
    let null_bitmap = payload.get(10..bitmap_end)?;
    let bound = *payload.get(bitmap_end)? == 1;
    let mut at = bitmap_end + 1;
    let types = if bound {
        let t = payload.get(at..at + 2 * params)?;
        at += 2 * params;
        Some(t)
    } else {
        None
    };
    Some(Execute {
        flags,
        null_bitmap,
        types,
        values: &payload[at..],
    })
}

/// Decodes the bound values. `types` are this execute's or the ones bound earlier;
/// `long_data` holds what COM_STMT_SEND_LONG_DATA sent per parameter (those parameters
/// have no value in the packet). Errors name the parameter and what is wrong.
pub fn decode_params(
    exec: &Execute<'_>,
    params: usize,
    types: &[u8],
    long_data: &BTreeMap<u16, Vec<u8>>,
) -> Result<Vec<ParamValue>, String> {
    if types.len() < 2 * params {
        return Err("no parameter types were ever bound".into());
    }
    let mut values = exec.values;
    let mut out = Vec::with_capacity(params);
    for i in 0..params {
        let type_byte = types[2 * i];
        if exec.null_bitmap[i / 8] & (1 << (i % 8)) != 0 || type_byte == TYPE_NULL {
            out.push(ParamValue::Null);
            continue;
        }
        if let Some(data) = u16::try_from(i).ok().and_then(|i| long_data.get(&i)) {
            out.push(bytes_value(type_byte, data.clone()));
            continue;
        }
        let unsigned = types[2 * i + 1] & 0x80 != 0;
        let value = decode_one(type_byte, unsigned, &mut values)
            .ok_or_else(|| format!("parameter {}: bad value for type 0x{type_byte:02x}", i + 1))?;
        out.push(value);
    }
    Ok(out)
}

const TYPE_NULL: u8 = 6;
const TYPE_DATE: u8 = 10;

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = (buf.get(..n)?, buf.get(n..)?);
    *buf = rest;
    Some(head)
}

fn lenenc(buf: &mut &[u8]) -> Option<u64> {
    let first = *take(buf, 1)?.first()?;
    let n = match first {
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        0xFB | 0xFF => return None,
        small => return Some(u64::from(small)),
    };
    let bytes = take(buf, n)?;
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(bytes);
    Some(u64::from_le_bytes(v))
}

fn decode_one(type_byte: u8, unsigned: bool, buf: &mut &[u8]) -> Option<ParamValue> {
    fn int<const N: usize>(buf: &mut &[u8]) -> Option<[u8; N]> {
        take(buf, N)?.try_into().ok()
    }
    let v = match type_byte {
        // TINY
        1 => {
            let [b] = int::<1>(buf)?;
            if unsigned {
                ParamValue::Int(i64::from(b))
            } else {
                ParamValue::Int(i64::from(b as i8))
            }
        }
        // SHORT, YEAR
        2 | 13 => {
            let b = int::<2>(buf)?;
            if unsigned {
                ParamValue::Int(i64::from(u16::from_le_bytes(b)))
            } else {
                ParamValue::Int(i64::from(i16::from_le_bytes(b)))
            }
        }
        // LONG, INT24
        3 | 9 => {
            let b = int::<4>(buf)?;
            if unsigned {
                ParamValue::Int(i64::from(u32::from_le_bytes(b)))
            } else {
                ParamValue::Int(i64::from(i32::from_le_bytes(b)))
            }
        }
        // LONGLONG
        8 => {
            let b = int::<8>(buf)?;
            if unsigned {
                let u = u64::from_le_bytes(b);
                i64::try_from(u).map_or(ParamValue::UInt(u), ParamValue::Int)
            } else {
                ParamValue::Int(i64::from_le_bytes(b))
            }
        }
        4 => ParamValue::Float(f64::from(f32::from_le_bytes(int::<4>(buf)?))),
        5 => ParamValue::Float(f64::from_le_bytes(int::<8>(buf)?)),
        // TIMESTAMP, DATE, DATETIME, NEWDATE
        7 | 10 | 12 | 14 => ParamValue::Text(datetime(type_byte, buf)?),
        11 => ParamValue::Text(time(buf)?),
        // DECIMAL, VARCHAR, BIT, JSON .. GEOMETRY: length-encoded bytes.
        0 | 15 | 16 | 0xF5..=0xFF => {
            let len = usize::try_from(lenenc(buf)?).ok()?;
            bytes_value(type_byte, take(buf, len)?.to_vec())
        }
        _ => return None,
    };
    Some(v)
}

/// Strings, decimals, enums and JSON are text when they are UTF-8; BLOBs, BIT and
/// GEOMETRY (and text that is not UTF-8) stay bytes.
fn bytes_value(type_byte: u8, bytes: Vec<u8>) -> ParamValue {
    let textual = matches!(type_byte, 0 | 15 | 0xF5..=0xF8 | 0xFD | 0xFE);
    if textual {
        match String::from_utf8(bytes) {
            Ok(s) => ParamValue::Text(s),
            Err(e) => ParamValue::Bytes(e.into_bytes()),
        }
    } else {
        ParamValue::Bytes(bytes)
    }
}

/// `len u8, year u16, month, day, [hour, minute, second, [micros u32]]` as SQL text.
fn datetime(type_byte: u8, buf: &mut &[u8]) -> Option<String> {
    let len = usize::from(*take(buf, 1)?.first()?);
    let b = take(buf, len)?;
    let (y, mo, d) = match len {
        0 => (0, 0, 0),
        4 | 7 | 11 => (u16::from_le_bytes([b[0], b[1]]), b[2], b[3]),
        _ => return None,
    };
    let (h, mi, s) = if len >= 7 {
        (b[4], b[5], b[6])
    } else {
        (0, 0, 0)
    };
    let micros = if len == 11 {
        u32::from_le_bytes([b[7], b[8], b[9], b[10]])
    } else {
        0
    };
    let date = format!("{y:04}-{mo:02}-{d:02}");
    Some(if type_byte == TYPE_DATE {
        date
    } else if micros != 0 {
        format!("{date} {h:02}:{mi:02}:{s:02}.{micros:06}")
    } else {
        format!("{date} {h:02}:{mi:02}:{s:02}")
    })
}

/// `len u8, negative u8, days u32, hour, minute, second, [micros u32]` as SQL text.
fn time(buf: &mut &[u8]) -> Option<String> {
    let len = usize::from(*take(buf, 1)?.first()?);
    let b = take(buf, len)?;
    if len == 0 {
        return Some("00:00:00".into());
    }
    if len != 8 && len != 12 {
        return None;
    }
    let sign = if b[0] == 1 { "-" } else { "" };
    let hours = u64::from(u32::from_le_bytes([b[1], b[2], b[3], b[4]])) * 24 + u64::from(b[5]);
    let base = format!("{sign}{hours:02}:{:02}:{:02}", b[6], b[7]);
    Some(if len == 12 {
        let micros = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        format!("{base}.{micros:06}")
    } else {
        base
    })
}

/// The client's execute, ready to be sent for another backend statement (see
/// [`with_statement_id`]): it always carries the parameter types, because a statement just
/// prepared on a backend has never seen them, and it asks for no cursor, because the rows
/// of several units are concatenated as they arrive.
pub fn execute_template(
    payload: &[u8],
    exec: &Execute<'_>,
    params: usize,
    types: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + types.len() + 1);
    out.extend_from_slice(&payload[..5]);
    out.push(0); // CURSOR_TYPE_NO_CURSOR
    out.extend_from_slice(&payload[6..10]);
    if params > 0 {
        out.extend_from_slice(exec.null_bitmap);
        out.push(1);
        out.extend_from_slice(&types[..2 * params]);
        out.extend_from_slice(exec.values);
    }
    out
}

/// A copy of an execute (or long data) packet for backend statement `id`.
pub fn with_statement_id(packet: &[u8], id: u32) -> Vec<u8> {
    let mut out = packet.to_vec();
    out[1..5].copy_from_slice(&id.to_le_bytes());
    out
}

/// A COM_STMT_EXECUTE of a statement without parameters.
pub fn execute_without_params(id: u32) -> Vec<u8> {
    let mut out = vec![0x17];
    out.extend_from_slice(&id.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&1u32.to_le_bytes());
    out
}

/// COM_STMT_SEND_LONG_DATA of `data` for parameter `param` of backend statement `id`.
pub fn long_data_packet(id: u32, param: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + data.len());
    out.push(0x18);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&param.to_le_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An execute packet with the given types and values, parameters NULL where `nulls`.
    fn packet(types: &[(u8, u8)], nulls: &[usize], values: &[u8], bound: bool) -> Vec<u8> {
        let mut p = vec![0x17, 9, 0, 0, 0, 1, 1, 0, 0, 0];
        let mut bitmap = vec![0u8; types.len().div_ceil(8)];
        for &n in nulls {
            bitmap[n / 8] |= 1 << (n % 8);
        }
        p.extend_from_slice(&bitmap);
        p.push(u8::from(bound));
        if bound {
            for &(t, f) in types {
                p.extend_from_slice(&[t, f]);
            }
        }
        p.extend_from_slice(values);
        p
    }

    #[test]
    fn decodes_integers_strings_nulls_and_unsigned_values() {
        let mut values = Vec::new();
        values.extend_from_slice(&(-7i64).to_le_bytes());
        values.extend_from_slice(&[3, b'a', b'b', b'c']);
        values.extend_from_slice(&u64::MAX.to_le_bytes());
        values.push(0xFF); // TINY -1
        let types = [(8, 0), (0xFD, 0), (8, 0x80), (6, 0), (1, 0)];
        let p = packet(&types, &[3], &values, true);
        let exec = parse_execute(&p, 5).unwrap();
        let t = exec.types.unwrap();
        let got = decode_params(&exec, 5, t, &BTreeMap::new()).unwrap();
        assert_eq!(
            got,
            vec![
                ParamValue::Int(-7),
                ParamValue::Text("abc".into()),
                ParamValue::UInt(u64::MAX),
                ParamValue::Null,
                ParamValue::Int(-1),
            ]
        );
    }

    #[test]
    fn decodes_dates_times_and_doubles_as_sql_text() {
        let mut values = vec![4, 0xE8, 0x07, 1, 31];
        values.extend_from_slice(&[11, 0xE8, 0x07, 1, 31, 10, 0, 5]);
        values.extend_from_slice(&1234u32.to_le_bytes());
        values.extend_from_slice(&[8, 1, 1, 0, 0, 0, 2, 3, 4]);
        values.extend_from_slice(&2.5f64.to_le_bytes());
        let types = [(10, 0), (12, 0), (11, 0), (5, 0)];
        let p = packet(&types, &[], &values, true);
        let exec = parse_execute(&p, 4).unwrap();
        let got = decode_params(&exec, 4, exec.types.unwrap(), &BTreeMap::new()).unwrap();
        assert_eq!(
            got,
            vec![
                ParamValue::Text("2024-01-31".into()),
                ParamValue::Text("2024-01-31 10:00:05.001234".into()),
                ParamValue::Text("-26:03:04".into()),
                ParamValue::Float(2.5),
            ]
        );
    }

    #[test]
    fn uses_remembered_types_and_folds_long_data_in() {
        let values = 42i32.to_le_bytes();
        let p = packet(&[(3, 0), (0xFC, 0)], &[], &values, false);
        let exec = parse_execute(&p, 2).unwrap();
        assert!(exec.types.is_none());
        let long = BTreeMap::from([(1u16, b"blob".to_vec())]);
        let got = decode_params(&exec, 2, &[3, 0, 0xFC, 0], &long).unwrap();
        assert_eq!(
            got,
            vec![ParamValue::Int(42), ParamValue::Bytes(b"blob".to_vec())]
        );
    }

    #[test]
    fn refuses_truncated_values_and_unknown_types_without_panicking() {
        let p = packet(&[(8, 0)], &[], &[1, 2, 3], true);
        let exec = parse_execute(&p, 1).unwrap();
        assert!(decode_params(&exec, 1, exec.types.unwrap(), &BTreeMap::new()).is_err());
        let p = packet(&[(0x13, 0)], &[], &[0; 8], true);
        let exec = parse_execute(&p, 1).unwrap();
        let e = decode_params(&exec, 1, exec.types.unwrap(), &BTreeMap::new()).unwrap_err();
        assert!(e.contains("parameter 1"), "{e}");
        assert!(parse_execute(&[0x17, 1, 0], 0).is_none());
        let p = packet(&[(8, 0)], &[], &[], false);
        let exec = parse_execute(&p, 1).unwrap();
        assert!(decode_params(&exec, 1, &[], &BTreeMap::new()).is_err());
    }

    #[test]
    fn template_carries_types_drops_the_cursor_and_takes_a_new_id() {
        let values = 5i64.to_le_bytes();
        let p = packet(&[(8, 0)], &[], &values, false);
        let exec = parse_execute(&p, 1).unwrap();
        let t = execute_template(&p, &exec, 1, &[8, 0]);
        let t = with_statement_id(&t, 77);
        assert_eq!(&t[1..5], &77u32.to_le_bytes());
        assert_eq!(t[5], 0);
        let again = parse_execute(&t, 1).unwrap();
        assert_eq!(again.types, Some(&[8u8, 0][..]));
        assert_eq!(again.values, &values[..]);
        let bare = execute_without_params(3);
        assert_eq!(parse_execute(&bare, 0).unwrap().flags, 0);
    }
}

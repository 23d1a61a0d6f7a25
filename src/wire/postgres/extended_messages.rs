//! The extended-protocol messages a sharded session must read: Parse, Bind, Describe /
//! Close and Execute, decoded from a client's whole message (type byte and length
//! included), and the backend-bound messages dbmesh writes to run a unit.
//!
//! The single-data-source pump never decodes these (it forwards bytes); a sharded session
//! needs the statement text to route, the parameters to pick shards, and the result formats
//! to ask each data source for. Decoding checks every length, so a malformed message is an
//! error, never a panic.

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

use crate::error::Error;

/// Parse: `name`, `query`, parameter type OIDs (0 = unspecified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMessage {
    pub name: String,
    pub query: String,
    pub param_types: Vec<u32>,
}

/// Bind: portal and statement names, parameter formats and values (raw, `None` for NULL),
/// result column formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMessage {
    pub portal: String,
    pub statement: String,
    /// Empty (all text), one (for all) or one per parameter; 0 text, 1 binary.
    pub param_formats: Vec<i16>,
    pub params: Vec<Option<Bytes>>,
    /// Empty (all text), one (for all) or one per column.
    pub result_formats: Vec<i16>,
}

impl BindMessage {
    /// The format of parameter `i`.
    pub fn param_format(&self, i: usize) -> i16 {
        match self.param_formats.as_slice() {
            [] => 0,
            [one] => *one,
            many => many.get(i).copied().unwrap_or(0),
        }
    }
}

/// Execute: portal name and row limit (0 = all rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteMessage {
    pub portal: String,
    pub max_rows: i32,
}

/// Describe or Close: `S` (statement) or `P` (portal), and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMessage {
    pub kind: u8,
    pub name: String,
}

/// Reads a message body, checking every length.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Over the body of a whole message (after the type byte and length).
    fn new(message: &'a [u8]) -> Result<Self, Error> {
        let b = message
            .get(5..)
            .ok_or_else(|| Error::Malformed("message shorter than its header".into()))?;
        Ok(Cursor { b })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.b.len() < n {
            return Err(Error::Malformed("insufficient data left in message".into()));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, Error> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, Error> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count of items that follow (never negative).
    fn count(&mut self) -> Result<usize, Error> {
        usize::try_from(self.i16()?).map_err(|_| Error::Malformed("negative count".into()))
    }

    fn cstr(&mut self) -> Result<String, Error> {
        let end = self
            .b
            .iter()
            .position(|c| *c == 0)
            .ok_or_else(|| Error::Malformed("unterminated string in message".into()))?;
        let s = std::str::from_utf8(&self.b[..end])
            .map_err(|_| Error::Malformed("invalid UTF-8 in message".into()))?
            .to_string();
        self.b = &self.b[end + 1..];
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
}

impl ParseMessage {
    pub fn decode(message: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(message)?;
        let name = c.cstr()?;
        let query = c.cstr()?;
        let n = c.count()?;
        let param_types = (0..n)
            .map(|_| c.i32().map(|t| t as u32))
            .collect::<Result<_, _>>()?;
        Ok(ParseMessage {
            name,
            query,
            param_types,
        })
    }
}

impl BindMessage {
    pub fn decode(message: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(message)?;
        let portal = c.cstr()?;
        let statement = c.cstr()?;
        let n = c.count()?;
        let param_formats = (0..n).map(|_| c.i16()).collect::<Result<_, _>>()?;
        let n = c.count()?;
        let mut params = Vec::with_capacity(n);
        for _ in 0..n {
            let len = c.i32()?;
            params.push(match usize::try_from(len) {
                Ok(len) => Some(Bytes::copy_from_slice(c.take(len)?)),
                Err(_) => None,
            });
        }
        let n = c.count()?;
        let result_formats = (0..n).map(|_| c.i16()).collect::<Result<_, _>>()?;
        Ok(BindMessage {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }
}

impl ExecuteMessage {
    pub fn decode(message: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(message)?;
        let portal = c.cstr()?;
        let max_rows = c.i32()?;
        Ok(ExecuteMessage { portal, max_rows })
    }
}

impl TargetMessage {
    pub fn decode(message: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(message)?;
        let kind = c.byte()?;
        if kind != b'S' && kind != b'P' {
            return Err(Error::Malformed(format!(
                "invalid DESCRIBE/CLOSE message subtype {}",
                kind as char
            )));
        }
        let name = c.cstr()?;
        Ok(TargetMessage { kind, name })
    }
}

/// The name dbmesh gives the statement and portal it runs a unit or a transaction
/// statement with, so the client's unnamed statement and portal on the same backend
/// connection are left alone. Each use closes them first (a run that failed part-way
/// leaves them behind) and after (so the client never sees them in
/// `pg_prepared_statements`).
pub const DBMESH_STATEMENT: &str = "dbmesh_unit";

/// Bind values to send as they are: the client's own parameters, for units that keep
/// placeholders.
pub struct RawParams<'a> {
    pub types: &'a [u32],
    pub formats: &'a [i16],
    pub values: &'a [Option<Bytes>],
}

/// Writes the messages running `sql` once on a backend under [`DBMESH_STATEMENT`], without
/// Sync: Close statement and portal, Parse, Bind (with `params`, or none), Describe portal
/// when `describe`, Execute (all rows) when `execute`, Close portal and statement. The
/// backend answers CloseComplete twice, ParseComplete, BindComplete, [RowDescription /
/// NoData], [the rows and CommandComplete], CloseComplete twice.
pub fn write_unit(
    buf: &mut BytesMut,
    sql: &str,
    params: Option<&RawParams<'_>>,
    result_formats: &[i16],
    describe: bool,
    execute: bool,
) -> Result<(), Error> {
    let name = DBMESH_STATEMENT;
    let io = |e: std::io::Error| Error::Malformed(e.to_string());
    frontend::close(b'S', name, buf).map_err(io)?;
    frontend::close(b'P', name, buf).map_err(io)?;
    let types = params.map_or(&[][..], |p| p.types);
    frontend::parse(name, sql, types.iter().copied(), buf).map_err(io)?;
    let (formats, values) = params.map_or((&[][..], &[][..]), |p| (p.formats, p.values));
    frontend::bind(
        name,
        name,
        formats.iter().copied(),
        values.iter(),
        |v, out| match v {
            Some(v) => {
                out.extend_from_slice(v);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        result_formats.iter().copied(),
        buf,
    )
    .map_err(|e| match e {
        frontend::BindError::Conversion(e) => Error::Malformed(e.to_string()),
        frontend::BindError::Serialization(e) => io(e),
    })?;
    if describe {
        frontend::describe(b'P', name, buf).map_err(io)?;
    }
    if execute {
        frontend::execute(name, 0, buf).map_err(io)?;
    }
    frontend::close(b'P', name, buf).map_err(io)?;
    frontend::close(b'S', name, buf).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut b);
        b.to_vec()
    }

    #[test]
    fn decodes_parse_with_parameter_types() {
        let m = framed(|b| frontend::parse("s1", "SELECT $1", [23u32, 0], b).unwrap());
        assert_eq!(
            ParseMessage::decode(&m).unwrap(),
            ParseMessage {
                name: "s1".into(),
                query: "SELECT $1".into(),
                param_types: vec![23, 0],
            }
        );
    }

    #[test]
    fn decodes_bind_with_nulls_and_formats() {
        let values: Vec<Option<&[u8]>> = vec![Some(b"7"), None];
        let m = framed(|b| {
            frontend::bind(
                "p",
                "s",
                [0i16, 1],
                values.iter(),
                |v, out| match v {
                    Some(v) => {
                        out.extend_from_slice(v);
                        Ok(IsNull::No)
                    }
                    None => Ok(IsNull::Yes),
                },
                [1i16],
                b,
            )
            .map_err(|_| ())
            .unwrap()
        });
        let bind = BindMessage::decode(&m).unwrap();
        assert_eq!(bind.portal, "p");
        assert_eq!(bind.statement, "s");
        assert_eq!(bind.params, vec![Some(Bytes::from_static(b"7")), None]);
        assert_eq!((bind.param_format(0), bind.param_format(1)), (0, 1));
        assert_eq!(bind.result_formats, vec![1]);
    }

    #[test]
    fn rejects_truncated_and_overlong_values_without_panicking() {
        let m = framed(|b| frontend::parse("s1", "SELECT 1", [23u32], b).unwrap());
        assert!(ParseMessage::decode(&m[..m.len() - 2]).is_err());
        // A Bind claiming a 100-byte value with 1 byte present.
        let mut bad = b"B\0\0\0\0p\0s\0\0\0\0\x01\0\0\0\x64x".to_vec();
        let len = (bad.len() - 1) as i32;
        bad[1..5].copy_from_slice(&len.to_be_bytes());
        assert!(BindMessage::decode(&bad).is_err());
        assert!(TargetMessage::decode(b"D\0\0\0\x06X\0").is_err());
    }

    #[test]
    fn decodes_execute_describe_and_close() {
        let e = framed(|b| frontend::execute("p1", 10, b).unwrap());
        assert_eq!(
            ExecuteMessage::decode(&e).unwrap(),
            ExecuteMessage {
                portal: "p1".into(),
                max_rows: 10
            }
        );
        let d = framed(|b| frontend::describe(b'S', "", b).unwrap());
        assert_eq!(
            TargetMessage::decode(&d).unwrap(),
            TargetMessage {
                kind: b'S',
                name: String::new()
            }
        );
    }

    #[test]
    fn unit_messages_close_parse_bind_and_execute_under_dbmesh_names() {
        let mut b = BytesMut::new();
        write_unit(&mut b, "SELECT 1", None, &[1], true, true).unwrap();
        let mut tags = Vec::new();
        let mut at = 0;
        while at < b.len() {
            tags.push(b[at] as char);
            let len = i32::from_be_bytes([b[at + 1], b[at + 2], b[at + 3], b[at + 4]]);
            at += 1 + len as usize;
        }
        assert_eq!(tags, vec!['C', 'C', 'P', 'B', 'D', 'E', 'C', 'C']);
    }
}

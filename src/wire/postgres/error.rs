//! ErrorResponse: the one place where dbmesh's own errors become PostgreSQL SQLSTATEs.

use pgwire::messages::response::{ErrorResponse, NoticeResponse};

use crate::error::Error;

/// Severity of an error dbmesh raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the connection goes on.
    Error,
    /// The connection ends after this message.
    Fatal,
}

/// An ErrorResponse with severity, SQLSTATE and message. Every error dbmesh raises itself
/// goes through here, so this is where they are counted.
pub fn error_response(severity: Severity, code: &str, message: &str) -> ErrorResponse {
    crate::admin::metrics::error(crate::admin::metrics::Protocol::Postgres, code);
    let s = match severity {
        Severity::Error => "ERROR",
        Severity::Fatal => "FATAL",
    };
    ErrorResponse::new(vec![
        (b'S', s.to_string()),
        (b'V', s.to_string()),
        (b'C', code.to_string()),
        (b'M', message.to_string()),
    ])
}

/// The SQLSTATE and message PostgreSQL clients expect for `e`.
pub fn sqlstate(e: &Error) -> (&'static str, String) {
    match e {
        Error::AccessDenied { user, .. } => (
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        ),
        // What pg_hba.conf's `hostssl` lines make PostgreSQL say to a plain connection.
        Error::TlsRequired { user, host } => (
            "28000",
            format!("no encryption: user \"{user}\" from host \"{host}\" must connect with TLS (require_tls); use sslmode=require"),
        ),
        Error::UnknownDatabase(db) => ("3D000", format!("database \"{db}\" does not exist")),
        Error::DatabaseAccessDenied { user, database, .. } => (
            "42501",
            format!(
                "permission denied for database \"{database}\" (user \"{user}\" may not use it)"
            ),
        ),
        Error::WrongProtocol { .. } | Error::NoDatabaseSelected => ("3D000", e.to_string()),
        Error::DataSourceUnavailable { .. } | Error::BackendLost { .. } => {
            ("08006", format!("dbmesh: {e}"))
        }
        Error::PoolTimeout { .. } => ("53300", format!("dbmesh: {e}")),
        Error::UnknownStatement { .. } => ("26000", e.to_string()),
        Error::UnknownCommand(_) | Error::Malformed(_) => ("08P01", e.to_string()),
        Error::NotSupported(_)
        | Error::Unroutable(_)
        | Error::ShardingKeyChange { .. }
        | Error::MergeUnsupported(_) => ("0A000", e.to_string()),
        Error::SqlParse(_) => ("42601", e.to_string()),
        Error::Routing(_) => ("22023", e.to_string()),
        Error::KeyGeneration(_) => ("XX000", e.to_string()),
        Error::XaRolledBack(_) => ("40000", e.to_string()),
        Error::InTransaction(_) => ("25001", e.to_string()),
        Error::RawXa(_) => ("0A000", e.to_string()),
        Error::Spill(_) => ("58030", format!("dbmesh: {e}")),
        Error::AdminDenied { user, statement } => (
            "42501",
            format!(
                "permission denied for user \"{user}\": {statement} needs a user with admin = true"
            ),
        ),
        Error::AdminSyntax(_) => ("42601", e.to_string()),
        // config_file_error
        Error::ConfigReload(_) => ("F0000", e.to_string()),
    }
}

/// `e` as an ErrorResponse.
pub fn from_error(severity: Severity, e: &Error) -> ErrorResponse {
    let (code, msg) = sqlstate(e);
    error_response(severity, code, &msg)
}

/// Errors PostgreSQL itself raises about the session's statements, portals and
/// transaction, which a sharded session (which keeps these itself instead of the backend)
/// must raise the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    DuplicateStatement(String),
    UnknownStatement(String),
    DuplicatePortal(String),
    /// A statement in a transaction that already failed.
    TransactionAborted,
    /// A Bind with the wrong number of parameters.
    BindCount {
        statement: String,
        given: usize,
        needed: usize,
    },
    /// A Bind with a number of parameter formats that fits neither rule.
    BindFormats {
        given: usize,
        params: usize,
    },
    /// A message dbmesh does not serve on a sharded database (FunctionCall).
    Unsupported(&'static str),
}

impl SessionError {
    /// SQLSTATE and message, worded as PostgreSQL words them.
    pub fn sqlstate(&self) -> (&'static str, String) {
        match self {
            SessionError::DuplicateStatement(n) => {
                ("42P05", format!("prepared statement \"{n}\" already exists"))
            }
            SessionError::UnknownStatement(n) => {
                ("26000", format!("prepared statement \"{n}\" does not exist"))
            }
            SessionError::DuplicatePortal(n) => ("42P03", format!("portal \"{n}\" already exists")),
            SessionError::TransactionAborted => (
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block"
                    .into(),
            ),
            SessionError::BindCount {
                statement,
                given,
                needed,
            } => (
                "08P01",
                format!(
                    "bind message supplies {given} parameters, but prepared statement \"{statement}\" requires {needed}"
                ),
            ),
            SessionError::BindFormats { given, params } => (
                "08P01",
                format!("bind message has {given} parameter formats but {params} parameters"),
            ),
            SessionError::Unsupported(what) => ("0A000", format!("{what} is not supported by dbmesh on a sharded database")),
        }
    }

    pub fn response(&self) -> ErrorResponse {
        let (code, message) = self.sqlstate();
        error_response(Severity::Error, code, &message)
    }
}

/// A WARNING notice, as PostgreSQL sends for `BEGIN` inside a transaction (25001) or
/// `COMMIT` outside one (25P01).
pub fn warning(code: &str, message: &str) -> NoticeResponse {
    NoticeResponse::new(vec![
        (b'S', "WARNING".to_string()),
        (b'V', "WARNING".to_string()),
        (b'C', code.to_string()),
        (b'M', message.to_string()),
    ])
}

/// The SQLSTATE (`C` field) of an ErrorResponse message (whole, with its tag and length).
pub fn sqlstate_of(message: &[u8]) -> Option<&str> {
    let mut rest = message.get(5..)?;
    while let Some((&kind, tail)) = rest.split_first() {
        let end = tail.iter().position(|b| *b == 0)?;
        if kind == b'C' {
            return std::str::from_utf8(&tail[..end]).ok();
        }
        if kind == 0 {
            return None;
        }
        rest = &tail[end + 1..];
    }
    None
}

/// Counts a backend's ErrorResponse relayed to the client.
pub fn count_backend_error(message: &[u8]) {
    let code = sqlstate_of(message).unwrap_or("XX000");
    crate::admin::metrics::error(crate::admin::metrics::Protocol::Postgres, code);
}

/// A backend's ErrorResponse (whole message) with `data source <name>: ` put before its
/// message, for errors of one data source among several (a COMMIT that failed on one of
/// them). The SQLSTATE and every other field stay the backend's.
pub fn on_data_source(message: &[u8], data_source: &str) -> Vec<u8> {
    let prefix = format!("data source {data_source}: ");
    map_message(message, |m| [prefix.as_bytes(), m].concat()).0
}

/// The fields of an ErrorResponse (whole, type byte and length included), with a
/// function applied to its message field, and the new message's text.
pub fn map_message(msg: &[u8], f: impl Fn(&[u8]) -> Vec<u8>) -> (Vec<u8>, String) {
    let mut body = Vec::with_capacity(msg.len() + 64);
    let mut text = String::new();
    let mut rest = msg.get(5..).unwrap_or_default();
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let Some(end) = tail.iter().position(|b| *b == 0) else {
            break;
        };
        body.push(kind);
        if kind == b'M' {
            let m = f(&tail[..end]);
            text = String::from_utf8_lossy(&m).into_owned();
            body.extend_from_slice(&m);
            body.push(0);
        } else {
            body.extend_from_slice(&tail[..=end]);
        }
        rest = &tail[end + 1..];
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&body);
    (out, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errors_to_postgres_sqlstates() {
        assert_eq!(sqlstate(&Error::UnknownDatabase("x".into())).0, "3D000");
        assert_eq!(
            sqlstate(&Error::DatabaseAccessDenied {
                user: "u".into(),
                host: "h".into(),
                database: "d".into()
            })
            .0,
            "42501"
        );
        let (code, msg) = sqlstate(&Error::BackendLost {
            data_source: "ds_0".into(),
            cause: "reset".into(),
        });
        assert_eq!(code, "08006");
        assert!(msg.contains("ds_0"));
    }

    #[test]
    fn names_the_data_source_in_a_backend_error_and_keeps_its_sqlstate() {
        let mut raw = bytes::BytesMut::new();
        use pgwire::messages::Message;
        error_response(Severity::Error, "40001", "could not serialize")
            .encode(&mut raw)
            .unwrap();
        assert_eq!(sqlstate_of(&raw), Some("40001"));
        let named = on_data_source(&raw, "ds_1");
        let text = String::from_utf8_lossy(&named);
        assert!(text.contains("C40001\0"), "{text}");
        assert!(
            text.contains("Mdata source ds_1: could not serialize\0"),
            "{text}"
        );
        let len = i32::from_be_bytes([named[1], named[2], named[3], named[4]]) as usize;
        assert_eq!(len + 1, named.len());
        assert_eq!(sqlstate_of(&named), Some("40001"));
        assert_eq!(sqlstate_of(b"E\0\0\0\x05\0"), None);
    }

    #[test]
    fn session_errors_use_postgres_sqlstates() {
        assert_eq!(
            SessionError::DuplicatePortal("p".into()).sqlstate().0,
            "42P03"
        );
        assert_eq!(SessionError::TransactionAborted.sqlstate().0, "25P02");
        assert_eq!(
            SessionError::DuplicateStatement("s".into()).sqlstate().1,
            "prepared statement \"s\" already exists"
        );
    }
}

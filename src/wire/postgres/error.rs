//! ErrorResponse: the one place where dbmesh's own errors become PostgreSQL SQLSTATEs.

use pgwire::messages::response::ErrorResponse;

use crate::error::Error;

/// Severity of an error dbmesh raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the connection goes on.
    Error,
    /// The connection ends after this message.
    Fatal,
}

/// An ErrorResponse with severity, SQLSTATE and message.
pub fn error_response(severity: Severity, code: &str, message: &str) -> ErrorResponse {
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
        Error::NotSupported(_) | Error::Unroutable(_) | Error::ShardingKeyChange { .. } => {
            ("0A000", e.to_string())
        }
        Error::SqlParse(_) => ("42601", e.to_string()),
        Error::Routing(_) => ("22023", e.to_string()),
        Error::KeyGeneration(_) => ("XX000", e.to_string()),
    }
}

/// `e` as an ErrorResponse.
pub fn from_error(severity: Severity, e: &Error) -> ErrorResponse {
    let (code, msg) = sqlstate(e);
    error_response(severity, code, &msg)
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
}

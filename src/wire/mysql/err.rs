//! ERR packets: the one place where dbmesh's own errors become MySQL errno + SQLSTATE.

use crate::error::Error;

/// MySQL server error numbers dbmesh uses for its own errors.
pub mod code {
    pub const ER_CON_COUNT_ERROR: u16 = 1040;
    pub const ER_HANDSHAKE_ERROR: u16 = 1043;
    pub const ER_DBACCESS_DENIED_ERROR: u16 = 1044;
    pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
    pub const ER_NO_DB_ERROR: u16 = 1046;
    pub const ER_UNKNOWN_COM_ERROR: u16 = 1047;
    pub const ER_BAD_DB_ERROR: u16 = 1049;
    pub const ER_NO_SUCH_THREAD: u16 = 1094;
    pub const ER_KILL_DENIED_ERROR: u16 = 1095;
    pub const ER_UNKNOWN_ERROR: u16 = 1105;
    pub const ER_SPECIFIC_ACCESS_DENIED_ERROR: u16 = 1227;
    pub const ER_CONNECTION_KILLED: u16 = 1927;
    pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
    pub const ER_NET_READ_ERROR: u16 = 1158;
    pub const ER_NET_PACKETS_OUT_OF_ORDER: u16 = 1156;
    pub const ER_NOT_SUPPORTED_YET: u16 = 1235;
    pub const ER_PARSE_ERROR: u16 = 1064;
    pub const ER_UNKNOWN_STMT_HANDLER: u16 = 1243;
    pub const ER_MALFORMED_PACKET: u16 = 1835;
    pub const ER_XAER_NOTA: u16 = 1397;
    pub const ER_XA_RBROLLBACK: u16 = 1402;
    pub const ER_CANT_CHANGE_TX_CHARACTERISTICS: u16 = 1568;
    pub const CR_CONN_HOST_ERROR: u16 = 2003;
    pub const CR_SERVER_LOST: u16 = 2013;
}

/// An error as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlError {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

impl MysqlError {
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        let mut s = [b'H', b'Y', b'0', b'0', b'0'];
        s.copy_from_slice(&state.as_bytes()[..5]);
        MysqlError {
            code,
            state: s,
            message: message.into(),
        }
    }

    /// The ERR packet payload (always in the 4.1 format with a SQLSTATE marker).
    pub fn payload(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(9 + self.message.len());
        p.push(0xFF);
        p.extend_from_slice(&self.code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(&self.state);
        p.extend_from_slice(self.message.as_bytes());
        p
    }
}

impl From<&Error> for MysqlError {
    fn from(e: &Error) -> Self {
        use code::*;
        let msg = e.to_string();
        match e {
            Error::AccessDenied { .. } | Error::TlsRequired { .. } => {
                MysqlError::new(ER_ACCESS_DENIED_ERROR, "28000", msg)
            }
            Error::UnknownDatabase(_) => MysqlError::new(ER_BAD_DB_ERROR, "42000", msg),
            Error::DatabaseAccessDenied { .. } => {
                MysqlError::new(ER_DBACCESS_DENIED_ERROR, "42000", msg)
            }
            Error::WrongProtocol { .. } => MysqlError::new(ER_BAD_DB_ERROR, "42000", msg),
            Error::NoDatabaseSelected => MysqlError::new(ER_NO_DB_ERROR, "3D000", msg),
            Error::DataSourceUnavailable { .. } => {
                MysqlError::new(CR_CONN_HOST_ERROR, "HY000", format!("dbmesh: {msg}"))
            }
            Error::PoolTimeout { .. } => {
                MysqlError::new(ER_CON_COUNT_ERROR, "08004", format!("dbmesh: {msg}"))
            }
            Error::BackendLost { .. } => {
                MysqlError::new(CR_SERVER_LOST, "HY000", format!("dbmesh: {msg}"))
            }
            Error::UnknownStatement { .. } => {
                MysqlError::new(ER_UNKNOWN_STMT_HANDLER, "HY000", msg)
            }
            Error::UnknownCommand(_) => MysqlError::new(ER_UNKNOWN_COM_ERROR, "08S01", msg),
            Error::Malformed(_) => MysqlError::new(ER_MALFORMED_PACKET, "HY000", msg),
            Error::NotSupported(_) | Error::MergeUnsupported(_) => {
                MysqlError::new(ER_NOT_SUPPORTED_YET, "0A000", msg)
            }
            Error::SqlParse(_) => MysqlError::new(ER_PARSE_ERROR, "42000", msg),
            Error::Unroutable(_) | Error::ShardingKeyChange { .. } => {
                MysqlError::new(ER_NOT_SUPPORTED_YET, "42000", msg)
            }
            Error::XaRolledBack(_) => MysqlError::new(ER_XA_RBROLLBACK, "XA100", msg),
            Error::InTransaction(_) => {
                MysqlError::new(ER_CANT_CHANGE_TX_CHARACTERISTICS, "25001", msg)
            }
            Error::RawXa(_) => MysqlError::new(ER_NOT_SUPPORTED_YET, "0A000", msg),
            Error::Spill(_) => MysqlError::new(ER_UNKNOWN_ERROR, "HY000", format!("dbmesh: {msg}")),
            Error::Routing(_) | Error::KeyGeneration(_) => {
                MysqlError::new(ER_UNKNOWN_ERROR, "HY000", msg)
            }
            Error::AdminDenied { .. } => {
                MysqlError::new(ER_SPECIFIC_ACCESS_DENIED_ERROR, "42000", msg)
            }
            Error::AdminSyntax(_) => MysqlError::new(ER_PARSE_ERROR, "42000", msg),
            Error::ConfigReload(_) => MysqlError::new(ER_UNKNOWN_ERROR, "HY000", msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_payload_has_marker_state_and_message() {
        let e = MysqlError::from(&Error::UnknownDatabase("nope".into()));
        let p = e.payload();
        assert_eq!(p[0], 0xFF);
        assert_eq!(u16::from_le_bytes([p[1], p[2]]), 1049);
        assert_eq!(&p[3..9], b"#42000");
        assert_eq!(&p[9..], b"Unknown database 'nope'");
    }

    #[test]
    fn access_denied_names_user_and_password_use() {
        let e = Error::AccessDenied {
            user: "app".into(),
            host: "127.0.0.1".into(),
            using_password: true,
        };
        assert_eq!(
            e.to_string(),
            "Access denied for user 'app'@'127.0.0.1' (using password: YES)"
        );
        assert_eq!(MysqlError::from(&e).code, 1045);
    }
}

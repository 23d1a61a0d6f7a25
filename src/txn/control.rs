//! Control-plane connections for the transaction log table and recovery: client
//! libraries (mysql_async, tokio-postgres), not the data path's codecs, since nothing here
//! is relayed to a client; a MySQL data source whose URL asks for TLS gets dbmesh's own
//! backend connection instead.
//!
//! TLS is exactly the data path's for the same URL (CA, `sslmode` / `ssl-mode`, server
//! name; never clear text where the URL asks for TLS): tokio-postgres takes our rustls
//! client through [`crate::control_tls`]; mysql_async (0.37) cannot take a rustls
//! `ClientConfig`, only CA files and flags from which it builds its own with the
//! process-wide crypto provider, and its `VERIFY_CA` (skip the name check) matches an
//! error text that rustls 0.23.4x no longer prints, so it would refuse a trusted
//! certificate issued for another name. Hence [`BackendConn`] for MySQL over TLS: the
//! same login and TLS as the sessions' connections.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::TxnError;
use crate::config::{BackendKind, DataSourceUrl};
use crate::wire::mysql::backend::{
    BackendConn, ConnectOptions, Profile, MARIADB_PROFILE_CAPABILITIES, PROFILE_CAPABILITIES,
};

/// A connection to one data source, opened for one piece of control work.
pub enum ControlConn {
    Mysql(mysql_async::Conn),
    /// dbmesh's own MySQL backend connection, for a URL that asks for TLS.
    MysqlTls(Box<BackendConn>),
    Postgres(tokio_postgres::Client),
}

/// Opens dbmesh's own MySQL backend connection to `url` (TLS as the URL says) for
/// dbmesh's own queries: the sessions' capabilities, utf8mb4, 16 MiB packets.
pub async fn connect_mysql_backend(
    url: &DataSourceUrl,
    timeout: Duration,
) -> Result<BackendConn, String> {
    BackendConn::connect(ConnectOptions {
        url,
        profile: Profile {
            capabilities: PROFILE_CAPABILITIES.bits(),
            mariadb_capabilities: MARIADB_PROFILE_CAPABILITIES.bits(),
            collation: 45,
        },
        connect_timeout: timeout,
        max_packet: 16 * 1024 * 1024,
    })
    .await
    .map_err(|e| e.to_string())
}

impl ControlConn {
    /// Connects to `url` with the data source's credentials.
    pub async fn connect(
        url: &DataSourceUrl,
        timeout: std::time::Duration,
    ) -> Result<Self, TxnError> {
        let fail = |e: String| TxnError::Control {
            target: format!("{}:{}/{}", url.host, url.port, url.database),
            cause: e,
        };
        let connect = async {
            match url.kind {
                BackendKind::Mysql if url.tls.is_some() => connect_mysql_backend(url, timeout)
                    .await
                    .map(|c| ControlConn::MysqlTls(Box::new(c)))
                    .map_err(fail),
                BackendKind::Mysql => {
                    let opts = mysql_async::OptsBuilder::default()
                        .ip_or_hostname(url.host.clone())
                        .tcp_port(url.port)
                        .user(Some(url.user.clone()))
                        .pass(Some(url.password.clone()))
                        .db_name(Some(url.database.clone()));
                    mysql_async::Conn::new(opts)
                        .await
                        .map(ControlConn::Mysql)
                        .map_err(|e| fail(e.to_string()))
                }
                BackendKind::Postgres => {
                    crate::control_tls::connect_postgres(url, "dbmesh-xa-recovery")
                        .await
                        .map(ControlConn::Postgres)
                        .map_err(|e| fail(postgres_error(&e)))
                }
            }
        };
        // Boxed: the sessions' futures that reach here (XA commit, the log) are deep
        // enough already; nesting a whole backend login in them overflows the compiler's
        // layout query depth.
        tokio::time::timeout(timeout, Box::pin(connect))
            .await
            .map_err(|_| fail(format!("no connection within {timeout:?}")))?
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            ControlConn::Mysql(_) | ControlConn::MysqlTls(_) => BackendKind::Mysql,
            ControlConn::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Runs statements that return no rows.
    pub async fn execute(&mut self, sql: &str) -> Result<(), String> {
        match self {
            ControlConn::Mysql(c) => c.query_drop(sql).await.map_err(|e| e.to_string()),
            ControlConn::MysqlTls(c) => c
                .query_rows(sql)
                .await
                .map_err(|e| format!("connection lost: {e}"))?
                .map(|_| ())
                .map_err(mysql_error),
            ControlConn::Postgres(c) => c.batch_execute(sql).await.map_err(|e| e.to_string()),
        }
    }

    /// Runs a query; every value as bytes (text protocol), NULL as `None`.
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>, String> {
        match self {
            ControlConn::Mysql(c) => {
                let rows: Vec<mysql_async::Row> = c.query(sql).await.map_err(|e| e.to_string())?;
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        row.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => Some(b),
                                other => Some(other.as_sql(true).into_bytes()),
                            })
                            .collect()
                    })
                    .collect())
            }
            ControlConn::MysqlTls(c) => c
                .query_rows(sql)
                .await
                .map_err(|e| format!("connection lost: {e}"))?
                .map_err(mysql_error),
            ControlConn::Postgres(c) => {
                let messages = c.simple_query(sql).await.map_err(|e| e.to_string())?;
                Ok(messages
                    .into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(|s| s.as_bytes().to_vec()))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect())
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        match self {
            ControlConn::Mysql(c) => {
                let _ = c.disconnect().await;
            }
            ControlConn::MysqlTls(mut c) => c.quit().await,
            ControlConn::Postgres(_) => {}
        }
    }
}

/// A server error as mysql_async words it (`ERROR 1397 (XAE04): ...`), which callers
/// match on the error number.
fn mysql_error(e: crate::wire::mysql::err::MysqlError) -> String {
    let state = String::from_utf8_lossy(&e.state);
    format!("ERROR {} ({state}): {}", e.code, e.message)
}

/// tokio-postgres's error with its cause: its `Display` of a failed TLS handshake or
/// refused login is only "error performing TLS handshake" / "db error".
pub fn postgres_error(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

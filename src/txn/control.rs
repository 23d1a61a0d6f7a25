//! Control-plane connections for the transaction log table and recovery: plain client
//! libraries (mysql_async, tokio-postgres), not the data path's codecs, since nothing here
//! is relayed to a client.

use mysql_async::prelude::Queryable;

use super::TxnError;
use crate::config::{BackendKind, DataSourceUrl};

/// A connection to one data source, opened for one piece of control work.
pub enum ControlConn {
    Mysql(mysql_async::Conn),
    Postgres(tokio_postgres::Client),
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
        if url.tls.is_some() {
            // Never fall back to clear text where the data path uses TLS.
            return Err(fail(
                "TLS is not supported on XA control connections (transaction log table, recovery) yet".into(),
            ));
        }
        let connect = async {
            match url.kind {
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
                    let mut config = tokio_postgres::Config::new();
                    config
                        .host(&url.host)
                        .port(url.port)
                        .user(&url.user)
                        .password(&url.password)
                        .dbname(&url.database)
                        .application_name("dbmesh-xa-recovery");
                    let (client, conn) = config
                        .connect(tokio_postgres::NoTls)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    Ok(ControlConn::Postgres(client))
                }
            }
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| fail(format!("no connection within {timeout:?}")))?
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            ControlConn::Mysql(_) => BackendKind::Mysql,
            ControlConn::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Runs statements that return no rows.
    pub async fn execute(&mut self, sql: &str) -> Result<(), String> {
        match self {
            ControlConn::Mysql(c) => c.query_drop(sql).await.map_err(|e| e.to_string()),
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
        if let ControlConn::Mysql(c) = self {
            let _ = c.disconnect().await;
        }
    }
}

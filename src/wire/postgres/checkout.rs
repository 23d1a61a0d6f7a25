//! Getting a backend connection for a session: from the data source's pool when an idle one
//! with the session's start-up parameters is there (and still alive), else a new one; then
//! brought to the session's state by replaying its `SET`s.
//!
//! Both the single-data-source pump and the sharded session take their connections here, so
//! a connection is always opened and prepared the same way.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use super::backend::{error_fields, PgBackendConn, StartupParams};
use super::message::frame_at;
use crate::config::ServerConfig;
use crate::error::Error;
use crate::execute::pool::Lease;
use crate::execute::DataSource;
use crate::session::Session;

/// Backend messages may be as large as PostgreSQL allows (1 GiB).
pub const MAX_BACKEND_MESSAGE: usize = 1 << 30;

/// A backend connection a session holds, with the pool slot it occupies.
pub struct HeldBackend {
    pub conn: PgBackendConn,
    pub lease: Lease<PgBackendConn>,
}

impl HeldBackend {
    /// Whether the server has closed this idle connection, or is closing it (it sent an
    /// ErrorResponse nobody asked for), as far as can be told without waiting: the cause
    /// if so.
    pub fn closed_by_server(&mut self) -> Option<String> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut eof = false;
        // Bounded, in case the server keeps sending (notifications).
        for _ in 0..16 {
            let mut fill = std::pin::pin!(self.conn.reader.fill());
            match fill.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => eof = true,
                Poll::Pending => {}
            }
            break;
        }
        let buf = &self.conn.reader.buf;
        let mut at = 0;
        while let Ok(Some(frame)) = frame_at(buf, at, MAX_BACKEND_MESSAGE) {
            if frame.tag == b'E' {
                let mut msg = bytes::BytesMut::from(&buf[at..at + frame.total_len]);
                let cause = match postgres_protocol::message::backend::Message::parse(&mut msg) {
                    Ok(Some(postgres_protocol::message::backend::Message::ErrorResponse(e))) => {
                        error_fields(&e).1
                    }
                    _ => "the server sent an error".into(),
                };
                return Some(cause);
            }
            at += frame.total_len;
        }
        eof.then(|| "the server closed the connection".into())
    }

    /// Returns the connection to its pool after a reset, if it is clean: healthy, with no
    /// response outstanding. Otherwise it is closed (dropped) and only its slot returns.
    pub async fn release(mut self, ds: &DataSource) {
        if self.conn.healthy && self.conn.reset().await.is_ok() {
            let profile = self.conn.profile;
            ds.postgres.give_back(self.lease, self.conn, profile);
        }
    }
}

/// Checks out a connection to `ds` for `session`: a pooled one that passes a health check,
/// or a new one; the session's SETs are replayed on it. Errors name the data source.
pub async fn checkout(
    server: &ServerConfig,
    ds: &DataSource,
    params: &StartupParams,
    session: &Session,
) -> Result<HeldBackend, Error> {
    let profile = params.profile();
    let mut lease = ds
        .postgres
        .checkout(profile, server.checkout_timeout)
        .await
        .map_err(|t| t.into_error(&ds.name))?;
    // Health check on checkout: an idle connection may have been closed by the server.
    let mut pooled = lease.conn.take();
    if let Some(c) = &mut pooled {
        if !c.simple_query("").await.is_ok_and(|e| e.is_none()) {
            pooled = None;
        }
    }
    let mut conn = match pooled {
        Some(c) => c,
        None => {
            let connected = PgBackendConn::connect(
                &ds.url,
                params,
                server.connect_timeout,
                MAX_BACKEND_MESSAGE,
            )
            .await;
            match &connected {
                Ok(_) => ds.health.connected(),
                Err(e) => ds.health.connect_failed(&e.to_string()),
            }
            connected.map_err(|e| Error::DataSourceUnavailable {
                database: ds.database.clone(),
                data_source: ds.name.clone(),
                cause: e.to_string(),
            })?
        }
    };
    for sql in session.set_statements_since(conn.applied_session_state) {
        if let Err(e) = conn.simple_query(sql).await {
            return Err(Error::BackendLost {
                data_source: ds.name.clone(),
                cause: e.to_string(),
            });
        }
    }
    conn.applied_session_state = session.set_statement_count();
    Ok(HeldBackend { conn, lease })
}

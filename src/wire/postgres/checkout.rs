//! Getting a backend connection for a session: from the data source's pool when an idle one
//! with the session's start-up parameters is there (and still alive), else a new one; then
//! brought to the session's state by replaying its `SET`s. Among the idle connections the
//! one already in the session's state is preferred (no round trip at all), then a fresh one
//! (no reset needed).
//!
//! With transaction pooling connections go back to the pool as they are, carrying the SETs
//! of the session that used them last (no `DISCARD ALL` between transactions). Each
//! connection knows which state it has applied ([`state_key`]); a session whose state
//! differs first resets the connection (`SET SESSION AUTHORIZATION DEFAULT; RESET ALL`, to
//! the defaults of its start-up parameters, which the pool matched) and replays its own.
//!
//! Both the single-data-source pump and the sharded session take their connections here, so
//! a connection is always opened and prepared the same way.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::task::{Context, Poll, Waker};

use tracing::debug;

use super::backend::{error_fields, PgBackendConn, StartupParams};
use super::message::frame_at;
use crate::config::ServerConfig;
use crate::error::Error;
use crate::execute::pool::Lease;
use crate::execute::DataSource;
use crate::session::Session;

/// Backend messages may be as large as PostgreSQL allows (1 GiB).
pub const MAX_BACKEND_MESSAGE: usize = 1 << 30;

/// Brings a connection whose applied state is another session's back to the defaults.
const RESET_STATE: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL";

/// The identity of a session's state: a hash of its recorded SETs, 0 when it has none
/// (what a fresh connection has applied).
pub fn state_key(session: &Session) -> u64 {
    let sets = session.set_statements_since(0);
    if sets.is_empty() {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sets.hash(&mut h);
    h.finish().max(1)
}

/// A backend connection a session holds, with the pool slot it occupies.
pub struct HeldBackend {
    pub conn: PgBackendConn,
    pub lease: Lease<PgBackendConn>,
    /// Taken from the pool by [`checkout_for_resend`] and not yet used for the session:
    /// the server may have closed it unseen, so the first request sent on it is kept to
    /// send again (`frontend/resend.rs`).
    pub from_pool: bool,
}

impl HeldBackend {
    /// Whether the server has closed this idle connection, or is closing it (it sent an
    /// ErrorResponse nobody asked for), as far as can be told without waiting: the cause
    /// if so.
    pub fn closed_by_server(&mut self) -> Option<String> {
        closed_by_server(&mut self.conn)
    }

    /// Returns the connection to its pool as it is, with the state the session applied
    /// (transaction pooling, between transactions): it must be idle and healthy.
    pub fn give_back(self, ds: &DataSource) {
        let profile = self.conn.profile;
        ds.postgres.give_back(self.lease, self.conn, profile);
    }

    /// Returns the connection to its pool after a reset, if it is clean: healthy, with no
    /// response outstanding. Otherwise it is closed (dropped) and only its slot returns.
    pub async fn release(mut self, ds: &DataSource) {
        if self.conn.healthy && self.conn.reset().await.is_ok() {
            self.give_back(ds);
        }
    }
}

/// Whether the server has closed this idle connection, or is closing it (it sent an
/// ErrorResponse nobody asked for), as far as can be told without waiting: the cause if so.
fn closed_by_server(conn: &mut PgBackendConn) -> Option<String> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut eof = false;
    // Bounded, in case the server keeps sending (notifications).
    for _ in 0..16 {
        let mut fill = std::pin::pin!(conn.reader.fill());
        match fill.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(())) => continue,
            Poll::Ready(Err(_)) => eof = true,
            Poll::Pending => {}
        }
        break;
    }
    let buf = &conn.reader.buf;
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

/// Checks out a connection to `ds` for `session` for a caller that cannot send a request
/// again should the connection turn out dead: a pooled one is checked with a round trip
/// (an empty query) every time, as tokio may not have seen a close the server did moments
/// ago (`closed_by_server` only reads what its reactor already knows), and a statement sent
/// on such a connection would be lost with it. The session's SETs are replayed on it.
/// Errors name the data source.
pub async fn checkout(
    server: &ServerConfig,
    ds: &DataSource,
    params: &StartupParams,
    session: &Session,
) -> Result<HeldBackend, Error> {
    checkout_with(server, ds, params, session, Check::Always).await
}

/// Checks out a connection to `ds` for `session` for the pump, which keeps a copy of the
/// first request it sends on it and sends it again on another connection if this one turns
/// out closed before any byte of the answer reached the client (`frontend/resend.rs`). So
/// only a connection idle longer than `[server] pool_check_idle_ms` costs a round trip;
/// one used more recently is only checked for what the socket already tells.
pub async fn checkout_for_resend(
    server: &ServerConfig,
    ds: &DataSource,
    params: &StartupParams,
    session: &Session,
) -> Result<HeldBackend, Error> {
    checkout_with(server, ds, params, session, Check::IdleOnly).await
}

/// How a pooled connection is checked before it is lent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A round trip every time.
    Always,
    /// A round trip only after `pool_check_idle_ms` of idleness.
    IdleOnly,
}

async fn checkout_with(
    server: &ServerConfig,
    ds: &DataSource,
    params: &StartupParams,
    session: &Session,
    check: Check,
) -> Result<HeldBackend, Error> {
    let profile = params.profile();
    let key = state_key(session);
    // A connection already in the session's state needs no round trip; a fresh one
    // (no SETs applied) needs only the session's SETs; any other a reset first.
    let score = |c: &PgBackendConn| match c.applied_state {
        k if k == key => 2,
        0 => 1,
        _ => 0,
    };
    let mut lease = ds
        .postgres
        .checkout_best(profile, server.checkout_timeout, score)
        .await
        .map_err(|t| t.into_error(&ds.name))?;
    let mut pooled = lease.conn.take();
    if let Some(c) = &mut pooled {
        let trusted = check == Check::IdleOnly
            && lease.idle_for < server.pool_check_idle
            && closed_by_server(c).is_none();
        if !trusted && !c.simple_query("").await.is_ok_and(|e| e.is_none()) {
            debug!(data_source = %ds.name, "pooled connection is dead; opening another");
            pooled = None;
            lease.renew();
        }
    }
    if let Some(mut conn) = pooled {
        match apply_session_state(&mut conn, ds, session).await {
            Ok(()) => {
                return Ok(HeldBackend {
                    conn,
                    lease,
                    from_pool: check == Check::IdleOnly,
                })
            }
            // Closed while the SETs were replayed: nothing of the client's was lost.
            Err(e) if !conn.healthy => {
                debug!(data_source = %ds.name, "pooled connection lost while replaying SETs: {e}");
                lease.renew();
            }
            Err(e) => return Err(e),
        }
    }
    let connected =
        PgBackendConn::connect(&ds.url, params, server.connect_timeout, MAX_BACKEND_MESSAGE).await;
    match &connected {
        Ok(_) => ds.health.connected(),
        Err(e) => ds.health.connect_failed(&e.to_string()),
    }
    let mut conn = connected.map_err(|e| Error::DataSourceUnavailable {
        database: ds.database.clone(),
        data_source: ds.name.clone(),
        cause: e.to_string(),
    })?;
    apply_session_state(&mut conn, ds, session).await?;
    Ok(HeldBackend {
        conn,
        lease,
        from_pool: false,
    })
}

/// Brings `conn` (of `ds`) to `session`'s recorded SETs when it has applied another
/// state: back to the defaults first when that state was not empty, then the SETs.
pub async fn apply_session_state(
    conn: &mut PgBackendConn,
    ds: &DataSource,
    session: &Session,
) -> Result<(), Error> {
    let key = state_key(session);
    if conn.applied_state == key {
        return Ok(());
    }
    let reset = (conn.applied_state != 0).then_some(RESET_STATE);
    for sql in reset
        .into_iter()
        .chain(session.set_statements_since(0).iter().map(String::as_str))
    {
        if let Err(e) = conn.simple_query(sql).await {
            return Err(Error::BackendLost {
                data_source: ds.name.clone(),
                cause: e.to_string(),
            });
        }
    }
    conn.applied_state = key;
    Ok(())
}

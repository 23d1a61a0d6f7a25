//! Sending a request again when its backend connection breaks before any byte of the answer
//! reached the client, and failing it without closing the session when a standby breaks
//! while its answer is already streaming.
//!
//! Two requests may be re-sent, as on the MySQL listener (`wire/mysql/replica_retry.rs`,
//! `backends.rs`):
//!
//! * A read running on a standby: it has had no effect anywhere, so it runs again on another
//!   admitted standby or the primary, and the standby is ejected until the health monitor
//!   admits it again.
//! * The first request on a connection just taken from the pool outside a transaction
//!   (`checkout::checkout_for_resend`): only connections idle past `pool_check_idle_ms`
//!   are pinged at checkout, so one the server closed a moment ago (`pg_terminate_backend`,
//!   `idle_session_timeout`, a restart) is found dead only when the request is written or
//!   answered. The request goes out behind an empty query (in the same write: no round
//!   trip); a loss before that empty query is answered means the server closed the
//!   connection before it read the request, which then goes again on a new connection,
//!   and the client never hears of it. A loss after it is a statement cut off half way
//!   (terminated, the server crashed), which the client must hear about: 08006, as before.
//!
//! The pump keeps a copy of each such request (the client messages up to its Query or
//! Sync), and of any pipelined behind it, until its ReadyForQuery, together with the
//! session's statement bookkeeping as it was before it (`Statements`), so the messages can
//! be forwarded again as if for the first time: a named statement the new connection lacks
//! is parsed there first, as on any connection change. "No byte reached the client" is
//! exact: every backend message the pump relays (all but the ParseComplete / CloseComplete
//! dbmesh caused itself, and notices, which may come at any time) marks the request
//! answered. The header messages an answer starts with are held back until more follows
//! ([`Resend::held_back`]): a server going down flushes them early. A connection that is
//! closed by the server may say so with a FATAL ErrorResponse (57P01 admin_shutdown,
//! idle-session timeout) before the end of the stream; when nothing was relayed yet that
//! error is the loss, not an answer.
//!
//! A standby that breaks after part of the answer was relayed cannot take it back: the
//! client gets ErrorResponse 08006 naming the standby and a ReadyForQuery for each request
//! the standby owed, and the session goes on with the primary, whose transaction (if any) a
//! standby never saw.

use bytes::BytesMut;
use postgres_protocol::message::{backend, frontend};

use super::*;
use crate::wire::postgres::backend::error_fields;

/// The requests forwarded to the held connection and not answered yet.
#[derive(Default)]
pub(super) struct Resend {
    /// One per request (the messages up to and including a Query, Sync or FunctionCall;
    /// the last may still be open), oldest first; empty unless the oldest was armed.
    requests: VecDeque<Recorded>,
    /// A backend message answering the oldest request reached the client (buffered counts).
    relayed: bool,
    /// Times the requests were sent again since one was last answered: each attempt takes
    /// a standby out or a pooled connection, so this only guards against a server that
    /// closes every new connection.
    attempts: usize,
    /// Forwarding recorded messages again: what they do to the session was recorded the
    /// first time.
    replaying: bool,
    /// The start of the oldest request's answer, kept from the client until the first
    /// message that is more than a header (a row, a completion, an error, ReadyForQuery):
    /// ParseComplete, BindComplete, ParameterDescription, NoData, RowDescription. The
    /// server sends them at once only when it flushes early, as it does when it goes down
    /// (its WARNING) — then the request can still go again. Never while the client asked
    /// for a Flush: it waits for exactly these.
    held_back: BytesMut,
    /// The empty query sent ahead of a probed request has not been answered yet.
    probe_pending: bool,
}

/// One request as the client sent it.
struct Recorded {
    /// The session's statement bookkeeping before its first message was forwarded.
    statements: Statements,
    messages: Vec<BytesMut>,
    /// It may be sent again (see the module doc).
    armed: bool,
    /// Its Query, Sync or FunctionCall went out: the next message starts another.
    complete: bool,
    /// It has a Flush: the client waits for answers before its Sync.
    flushes: bool,
    /// It is the first request on a connection from the pool, sent behind an empty query:
    /// it may go again only until that is answered (the server then runs it, and a loss
    /// from then on may have cut it off half way: the client must know).
    probed: bool,
}

impl Resend {
    /// Whether a loss now can be hidden from the client.
    fn may_resend(&self) -> bool {
        !self.relayed && self.requests.front().is_some_and(|r| r.armed)
    }

    /// Forwarding recorded messages again: what they do to the session was recorded the
    /// first time.
    pub(super) fn replaying(&self) -> bool {
        self.replaying
    }

    /// Backend message `frame` (of type `tag`) is part of an answer: true when it is kept
    /// back from the client for now (see [`Resend::held_back`]).
    pub(super) fn hold_back(&mut self, tag: u8, frame: &[u8]) -> bool {
        let header = matches!(tag, b'1' | b'2' | b't' | b'n' | b'T');
        let flushes = self.requests.front().is_some_and(|r| r.flushes);
        if !header || flushes || !self.may_resend() {
            return false;
        }
        self.held_back.extend_from_slice(frame);
        true
    }

    /// A backend message is about to be relayed to the client: what was kept back goes
    /// first.
    pub(super) fn relaying<W: tokio::io::AsyncWrite + Unpin>(
        &mut self,
        writer: &mut MessageWriter<W>,
    ) {
        self.relayed = true;
        if !self.held_back.is_empty() {
            writer.write_raw(&self.held_back);
            self.held_back.clear();
        }
    }

    /// Whether backend message `tag` answers the empty query sent ahead of a request
    /// (EmptyQueryResponse, then ReadyForQuery): dbmesh's own, not the client's. Its
    /// ReadyForQuery shows the server is running the request.
    pub(super) fn probe_answer(&mut self, tag: u8) -> bool {
        if !self.probe_pending {
            return false;
        }
        match tag {
            b'I' => true,
            b'Z' => {
                self.probe_pending = false;
                // The request (and any behind it, on the primary) will not go again: the
                // copies are dropped, and no more are kept (a COPY's data can be large).
                if self.requests.front().is_some_and(|r| r.probed) {
                    self.requests.clear();
                }
                true
            }
            // Notices (or the server's FATAL) before it: not the probe's answer.
            _ => false,
        }
    }

    /// A ReadyForQuery was relayed: the oldest request is answered.
    pub(super) fn answered(&mut self) {
        self.requests.pop_front();
        self.relayed = false;
        self.attempts = 0;
    }

    /// Whether the backend message `frame` (an ErrorResponse) is the server closing the
    /// connection under a request that may still be sent again: the cause if so.
    pub(super) fn closing_before_answer(&self, frame: &[u8]) -> Option<String> {
        if !self.may_resend() {
            return None;
        }
        let mut msg = BytesMut::from(frame);
        let Ok(Some(backend::Message::ErrorResponse(body))) = backend::Message::parse(&mut msg)
        else {
            return None;
        };
        let mut fatal = false;
        let mut fields = body.fields();
        while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
            if matches!(f.type_(), b'V' | b'S') {
                fatal |= matches!(f.value_bytes(), b"FATAL" | b"PANIC");
            }
        }
        let (code, message) = error_fields(&body);
        fatal.then(|| format!("server error {code}: {message}"))
    }
}

impl PgClient {
    /// Before client message `msg` is forwarded to the held connection: kept while the
    /// oldest request in flight may be sent again, or when it starts such a request.
    pub(super) fn record_for_resend(&mut self, msg: &[u8]) {
        let idle = self.pending_syncs == 0 && !self.unsynced;
        if idle {
            self.resend.requests.clear();
            self.resend.relayed = false;
            self.resend.held_back.clear();
            self.resend.probe_pending = false;
            self.resend.attempts = 0;
        }
        let starts = self.resend.requests.back().is_none_or(|r| r.complete);
        if starts {
            let from_pool = self
                .backend
                .as_mut()
                .is_some_and(|h| std::mem::take(&mut h.from_pool));
            let on_replica = self.on_replica();
            let probe = !on_replica && from_pool && self.tx_status == b'I';
            let armed = on_replica || probe;
            if probe {
                // Answered before the request is read: until its answer comes, a loss means
                // the server closed the connection before it saw the request.
                let conn = &mut self.backend.as_mut().expect("held").conn;
                frontend::query("", &mut conn.writer.buf).expect("an empty query encodes");
                self.resend.probe_pending = true;
            }
            // Behind an unanswered request that may go again it is recorded to go with
            // it; one starting on an idle connection only if it may go again itself.
            if armed || !self.resend.requests.is_empty() {
                self.resend.requests.push_back(Recorded {
                    statements: self.statements.clone(),
                    messages: Vec::new(),
                    armed,
                    complete: false,
                    flushes: false,
                    probed: probe,
                });
            } else {
                return;
            }
        }
        if let Some(r) = self.resend.requests.back_mut() {
            r.messages.push(BytesMut::from(msg));
            r.complete = matches!(msg[0], b'Q' | b'S' | b'F');
            r.flushes |= msg[0] == b'H';
        }
    }

    /// The held connection broke while it owed answers. Sends the requests again elsewhere
    /// when that is safe (true: the client will get its answers), else, on a standby, fails
    /// them with 08006 naming it and keeps the session (true); false leaves the loss to the
    /// caller (the primary's connection broke mid-request: the session ends).
    pub(super) async fn recover_lost_request(&mut self, cause: &str) -> bool {
        let limit = self.data_source.replicas.len() + 3;
        if self.resend.may_resend() && self.resend.attempts < limit {
            self.resend.attempts += 1;
            return self.resend_elsewhere(cause).await;
        }
        let Some(replica) = self.leave_lost_replica() else {
            return false;
        };
        self.backend = None;
        eject(&replica, cause);
        warn!(data_source = %replica.name, "standby connection lost while relaying an answer: {cause}");
        self.fail_in_flight(&Error::BackendLost {
            data_source: replica.name.clone(),
            cause: cause.to_string(),
        });
        self.primary_back();
        true
    }

    /// Sends the recorded requests again on another connection: another standby or the
    /// primary for a standby's, a new one for the primary's.
    async fn resend_elsewhere(&mut self, cause: &str) -> bool {
        self.backend = None;
        let mut requests = std::mem::take(&mut self.resend.requests);
        self.resend.relayed = false;
        self.resend.held_back.clear();
        self.resend.probe_pending = false;
        if let Some(first) = requests.front_mut() {
            self.statements = std::mem::take(&mut first.statements);
        }
        let messages: Vec<BytesMut> = requests.into_iter().flat_map(|r| r.messages).collect();
        self.pending_syncs = 0;
        self.unsynced = false;
        self.requests.clear();
        self.batch = Batch::default();
        match self.leave_lost_replica() {
            Some(replica) => {
                eject(&replica, cause);
                warn!(data_source = %replica.name, "standby connection lost before the answer: running the read elsewhere: {cause}");
                self.read_elsewhere().await;
            }
            None => {
                debug!(data_source = %self.data_source.name, "pooled connection found closed by the server: sending the request again on another: {cause}");
            }
        }
        if self.backend.is_none() {
            if let Err(e) = self.connect_backend().await {
                warn!(data_source = %self.data_source.name, "sending a request again failed: {e}");
                self.fail_in_flight_messages(&messages, &e);
                return true;
            }
        }
        self.resend.replaying = true;
        for msg in &messages {
            self.forward_client_message(msg[0], msg);
        }
        self.resend.replaying = false;
        let conn = &mut self.backend.as_mut().expect("connected").conn;
        if conn.writer.flush().await.is_err() {
            // Seen as a loss when the pump reads from it next.
            conn.healthy = false;
        }
        true
    }

    /// Answers every request in flight with `e` (and a ReadyForQuery with the session's
    /// transaction status); an open batch is skipped to its Sync, as PostgreSQL does after
    /// an error.
    fn fail_in_flight(&mut self, e: &Error) {
        let owed = self.pending_syncs;
        let open = self.unsynced;
        self.answer_failed(owed, open, e);
    }

    /// [`fail_in_flight`](Self::fail_in_flight) for recorded `messages` that could not be
    /// sent again.
    fn fail_in_flight_messages(&mut self, messages: &[BytesMut], e: &Error) {
        let owed = messages
            .iter()
            .filter(|m| matches!(m[0], b'Q' | b'S' | b'F'))
            .count() as u32;
        let open = messages
            .last()
            .is_some_and(|m| !matches!(m[0], b'Q' | b'S' | b'F'));
        self.answer_failed(owed, open, e);
    }

    fn answer_failed(&mut self, owed: u32, open: bool, e: &Error) {
        for _ in 0..owed {
            self.writer.write(&from_error(Severity::Error, e));
            self.write_ready();
        }
        if open {
            if owed == 0 {
                self.writer.write(&from_error(Severity::Error, e));
            }
            self.skip_until_sync = true;
        }
        self.pending_syncs = 0;
        self.unsynced = false;
        self.requests.clear();
        self.batch = Batch::default();
        self.statements.connection_changed();
        self.resend = Resend::default();
    }
}

/// Takes a standby that broke a connection out of the rotation until the health monitor
/// admits it again.
pub(super) fn eject(replica: &DataSource, cause: &str) {
    if let Some(state) = &replica.replica {
        if state.eject(format!("connection lost: {cause}"), None) {
            warn!(data_source = %replica.name, "replica ejected: {cause}");
        }
    }
}

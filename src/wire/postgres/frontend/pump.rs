//! The full-duplex pump between a client and its backend connection: client messages are
//! forwarded with the bookkeeping they need, backend messages relayed as bytes.

use super::*;

impl PgClient {
    /// The full-duplex loop: whatever side has data is processed, until the client leaves.
    pub(super) async fn pump(&mut self) {
        loop {
            if self.release_if_idle().await.is_err() {
                return;
            }
            let idle = self.idle_outside_transaction();
            let backend = &mut self.backend;
            let event = tokio::select! {
                _ = self.shutdown.started(), if idle => Event::Shutdown,
                r = self.reader.fill() => Event::Client(r.is_ok()),
                r = async {
                    match backend {
                        Some(b) => b.conn.reader.fill().await,
                        None => std::future::pending().await,
                    }
                } => Event::Backend(r.map_err(|e| e.to_string())),
            };
            let step = match event {
                Event::Shutdown => {
                    terminate(&mut self.writer).await;
                    return;
                }
                Event::Client(false) => return,
                Event::Client(true) => self.on_client_data().await,
                Event::Backend(Ok(())) => self.on_backend_data().await,
                Event::Backend(Err(cause)) => self.on_backend_lost(cause).await,
            };
            if step.is_err() {
                return;
            }
            self.metrics
                .bytes(self.reader.received(), self.writer.sent());
            // Shutting down: close once the transaction (if any) has ended.
            if self.shutdown.is_shutdown() && self.idle_outside_transaction() {
                terminate(&mut self.writer).await;
                return;
            }
        }
    }

    /// Nothing in flight and no transaction open: the session may close without loss.
    pub(super) fn idle_outside_transaction(&self) -> bool {
        self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I'
    }

    /// Forwards the client's complete messages, with the bookkeeping they need.
    pub(super) async fn on_client_data(&mut self) -> Result<(), Close> {
        self.refresh_data_source().await;
        loop {
            let frame = match frame_at(&self.reader.buf, 0, self.reader.max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    fatal(
                        &mut self.writer,
                        "08P01",
                        &format!("invalid message from client: {e}"),
                    )
                    .await;
                    return Err(Close);
                }
            };
            let tag = frame.tag;
            if !matches!(
                tag,
                b'Q' | b'P'
                    | b'B'
                    | b'E'
                    | b'D'
                    | b'C'
                    | b'S'
                    | b'H'
                    | b'F'
                    | b'd'
                    | b'c'
                    | b'f'
                    | b'X'
            ) {
                fatal(
                    &mut self.writer,
                    "08P01",
                    &format!("invalid frontend message type {}", tag as char),
                )
                .await;
                return Err(Close);
            }
            if tag == b'X' {
                return Err(Close);
            }
            if self.skip_until_sync {
                self.reader.buf.advance(frame.total_len);
                if tag == b'S' {
                    self.skip_until_sync = false;
                    self.write_ready();
                }
                continue;
            }
            if self.admin_message(tag, frame.total_len).await? {
                continue;
            }
            self.route_read_write(tag, frame.total_len).await?;
            if self.backend.is_none() {
                if let Err(e) = self.connect_backend().await {
                    self.reader.buf.advance(frame.total_len);
                    self.writer.write(&from_error(Severity::Error, &e));
                    match tag {
                        b'Q' | b'S' | b'F' => self.write_ready(),
                        _ => self.skip_until_sync = true,
                    }
                    continue;
                }
            }
            let msg = self.reader.buf.split_to(frame.total_len);
            self.forward_client_message(tag, &msg);
        }
        if let Some(b) = &mut self.backend {
            if b.conn.writer.pending() > 0 && b.conn.writer.flush().await.is_err() {
                b.conn.healthy = false;
            }
        }
        if self.writer.pending() > 0 {
            self.writer.flush().await.map_err(|_| Close)?;
        }
        Ok(())
    }

    pub(super) fn forward_client_message(&mut self, tag: u8, msg: &[u8]) {
        self.record_for_resend(msg);
        let held = self.backend.as_mut().expect("connected before forwarding");
        let conn = &mut held.conn;
        match tag {
            b'P' => {
                let query = parse_query(msg).unwrap_or_default();
                if msg.get(5) == Some(&0) {
                    self.unnamed_statement_waiting = true;
                }
                self.batch.runs(statement_type(query));
                if let Some(info) = &self.info {
                    info.begin_statement_bytes(query);
                }
                // A SET sent with the extended protocol (psycopg, node-postgres and JDBC
                // send every statement so) changes the session like a simple-query one.
                self.follow_session_sql(query);
                let conn = &mut self.backend.as_mut().expect("connected").conn;
                self.statements
                    .on_parse(msg, &mut conn.writer.buf, &mut conn.prepared);
                self.unsynced = true;
                return;
            }
            b'B' => {
                if let Some(name) = bind_statement(msg).filter(|n| !n.is_empty()) {
                    let query = self.statements.query_of(&String::from_utf8_lossy(name));
                    self.batch
                        .runs(query.map(statement_type).unwrap_or("other"));
                    if let (Some(info), Some(q)) = (&self.info, query) {
                        info.begin_statement_bytes(q);
                    }
                }
                self.statements
                    .on_bind(msg, &mut conn.writer.buf, &mut conn.prepared);
                self.unsynced = true;
                return;
            }
            b'D' => {
                self.statements
                    .on_describe(msg, &mut conn.writer.buf, &mut conn.prepared);
                self.unsynced = true;
                return;
            }
            b'C' => {
                self.statements.on_close(msg, &mut conn.writer.buf);
                self.unsynced = true;
                return;
            }
            b'E' | b'H' => {
                if tag == b'E' {
                    self.unnamed_statement_waiting = false;
                    self.batch.executes();
                    if let Some(info) = &self.info {
                        info.mark_active();
                    }
                }
                self.unsynced = true;
            }
            b'S' => {
                self.requests.push_back(self.batch.synced());
                self.pending_syncs += 1;
                self.statements.on_sync();
                self.unsynced = false;
            }
            b'Q' | b'F' => {
                self.pending_syncs += 1;
                self.statements.on_sync();
                let sql = msg.get(5..msg.len().saturating_sub(1)).unwrap_or_default();
                let kind = if tag == b'Q' {
                    statement_type(sql)
                } else {
                    "other"
                };
                self.requests
                    .push_back(Some(StatementTimer::started_at(Instant::now(), kind)));
                if tag == b'Q' {
                    self.unnamed_statement_waiting = false;
                    if let Some(info) = &self.info {
                        info.begin_statement_bytes(sql);
                    }
                    self.follow_session_sql(sql);
                }
            }
            _ => {}
        }
        let conn = &mut self.backend.as_mut().expect("connected").conn;
        conn.writer.write_raw(msg);
    }

    /// Follows what a statement does to the session, before it goes to the backend: SETs
    /// and RESETs are recorded (to replay on another connection), `DISCARD ALL` and
    /// `DEALLOCATE ALL` drop the session's statements, and a statement that may create
    /// connection-bound state marks the session as possibly pinned (`pinning.rs`).
    fn follow_session_sql(&mut self, sql: &[u8]) {
        let conn = &mut self.backend.as_mut().expect("connected").conn;
        let text = std::str::from_utf8(sql).ok();
        // Sent again after a lost connection (`resend.rs`): the session recorded it already.
        let first_time = !self.resend.replaying();
        match session_reset(sql) {
            Some(SessionReset::DiscardAll) => {
                if first_time {
                    self.session.reset();
                }
                self.statements.clear();
                conn.prepared.clear();
                conn.applied_state = 0;
            }
            Some(SessionReset::DeallocateAll) => {
                self.statements.clear();
                conn.prepared.clear();
            }
            Some(SessionReset::Reset) => {
                if first_time {
                    self.session.record_set(text.unwrap_or_default());
                }
                conn.applied_state = state_key(&self.session);
            }
            None => {
                if text.is_some_and(|t| classify(t) == StatementKind::SessionSet) {
                    if first_time {
                        self.session.record_set(text.unwrap_or_default());
                    }
                    conn.applied_state = state_key(&self.session);
                }
            }
        }
        if may_pin(sql) {
            self.maybe_pinned = true;
        }
    }

    /// Relays the backend's complete messages to the client.
    pub(super) async fn on_backend_data(&mut self) -> Result<(), Close> {
        let held = self
            .backend
            .as_mut()
            .expect("data from a connected backend");
        let buf = &mut held.conn.reader.buf;
        let mut at = 0;
        let mut run = 0;
        loop {
            let frame = match frame_at(buf, at, MAX_BACKEND_MESSAGE) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    held.conn.healthy = false;
                    let cause = e.to_string();
                    return self.on_backend_lost(cause).await;
                }
            };
            let idle = self.pending_syncs == 0 && !self.unsynced;
            if self.resend.probe_answer(frame.tag) {
                // dbmesh's own empty query ahead of the request (`resend.rs`).
                self.writer.write_raw(&buf[run..at]);
                at += frame.total_len;
                run = at;
                continue;
            }
            let swallow = match frame.tag {
                b'1' => self.statements.on_parse_complete(),
                b'3' => self.statements.on_close_complete(),
                b'Z' => {
                    let before = self.tx_status;
                    self.read_write.relay_status(&mut buf[at + 5], before);
                    self.tx_status = buf[at + 5];
                    if let Some(Some(t)) = self.requests.front() {
                        let ds = &self.data_source;
                        m::backend_round_trip(&ds.database, &ds.name, t.elapsed());
                    }
                    request_done(
                        &mut self.requests,
                        &self.rt,
                        &self.session,
                        before,
                        self.tx_status,
                    );
                    if let Some(info) = &self.info {
                        info.end_statement(self.tx_status != b'I');
                    }
                    self.pending_syncs = self.pending_syncs.saturating_sub(1);
                    self.statements.on_ready(&mut held.conn.prepared);
                    false
                }
                // An error nobody asked for (the server is terminating an idle connection):
                // keep it from the client; the end of the stream follows.
                b'E' if idle => {
                    held.conn.healthy = false;
                    true
                }
                b'E' => {
                    let frame_bytes = &buf[at..at + frame.total_len];
                    // The server closing the connection before answering a request that
                    // can go again elsewhere: the loss, not the answer (`resend.rs`).
                    if let Some(cause) = self.resend.closing_before_answer(frame_bytes) {
                        held.conn.healthy = false;
                        return self.on_backend_lost(cause).await;
                    }
                    super::super::error::count_backend_error(frame_bytes);
                    false
                }
                _ => false,
            };
            let frame_bytes = &buf[at..at + frame.total_len];
            let held_back = !swallow && self.resend.hold_back(frame.tag, frame_bytes);
            // Notices, notifications and parameter changes may come at any time: they
            // are not part of an answer (a standby going down sends a WARNING first).
            if !swallow && !held_back && !matches!(frame.tag, b'N' | b'A' | b'S') {
                self.resend.relaying(&mut self.writer);
            }
            if frame.tag == b'Z' {
                self.resend.answered();
            }
            if swallow || held_back {
                self.writer.write_raw(&buf[run..at]);
                run = at + frame.total_len;
            }
            at += frame.total_len;
        }
        self.writer.write_raw(&buf[run..at]);
        buf.advance(at);
        held.conn.tx_status = self.tx_status;
        self.session.in_transaction = self.tx_status != b'I';
        if self.writer.pending() >= FLUSH_THRESHOLD || held.conn.reader.buf.is_empty() {
            self.writer.flush().await.map_err(|_| Close)?;
        }
        Ok(())
    }
}

/// An extended-protocol batch (messages up to Sync) as the statement metrics see it: when
/// its first message came, the statement type of what it runs (from its Parse, or the
/// named statement its Bind names), and whether it executes anything.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    started: Option<Instant>,
    kind: Option<&'static str>,
    executes: bool,
}

impl Batch {
    /// Any message of the batch: the batch has started.
    pub(crate) fn message(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    /// A Parse or Bind: the batch runs a statement of type `kind`.
    pub(crate) fn runs(&mut self, kind: &'static str) {
        self.message();
        self.kind = Some(kind);
    }

    /// An Execute.
    pub(crate) fn executes(&mut self) {
        self.message();
        self.executes = true;
    }

    /// Whether a batch is open (messages sent, no Sync yet).
    pub(crate) fn is_open(&self) -> bool {
        self.started.is_some()
    }

    /// The Sync: the batch's timer if it executed something; a new batch begins.
    pub(crate) fn synced(&mut self) -> Option<StatementTimer> {
        let batch = std::mem::take(self);
        let started = batch.started.unwrap_or_else(Instant::now);
        batch
            .executes
            .then(|| StatementTimer::started_at(started, batch.kind.unwrap_or("other")))
    }
}

/// A ReadyForQuery came back: the request it answers is done (statement metrics), and a
/// transaction ended if the status went back to idle.
fn request_done(
    requests: &mut VecDeque<Option<StatementTimer>>,
    rt: &Runtime,
    session: &Session,
    before: u8,
    after: u8,
) {
    let Some(Some(timer)) = requests.pop_front() else {
        return;
    };
    let kind = timer.kind();
    let database = session.database.as_deref().unwrap_or("");
    timer.finish(
        Protocol::Postgres,
        database,
        RouteKind::Single,
        rt.config().server.slow_statement,
    );
    if before != b'I' && after == b'I' {
        let outcome = TxnOutcome::of(kind, before == b'E');
        m::transaction(Protocol::Postgres, "single", outcome);
    }
}

enum Event {
    /// The proxy is shutting down and this session is idle outside a transaction.
    Shutdown,
    Client(bool),
    Backend(Result<(), String>),
}

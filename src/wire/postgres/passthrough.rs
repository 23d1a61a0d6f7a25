//! Extended-protocol statements that name no sharded or broadcast table, in a sharded
//! session: their Parse, Bind, Describe, Execute and Close messages are forwarded as they
//! are to the default data source's connection, and its answers relayed, so they behave
//! exactly as without sharding (server-side named statements, row limits, COPY).
//!
//! Answers must reach the client in the order of its messages. Forwarded messages are
//! answered by the backend only at a Flush or Sync, so before dbmesh answers a message
//! itself (a sharded statement's ParseComplete, say) it *settles*: sends Flush and relays
//! every answer the backend owes. Each forwarded message owes exactly one completing
//! answer (ParseComplete, BindComplete, CloseComplete, RowDescription or NoData after a
//! Describe's ParameterDescription, CommandComplete / EmptyQueryResponse /
//! PortalSuspended after rows), until an ErrorResponse, after which the backend skips the
//! rest up to Sync (and statements whose Parse failed or was skipped do not exist).
//!
//! Named statements are remembered (as the session's statements) and prepared again, with
//! a ParseComplete the client does not see, on a new connection to the default data
//! source that has not seen them: after the previous one was closed while the client was
//! idle (see `ShardedSession::drop_closed_backends`).

use std::collections::VecDeque;

use postgres_protocol::message::frontend;

use super::message::FLUSH_THRESHOLD;
use super::sharded::{copy_in, next_message, send, Broken, Outcome, ShardedSession};

/// One answer the default data source owes.
#[derive(Debug)]
struct Owed {
    /// For a Parse: the statement it creates.
    parse: Option<String>,
    /// A Parse dbmesh sent itself: its ParseComplete is not relayed.
    injected: bool,
}

/// How many forwarded messages may await their answers before dbmesh settles them.
const MAX_OWED: usize = 256;

/// Forwarded messages whose answers have not been relayed yet.
#[derive(Debug, Default)]
pub struct Passthrough {
    /// Completing answers the default data source still owes, in order.
    owed: VecDeque<Owed>,
    /// Messages were forwarded since the last Sync: the client's Sync must go there too.
    pub unsynced: bool,
    /// The client parsed the unnamed statement on the default data source and has executed
    /// nothing since: it may Describe or Bind it after a Sync (libpq's `PQprepare(conn,
    /// "", ..)`, psql's `\gdesc`), so that connection stays with the session until then.
    pub unnamed_waiting: bool,
}

impl ShardedSession {
    /// Forwards one client message to the default data source; `creates` names the
    /// statement a Parse creates.
    pub(super) async fn forward(
        &mut self,
        tag: u8,
        msg: &[u8],
        creates: Option<String>,
    ) -> Result<Outcome, Broken> {
        let ds = self.backends.default_name().to_string();
        let conn = match self.backends.open(&ds, &self.session).await {
            Ok(c) => c,
            Err(e) => return Ok(self.fail(&e)),
        };
        conn.writer.write_raw(msg);
        conn.healthy = false;
        if let Some(name) = creates.as_ref().filter(|n| !n.is_empty()) {
            conn.prepared.insert(name.clone());
        }
        match (tag, creates.as_deref()) {
            (b'P', Some("")) => self.pass.unnamed_waiting = true,
            (b'E', _) => self.pass.unnamed_waiting = false,
            _ => {}
        }
        if tag != b'H' {
            self.pass.owed.push_back(Owed {
                parse: creates,
                injected: false,
            });
        }
        self.pass.unsynced = true;
        // A long pipeline: take the answers so far before sending more, or the backend,
        // blocked writing answers nobody reads, would stop reading and block dbmesh too.
        if self.pass.owed.len() >= MAX_OWED || conn.writer.pending() >= FLUSH_THRESHOLD {
            return self.settle().await;
        }
        Ok(Outcome::Done)
    }

    /// Relays every answer the default data source owes, so dbmesh can answer next.
    /// `Failed` when one was an error: the client's messages up to Sync are to be skipped.
    pub(super) async fn settle(&mut self) -> Result<Outcome, Broken> {
        if self.pass.owed.is_empty() {
            return Ok(Outcome::Done);
        }
        let ds = self.backends.default_name().to_string();
        let conn = self
            .backends
            .get(&ds)
            .expect("messages were forwarded there");
        frontend::flush(&mut conn.writer.buf);
        send(conn, &ds).await?;
        self.relay(false).await
    }

    /// The client's Sync: forwarded when messages went to the default data source since
    /// the last one, and its answers relayed up to (not including) ReadyForQuery.
    pub(super) async fn sync_passthrough(&mut self) -> Result<Outcome, Broken> {
        if !self.pass.unsynced {
            return Ok(Outcome::Done);
        }
        let ds = self.backends.default_name().to_string();
        let conn = self
            .backends
            .get(&ds)
            .expect("messages were forwarded there");
        frontend::sync(&mut conn.writer.buf);
        send(conn, &ds).await?;
        let outcome = self.relay(true).await?;
        self.pass.unsynced = false;
        Ok(outcome)
    }

    /// Relays the default data source's answers until none is owed (or an error), or with
    /// `until_ready` up to its ReadyForQuery.
    async fn relay(&mut self, until_ready: bool) -> Result<Outcome, Broken> {
        let ds = self.backends.default_name().to_string();
        let mut outcome = Outcome::Done;
        loop {
            if !until_ready && (self.pass.owed.is_empty() || outcome == Outcome::Failed) {
                return Ok(outcome);
            }
            let conn = self
                .backends
                .get(&ds)
                .expect("messages were forwarded there");
            let (tag, msg) = next_message(conn, &ds, &mut self.writer).await?;
            match tag {
                b'Z' if until_ready => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    self.forget_owed();
                    return Ok(outcome);
                }
                // Not asked for (no Sync was sent): nothing to relay.
                b'Z' => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                }
                b'E' => {
                    self.forget_owed();
                    self.relay_error(&msg);
                    outcome = Outcome::Failed;
                }
                b'1' | b'2' | b'3' | b'T' | b'n' | b'C' | b'I' | b's' => {
                    if !self.pass.owed.pop_front().is_some_and(|o| o.injected) {
                        self.writer.write_raw(&msg);
                    }
                }
                b'G' => {
                    self.writer.write_raw(&msg);
                    copy_in(&mut self.reader, &mut self.writer, conn, &ds).await?;
                }
                _ => self.writer.write_raw(&msg),
            }
        }
    }

    /// The backend will not answer the messages still owed (it skips to Sync after an
    /// error): the statements their Parses would have created do not exist.
    fn forget_owed(&mut self) {
        let owed = std::mem::take(&mut self.pass.owed);
        let default = self.backends.default_name().to_string();
        for o in owed {
            if let Some(name) = o.parse {
                if let Some(conn) = self.backends.get(&default) {
                    conn.prepared.remove(&name);
                }
                if !o.injected {
                    self.forget_statement(&name);
                }
            }
        }
    }

    /// Before a client's Bind or Describe of passthrough statement `name`: a default data
    /// source connection that lacks it (a new one) gets the statement's Parse first.
    pub(super) async fn ensure_prepared(
        &mut self,
        name: &str,
        sql: &str,
        types: &[u32],
    ) -> Result<Outcome, Broken> {
        if name.is_empty() {
            return Ok(Outcome::Done);
        }
        let ds = self.backends.default_name().to_string();
        let conn = match self.backends.open(&ds, &self.session).await {
            Ok(c) => c,
            Err(e) => return Ok(self.fail(&e)),
        };
        if conn.prepared.contains(name) {
            return Ok(Outcome::Done);
        }
        if let Err(e) = frontend::parse(name, sql, types.iter().copied(), &mut conn.writer.buf) {
            return Ok(self.fail(&crate::error::Error::Malformed(e.to_string())));
        }
        conn.prepared.insert(name.to_string());
        conn.healthy = false;
        self.pass.owed.push_back(Owed {
            parse: Some(name.to_string()),
            injected: true,
        });
        self.pass.unsynced = true;
        Ok(Outcome::Done)
    }
}

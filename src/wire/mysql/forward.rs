//! Forwarding a command to a backend connection and relaying its response to the client
//! untouched (LOCAL INFILE data included), keeping the session's view of the backend
//! (transaction status, last insert id, the KILL target) up to date.

use tracing::warn;

use super::frontend::{ClientConn, Fatal};
use super::kill::KillTarget;
use super::ok::{STATUS_AUTOCOMMIT, STATUS_IN_TRANS};
use super::packet::PacketError;
use super::relay::{relay, RelayEnd, RelayError};
use super::response::{ResponseKind, ResponseTracker};
use crate::admin::metrics as m;
use crate::config::BackendKind;
use crate::error::Error;

impl ClientConn {
    /// Routes the command by the session and relays the backend's response.
    pub(crate) async fn forward_routed(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<(), Fatal> {
        self.forward_routed_index(payload, kind).await.map(|_| ())
    }

    /// Like `forward_routed`, also returning which backend ran it and the response summary
    /// (`None` when dbmesh answered with its own error instead).
    pub(super) async fn forward_routed_index(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Option<(usize, Option<ResponseTracker>)>, Fatal> {
        let route = match crate::route::plan(&self.session, &self.cluster, BackendKind::Mysql) {
            Ok(r) => r,
            Err(e) => {
                self.send_error(&e);
                return Ok(None);
            }
        };
        let index = match self.backend_for(&route.data_source).await {
            Ok(i) => i,
            Err(e) => {
                self.send_error(&e);
                return Ok(None);
            }
        };
        let tracker = self.forward(index, payload, kind, None).await?;
        Ok(Some((index, tracker)))
    }

    /// Sends `payload` to backend `index` and relays the response, streaming a LOCAL INFILE
    /// from the client when asked. Returns the response summary, or `None` when the backend
    /// broke (the client then got an ERR naming the data source).
    pub(crate) async fn forward(
        &mut self,
        index: usize,
        payload: &[u8],
        kind: ResponseKind,
        prepare_id: Option<u32>,
    ) -> Result<Option<ResponseTracker>, Fatal> {
        self.point_kill_at(index);
        let held = &mut self.backends[index];
        let mut tracker = ResponseTracker::new(kind, held.conn.deprecate_eof());
        let started = std::time::Instant::now();
        let sent = held.conn.send_command(payload).await;
        let mut result = match sent {
            Ok(()) => {
                relay(
                    &mut held.conn,
                    &mut self.writer,
                    &mut self.seq,
                    &mut tracker,
                    prepare_id,
                    self.more_results,
                )
                .await
            }
            Err(e) => Err(RelayError::Backend(match e {
                super::backend::BackendError::Packet(p) => p,
                other => PacketError::Io(std::io::Error::other(other.to_string())),
            })),
        };
        loop {
            match result {
                Ok(RelayEnd::Done) => break,
                Ok(RelayEnd::LocalInfile) => {
                    if self.stream_local_infile(index).await.is_err() {
                        return Err(Fatal);
                    }
                    let held = &mut self.backends[index];
                    result = relay(
                        &mut held.conn,
                        &mut self.writer,
                        &mut self.seq,
                        &mut tracker,
                        None,
                        self.more_results,
                    )
                    .await;
                }
                Err(RelayError::Client(_)) => {
                    self.backends[index].conn.healthy = false;
                    self.drop_backend(index);
                    return Err(Fatal);
                }
                Err(RelayError::Backend(e)) => {
                    let ds = self.backends[index].ds.name.clone();
                    let replica = self.backends[index].ds.replica.is_some();
                    warn!(data_source = %ds, "backend connection lost: {e}");
                    self.drop_backend(index);
                    if !replica {
                        // A replica holds no transaction of the session.
                        self.session.in_transaction = false;
                    }
                    self.send_error(&Error::BackendLost {
                        data_source: ds,
                        cause: e.to_string(),
                    });
                    return Ok(None);
                }
            }
        }
        let ds = &self.backends[index].ds;
        m::backend_round_trip(&ds.database, &ds.name, started.elapsed());
        if let Some(errno) = tracker.error_code {
            m::mysql_error(errno);
            self.statement_failed = true;
        }
        // The session's transaction lives on the primary; a replica's flags say nothing of it.
        if let Some(status) = tracker.status.filter(|_| ds.replica.is_none()) {
            self.session.in_transaction = status & STATUS_IN_TRANS != 0;
            self.session.autocommit = status & STATUS_AUTOCOMMIT != 0;
        }
        if let Some((_, id)) = tracker.last_ok {
            self.note_last_insert_id(id);
            if id != 0 {
                self.backends[index].conn.last_insert_id = id;
            }
        }
        if self.multiplexing() {
            let sql = match payload.first() {
                Some(&super::frontend::COM_QUERY) => &payload[1..],
                _ => &[],
            };
            self.note_follow_up_state(&tracker, sql);
        }
        Ok(Some(tracker))
    }

    /// Keeps `KILL QUERY <our id>` pointed at the backend connection about to run a
    /// statement (it changes rarely: a new connection, a statement on another data source).
    pub(crate) fn point_kill_at(&mut self, index: usize) {
        let held = &self.backends[index];
        if self.kill_thread != Some(held.conn.connection_id) {
            self.kill_thread = Some(held.conn.connection_id);
            self.rt.mysql_kill.set_target(
                self.connection_id,
                KillTarget {
                    url: held.ds.url.clone(),
                    thread_id: held.conn.connection_id,
                },
            );
        }
    }

    /// Copies the client's LOCAL INFILE packets to the backend up to the empty packet.
    async fn stream_local_infile(&mut self, index: usize) -> Result<(), Fatal> {
        self.writer.flush().await.map_err(|_| Fatal)?;
        loop {
            let pkt = self
                .reader
                .read_packet_seq(self.seq)
                .await
                .map_err(|_| Fatal)?;
            self.seq = pkt.seq.wrapping_add(1);
            let held = &mut self.backends[index];
            held.conn.queue_continuation(&pkt.payload);
            if (pkt.payload.is_empty()
                || held.conn.writer.pending() >= super::packet::FLUSH_THRESHOLD)
                && held.conn.flush().await.is_err()
            {
                // The relay that follows reports the lost backend.
                return Ok(());
            }
            if pkt.payload.is_empty() {
                return Ok(());
            }
        }
    }
}

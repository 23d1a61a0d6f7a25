//! Running the units of a sharded plan: one unit is relayed like any statement; several are
//! fanned out and their responses concatenated into one ([`Concat`]).
//!
//! Fan-out is concurrent without tasks: every data source's connection gets its first unit
//! before any response is read, so the servers work in parallel while dbmesh drains the
//! responses in unit order (a connection's later units are sent as soon as its previous one
//! has been read). Rows stream from each backend's read buffer to the client's write buffer
//! frame by frame, as in the single-route relay; a backend not being read yet is held back
//! by TCP, so memory stays bounded by the buffers whatever the result sizes.
//!
//! After a failure no further unit is started, every unit already sent is drained (so each
//! connection is left clean), and the client gets the first error.

use std::time::Instant;

use bytes::Buf;

use super::backend::BackendConn;
use super::concat::{Action, Concat, OkMerge};
use super::err::{code, MysqlError};
use super::frontend::{ClientConn, Fatal};
use super::kill::KillTarget;
use super::packet::{frame_at, PacketWriter, FLUSH_THRESHOLD};
use super::read_write::eject_replica;
use super::relay::RelayError;
use super::response::{ResponseKind, Step};
use crate::admin::metrics as m;
use crate::error::Error;

/// One unit ready to run on a held connection.
#[derive(Debug)]
pub(crate) struct Dispatch {
    /// Index of the held backend connection.
    pub backend: usize,
    /// Commands without a response to send first (COM_STMT_SEND_LONG_DATA).
    pub preamble: Vec<Vec<u8>>,
    /// The command whose response is the unit's result (COM_QUERY / COM_STMT_EXECUTE).
    pub command: Vec<u8>,
    /// A backend statement prepared for this execution only, closed after it.
    pub close_after: Option<u32>,
    /// The SQL of the backend statement `command` executes (COM_STMT_EXECUTE), so that the
    /// unit can be prepared again on another connection of its data source (`merged.rs`).
    pub statement_sql: Option<String>,
}

/// A COM_QUERY payload.
pub(crate) fn query_payload(sql: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(sql.len() + 1);
    p.push(super::frontend::COM_QUERY);
    p.extend_from_slice(sql.as_bytes());
    p
}

impl ClientConn {
    /// Runs the units and answers the client. One unit is relayed untouched, unless a
    /// generated key must replace the backend's last-insert-id in its OK.
    pub(crate) async fn run_dispatches(
        &mut self,
        mut units: Vec<Dispatch>,
        merge: OkMerge,
    ) -> Result<(), Fatal> {
        if units.len() == 1 && merge.last_insert_id.is_none() {
            let unit = units.pop().expect("one unit");
            let conn = &mut self.backends[unit.backend].conn;
            for p in &unit.preamble {
                conn.queue_command(p);
            }
            let ds = self.backends[unit.backend].ds.clone();
            let answered = self
                .forward(unit.backend, &unit.command, ResponseKind::Query, None)
                .await?;
            if answered.is_none() {
                // The connection broke (the client got an error): a replica takes no more
                // reads until the health monitor admits it again.
                eject_replica(&ds, "connection lost during a read".into());
            }
            if let (Some(_), Some(id)) = (answered, unit.close_after) {
                queue_close(&mut self.backends[unit.backend].conn, id);
            }
            return Ok(());
        }
        self.fan_out(units, merge).await
    }

    /// Several units (or one whose OK dbmesh rewrites): concurrent dispatch, responses
    /// drained in unit order and concatenated.
    async fn fan_out(&mut self, units: Vec<Dispatch>, merge: OkMerge) -> Result<(), Fatal> {
        let mut concat = Concat::new(self.deprecate_eof(), merge);
        self.point_kill_at_all(&units);
        let mut sent = vec![false; units.len()];
        // When each unit was sent, for the backend latency metric.
        let mut sent_at = vec![Instant::now(); units.len()];
        for i in 0..units.len() {
            let first_on_backend = units[..i].iter().all(|u| u.backend != units[i].backend);
            if first_on_backend {
                sent_at[i] = Instant::now();
                sent[i] = self.send_unit(&units[i], &mut concat).await;
            }
        }
        for i in 0..units.len() {
            if !sent[i] {
                continue;
            }
            let b = units[i].backend;
            match self.drain_unit(b, &mut concat).await {
                Ok(()) => {
                    let ds = &self.backends[b].ds;
                    m::backend_round_trip(&ds.database, &ds.name, sent_at[i].elapsed());
                    if let Some(id) = units[i].close_after {
                        queue_close(&mut self.backends[b].conn, id);
                    }
                }
                Err(RelayError::Client(_)) => {
                    for u in &units {
                        self.backends[u.backend].conn.healthy = false;
                    }
                    self.drop_unhealthy_backends();
                    return Err(Fatal);
                }
                Err(RelayError::Backend(e)) => {
                    let held = &mut self.backends[b];
                    held.conn.healthy = false;
                    eject_replica(&held.ds, format!("connection lost: {e}"));
                    concat.fail(
                        MysqlError::from(&Error::BackendLost {
                            data_source: held.ds.name.clone(),
                            cause: e.to_string(),
                        })
                        .payload(),
                    );
                    continue;
                }
            }
            if concat.failed() {
                continue;
            }
            if let Some(next) = (i + 1..units.len()).find(|&j| units[j].backend == b) {
                sent_at[next] = Instant::now();
                sent[next] = self.send_unit(&units[next], &mut concat).await;
            }
        }
        self.drop_unhealthy_backends();
        self.refresh_transaction_status();
        let status = self.status_flags();
        self.note_last_insert_id(concat.last_insert_id());
        for p in concat.finish(status) {
            if let (Some(0xFF), Some(code)) = (p.first(), p.get(1..3)) {
                m::mysql_error(u16::from_le_bytes([code[0], code[1]]));
                self.statement_failed = true;
            }
            self.writer.write_packet(&mut self.seq, &p);
        }
        Ok(())
    }

    /// Points `KILL QUERY <our id>` at every connection of the fan-out.
    pub(crate) fn point_kill_at_all(&mut self, units: &[Dispatch]) {
        let mut targets: Vec<KillTarget> = Vec::new();
        for unit in units {
            let held = &self.backends[unit.backend];
            if !targets
                .iter()
                .any(|t| t.thread_id == held.conn.connection_id && t.url == held.ds.url)
            {
                targets.push(KillTarget {
                    url: held.ds.url.clone(),
                    thread_id: held.conn.connection_id,
                });
            }
        }
        self.rt.mysql_kill.set_targets(self.connection_id, targets);
        // The next single-node statement points it back at one connection.
        self.kill_thread = None;
    }

    /// Sends a unit's commands; false (and the failure recorded) when the connection broke.
    async fn send_unit(&mut self, unit: &Dispatch, concat: &mut Concat) -> bool {
        let held = &mut self.backends[unit.backend];
        for p in &unit.preamble {
            held.conn.queue_command(p);
        }
        match held.conn.send_command(&unit.command).await {
            Ok(()) => true,
            Err(e) => {
                held.conn.healthy = false;
                concat.fail(
                    MysqlError::from(&Error::BackendLost {
                        data_source: held.ds.name.clone(),
                        cause: e.to_string(),
                    })
                    .payload(),
                );
                false
            }
        }
    }

    /// Reads one unit's response from backend `b`, relaying what [`Concat`] lets through.
    async fn drain_unit(&mut self, b: usize, concat: &mut Concat) -> Result<(), RelayError> {
        concat.start_unit();
        let conn = &mut self.backends[b].conn;
        drain(conn, &mut self.writer, &mut self.seq, concat).await
    }
}

async fn drain<W: tokio::io::AsyncWrite + Unpin>(
    conn: &mut BackendConn,
    client: &mut PacketWriter<W>,
    client_seq: &mut u8,
    concat: &mut Concat,
) -> Result<(), RelayError> {
    let mut continuing = false;
    let mut forwarding = false;
    loop {
        let mut local_infile = false;
        let mut done = false;
        let buf = conn.reader.buffer();
        let mut at = 0;
        while let Some(frame) = frame_at(buf, at) {
            conn.next_seq = frame.seq.wrapping_add(1);
            let end = at + frame.total_len();
            if !continuing {
                let (action, step) = concat.on_packet(&buf[at + 4..end]);
                forwarding = action == Action::Forward;
                local_infile = step == Step::LocalInfile;
                if forwarding {
                    if let Some(header) = concat.take_header() {
                        for p in header {
                            client.write_packet(client_seq, &p);
                        }
                    }
                }
            }
            if forwarding {
                buf[at + 3] = *client_seq;
                *client_seq = client_seq.wrapping_add(1);
                client.write_raw(&buf[at..end]);
            }
            continuing = frame.continues();
            at = end;
            if !continuing && (local_infile || concat.unit_done()) {
                done = concat.unit_done();
                break;
            }
        }
        buf.advance(at);
        if local_infile {
            // Not for statements over several data nodes: send an empty file, which the
            // server answers with an OK or ERR that ends the unit.
            concat.fail(
                MysqlError::new(
                    code::ER_NOT_SUPPORTED_YET,
                    "0A000",
                    "LOAD DATA LOCAL INFILE over several data nodes is not supported by dbmesh",
                )
                .payload(),
            );
            conn.queue_continuation(&[]);
            if let Err(e) = conn.flush().await {
                return Err(RelayError::Backend(match e {
                    super::backend::BackendError::Packet(p) => p,
                    other => {
                        super::packet::PacketError::Io(std::io::Error::other(other.to_string()))
                    }
                }));
            }
            continue;
        }
        if done {
            if let Some(s) = concat.tracker().status {
                conn.status = s;
            }
            return Ok(());
        }
        if client.pending() >= FLUSH_THRESHOLD
            || (client.pending() > 0 && conn.reader.buffer().is_empty())
        {
            client.flush().await.map_err(RelayError::Client)?;
        }
        if let Err(e) = conn.reader.fill().await {
            conn.healthy = false;
            return Err(RelayError::Backend(e));
        }
    }
}

/// COM_STMT_CLOSE of a backend statement, sent with the connection's next command.
pub(crate) fn queue_close(conn: &mut BackendConn, id: u32) {
    let mut close = vec![super::frontend::COM_STMT_CLOSE];
    close.extend_from_slice(&id.to_le_bytes());
    conn.queue_command(&close);
}

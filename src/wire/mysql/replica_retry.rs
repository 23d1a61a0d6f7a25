//! Running one single-route statement where read/write splitting sends it
//! (`read_write.rs`), and running a read again elsewhere when its replica fails it.
//!
//! A replica can die (crash, restart, network cut) between the health checks. A read whose
//! replica connection breaks before any byte of its response reached the client has had
//! no effect anywhere (it is a plain read), so it is re-run on another admitted replica or
//! on the primary, and the client never hears of the failure; the replica is ejected
//! until the health monitor admits it again. A read that had already sent part of its
//! result (the column definitions, some rows) cannot be taken back: it ends with the usual
//! "backend connection lost" error after those rows, as it would on one server.
//!
//! "Nothing reached the client" is exact: every frame relayed to the client takes the
//! next client sequence id, so an unchanged `seq` means nothing was even buffered.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::frontend::{ClientConn, Fatal};
use super::read_write::eject_replica;
use super::relay::{relay, RelayEnd, RelayError};
use super::response::{ResponseKind, ResponseTracker};
use crate::admin::metrics as m;
use crate::error::Error;
use crate::execute::DataSource;

/// What runs on the connection read/write splitting picks.
#[derive(Clone, Copy)]
pub(crate) enum ReadCommand<'a> {
    /// A command that runs as it is on any connection of the data source (COM_QUERY).
    Payload(&'a [u8]),
    /// The client's COM_STMT_EXECUTE of statement `id`: prepared on the picked connection
    /// first when it has not seen it, and its id replaced by that connection's.
    Execute { id: u32, payload: &'a [u8] },
}

/// How a read on a replica ended.
enum ReplicaRead {
    /// The response was relayed.
    Answered(ResponseTracker),
    /// The connection broke before anything went to the client: run it elsewhere.
    Retry,
    /// The connection broke mid-response; the client got an error after what it had.
    Failed,
}

impl ClientConn {
    /// Runs `command` (whose SQL is `sql`) on the primary `primary` or, for a read the
    /// session may run there, one of its replicas, and relays the response. Returns the
    /// connection it ran on, whether that is a replica's, and the response summary; `None`
    /// when the client got dbmesh's error instead.
    pub(crate) async fn run_routed(
        &mut self,
        primary: &Arc<DataSource>,
        sql: &[u8],
        command: ReadCommand<'_>,
    ) -> Result<Option<(usize, bool, ResponseTracker)>, Fatal> {
        // Each retry ejects a replica, so after at most one per replica the read runs on
        // the primary (the last round forces it, should the monitor re-admit one meanwhile).
        for round in 0..=primary.replicas.len() {
            let picked = if round < primary.replicas.len() {
                self.backend_for_statement(primary, sql).await
            } else {
                self.backend_for(primary).await.map(|i| (i, false))
            };
            let (index, on_replica) = match picked {
                Ok(picked) => picked,
                Err(e) => {
                    self.send_error(&e);
                    return Ok(None);
                }
            };
            let payload = match command {
                ReadCommand::Payload(p) => Cow::Borrowed(p),
                ReadCommand::Execute { id, payload } => {
                    let ds = self.backends[index].ds.clone();
                    match self.prepared_on(index, id).await {
                        Ok((backend_id, fresh)) => {
                            Cow::Owned(self.execute_for_backend(id, payload, backend_id, fresh))
                        }
                        // A replica connection that broke while preparing was dropped:
                        // the read goes elsewhere.
                        Err(e)
                            if on_replica
                                && !self.backends.iter().any(|h| Arc::ptr_eq(&h.ds, &ds)) =>
                        {
                            eject_replica(&ds, format!("connection lost: {e}"));
                            continue;
                        }
                        Err(e) => {
                            self.send_error(&e);
                            return Ok(None);
                        }
                    }
                }
            };
            if !on_replica {
                let tracker = self
                    .forward(index, &payload, ResponseKind::Query, None)
                    .await?;
                return Ok(tracker.map(|t| (index, false, t)));
            }
            match self.relay_from_replica(index, &payload).await? {
                ReplicaRead::Answered(t) => return Ok(Some((index, true, t))),
                ReplicaRead::Retry => continue,
                ReplicaRead::Failed => return Ok(None),
            }
        }
        unreachable!("the last round runs on the primary")
    }

    /// Sends a read to the replica connection at `index` and relays its response, as
    /// `forward` does for any connection, telling apart a break before the response from
    /// one during it.
    async fn relay_from_replica(
        &mut self,
        index: usize,
        payload: &[u8],
    ) -> Result<ReplicaRead, Fatal> {
        self.point_kill_at(index);
        let seq_before = self.seq;
        let held = &mut self.backends[index];
        let mut tracker = ResponseTracker::new(ResponseKind::Query, held.conn.deprecate_eof());
        let started = Instant::now();
        let result = match held.conn.send_command(payload).await {
            Ok(()) => {
                relay(
                    &mut held.conn,
                    &mut self.writer,
                    &mut self.seq,
                    &mut tracker,
                    None,
                    self.more_results,
                )
                .await
            }
            Err(e) => Err(RelayError::Backend(super::packet::PacketError::Io(
                std::io::Error::other(e.to_string()),
            ))),
        };
        let cause = match result {
            Ok(RelayEnd::Done) => None,
            // A plain read never asks for a file; a replica that does is not trusted further.
            Ok(RelayEnd::LocalInfile) => Some("LOCAL INFILE request to a read".to_string()),
            Err(RelayError::Client(_)) => {
                self.backends[index].conn.healthy = false;
                self.drop_backend(index);
                return Err(Fatal);
            }
            Err(RelayError::Backend(e)) => Some(e.to_string()),
        };
        if let Some(cause) = cause {
            let ds = self.backends[index].ds.clone();
            self.backends[index].conn.healthy = false;
            self.drop_backend(index);
            eject_replica(&ds, format!("connection lost: {cause}"));
            if self.seq == seq_before {
                warn!(data_source = %ds.name, "replica connection lost before the response: running the read elsewhere: {cause}");
                return Ok(ReplicaRead::Retry);
            }
            warn!(data_source = %ds.name, "replica connection lost while relaying a result: {cause}");
            self.send_error(&Error::BackendLost {
                data_source: ds.name.clone(),
                cause,
            });
            return Ok(ReplicaRead::Failed);
        }
        let ds = &self.backends[index].ds;
        m::backend_round_trip(&ds.database, &ds.name, started.elapsed());
        if let Some(errno) = tracker.error_code {
            m::mysql_error(errno);
            self.statement_failed = true;
        }
        if let Some((_, id)) = tracker.last_ok {
            self.note_last_insert_id(id);
        }
        Ok(ReplicaRead::Answered(tracker))
    }
}

//! Running a multi-shard SELECT that carries a merge plan (`route::shard::Plan::merge`):
//! the units fan out as in `fanout.rs`, and their rows go through the plan's operator
//! tree (`crate::merge`) instead of being concatenated.
//!
//! 1. The units are sent before anything is read, so the servers work in parallel (see
//!    *Connections* for which); then the header (column count and definitions) of each
//!    running unit is read, so that a shard's error reaches the client as a plain ERR,
//!    before any result.
//! 2. The first unit's column definitions describe the client's result: the plan is
//!    resolved with their count ([`SelectMerge::resolve`]), the tree is built from their
//!    [`ColumnInfo`]s, and the client gets the first `visible_columns` definitions, an AVG
//!    column's decimals raised by 4 (the shards sent its SUM; see
//!    [`ColumnMeta::with_decimals`]).
//! 3. The executor then asks the tree for rows: [`Pull::Row`] is encoded in the protocol
//!    of the client's command (text for COM_QUERY, binary for COM_STMT_EXECUTE) and
//!    written; [`Pull::NeedInput`]`(i)` reads exactly one row packet (or the end) of unit
//!    `i`, decoding only the columns the plan reads; [`Pull::End`] ends the result.
//!
//! # Connections and memory
//!
//! A unit is read only as far as the operators ask, and TCP holds back the rest, so
//! memory is what the operators hold (see `crate::merge`) plus the read buffers, as long
//! as every unit being read has a connection of its own. A session holds one connection
//! per data source, and the units of one data source (`t_order_0` and `t_order_1` on
//! `ds_0`) would otherwise run one after the other on it:
//!
//! - Outside a transaction (autocommit on, none open), the first unit of each data
//!   source runs on the session's connection and every other unit on a connection of its
//!   own, checked out from the data source's pool for this statement (waiting up to the
//!   checkout timeout; the client gets the pool's timeout error otherwise), brought to
//!   the session's state (its SET statements replayed, the unit's statement prepared
//!   again when it is a COM_STMT_EXECUTE), and given back reset after the statement.
//!   Nothing is buffered; a statement over `n` actual tables of one data source takes `n`
//!   of its pool's connections while it runs.
//! - Inside a transaction every unit must see the transaction, so they share its
//!   connection: when the tree asks for a unit whose connection is still busy with an
//!   earlier unit, the rest of that earlier unit is read ahead into its [`Spill`] (its
//!   row packets undecoded, the first [`MEMORY_LIMIT`] bytes in memory, the rest in an
//!   unlinked temporary file in `std::env::temp_dir()`), then the unit is sent, and the
//!   earlier unit's rows are taken from the spill and decoded as the tree asks. Memory
//!   stays bounded (4 MiB per unit read ahead); the disk holds the unread rest of the
//!   earlier units (an ORDER BY over two actual tables of one data source writes all but
//!   a few rows of the first). A spill that cannot be written ends the statement with an
//!   ERR ([`Error::Spill`]); the unit's rest is then drained as on any error.
//!
//! # Ending early
//!
//! When the tree ends before its inputs (LIMIT), or on an error, every unit already sent
//! is read to its end and the rows discarded, so each connection is clean before its next
//! command (and stays in the session, which matters inside a transaction). Units not yet
//! sent are never sent. Draining was chosen over `KILL QUERY` + drain, or over dropping
//! the connection: the shards of a LIMIT query got `LIMIT offset+count`, so what is left
//! is small, a KILL races with the query finishing on its own, and a dropped connection
//! would abort the session's transaction. When the client goes away, the connections are
//! dropped instead (nobody waits for their answers).

use std::sync::Arc;

use bytes::Bytes;

use super::backend::parse_err;
use super::err::MysqlError;
use super::fanout::{queue_close, Dispatch};
use super::frontend::{ClientConn, Fatal, Held, COM_STMT_EXECUTE, COM_STMT_PREPARE};
use super::kill::KillTarget;
use super::ok::{end_of_rows_payload, eof_payload, is_terminator, STATUS_MORE_RESULTS};
use super::packet::{frame_at, FLUSH_THRESHOLD};
use super::response::{ResponseKind, ResponseTracker, Section};
use super::row_codec::{
    decode_binary_row, decode_text_row, encode_binary_row, encode_text_row, truncate_columns,
    ColumnMeta, BINARY_COLLATION_ID, NOT_FIXED_DECIMALS,
};
use crate::error::Error;
use crate::merge::spill::{Spill, MEMORY_LIMIT};
use crate::merge::sql_plan::SelectMerge;
use crate::merge::{AggregateFunction, AvgScale, ColumnInfo, Inputs, MergePlan, Operator, Pull};
use mysql_common::constants::{ColumnFlags, ColumnType, MariadbCapabilities};

/// The connection a unit runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// The session's held connection `ClientConn::backends[i]`.
    Session(usize),
    /// `MergedRun::extra[i]`, checked out for this statement.
    Extra(usize),
}

/// Where one unit's response is.
#[derive(Debug)]
struct UnitRun {
    dispatch: Dispatch,
    /// Where it was sent; `None` until then.
    on: Option<On>,
    tracker: Option<ResponseTracker>,
    /// Its column definitions, once its header was read.
    columns: Option<Vec<ColumnMeta>>,
    /// Its rows' terminator (or an error) was read: the connection is free.
    finished: bool,
    /// The rest of its rows, read ahead off a connection another unit needed (inside a
    /// transaction); its rows come from here, and its end once this is empty.
    spill: Option<Spill>,
}

/// Why a merged execution stopped before its end.
enum Stop {
    /// The client is gone: drop the connections.
    Client,
    /// An error for the client (the connection stays usable).
    Error(MysqlError),
}

/// The running units of one merged statement.
struct MergedRun {
    units: Vec<UnitRun>,
    /// Connections checked out for this statement (outside a transaction).
    extra: Vec<Held>,
    /// A unit whose session connection is busy gets a connection of its own (outside a
    /// transaction), instead of waiting for it.
    own_connections: bool,
    binary: bool,
    /// Columns of the rows to decode into values.
    decode: Vec<usize>,
}

impl MergedRun {
    /// The connection unit `i` was sent on.
    fn on(&self, i: usize) -> On {
        self.units[i].on.expect("a sent unit")
    }

    /// The unit still being answered on `on`, if any.
    fn busy(&self, on: On) -> Option<usize> {
        self.units
            .iter()
            .position(|u| u.on == Some(on) && !u.finished)
    }
}

/// The connection `on` names.
fn held<'a>(backends: &'a mut [Held], extra: &'a mut [Held], on: On) -> &'a mut Held {
    match on {
        On::Session(b) => &mut backends[b],
        On::Extra(e) => &mut extra[e],
    }
}

impl ClientConn {
    /// Runs `units` (the shard statements of `merge`) and answers the client with the
    /// merged result. Errors of the shards or of the merge reach the client as an ERR
    /// packet; the connections are left clean.
    pub(crate) async fn run_merged(
        &mut self,
        units: Vec<Dispatch>,
        merge: Arc<SelectMerge>,
    ) -> Result<(), Fatal> {
        self.point_kill_at_all(&units);
        let binary = units
            .first()
            .is_some_and(|u| u.command.first() == Some(&COM_STMT_EXECUTE));
        let mut run = MergedRun {
            units: units
                .into_iter()
                .map(|dispatch| UnitRun {
                    dispatch,
                    on: None,
                    tracker: None,
                    columns: None,
                    finished: false,
                    spill: None,
                })
                .collect(),
            extra: Vec::new(),
            own_connections: self.txn.is_none()
                && !self.session.in_transaction
                && self.session.autocommit,
            binary,
            decode: Vec::new(),
        };
        let mut inputs = Inputs::new(run.units.len());
        let outcome = self.merge_units(&mut run, &mut inputs, &merge).await;
        let result = match outcome {
            Ok(()) => Ok(()),
            Err(Stop::Client) => {
                for u in &run.units {
                    self.backends[u.dispatch.backend].conn.healthy = false;
                }
                self.drop_unhealthy_backends();
                return Err(Fatal);
            }
            Err(Stop::Error(e)) => Err(e),
        };
        self.finish_units(&mut run).await;
        if !run.extra.is_empty() {
            self.point_kill_at_run(&mut run, false);
        }
        for extra in run.extra.drain(..) {
            ClientConn::give_back_extra(extra).await;
        }
        self.drop_unhealthy_backends();
        self.refresh_transaction_status();
        match result {
            Ok(()) => {
                let status = self.status_flags();
                let end = end_of_rows_payload(self.deprecate_eof(), status);
                self.writer.write_packet(&mut self.seq, &end);
            }
            Err(e) => {
                // Before the header this is the whole answer; after it, the ERR replaces the
                // rest of the rows, as a server's error mid-result does.
                self.send_mysql_error(&e);
            }
        }
        Ok(())
    }

    async fn merge_units(
        &mut self,
        run: &mut MergedRun,
        inputs: &mut Inputs,
        merge: &SelectMerge,
    ) -> Result<(), Stop> {
        for i in 0..run.units.len() {
            let b = run.units[i].dispatch.backend;
            if run.own_connections || run.units[..i].iter().all(|u| u.dispatch.backend != b) {
                self.start_unit(run, i).await?;
            }
        }
        if !run.extra.is_empty() {
            self.point_kill_at_run(run, true);
        }
        for i in 0..run.units.len() {
            if run.units[i].on.is_some() {
                self.read_header(run, i).await?;
            }
        }
        let shard_columns = run.units[0].columns.clone().unwrap_or_default();
        let plan = merge.resolve(shard_columns.len());
        let infos: Vec<ColumnInfo> = shard_columns.iter().map(|c| c.column_info()).collect();
        let mut tree = plan
            .build(run.units.len(), &infos)
            .map_err(|e| Stop::Error(merge_error(&e.0)))?;
        run.decode = plan
            .decoded_columns(shard_columns.len())
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.then_some(i))
            .collect();
        let client_columns = client_columns(&plan, &shard_columns);
        for p in truncate_columns(&client_columns, client_columns.len()) {
            self.writer.write_packet(&mut self.seq, &p);
        }
        if !self.deprecate_eof() {
            // More results (a multi-statement going on) are announced by the final EOF.
            let status = self.status_flags() & !STATUS_MORE_RESULTS;
            self.writer
                .write_packet(&mut self.seq, &eof_payload(status));
        }
        self.pull_rows(run, tree.as_mut(), inputs, &client_columns)
            .await
    }

    /// Points `KILL QUERY <our id>` at every connection the units were sent on, or, with
    /// `extra` false, at the session's own connections only (before the extra ones go back
    /// to the pool, where a KILL must no longer reach them).
    fn point_kill_at_run(&mut self, run: &mut MergedRun, extra: bool) {
        let mut targets: Vec<KillTarget> = Vec::new();
        for i in 0..run.units.len() {
            let on = match run.units[i].on {
                Some(on) if extra => on,
                None if extra => continue,
                _ => On::Session(run.units[i].dispatch.backend),
            };
            let h = held(&mut self.backends, &mut run.extra, on);
            if !targets
                .iter()
                .any(|t| t.thread_id == h.conn.connection_id && t.url == h.ds.url)
            {
                targets.push(KillTarget {
                    url: h.ds.url.clone(),
                    thread_id: h.conn.connection_id,
                });
            }
        }
        self.rt.mysql_kill.set_targets(self.connection_id, targets);
        self.kill_thread = None;
    }

    /// The operator loop: rows out to the client, rows in from the units as asked.
    async fn pull_rows(
        &mut self,
        run: &mut MergedRun,
        tree: &mut dyn Operator,
        inputs: &mut Inputs,
        client_columns: &[ColumnMeta],
    ) -> Result<(), Stop> {
        let mut out = Vec::new();
        loop {
            match tree
                .pull(inputs)
                .map_err(|e| Stop::Error(merge_error(&e.0)))?
            {
                Pull::Row(row) => {
                    out.clear();
                    let encoded = if run.binary {
                        encode_binary_row(&row, client_columns, &mut out)
                    } else {
                        encode_text_row(&row, client_columns, &mut out)
                    };
                    encoded.map_err(|e| Stop::Error(MysqlError::from(&e)))?;
                    self.writer.write_packet(&mut self.seq, &out);
                    if self.writer.pending() >= FLUSH_THRESHOLD {
                        self.writer.flush().await.map_err(|_| Stop::Client)?;
                    }
                }
                Pull::NeedInput(i) => self.read_input(run, inputs, i).await?,
                Pull::End => return Ok(()),
            }
        }
    }

    /// Reads one row (or the end) of unit `i` into `inputs`, sending the unit first when it
    /// has not been.
    async fn read_input(
        &mut self,
        run: &mut MergedRun,
        inputs: &mut Inputs,
        i: usize,
    ) -> Result<(), Stop> {
        if run.units[i].finished && run.units[i].spill.is_none() {
            inputs.end(i);
            return Ok(());
        }
        if run.units[i].on.is_none() {
            self.start_unit(run, i).await?;
            if !run.extra.is_empty() {
                self.point_kill_at_run(run, true);
            }
        }
        if run.units[i].columns.is_none() {
            self.read_header(run, i).await?;
        }
        self.read_one(run, inputs, i).await
    }

    /// Sends unit `i` on its data source's session connection when that is free, else on a
    /// connection of its own (outside a transaction), else (inside one) once the earlier
    /// units on the session connection are read to their end into their spills.
    async fn start_unit(&mut self, run: &mut MergedRun, i: usize) -> Result<(), Stop> {
        let session = On::Session(run.units[i].dispatch.backend);
        while run.units[i].on.is_none() {
            let Some(k) = run.busy(session) else {
                return self.send_merged_unit(run, i, session).await;
            };
            if run.own_connections {
                let on = self.extra_connection(run, i).await?;
                return self.send_merged_unit(run, i, on).await;
            }
            // Finishing unit k sends the next unit on its connection (maybe this one).
            self.read_ahead(run, k).await?;
        }
        Ok(())
    }

    /// A free connection of this statement's own to unit `i`'s data source, checked out
    /// when there is none, with the unit's statement prepared on it if it executes one.
    async fn extra_connection(&mut self, run: &mut MergedRun, i: usize) -> Result<On, Stop> {
        let b = run.units[i].dispatch.backend;
        let ds = self.backends[b].ds.clone();
        let free = (0..run.extra.len())
            .find(|&e| Arc::ptr_eq(&run.extra[e].ds, &ds) && run.busy(On::Extra(e)).is_none());
        let e = match free {
            Some(e) => e,
            None => {
                let extra = self
                    .open_extra(&ds)
                    .await
                    .map_err(|e| Stop::Error(MysqlError::from(&e)))?;
                run.extra.push(extra);
                run.extra.len() - 1
            }
        };
        let dispatch = &mut run.units[i].dispatch;
        let Some(sql) = dispatch.statement_sql.as_deref() else {
            return Ok(On::Extra(e));
        };
        let mut prepare = vec![COM_STMT_PREPARE];
        prepare.extend_from_slice(sql.as_bytes());
        let extra = &mut run.extra[e];
        let stmt = match extra
            .conn
            .run_internal(&prepare, ResponseKind::Prepare)
            .await
        {
            Ok(Ok(t)) => t.prepare.map(|p| p.statement_id).ok_or_else(|| {
                Stop::Error(MysqlError::from(&Error::Malformed(
                    "PREPARE_OK expected from the backend".into(),
                )))
            })?,
            Ok(Err(err)) => return Err(Stop::Error(err)),
            Err(err) => {
                extra.conn.healthy = false;
                return Err(Stop::Error(MysqlError::from(&Error::BackendLost {
                    data_source: extra.ds.name.clone(),
                    cause: err.to_string(),
                })));
            }
        };
        // The statement prepared for this execution on the session's connection is not
        // executed there: close it. Every packet of the unit names the new one.
        if let Some(id) = dispatch.close_after.replace(stmt) {
            queue_close(&mut self.backends[b].conn, id);
        }
        for packet in std::iter::once(&mut dispatch.command).chain(&mut dispatch.preamble) {
            packet[1..5].copy_from_slice(&stmt.to_le_bytes());
        }
        Ok(On::Extra(e))
    }

    /// Reads the rest of unit `k`'s rows off its connection into its spill (raw packets,
    /// the first [`MEMORY_LIMIT`] bytes in memory, the rest in a temporary file), then ends
    /// it there, which frees the connection for the next unit.
    async fn read_ahead(&mut self, run: &mut MergedRun, k: usize) -> Result<(), Stop> {
        if run.units[k].columns.is_none() {
            self.read_header(run, k).await?;
        }
        let mut spill = Spill::new(std::env::temp_dir(), MEMORY_LIMIT);
        loop {
            let payload = self.next_packet(run, k).await?;
            if is_end_of_rows(&payload) {
                run.units[k].spill = Some(spill);
                return self.end_of_rows(run, k, &payload).await;
            }
            spill.push(payload).await.map_err(|e| spill_error(&e))?;
        }
    }

    /// Reads the next packet of unit `i`'s rows (from its spill once it has one): a row
    /// into `inputs`, or its end.
    async fn read_one(
        &mut self,
        run: &mut MergedRun,
        inputs: &mut Inputs,
        i: usize,
    ) -> Result<(), Stop> {
        let payload = if let Some(spill) = run.units[i].spill.as_mut() {
            match spill.pop().await.map_err(|e| spill_error(&e))? {
                Some(payload) => payload,
                None => {
                    inputs.end(i);
                    return Ok(());
                }
            }
        } else {
            if run.units[i].columns.is_none() {
                self.read_header(run, i).await?;
            }
            let payload = self.next_packet(run, i).await?;
            if is_end_of_rows(&payload) {
                self.end_of_rows(run, i, &payload).await?;
                inputs.end(i);
                return Ok(());
            }
            payload
        };
        let unit = &run.units[i];
        let columns = unit.columns.as_deref().unwrap_or_default();
        let payload = Bytes::from(payload);
        let row = if run.binary {
            decode_binary_row(&payload, columns, &run.decode)
        } else {
            decode_text_row(&payload, columns, &run.decode)
        }
        .map_err(|e| Stop::Error(MysqlError::from(&e)))?;
        inputs.push(i, row);
        Ok(())
    }

    /// Unit `i`'s rows ended with `payload` (a terminator or an ERR): its connection is
    /// free, and the next unit of its data source is sent on it.
    async fn end_of_rows(
        &mut self,
        run: &mut MergedRun,
        i: usize,
        payload: &[u8],
    ) -> Result<(), Stop> {
        let on = run.on(i);
        let unit = &mut run.units[i];
        let tracker = unit.tracker.as_mut().expect("a unit being read");
        tracker.on_packet(payload);
        unit.finished = true;
        if let Some(s) = tracker.status {
            held(&mut self.backends, &mut run.extra, on).conn.status = s;
        }
        if payload.first() == Some(&0xFF) {
            return Err(Stop::Error(parse_err(payload)));
        }
        if !tracker.is_done() {
            // More result sets (never for a SELECT): read and discard them.
            self.discard_rest(run, i).await?;
        }
        self.after_unit(run, i).await
    }

    /// Unit `i` is done: close its one-off statement, and send the next unit of its data
    /// source on its connection unless that one waits to be asked for.
    async fn after_unit(&mut self, run: &mut MergedRun, i: usize) -> Result<(), Stop> {
        let on = run.on(i);
        if let Some(id) = run.units[i].dispatch.close_after {
            queue_close(&mut held(&mut self.backends, &mut run.extra, on).conn, id);
        }
        let b = run.units[i].dispatch.backend;
        let next = (i + 1..run.units.len()).find(|&j| run.units[j].dispatch.backend == b);
        if let Some(next) = next {
            if run.units[next].on.is_none() {
                self.send_merged_unit(run, next, on).await?;
            }
        }
        Ok(())
    }

    /// Sends unit `i`'s commands on `on`.
    async fn send_merged_unit(
        &mut self,
        run: &mut MergedRun,
        i: usize,
        on: On,
    ) -> Result<(), Stop> {
        let unit = &mut run.units[i];
        let held = held(&mut self.backends, &mut run.extra, on);
        for p in &unit.dispatch.preamble {
            held.conn.queue_command(p);
        }
        unit.on = Some(on);
        unit.tracker = Some(ResponseTracker::new(
            ResponseKind::Query,
            held.conn.deprecate_eof(),
        ));
        match held.conn.send_command(&unit.dispatch.command).await {
            Ok(()) => Ok(()),
            Err(e) => {
                held.conn.healthy = false;
                unit.finished = true;
                Err(Stop::Error(MysqlError::from(&Error::BackendLost {
                    data_source: held.ds.name.clone(),
                    cause: e.to_string(),
                })))
            }
        }
    }

    /// Reads unit `i`'s column count and definitions (and the EOF after them).
    async fn read_header(&mut self, run: &mut MergedRun, i: usize) -> Result<(), Stop> {
        let extended = {
            let on = run.on(i);
            let conn = &held(&mut self.backends, &mut run.extra, on).conn;
            conn.server_mariadb_capabilities
                .contains(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA)
                && conn.profile.mariadb_capabilities
                    & MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA.bits()
                    != 0
        };
        let mut columns = Vec::new();
        loop {
            let section = run.units[i]
                .tracker
                .as_ref()
                .expect("a sent unit")
                .section();
            if section == Section::Rows {
                break;
            }
            let payload = self.next_packet(run, i).await?;
            let unit = &mut run.units[i];
            let tracker = unit.tracker.as_mut().expect("a sent unit");
            tracker.on_packet(&payload);
            match section {
                Section::Header if payload.first() == Some(&0xFF) => {
                    unit.finished = true;
                    return Err(Stop::Error(parse_err(&payload)));
                }
                Section::Header if tracker.section() != Section::Columns => {
                    unit.finished = tracker.is_done();
                    if !unit.finished {
                        self.discard_rest(run, i).await?;
                    }
                    return Err(Stop::Error(merge_error(
                        "a shard answered a SELECT without a result set",
                    )));
                }
                Section::Columns if payload.first() != Some(&0xFE) || payload.len() > 9 => {
                    let meta = ColumnMeta::parse(Bytes::from(payload), extended)
                        .map_err(|e| Stop::Error(MysqlError::from(&e)))?;
                    columns.push(meta);
                }
                _ => {}
            }
        }
        if let Some(first) = run.units[0].columns.as_ref().filter(|_| i > 0) {
            if first.len() != columns.len() {
                return Err(Stop::Error(merge_error(&format!(
                    "the shards returned {} and {} columns",
                    first.len(),
                    columns.len()
                ))));
            }
        }
        run.units[i].columns = Some(columns);
        Ok(())
    }

    /// The next logical packet of unit `i`'s response. The client's pending output is
    /// flushed before waiting on a backend.
    async fn next_packet(&mut self, run: &mut MergedRun, i: usize) -> Result<Vec<u8>, Stop> {
        let on = run.on(i);
        let buffered = {
            let h = held(&mut self.backends, &mut run.extra, on);
            frame_at(h.conn.reader.buffer(), 0).is_some()
        };
        if !buffered && self.writer.pending() > 0 {
            self.writer.flush().await.map_err(|_| Stop::Client)?;
        }
        let h = held(&mut self.backends, &mut run.extra, on);
        match h.conn.reader.read_packet().await {
            Ok(p) => {
                h.conn.next_seq = p.seq.wrapping_add(1);
                Ok(p.payload.to_vec())
            }
            Err(e) => {
                h.conn.healthy = false;
                run.units[i].finished = true;
                Err(Stop::Error(MysqlError::from(&Error::BackendLost {
                    data_source: h.ds.name.clone(),
                    cause: e.to_string(),
                })))
            }
        }
    }

    /// Reads and discards the rest of unit `i`'s response.
    async fn discard_rest(&mut self, run: &mut MergedRun, i: usize) -> Result<(), Stop> {
        let on = run.on(i);
        loop {
            let tracker = run.units[i].tracker.as_ref().expect("a sent unit");
            if tracker.is_done() {
                break;
            }
            let payload = self.next_packet(run, i).await?;
            let tracker = run.units[i].tracker.as_mut().expect("a sent unit");
            tracker.on_packet(&payload);
            if let Some(s) = tracker.status {
                held(&mut self.backends, &mut run.extra, on).conn.status = s;
            }
        }
        run.units[i].finished = true;
        Ok(())
    }

    /// After the merge: every unit sent is read to its end (rows discarded) and its one-off
    /// statement closed; a unit never sent closes its statement unexecuted.
    async fn finish_units(&mut self, run: &mut MergedRun) {
        for i in 0..run.units.len() {
            let on = run.units[i]
                .on
                .unwrap_or(On::Session(run.units[i].dispatch.backend));
            if !held(&mut self.backends, &mut run.extra, on).conn.healthy {
                continue;
            }
            let unit = &run.units[i];
            let close = if unit.on.is_some() && !unit.finished {
                if self.discard_rest(run, i).await.is_err() {
                    continue;
                }
                run.units[i].dispatch.close_after
            } else if unit.on.is_none() {
                unit.dispatch.close_after
            } else {
                None
            };
            if let Some(id) = close {
                queue_close(&mut held(&mut self.backends, &mut run.extra, on).conn, id);
            }
        }
    }
}

/// The column definitions the client gets: the first unit's visible ones, with the
/// columns whose shards sent something else than the client's aggregate described as a
/// single database describes that aggregate:
///
/// - AVG (the shards sent its SUM): the SUM's decimals plus `div_precision_increment`;
/// - COUNT(DISTINCT x) (the shards sent x): BIGINT;
/// - SUM(DISTINCT x) (the shards sent x): DECIMAL with x's decimals for an exact x (MySQL
///   sums integers as DECIMAL), x's type for a float;
/// - AVG(DISTINCT x) (the shards sent x): DECIMAL with x's decimals plus
///   `div_precision_increment` for an exact x, DOUBLE for a float.
fn client_columns(plan: &MergePlan, shard_columns: &[ColumnMeta]) -> Vec<ColumnMeta> {
    let visible = plan.visible_columns.min(shard_columns.len());
    let mut columns = shard_columns[..visible].to_vec();
    let number = ColumnFlags::BINARY_FLAG | ColumnFlags::NUM_FLAG;
    for aggregate in &plan.aggregates {
        let Some(c) = columns.get_mut(aggregate.column) else {
            continue;
        };
        let fixed = c.decimals < NOT_FIXED_DECIMALS;
        let float = matches!(
            c.column_type,
            ColumnType::MYSQL_TYPE_FLOAT | ColumnType::MYSQL_TYPE_DOUBLE
        );
        match aggregate.function {
            AggregateFunction::Avg { .. } if fixed => {
                let increment = AvgScale::MYSQL_DIV_PRECISION_INCREMENT as u8;
                let decimals = (c.decimals + increment).min(30);
                let length = c.column_length + u32::from(decimals - c.decimals);
                *c = c.with_decimals(decimals, length);
            }
            AggregateFunction::CountDistinct => {
                *c = c.retyped(
                    ColumnType::MYSQL_TYPE_LONGLONG,
                    number | ColumnFlags::NOT_NULL_FLAG,
                    BINARY_COLLATION_ID,
                    21,
                    0,
                );
            }
            AggregateFunction::AvgDistinct if float => {
                *c = c.retyped(
                    ColumnType::MYSQL_TYPE_DOUBLE,
                    number,
                    BINARY_COLLATION_ID,
                    23,
                    NOT_FIXED_DECIMALS,
                );
            }
            AggregateFunction::AvgDistinct => {
                let increment = AvgScale::MYSQL_DIV_PRECISION_INCREMENT as u8;
                let decimals = if fixed { c.decimals } else { 0 };
                let decimals = (decimals + increment).min(30);
                *c = c.retyped(
                    ColumnType::MYSQL_TYPE_NEWDECIMAL,
                    number,
                    BINARY_COLLATION_ID,
                    c.column_length + u32::from(increment) + 1,
                    decimals,
                );
            }
            AggregateFunction::SumDistinct if !float => {
                let decimals = if fixed { c.decimals } else { 0 };
                *c = c.retyped(
                    ColumnType::MYSQL_TYPE_NEWDECIMAL,
                    number,
                    BINARY_COLLATION_ID,
                    c.column_length + 22,
                    decimals,
                );
            }
            _ => {}
        }
    }
    columns
}

/// The packet ending a unit's rows: its terminator or an ERR.
fn is_end_of_rows(payload: &[u8]) -> bool {
    payload.first() == Some(&0xFF) || is_terminator(payload)
}

/// Keeping a unit's read-ahead rows failed (the disk is full, ...).
fn spill_error(e: &std::io::Error) -> Stop {
    Stop::Error(MysqlError::from(&Error::Spill(e.to_string())))
}

/// A failure of the merge itself, as the client sees it (1235 / `0A000`).
fn merge_error(what: &str) -> MysqlError {
    MysqlError::from(&Error::MergeUnsupported(format!(
        "merging the shards' results: {what}"
    )))
}

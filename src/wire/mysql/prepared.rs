//! Server-side prepared statements (COM_STMT_PREPARE / EXECUTE / SEND_LONG_DATA / CLOSE /
//! RESET / FETCH).
//!
//! Clients see statement ids that dbmesh assigns. Each backend connection maps them to its
//! own ids, so a statement can be prepared again, transparently, on a connection that has not
//! seen it (after a reconnect today, after multiplexing hands the session another connection
//! later). The parameter types a client bound last are kept for the same reason: an EXECUTE
//! that relies on earlier-bound types still works on a freshly prepared statement.

use std::sync::Arc;

use bytes::BytesMut;

use super::frontend::{ClientConn, Fatal, COM_STMT_CLOSE, COM_STMT_PREPARE};
use super::response::ResponseKind;
use super::sharded_prepared::ShardedStatement;
use crate::error::Error;
use crate::execute::DataSource;
use crate::route::shard::PlanKind;

/// A statement as the client prepared it.
pub struct PreparedStatement {
    pub sql: Vec<u8>,
    pub data_source: Arc<DataSource>,
    pub params: u16,
    pub columns: u16,
    /// The parameter types of the last EXECUTE that sent them (2 bytes per parameter).
    pub param_types: Option<Vec<u8>>,
    /// For a statement over sharded tables: its analysis and router (see
    /// `sharded_prepared.rs`); `data_source` is then where it was described.
    pub sharded: Option<Box<ShardedStatement>>,
}

/// BEGIN, COMMIT, ROLLBACK and savepoints: on a sharded database they concern every data
/// source, so even prepared they run as dbmesh's transaction control.
fn controls_transaction(kind: PlanKind) -> bool {
    matches!(
        kind,
        PlanKind::Begin | PlanKind::Commit | PlanKind::Rollback | PlanKind::Savepoint
    )
}

/// SERVER_STATUS_CURSOR_EXISTS: an EXECUTE opened a cursor.
const STATUS_CURSOR_EXISTS: u16 = 0x0040;
/// SERVER_STATUS_LAST_ROW_SENT: a FETCH exhausted the cursor.
const STATUS_LAST_ROW_SENT: u16 = 0x0080;

/// Queues COM_STMT_CLOSE of backend statement `id` (no response; it goes out with the
/// connection's next command).
fn queue_close(conn: &mut super::backend::BackendConn, id: u32) {
    let mut close = vec![COM_STMT_CLOSE];
    close.extend_from_slice(&id.to_le_bytes());
    conn.queue_command(&close);
}

pub(crate) fn statement_id(p: &[u8]) -> Option<u32> {
    p.get(1..5)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl ClientConn {
    pub(crate) async fn stmt_prepare(&mut self, payload: &[u8]) -> Result<(), Fatal> {
        if std::str::from_utf8(&payload[1..]).map(crate::sql::classify)
            == Ok(crate::sql::StatementKind::Admin)
        {
            self.refuse_prepared_admin();
            return Ok(());
        }
        let route = match crate::route::plan(
            &self.session,
            &self.cluster,
            crate::config::BackendKind::Mysql,
        ) {
            Ok(r) => r,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        if let (Some(router), Ok(sql)) =
            (&route.database.router, std::str::from_utf8(&payload[1..]))
        {
            // A statement naming no sharded or broadcast table goes on as below.
            let (database, router) = (route.database.clone(), router.clone());
            match self.prepare_route(&database, &router, sql).await {
                Ok(prepared)
                    if prepared.analysis.is_some() || controls_transaction(prepared.kind) =>
                {
                    return self
                        .prepare_sharded(database, router, prepared, payload)
                        .await;
                }
                Ok(_) => {}
                Err(e) => {
                    self.send_error(&e);
                    return Ok(());
                }
            }
        }
        let index = match self.backend_for(&route.data_source).await {
            Ok(i) => i,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        let id = self.next_statement_id;
        let Some(tracker) = self
            .forward(index, payload, ResponseKind::Prepare, Some(id))
            .await?
        else {
            return Ok(());
        };
        if let (Some(ok), false) = (tracker.prepare, tracker.error) {
            self.next_statement_id = self.next_statement_id.wrapping_add(1).max(1);
            let conn = &mut self.backends[index].conn;
            for stale in conn.prepared.insert(&payload[1..], ok.statement_id) {
                queue_close(conn, stale);
            }
            self.statements.insert(
                id,
                PreparedStatement {
                    sql: payload[1..].to_vec(),
                    data_source: route.data_source.clone(),
                    params: ok.params,
                    columns: ok.columns,
                    param_types: None,
                    sharded: None,
                },
            );
        }
        Ok(())
    }

    /// The backend connection for statement `id`, with the statement prepared on it; the
    /// bool says whether it had to be prepared just now.
    async fn statement_backend(
        &mut self,
        id: u32,
        command: &'static str,
    ) -> Result<(usize, u32, bool), Error> {
        let ds = match self.statements.get(&id) {
            Some(s) => s.data_source.clone(),
            None => return Err(Error::UnknownStatement { id, command }),
        };
        let index = self.backend_for(&ds).await?;
        let (backend_id, fresh) = self.prepared_on(index, id).await?;
        Ok((index, backend_id, fresh))
    }

    /// Statement `id`'s id on held connection `index` (the primary's or a replica's),
    /// preparing it there first when that connection has not seen it; the bool says
    /// whether it was prepared just now. A connection that broke is dropped.
    pub(crate) async fn prepared_on(
        &mut self,
        index: usize,
        id: u32,
    ) -> Result<(u32, bool), Error> {
        // Cached by SQL (`statement_cache.rs`): another session may have prepared it here,
        // with other parameter types bound last; then this execute must carry its own,
        // which `fresh` asks `execute_for_backend` to put in.
        let stmt = &self.statements[&id];
        let conn = &mut self.backends[index].conn;
        if let Some(backend_id) = conn.prepared.get(&stmt.sql) {
            let other_types = stmt.param_types.is_some()
                && conn.prepared.types(&stmt.sql) != stmt.param_types.as_deref();
            if let Some(types) = &stmt.param_types {
                conn.prepared.set_types(&stmt.sql, types);
            }
            return Ok((backend_id, other_types));
        }
        let mut prepare = vec![COM_STMT_PREPARE];
        prepare.extend_from_slice(&stmt.sql);
        let held = &mut self.backends[index];
        match held
            .conn
            .run_internal(&prepare, ResponseKind::Prepare)
            .await
        {
            Ok(Ok(t)) => {
                let backend_id = t.prepare.map(|p| p.statement_id).unwrap_or(0);
                let stmt = &self.statements[&id];
                for stale in held.conn.prepared.insert(&stmt.sql, backend_id) {
                    queue_close(&mut held.conn, stale);
                }
                if let Some(types) = &stmt.param_types {
                    held.conn.prepared.set_types(&stmt.sql, types);
                }
                Ok((backend_id, true))
            }
            Ok(Err(e)) => Err(Error::BackendLost {
                data_source: held.ds.name.clone(),
                cause: format!("re-preparing statement {id} failed: {}", e.message),
            }),
            Err(e) => {
                let err = Error::BackendLost {
                    data_source: held.ds.name.clone(),
                    cause: e.to_string(),
                };
                self.drop_backend(index);
                Err(err)
            }
        }
    }

    /// The client's COM_STMT_EXECUTE `payload` for statement `id` as backend statement
    /// `backend_id` runs it: its id replaced, and, on a statement prepared just now
    /// (`fresh`), the parameter types the client bound earlier put in when this execute
    /// relies on them.
    pub(crate) fn execute_for_backend(
        &self,
        id: u32,
        payload: &[u8],
        backend_id: u32,
        fresh: bool,
    ) -> Vec<u8> {
        let params = self.statements.get(&id).map(|s| s.params).unwrap_or(0) as usize;
        let flag_at = 10 + params.div_ceil(8);
        let types_sent = params > 0 && payload.get(flag_at) == Some(&1);
        let mut out = payload.to_vec();
        out[1..5].copy_from_slice(&backend_id.to_le_bytes());
        if fresh && params > 0 && !types_sent && payload.len() > flag_at {
            if let Some(types) = &self.statements[&id].param_types {
                // The new backend statement never saw the types: send them with this execute.
                let mut with_types = Vec::with_capacity(out.len() + types.len());
                with_types.extend_from_slice(&out[..flag_at]);
                with_types.extend_from_slice(&[1]);
                with_types.extend_from_slice(types);
                with_types.extend_from_slice(&out[flag_at + 1..]);
                out = with_types;
            }
        }
        out
    }

    pub(crate) async fn stmt_execute(&mut self, payload: BytesMut) -> Result<(), Fatal> {
        let Some(id) = statement_id(&payload) else {
            self.send_error(&Error::Malformed("COM_STMT_EXECUTE".into()));
            return Ok(());
        };
        if self.is_sharded_statement(id) {
            return self.execute_sharded(id, payload).await;
        }
        if let Some(e) = self.saga_refuses_plain_execute(id) {
            self.send_error(&e);
            return Ok(());
        }
        // Remember bound parameter types (only when they change: no allocation per execute).
        let params = self.statements.get(&id).map(|s| s.params).unwrap_or(0) as usize;
        let flag_at = 10 + params.div_ceil(8);
        let types_sent = params > 0 && payload.get(flag_at) == Some(&1);
        if types_sent {
            if let (Some(types), Some(stmt)) = (
                payload.get(flag_at + 1..flag_at + 1 + 2 * params),
                self.statements.get_mut(&id),
            ) {
                if stmt.param_types.as_deref() != Some(types) {
                    stmt.param_types = Some(types.to_vec());
                }
            }
        }
        let Some(statement) = self.statements.get(&id) else {
            self.send_error(&Error::UnknownStatement {
                id,
                command: "mysqld_stmt_execute",
            });
            return Ok(());
        };
        // A read runs on a replica when the session may read there (`read_write.rs`).
        let (primary, sql) = (statement.data_source.clone(), statement.sql.clone());
        let command = super::replica_retry::ReadCommand::Execute {
            id,
            payload: &payload,
        };
        let routing = self.execute_routing_sql(id, &payload, &sql);
        let cursor_asked = payload.get(5).is_some_and(|flags| flags & 0x07 != 0);
        if let Some((index, on_replica, tracker)) =
            self.run_routed(&primary, routing, command).await?
        {
            let cursor = cursor_asked
                && !tracker.error
                && tracker
                    .status
                    .is_some_and(|s| s & STATUS_CURSOR_EXISTS != 0);
            self.pins.note_execute(id, cursor);
            if !on_replica && !tracker.error {
                self.note_write(index, &primary, &sql).await;
            }
        }
        Ok(())
    }

    pub(crate) async fn stmt_fetch(&mut self, mut payload: BytesMut) -> Result<(), Fatal> {
        let Some(id) = statement_id(&payload) else {
            self.send_error(&Error::Malformed("COM_STMT_FETCH".into()));
            return Ok(());
        };
        if self.is_sharded_statement(id) {
            // Executes of sharded statements never open a cursor.
            self.send_error(&Error::NotSupported(
                "COM_STMT_FETCH (a cursor) on a statement over sharded tables".into(),
            ));
            return Ok(());
        }
        match self.statement_backend(id, "mysqld_stmt_fetch").await {
            Ok((index, backend_id, _)) => {
                payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
                if let Some(t) = self
                    .forward(index, &payload, ResponseKind::Fetch, None)
                    .await?
                {
                    let last = t.error || t.status.is_some_and(|s| s & STATUS_LAST_ROW_SENT != 0);
                    self.pins.note_fetch(id, last);
                }
            }
            Err(e) => self.send_error(&e),
        }
        Ok(())
    }

    pub(crate) async fn stmt_reset(&mut self, mut payload: BytesMut) -> Result<(), Fatal> {
        let Some(id) = statement_id(&payload) else {
            self.send_error(&Error::Malformed("COM_STMT_RESET".into()));
            return Ok(());
        };
        self.pins.note_statement_reset(id);
        if self.is_sharded_statement(id) {
            self.reset_sharded(id);
            return Ok(());
        }
        self.read_write.forget_long_data(id);
        match self.statement_backend(id, "mysqld_stmt_reset").await {
            Ok((index, backend_id, _)) => {
                payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
                self.forward(index, &payload, ResponseKind::Single, None)
                    .await?;
            }
            Err(e) => self.send_error(&e),
        }
        Ok(())
    }

    /// COM_STMT_SEND_LONG_DATA has no response, errors included: a failure here surfaces
    /// at the next EXECUTE, as on a MySQL server.
    pub(crate) async fn stmt_send_long_data(&mut self, mut payload: BytesMut) -> Result<(), Fatal> {
        let Some(id) = statement_id(&payload) else {
            return Ok(());
        };
        if self.is_sharded_statement(id) {
            self.long_data_sharded(id, &payload);
            return Ok(());
        }
        if let Ok((index, backend_id, _)) = self
            .statement_backend(id, "mysqld_stmt_send_long_data")
            .await
        {
            payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
            self.read_write.long_data_sent(id);
            let held = &mut self.backends[index];
            if held.conn.send_command(&payload).await.is_err() {
                self.drop_backend(index);
            } else {
                // The data waits on this connection for the EXECUTE.
                self.pins.note_long_data(id);
            }
        }
        Ok(())
    }

    /// COM_STMT_CLOSE has no response; the statement is closed on every connection that has
    /// it.
    pub(crate) async fn stmt_close(&mut self, payload: &[u8]) -> Result<(), Fatal> {
        let Some(id) = statement_id(payload) else {
            return Ok(());
        };
        self.pins.note_statement_reset(id);
        let sql = self.statements.remove(&id).map(|s| s.sql);
        self.read_write.forget_long_data(id);
        // Another statement of this session with the same SQL shares the backend statement.
        let shared = sql
            .as_ref()
            .is_some_and(|sql| self.statements.values().any(|s| &s.sql == sql));
        let mut broken = Vec::new();
        for (i, held) in self.backends.iter_mut().enumerate() {
            let unit_ids = held.conn.unit_statements.remove(&id).unwrap_or_default();
            let own = match (&sql, shared) {
                (Some(sql), false) => held.conn.prepared.remove(sql),
                _ => None,
            };
            let ids: Vec<u32> = own.into_iter().chain(unit_ids.into_values()).collect();
            if ids.is_empty() {
                continue;
            }
            for backend_id in ids {
                let mut close = vec![COM_STMT_CLOSE];
                close.extend_from_slice(&backend_id.to_le_bytes());
                held.conn.queue_command(&close);
            }
            if held.conn.flush().await.is_err() {
                broken.push(i);
            }
        }
        for i in broken.into_iter().rev() {
            self.drop_backend(i);
        }
        Ok(())
    }
}

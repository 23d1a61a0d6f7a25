//! The row-moving UPDATE of a sharded PostgreSQL session under XA (see
//! [`crate::route::shard::RowMove`]): inside the session's transaction (one begun for the
//! statement alone outside `BEGIN`), read the table's columns, `SELECT ... FOR UPDATE` the
//! rows on their old nodes, `DELETE` them there and `INSERT` them with the new values where
//! the rules place them now. Simple Query and the extended protocol alike (the statement's
//! parameters are written into the three).
//!
//! A failure half-way fails the statement as any error does in PostgreSQL: inside `BEGIN`
//! the transaction is aborted (25P02 until `ROLLBACK`, and `COMMIT` rolls back), so the
//! half that ran never commits; outside, the statement's own transaction is rolled back.

use pgwire::messages::response::CommandComplete;
use postgres_protocol::message::frontend;

use super::error::{on_data_source, SessionError};
use super::sharded::{next_message, send, Broken, Outcome, ShardedSession};
use super::sharded_txn::Txn;
use crate::error::Error;
use crate::route::shard::{ParamValue, PlanKind, PreparedRoute, RowMove, Unit};
use crate::sql::analyze::Dialect;

/// Why a step of the move failed: dbmesh's own error, or a backend's ErrorResponse
/// (naming its data source).
enum StepError {
    Own(Error),
    Backend(Vec<u8>),
    /// The client has been sent the error already (joining the transaction failed).
    Reported,
}

impl ShardedSession {
    /// `prepared`, an UPDATE the router refused because it changes a sharding column, run
    /// with `params` (an extended-protocol portal's, `None` for a simple query) in a
    /// session running XA: moves the rows and answers `UPDATE <n>`, or the error.
    pub(super) async fn update_moving_rows(
        &mut self,
        prepared: &PreparedRoute,
        params: Option<&[ParamValue]>,
    ) -> Result<Outcome, Broken> {
        if self.txn_failed() {
            return Ok(self.fail_session(SessionError::TransactionAborted));
        }
        let mv = match self.router.plan_row_move(prepared, params) {
            Ok(mv) => mv,
            Err(e) => return Ok(self.fail(&e)),
        };
        let implicit = self.txn.is_none();
        if implicit {
            let xa = self.backends.runtime().xa.begin();
            self.txn = Some(Txn::new("BEGIN".into(), Some(xa)));
        }
        match self.move_rows(&mv).await? {
            Ok(moved) => {
                let tag = format!("UPDATE {moved}");
                if implicit {
                    return self.end_with_tag(PlanKind::Commit, "COMMIT", &tag).await;
                }
                self.writer.write(&CommandComplete::new(tag));
                Ok(Outcome::Done)
            }
            Err(e) => {
                let outcome = match e {
                    StepError::Own(e) => self.fail(&e),
                    StepError::Backend(msg) => {
                        self.relay_error(&msg);
                        Outcome::Failed
                    }
                    StepError::Reported => Outcome::Failed,
                };
                if implicit {
                    let joined = self
                        .txn
                        .take()
                        .map(|t| t.joined().to_vec())
                        .unwrap_or_default();
                    // Its answers (ROLLBACK, or an error from a failed branch) say nothing
                    // the client needs: the statement's error is already on its way.
                    let _ = self.everywhere(&joined, "ROLLBACK").await?;
                }
                Ok(outcome)
            }
        }
    }

    /// The three steps of the move, in the open transaction; the number of rows moved.
    async fn move_rows(&mut self, mv: &RowMove) -> Result<Result<u64, StepError>, Broken> {
        let columns: Vec<String> = match self.rows_of(&mv.columns.unit, "").await? {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect(),
            Err(e) => return Ok(Err(e)),
        };
        if columns.is_empty() {
            return Ok(Err(StepError::Own(Error::Unroutable(format!(
                "moving rows of `{}`: its columns could not be read on data source `{}`",
                mv.table, mv.columns.unit.data_source
            )))));
        }
        let select_sql = mv.select_sql(&columns, Dialect::Postgres);
        let select = match self.router.route_text(&select_sql) {
            Ok(p) => p,
            Err(e) => return Ok(Err(StepError::Own(e))),
        };
        let mut rows = Vec::new();
        for unit in &select.units {
            match self.rows_of(unit, &select_sql).await? {
                Ok(r) => rows.extend(r),
                Err(e) => return Ok(Err(e)),
            }
        }
        let insert_sql = match mv.insert_sql(&columns, &rows, Dialect::Postgres) {
            Ok(Some(sql)) => sql,
            Ok(None) => return Ok(Ok(0)),
            Err(e) => return Ok(Err(StepError::Own(e))),
        };
        for sql in [mv.delete_sql(), insert_sql] {
            let plan = match self.router.route_text(&sql) {
                Ok(p) => p,
                Err(e) => return Ok(Err(StepError::Own(e))),
            };
            for unit in &plan.units {
                if let Err(e) = self.rows_of(unit, &sql).await? {
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(rows.len() as u64))
    }

    /// Runs `unit` (its SQL, else `logical`) as a simple query on its data source, joined
    /// to the transaction first; the rows, every value as text.
    async fn rows_of(
        &mut self,
        unit: &Unit,
        logical: &str,
    ) -> Result<Result<Vec<Vec<Option<String>>>, StepError>, Broken> {
        let ds = unit.data_source.clone();
        if self.join(std::slice::from_ref(&ds)).await? == Outcome::Failed {
            return Ok(Err(StepError::Reported));
        }
        let sql = unit.sql.as_deref().unwrap_or(logical);
        let conn = self.backends.get(&ds).expect("joined above");
        frontend::query(sql, &mut conn.writer.buf).map_err(|e| Broken::Backend {
            data_source: ds.clone(),
            cause: e.to_string(),
        })?;
        send(conn, &ds).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let conn = self.backends.get(&ds).expect("joined above");
            let (tag, msg) = next_message(conn, &ds, &mut self.writer).await?;
            match tag {
                b'Z' => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    break;
                }
                b'D' => rows.push(data_row(&msg)),
                b'E' if error.is_none() => error = Some(on_data_source(&msg, &ds)),
                _ => {}
            }
        }
        Ok(match error {
            Some(e) => Err(StepError::Backend(e)),
            None => Ok(rows),
        })
    }
}

/// The values of a DataRow message (whole, type byte and length included), as text.
pub(super) fn data_row(msg: &[u8]) -> Vec<Option<String>> {
    let body = msg.get(5..).unwrap_or_default();
    let count = body
        .get(..2)
        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]) as usize);
    let mut at = 2;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(len) = body.get(at..at + 4) else {
            break;
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len < 0 {
            values.push(None);
            continue;
        }
        let end = at + len as usize;
        values.push(
            body.get(at..end)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        );
        at = end;
    }
    values
}

//! SAGA transactions of a sharded PostgreSQL session (see [`crate::txn::saga`]).
//!
//! Inside a saga no data source joins the session's transaction: reads run as outside
//! one, and each write runs, on every data source it reaches, as a local transaction of
//! its own: `BEGIN`; the before-image read (`SELECT ... FOR UPDATE` with the statement's
//! WHERE, for UPDATE / DELETE); the compensations appended to the transaction log
//! (fsynced); the statement (an INSERT with `RETURNING` its keys, whose compensation is
//! logged then, still before the commit); `COMMIT`. Simple Query and the extended
//! protocol alike: the statement runs with its parameters written in.
//!
//! As any error does in PostgreSQL, an error fails the transaction (25P02 until
//! `ROLLBACK`, and `COMMIT` rolls back). A statement dbmesh cannot compensate is refused
//! before anything runs (0A000 naming the cause), so `ROLLBACK` compensates what came
//! before it. A statement that fails once it started (on any data source of a fan-out) is
//! rolled back locally, then every compensation so far runs at once, newest first, and
//! the client gets the statement's error, saying so. `ROLLBACK` runs the compensations;
//! `COMMIT` forgets them. A compensation that cannot run (its data source is down) is
//! left in the log, and recovery finishes it; so does a client that disconnects inside
//! a saga (its saga is no longer in flight).

use pgwire::messages::data::NoData;
use pgwire::messages::response::CommandComplete;
use postgres_protocol::message::frontend;
use tracing::warn;

use super::command_tag::{first_word, TagSum};
use super::error::{map_message, on_data_source};
use super::fanout::UnitProtocol;
use super::row_move::data_row;
use super::sharded::{command_tag, next_message, send, Broken, Outcome, ShardedSession};
use super::sharded_txn::Txn;
use crate::config::TransactionType;
use crate::error::Error;
use crate::route::shard::saga_undo::{plan_undo, TableShape, UndoPlan};
use crate::route::shard::{ParamMode, Plan, PlanKind};
use crate::sql::analyze::Dialect;
use crate::txn::failpoint;
use crate::txn::log::UndoStep;
use crate::txn::saga::SagaTxn;

/// What went wrong: dbmesh's own error, or a backend's ErrorResponse (naming its data
/// source).
enum Failure {
    Own(Error),
    Backend(Vec<u8>),
}

/// Why a saga statement did not run to the end.
enum SagaFail {
    /// Refused before it changed anything.
    Refused(Failure),
    /// It failed once started: the saga is compensated.
    Failed(Failure),
}

/// What one query on one data source answered: its rows (text) and last tag.
struct Answer {
    rows: Vec<Vec<Option<String>>>,
    tag: String,
}

/// Why [`ShardedSession::saga_refuses_passthrough`] refuses a statement.
pub(super) fn passthrough_refused() -> Error {
    Error::NotSupported(
        "a prepared statement other than a read on a table outside the sharding rules inside a SAGA transaction (dbmesh could not compensate it; send it as a simple query)".into(),
    )
}

fn refused(e: Error) -> SagaFail {
    SagaFail::Refused(Failure::Own(e))
}

impl ShardedSession {
    /// Whether a BEGIN now starts a saga: the session's `dbmesh_transaction_type`, else
    /// the database's `transaction` setting.
    pub(super) fn saga_wanted(&self) -> bool {
        let configured = self.backends.database().config.transaction;
        self.session.transaction_type.unwrap_or(configured) == TransactionType::Saga
    }

    /// Whether the session runs a saga now.
    pub(super) fn saga_running(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.saga.is_some())
    }

    /// A transaction for a BEGIN (`begin`, as the client wrote it) that starts a saga.
    pub(super) fn begin_saga(&self, begin: String) -> Txn {
        let id = self.backends.runtime().xa.begin();
        Txn::with_saga(begin, SagaTxn::new(id))
    }

    /// Whether `plan` of `statement` goes to [`saga_statement`](Self::saga_statement):
    /// inside a saga, writes and DDL, and statements the router does not analyse that
    /// start like a write or are queries whose WITH clause writes (they are refused there:
    /// dbmesh could not compensate them).
    pub(super) fn saga_handles(&self, plan: &Plan, statement: &str) -> bool {
        if !self.saga_running() {
            return false;
        }
        match plan.kind {
            PlanKind::Write | PlanKind::Ddl => true,
            // A query whose WITH clause writes is refused there too.
            PlanKind::Query if crate::route::rw_split::writes_in_with(statement) => true,
            PlanKind::Other | PlanKind::Query => {
                let word = first_word(statement).to_ascii_uppercase();
                let upper = statement.to_ascii_uppercase();
                let copy_in = word == "COPY" && upper.contains(" FROM ") && !upper.contains(" TO ");
                copy_in
                    || matches!(
                        word.as_str(),
                        "INSERT"
                            | "UPDATE"
                            | "DELETE"
                            | "MERGE"
                            | "TRUNCATE"
                            | "CALL"
                            | "DO"
                            | "ALTER"
                            | "CREATE"
                            | "DROP"
                            | "COMMENT"
                            | "GRANT"
                            | "REVOKE"
                    )
            }
            _ => false,
        }
    }

    /// Inside a saga, an extended-protocol statement dbmesh does not analyse (it names no
    /// table of the sharding rules) would be relayed as it is, so dbmesh could not
    /// compensate a write: only reads are let through (see [`passthrough_refused`]).
    pub(super) fn saga_refuses_passthrough(&self, sql: &str) -> bool {
        let word = first_word(sql).to_ascii_uppercase();
        self.saga_running()
            && !matches!(
                word.as_str(),
                "SELECT" | "SHOW" | "EXPLAIN" | "VALUES" | "TABLE" | "FETCH" | "DECLARE" | "CLOSE"
            )
    }

    /// A write or DDL `plan` of `statement` inside a saga: runs it as described in the
    /// module documentation and answers its CommandComplete, or the error.
    pub(super) async fn saga_statement(
        &mut self,
        plan: &Plan,
        statement: &str,
        protocol: &UnitProtocol<'_>,
    ) -> Result<Outcome, Broken> {
        match self.saga_run(plan, statement).await? {
            Ok(tag) => {
                if let UnitProtocol::Extended { describe: true, .. } = protocol {
                    // The Describe of the portal was left to this Execute: a write has
                    // no rows.
                    self.writer.write(&NoData::new());
                }
                self.writer.write(&CommandComplete::new(tag));
                if let Some(saga) = self.txn.as_mut().and_then(|t| t.saga.as_mut()) {
                    saga.statements += 1;
                    failpoint::hit(&format!("saga_after_statement_{}", saga.statements));
                }
                Ok(Outcome::Done)
            }
            Err(SagaFail::Refused(f)) => Ok(self.report(f, "")),
            Err(SagaFail::Failed(f)) => {
                let saga = self.txn.as_mut().and_then(|t| t.saga.take());
                let undone = match saga {
                    Some(saga) => self.compensate(&saga).await?,
                    None => Ok(()),
                };
                let whole = match undone {
                    Ok(()) => "; the SAGA transaction was rolled back: every statement before it was compensated".to_string(),
                    Err(c) => format!("; the SAGA transaction was rolled back, but a compensation failed ({c}); recovery will finish it"),
                };
                Ok(self.report(f, &whole))
            }
        }
    }

    /// Sends `f` to the client, `note` appended to its message; the transaction fails.
    fn report(&mut self, f: Failure, note: &str) -> Outcome {
        match f {
            Failure::Own(e) if note.is_empty() => self.fail(&e),
            Failure::Own(e) => {
                let (code, message) = super::error::sqlstate(&e);
                self.writer.write(&super::error::error_response(
                    super::error::Severity::Error,
                    code,
                    &format!("{message}{note}"),
                ));
                self.mark_failed();
                Outcome::Failed
            }
            Failure::Backend(msg) => {
                self.relay_error(&with_note(&msg, note));
                Outcome::Failed
            }
        }
    }

    async fn saga_run(
        &mut self,
        plan: &Plan,
        statement: &str,
    ) -> Result<Result<String, SagaFail>, Broken> {
        if plan.kind == PlanKind::Ddl {
            return Ok(Err(refused(Error::NotSupported(
                "DDL inside a SAGA transaction (it cannot be compensated; COMMIT or ROLLBACK first)"
                    .into(),
            ))));
        }
        if plan.kind != PlanKind::Write || plan.params == ParamMode::Keep {
            return Ok(Err(refused(Error::NotSupported(format!(
                "`{}` inside a SAGA transaction (dbmesh cannot compensate it)",
                statement
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            )))));
        }
        let logical = plan_undo(statement, Dialect::Postgres)
            .map(|p| p.table().to_string())
            .ok();
        let mut undo: Vec<UndoPlan> = Vec::with_capacity(plan.units.len());
        for unit in &plan.units {
            let sql = unit.sql.as_deref().unwrap_or(statement);
            match plan_undo(sql, Dialect::Postgres) {
                Ok(u) => undo.push(u),
                Err(e) => return Ok(Err(refused(e))),
            }
        }
        let mut begun: Vec<String> = Vec::new();
        for unit in &plan.units {
            if !begun.contains(&unit.data_source) {
                begun.push(unit.data_source.clone());
            }
        }
        for ds in &begun {
            if let Err(e) = self.backends.open(ds, &self.session).await {
                return Ok(Err(refused(e)));
            }
        }
        let mut shapes = Vec::with_capacity(undo.len());
        for (u, unit) in undo.iter().zip(&plan.units) {
            let shape = match self.table_shape(&unit.data_source, u.table()).await? {
                Ok(s) => s,
                Err(f) => return Ok(Err(SagaFail::Refused(f))),
            };
            if let Err(e) = u.check(&shape, logical.as_deref().unwrap_or(u.table())) {
                return Ok(Err(refused(e)));
            }
            shapes.push(shape);
        }

        // From here on the statement runs: failures compensate the saga.
        match self
            .saga_apply(plan, statement, &undo, &shapes, &begun)
            .await?
        {
            Ok(tag) => Ok(Ok(tag)),
            Err(f) => {
                for ds in &begun {
                    // Harmless where nothing is open (the COMMIT went through there).
                    self.saga_query(ds, "ROLLBACK").await?.ok();
                }
                Ok(Err(SagaFail::Failed(f)))
            }
        }
    }

    /// Runs the plan's units, each data source in a local transaction, logging the
    /// compensations before anything commits. The CommandComplete tag of the whole.
    async fn saga_apply(
        &mut self,
        plan: &Plan,
        statement: &str,
        undo: &[UndoPlan],
        shapes: &[TableShape],
        begun: &[String],
    ) -> Result<Result<String, Failure>, Broken> {
        for ds in begun {
            if let Err(f) = self.saga_query(ds, "BEGIN").await? {
                return Ok(Err(f));
            }
        }
        let database = self.backends.database().config.name.clone();
        let step = |ds: &str, sql: String| UndoStep {
            database: database.clone(),
            data_source: ds.to_string(),
            sql,
        };
        let mut steps = Vec::new();
        for ((u, shape), unit) in undo.iter().zip(shapes).zip(&plan.units) {
            let Some(select) = u.before_image_sql(shape) else {
                // An INSERT: its keys are logged once it ran (below), so a failed INSERT
                // (a duplicate key) never deletes the row that holds its key.
                continue;
            };
            let rows = match self.saga_query(&unit.data_source, &select).await? {
                Ok(a) => a.rows,
                Err(f) => return Ok(Err(f)),
            };
            match u.undo_from_image(shape, &rows) {
                Ok(sqls) => steps.extend(sqls.into_iter().map(|s| step(&unit.data_source, s))),
                Err(e) => return Ok(Err(Failure::Own(e))),
            }
        }
        if let Err(e) = self.saga_record(steps).await {
            return Ok(Err(Failure::Own(e)));
        }
        let mut tags = TagSum::default();
        for ((u, shape), unit) in undo.iter().zip(shapes).zip(&plan.units) {
            let sql = unit.sql.as_deref().unwrap_or(statement);
            let insert = matches!(u, UndoPlan::Insert { .. });
            let sql = if insert {
                u.returning_sql(sql, shape)
            } else {
                sql.to_string()
            };
            let answer = match self.saga_query(&unit.data_source, &sql).await? {
                Ok(a) => a,
                Err(f) => return Ok(Err(f)),
            };
            if insert {
                // Logged before this data source commits: a crash before that rolls
                // the INSERT back with the connection.
                if let Some(sql) = u.undo_returned_insert(shape, &answer.rows) {
                    if let Err(e) = self.saga_record(vec![step(&unit.data_source, sql)]).await {
                        return Ok(Err(Failure::Own(e)));
                    }
                }
            }
            tags.add(&answer.tag);
        }
        for ds in begun {
            match self.saga_query(ds, "COMMIT").await? {
                Ok(a) if a.tag == "COMMIT" => {}
                Ok(_) => {
                    return Ok(Err(Failure::Own(Error::XaRolledBack(format!(
                        "data source {ds} rolled the statement back instead of committing it"
                    )))))
                }
                Err(f) => return Ok(Err(f)),
            }
        }
        Ok(Ok(tags.tag("")))
    }

    /// Appends `steps` to the log and to the session's saga.
    async fn saga_record(&mut self, steps: Vec<UndoStep>) -> Result<(), Error> {
        if steps.is_empty() {
            return Ok(());
        }
        let Some(saga) = self.txn.as_mut().and_then(|t| t.saga.as_mut()) else {
            return Ok(());
        };
        let log = &saga.id.coordinator().log;
        if let Err(e) = log.record_saga(&saga.id.gtrid, &steps).await {
            return Err(Error::XaRolledBack(e.to_string()));
        }
        saga.steps.extend(steps);
        Ok(())
    }

    /// The shape of `table` as data source `ds` sees it, read once per saga.
    async fn table_shape(
        &mut self,
        ds: &str,
        table: &str,
    ) -> Result<Result<TableShape, Failure>, Broken> {
        let key = (ds.to_string(), table.to_string());
        if let Some(shape) = self
            .txn
            .as_ref()
            .and_then(|t| t.saga.as_ref())
            .and_then(|s| s.shapes.get(&key))
        {
            return Ok(Ok(shape.clone()));
        }
        let rows = match self
            .saga_query(ds, &TableShape::pg_columns_sql(table))
            .await?
        {
            Ok(a) => a.rows,
            Err(f) => return Ok(Err(f)),
        };
        let shape = TableShape::from_pg_columns(&rows);
        if let Some(saga) = self.txn.as_mut().and_then(|t| t.saga.as_mut()) {
            saga.shapes.insert(key, shape.clone());
        }
        Ok(Ok(shape))
    }

    /// Runs `sql` as a simple query on data source `ds` (opened already), outside the
    /// session's transaction: its rows and last tag, or its error naming the data source.
    /// Nothing reaches the client.
    async fn saga_query(&mut self, ds: &str, sql: &str) -> Result<Result<Answer, Failure>, Broken> {
        if ds == self.backends.default_name() {
            self.pass.unsynced = false;
        }
        let lost = |cause: String| Broken::Backend {
            data_source: ds.to_string(),
            cause,
        };
        let conn = self
            .backends
            .get(ds)
            .ok_or_else(|| lost("not connected".into()))?;
        frontend::query(sql, &mut conn.writer.buf).map_err(|e| lost(e.to_string()))?;
        send(conn, ds).await?;
        let mut answer = Answer {
            rows: Vec::new(),
            tag: String::new(),
        };
        let mut error = None;
        loop {
            let conn = self.backends.get(ds).expect("sent above");
            let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
            match tag {
                b'Z' => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    break;
                }
                b'D' => answer.rows.push(data_row(&msg)),
                b'C' => answer.tag = command_tag(&msg).to_string(),
                b'E' if error.is_none() => error = Some(on_data_source(&msg, ds)),
                _ => {}
            }
        }
        Ok(match error {
            Some(e) => Err(Failure::Backend(e)),
            None => Ok(answer),
        })
    }

    /// COMMIT (`commit`) or ROLLBACK of the saga `saga`: COMMIT forgets its
    /// compensations, ROLLBACK runs them. Answers `tag`, or the error.
    pub(super) async fn end_saga(
        &mut self,
        saga: SagaTxn,
        commit: bool,
        tag: &str,
    ) -> Result<Outcome, Broken> {
        // Close what a statement outside dbmesh's analysis may have opened.
        let open = self.backends.in_transaction();
        if !open.is_empty() {
            let verb = if commit { "COMMIT" } else { "ROLLBACK" };
            self.everywhere(&open, verb).await?;
        }
        let tag = if commit { tag } else { "ROLLBACK" };
        if !commit {
            return Ok(match self.compensate(&saga).await? {
                Ok(()) => self.saga_done(tag),
                Err(c) => self.fail(&Error::XaRolledBack(format!(
                    "the SAGA transaction {} was not fully compensated ({c}); recovery will finish it",
                    saga.id.gtrid
                ))),
            });
        }
        if saga.steps.is_empty() {
            return Ok(self.saga_done(tag));
        }
        let log = &saga.id.coordinator().log;
        let Err(e) = log.forget(&[saga.id.gtrid.to_string()]).await else {
            return Ok(self.saga_done(tag));
        };
        // Recovery would compensate what the log still holds: do it now, and say so.
        let undone = self.compensate(&saga).await?;
        Ok(self.fail(&Error::XaRolledBack(format!(
            "{e}; the SAGA transaction {} could not be committed, so it was {}",
            saga.id.gtrid,
            if undone.is_ok() {
                "compensated"
            } else {
                "rolled back (recovery finishes the compensation)"
            }
        ))))
    }

    fn saga_done(&mut self, tag: &str) -> Outcome {
        self.writer.write(&CommandComplete::new(tag.to_string()));
        Outcome::Done
    }

    /// Runs the compensations of `saga`, newest first, each in a transaction of its own
    /// on the session's connection to its data source; then forgets the saga. The first
    /// failure stops it (the log keeps the saga, recovery runs it again).
    async fn compensate(&mut self, saga: &SagaTxn) -> Result<Result<(), String>, Broken> {
        for (n, step) in saga.compensation().iter().enumerate() {
            let ds = step.data_source.as_str();
            if let Err(e) = self.backends.open(ds, &self.session).await {
                warn!(gtrid = %saga.id.gtrid, "SAGA compensation failed (recovery retries it): {e}");
                return Ok(Err(e.to_string()));
            }
            let sql = format!("BEGIN; {}; COMMIT", step.sql);
            let ran = self.saga_query(ds, &sql).await?;
            if let Err(f) = ran {
                self.saga_query(ds, "ROLLBACK").await?.ok();
                let cause = match f {
                    Failure::Own(e) => e.to_string(),
                    Failure::Backend(msg) => error_message(&msg),
                };
                warn!(gtrid = %saga.id.gtrid, "SAGA compensation failed (recovery retries it): {cause}");
                return Ok(Err(cause));
            }
            if n == 0 {
                failpoint::hit("saga_after_first_undo");
            }
        }
        if !saga.steps.is_empty() {
            let log = &saga.id.coordinator().log;
            if let Err(e) = log.forget(&[saga.id.gtrid.to_string()]).await {
                warn!(gtrid = %saga.id.gtrid, "trimming the SAGA log failed (recovery compensates again, harmlessly): {e}");
            }
        }
        Ok(Ok(()))
    }
}

/// The ErrorResponse `msg` with `note` appended to its message.
fn with_note(msg: &[u8], note: &str) -> Vec<u8> {
    if note.is_empty() {
        return msg.to_vec();
    }
    map_message(msg, |m| [m, note.as_bytes()].concat()).0
}

/// The message of the ErrorResponse `msg`.
fn error_message(msg: &[u8]) -> String {
    map_message(msg, <[u8]>::to_vec).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_appended_to_the_message_only() {
        let msg = on_data_source(b"E\0\0\0\x18SERROR\0C23505\0Mdup\0\0", "ds_1");
        let noted = with_note(&msg, "; undone");
        assert_eq!(error_message(&noted), "data source ds_1: dup; undone");
        assert_eq!(super::super::error::sqlstate_of(&noted), Some("23505"));
    }
}

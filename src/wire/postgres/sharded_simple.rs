//! Simple Query in a sharded session.
//!
//! The query string is split into statements (`sql::split`), each routed and run on its
//! own, in order, stopping at the first error; one ReadyForQuery ends the response. Unlike
//! PostgreSQL, several statements in one Query outside `BEGIN ... COMMIT` do not share an
//! implicit transaction: each commits on its own, so statements before a failing one keep
//! their effect. Wrap them in `BEGIN` / `COMMIT` for all-or-nothing (per data source).
//!
//! Per statement: `PREVIEW <sql>` is answered by dbmesh; `SET` runs on every backend
//! connection the session holds and is recorded, to be replayed on those it opens later;
//! `SET LOCAL` and `SET TRANSACTION` inside a transaction run on every data source in it
//! (and on those that join it later); anything else is
//! planned by the router and its plan run (`fanout.rs`, `sharded_txn.rs`).

use pgwire::messages::response::{CommandComplete, EmptyQueryResponse};

use super::command_tag::first_word;
use super::error::SessionError;
use super::fanout::UnitProtocol;
use super::preview;
use super::sharded::{Broken, Outcome, ShardedSession};
use crate::error::Error;
use crate::route::shard::{ParamMode, Plan, PlanKind};
use crate::sql::analyze::Dialect;
use crate::sql::split::split_statements;
use crate::sql::{classify, StatementKind};

impl ShardedSession {
    /// Answers one Query message (whole, type byte and length included).
    pub(super) async fn simple_query(&mut self, msg: &[u8]) -> Result<(), Broken> {
        let body = msg.get(5..msg.len().saturating_sub(1)).unwrap_or_default();
        let Ok(sql) = std::str::from_utf8(body) else {
            self.fail(&Error::Malformed("invalid UTF-8 in query string".into()));
            self.write_ready();
            return Ok(());
        };
        // A Query in the middle of an extended-protocol batch: answer the batch first.
        if self.settle().await? == Outcome::Failed {
            self.write_ready();
            return Ok(());
        }
        let statements = split_statements(sql, Dialect::Postgres);
        if statements.is_empty() {
            self.writer.write(&EmptyQueryResponse::new());
        }
        for statement in statements {
            if self.simple_statement(statement).await? == Outcome::Failed {
                break;
            }
        }
        self.write_ready();
        Ok(())
    }

    async fn simple_statement(&mut self, statement: &str) -> Result<Outcome, Broken> {
        if let Some(outcome) = self.refuse_raw_xa(statement) {
            return Ok(outcome);
        }
        match classify(statement) {
            StatementKind::Preview(inner) => Ok(self.preview(&inner, true)),
            StatementKind::Admin => {
                let (rt, user) = (self.rt.clone(), self.session.user.clone());
                if super::admin::write_admin(&rt, &user, statement, true, &mut self.writer).await {
                    Ok(Outcome::Done)
                } else {
                    // dbmesh's own answer: an open transaction is not touched by it.
                    Ok(Outcome::Failed)
                }
            }
            StatementKind::SessionSet => self.session_set(statement).await,
            _ if self.txn.is_some() && transaction_setting(statement) => {
                self.set_local(statement).await
            }
            _ => match self
                .prepare_route(statement)
                .await
                .and_then(|prepared| self.router.plan(&prepared, None, ParamMode::Inline))
            {
                Ok(plan) => self.run_plan(&plan, statement, &UnitProtocol::Simple).await,
                // Under XA the UPDATE moves its rows instead (`row_move.rs`).
                Err(Error::ShardingKeyChange { .. }) if self.xa_wanted() => {
                    match self.router.prepare(statement) {
                        Ok(prepared) => self.update_moving_rows(&prepared, None).await,
                        Err(e) => Ok(self.fail(&e)),
                    }
                }
                Err(e) => Ok(self.fail(&e)),
            },
        }
    }

    /// Runs a plan of `statement`: transaction control, or units.
    pub(super) async fn run_plan(
        &mut self,
        plan: &Plan,
        statement: &str,
        protocol: &UnitProtocol<'_>,
    ) -> Result<Outcome, Broken> {
        self.route = crate::admin::metrics::RouteKind::of(plan);
        match plan.kind {
            PlanKind::Begin | PlanKind::Commit | PlanKind::Rollback | PlanKind::Savepoint => {
                self.run_txn_control(plan.kind, &plan.units, statement)
                    .await
            }
            _ if self.txn_failed() => Ok(self.fail_session(SessionError::TransactionAborted)),
            _ if self.saga_handles(plan, statement) => {
                self.saga_statement(plan, statement, protocol).await
            }
            _ if plan.merge.is_some() && plan.units.len() > 1 => {
                let merge = plan.merge.clone().expect("checked");
                self.run_merge(&merge, &plan.units, protocol).await
            }
            _ => {
                self.run_units(plan.kind, &plan.units, statement, protocol)
                    .await
            }
        }
    }

    pub(super) fn txn_failed(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.failed)
    }

    /// `PREVIEW <sql>`: the units as rows, with their RowDescription when `describe` (a
    /// simple query; the extended protocol describes separately).
    pub(super) fn preview(&mut self, sql: &str, describe: bool) -> Outcome {
        match self.router.preview(sql) {
            Err(e) => self.fail(&e),
            Ok(pairs) => {
                if describe {
                    self.writer.write(&preview::row_description());
                }
                for (ds, actual) in &pairs {
                    preview::write_data_row(&mut self.writer.buf, &[ds, actual]);
                }
                self.writer
                    .write(&CommandComplete::new(format!("SELECT {}", pairs.len())));
                Outcome::Done
            }
        }
    }

    /// A session `SET`: on every held connection, then recorded for those opened later
    /// (`SET dbmesh_transaction_type` is dbmesh's own, in the simple and extended protocols).
    pub(super) async fn session_set(&mut self, statement: &str) -> Result<Outcome, Broken> {
        if let Some(outcome) = self.set_transaction_type(statement) {
            return Ok(outcome);
        }
        if self.txn_failed() {
            return Ok(self.fail_session(SessionError::TransactionAborted));
        }
        let targets = self.backends.names();
        let answers = self.everywhere(&targets, statement).await?;
        if let Some(e) = answers.error {
            self.relay_error(&e);
            return Ok(Outcome::Failed);
        }
        self.session.record_set(statement);
        let applied = super::checkout::state_key(&self.session);
        for ds in &targets {
            if let Some(conn) = self.backends.get(ds) {
                conn.applied_state = applied;
            }
        }
        let tag = answers
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| "SET".into());
        self.writer.write(&CommandComplete::new(tag));
        Ok(Outcome::Done)
    }

    /// `SET LOCAL` inside a transaction: on every data source in it, and on those that join.
    pub(super) async fn set_local(&mut self, statement: &str) -> Result<Outcome, Broken> {
        if self.txn_failed() {
            return Ok(self.fail_session(SessionError::TransactionAborted));
        }
        self.in_transaction_everywhere(statement).await
    }
}

/// `SET LOCAL ...` and `SET TRANSACTION ...`: settings of the current transaction only,
/// which every data source in a transaction must get.
pub fn transaction_setting(statement: &str) -> bool {
    if classify(statement) == StatementKind::SetLocal {
        return true;
    }
    let word = first_word(statement);
    if !word.eq_ignore_ascii_case("set") {
        return false;
    }
    let after = word.as_ptr() as usize - statement.as_ptr() as usize + word.len();
    first_word(&statement[after..]).eq_ignore_ascii_case("transaction")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_transaction_scoped_settings() {
        assert!(transaction_setting("SET LOCAL search_path = x"));
        assert!(transaction_setting(
            "set transaction isolation level serializable"
        ));
        assert!(transaction_setting("/* c */ SET  TRANSACTION READ ONLY"));
        assert!(!transaction_setting("SET search_path = x"));
        assert!(!transaction_setting(
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
        ));
        assert!(!transaction_setting("SELECT 1"));
    }
}

//! Transactions of a sharded session, over several data sources, with local semantics (as
//! ShardingSphere's default `LOCAL` type): each data source runs its own transaction.
//!
//! `BEGIN` sends nothing: the session is in a transaction, and each data source *joins*
//! it before its first statement there, by running the `BEGIN` (as the client wrote it,
//! `BEGIN ISOLATION LEVEL ...` included) and every savepoint statement and `SET LOCAL` run
//! so far, so it is in the same state as the others. `COMMIT` and `ROLLBACK` run on every
//! data source that joined; when one fails the others still finish, and the client gets the
//! error naming the data source. Savepoint statements run on every data source that joined.
//!
//! As in PostgreSQL, after an error the transaction has failed (status `E`): statements
//! are refused with 25P02 until `ROLLBACK` (or `ROLLBACK TO SAVEPOINT`), and `COMMIT`
//! rolls back and answers `ROLLBACK`.
//!
//! Joining runs the statements under dbmesh's own statement and portal name with the
//! extended protocol and Flush, not Sync, so it can happen in the middle of a client's
//! extended-protocol batch on the same connection without disturbing it.

use pgwire::messages::response::CommandComplete;
use postgres_protocol::message::frontend;

use super::command_tag::{first_word, leading_keyword_tag};
use super::error::{on_data_source, warning, SessionError};
use super::extended_messages::write_unit;
use super::fanout::UnitProtocol;
use super::sharded::{command_tag, next_message, send, Broken, Outcome, ShardedSession};
use crate::route::shard::{PlanKind, Unit};
use crate::txn::saga::SagaTxn;
use crate::txn::XaTxn;

/// The transaction dbmesh runs over the data sources.
#[derive(Debug)]
pub struct Txn {
    /// The statement that began it.
    begin: String,
    /// Savepoint statements and `SET LOCAL`s that ran, in order, for data sources that join
    /// later.
    replay: Vec<String>,
    /// The data sources that joined, in order.
    joined: Vec<String>,
    /// An error reached the client since the transaction began.
    pub failed: bool,
    /// The global transaction when the session runs XA (`sharded_xa.rs`): COMMIT over
    /// several data sources prepares them all first.
    pub xa: Option<XaTxn>,
    /// The saga when the session runs SAGA (`saga.rs`): data sources do not join (each
    /// statement commits on its own), and the saga's compensations undo it.
    pub saga: Option<SagaTxn>,
}

/// The messages a data source answers per statement when joining: CloseComplete twice,
/// ParseComplete, BindComplete, CommandComplete, CloseComplete twice (see `write_unit`).
const JOIN_ANSWERS_PER_STATEMENT: usize = 7;

/// The answers of a statement run on several data sources at once.
pub struct EverywhereAnswers {
    /// The first ErrorResponse, naming its data source when there were several.
    pub error: Option<Vec<u8>>,
    /// CommandComplete tags, in data source order.
    pub tags: Vec<String>,
    /// Per target, in order: its last CommandComplete tag, `None` when it failed.
    pub outcomes: Vec<Option<String>>,
}

impl Txn {
    /// A transaction whose data sources join with `begin` (an XA one when `xa` is set).
    pub(super) fn new(begin: String, xa: Option<XaTxn>) -> Txn {
        Txn {
            begin,
            replay: Vec::new(),
            joined: Vec::new(),
            failed: false,
            xa,
            saga: None,
        }
    }

    /// A saga begun by `begin`.
    pub(super) fn with_saga(begin: String, saga: SagaTxn) -> Txn {
        Txn {
            saga: Some(saga),
            ..Txn::new(begin, None)
        }
    }

    /// The data sources that joined, in order.
    pub(super) fn joined(&self) -> &[String] {
        &self.joined
    }
}

impl ShardedSession {
    /// Runs a transaction-control plan (`Begin`, `Commit`, `Rollback`, `Savepoint`).
    pub(super) async fn run_txn_control(
        &mut self,
        kind: PlanKind,
        units: &[Unit],
        statement: &str,
    ) -> Result<Outcome, Broken> {
        let sql = units
            .first()
            .and_then(|u| u.sql.clone())
            .unwrap_or_else(|| statement.to_string());
        match kind {
            PlanKind::Begin => {
                if self.txn.is_some() {
                    self.writer.write(&warning(
                        "25001",
                        "there is already a transaction in progress",
                    ));
                } else if self.saga_wanted() {
                    self.txn = Some(self.begin_saga(sql));
                } else {
                    let xa = self.xa_wanted().then(|| self.backends.runtime().xa.begin());
                    self.txn = Some(Txn::new(sql, xa));
                }
                self.complete(leading_keyword_tag(statement));
                Ok(Outcome::Done)
            }
            PlanKind::Commit | PlanKind::Rollback => self.end(kind, &sql, statement).await,
            _ => self.savepoint(&sql, statement).await,
        }
    }

    fn complete(&mut self, tag: &str) {
        self.writer.write(&CommandComplete::new(tag.to_string()));
    }

    /// `COMMIT` / `ROLLBACK` on every data source in the transaction.
    async fn end(&mut self, kind: PlanKind, sql: &str, statement: &str) -> Result<Outcome, Broken> {
        self.end_with_tag(kind, sql, leading_keyword_tag(statement))
            .await
    }

    /// [`end`](Self::end), answering a success with `commit_tag` (a statement that ran as
    /// a transaction of its own reports its own tag, `UPDATE 1`).
    pub(super) async fn end_with_tag(
        &mut self,
        kind: PlanKind,
        sql: &str,
        commit_tag: &str,
    ) -> Result<Outcome, Broken> {
        let mut txn = self.txn.take();
        let failed = txn.as_ref().is_some_and(|t| t.failed);
        if let Some(saga) = txn.as_mut().and_then(|t| t.saga.take()) {
            let commit = kind == PlanKind::Commit && !failed;
            return self.end_saga(saga, commit, commit_tag).await;
        }
        let mut targets = txn.as_ref().map(|t| t.joined.clone()).unwrap_or_default();
        for ds in self.backends.in_transaction() {
            if !targets.contains(&ds) {
                targets.push(ds);
            }
        }
        let tag = if kind == PlanKind::Commit && !failed {
            commit_tag
        } else {
            "ROLLBACK"
        };
        if targets.is_empty() {
            if txn.is_none() {
                self.writer
                    .write(&warning("25P01", "there is no transaction in progress"));
            }
            self.complete(tag);
            return Ok(Outcome::Done);
        }
        if let Some(xa) = txn.and_then(|t| t.xa) {
            if kind == PlanKind::Commit && !failed && targets.len() > 1 {
                return self.commit_two_phase(xa, &targets, tag).await;
            }
        }
        let sql = if kind == PlanKind::Commit && failed {
            "ROLLBACK"
        } else {
            sql
        };
        let answers = self.everywhere(&targets, sql).await?;
        if let Some(e) = answers.error {
            super::error::count_backend_error(&e);
            self.writer.write_raw(&e);
            return Ok(Outcome::Failed);
        }
        // A backend whose own transaction had failed answers COMMIT with ROLLBACK.
        let rolled_back = answers.tags.iter().any(|t| t == "ROLLBACK");
        self.complete(if rolled_back { "ROLLBACK" } else { tag });
        Ok(Outcome::Done)
    }

    /// `SAVEPOINT`, `RELEASE [SAVEPOINT]`, `ROLLBACK TO [SAVEPOINT]`: on every data source
    /// that joined (the default one joins if none has, so names are checked by a server).
    /// Outside a transaction dbmesh runs, the statement goes to the default data source,
    /// whose server answers as PostgreSQL does.
    async fn savepoint(&mut self, sql: &str, statement: &str) -> Result<Outcome, Broken> {
        let rollback_to = first_word(statement).eq_ignore_ascii_case("rollback");
        let Some(txn) = &self.txn else {
            let unit = Unit {
                data_source: self.backends.default_name().to_string(),
                sql: Some(sql.to_string()),
            };
            return self
                .run_units(PlanKind::Other, &[unit], statement, &UnitProtocol::Simple)
                .await;
        };
        if txn.failed && !rollback_to {
            return Ok(self.fail_session(SessionError::TransactionAborted));
        }
        if txn.saga.is_some() {
            return Ok(self.fail(&crate::error::Error::NotSupported(
                "savepoints inside a SAGA transaction (its statements commit at once; ROLLBACK compensates them all)".into(),
            )));
        }
        let outcome = self.in_transaction_everywhere(sql).await?;
        if outcome == Outcome::Done && rollback_to {
            if let Some(t) = &mut self.txn {
                t.failed = false;
            }
        }
        Ok(outcome)
    }

    /// Runs `sql` (a savepoint statement or `SET LOCAL`) on every data source in the
    /// transaction, and remembers it for those that join later.
    pub(super) async fn in_transaction_everywhere(&mut self, sql: &str) -> Result<Outcome, Broken> {
        let mut targets = self
            .txn
            .as_ref()
            .map(|t| t.joined.clone())
            .unwrap_or_default();
        if targets.is_empty() {
            let default = vec![self.backends.default_name().to_string()];
            if self.join(&default).await? == Outcome::Failed {
                return Ok(Outcome::Failed);
            }
            targets = default;
        }
        let answers = self.everywhere(&targets, sql).await?;
        if let Some(e) = answers.error {
            self.relay_error(&e);
            return Ok(Outcome::Failed);
        }
        if let Some(t) = &mut self.txn {
            t.replay.push(sql.to_string());
        }
        let tag = answers.tags.first().cloned().unwrap_or_default();
        self.complete(&tag);
        Ok(Outcome::Done)
    }

    /// Runs `sql` as a simple query on each of `targets` at once (sent to all, then read in
    /// order). ParameterStatus and notices of the first are relayed.
    pub(super) async fn everywhere(
        &mut self,
        targets: &[String],
        sql: &str,
    ) -> Result<EverywhereAnswers, Broken> {
        let work: Vec<(String, String)> = targets
            .iter()
            .map(|ds| (ds.clone(), sql.to_string()))
            .collect();
        self.everywhere_each(&work, None).await
    }

    /// Runs one simple query per data source (`work`: data source, SQL), all at once.
    /// When `failpoint` is armed (crash tests) only the first runs, then the process aborts.
    pub(super) async fn everywhere_each(
        &mut self,
        work: &[(String, String)],
        failpoint: Option<&str>,
    ) -> Result<EverywhereAnswers, Broken> {
        if let Some(name) = failpoint.filter(|n| crate::txn::failpoint::armed(n)) {
            let first = self.exchange(&work[..1]).await;
            crate::txn::failpoint::hit(name);
            return first;
        }
        self.exchange(work).await
    }

    /// [`ShardedSession::everywhere_each`] without failpoints.
    async fn exchange(&mut self, work: &[(String, String)]) -> Result<EverywhereAnswers, Broken> {
        for (ds, sql) in work {
            let conn = self.backends.get(ds).expect("a held connection");
            frontend::query(sql, &mut conn.writer.buf).map_err(|e| Broken::Backend {
                data_source: ds.clone(),
                cause: e.to_string(),
            })?;
            send(conn, ds).await?;
            if ds == self.backends.default_name() {
                self.pass.unsynced = false;
            }
        }
        let mut answers = EverywhereAnswers {
            error: None,
            tags: Vec::new(),
            outcomes: Vec::new(),
        };
        for (i, (ds, _)) in work.iter().enumerate() {
            let conn = self.backends.get(ds).expect("a held connection");
            let mut outcome = Some(String::new());
            loop {
                let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
                match tag {
                    b'Z' => {
                        conn.tx_status = msg[5];
                        conn.healthy = true;
                        break;
                    }
                    b'E' => {
                        outcome = None;
                        if answers.error.is_none() {
                            answers.error = Some(if work.len() > 1 {
                                on_data_source(&msg, ds)
                            } else {
                                msg.to_vec()
                            });
                        }
                    }
                    b'C' => {
                        let t = command_tag(&msg).to_string();
                        answers.tags.push(t.clone());
                        outcome = Some(t);
                    }
                    b'S' | b'N' if i == 0 => self.writer.write_raw(&msg),
                    _ => {}
                }
            }
            answers.outcomes.push(outcome);
        }
        Ok(answers)
    }

    /// Brings each of `data_sources` into the open transaction, if there is one and it has
    /// not joined yet. An error (the client has been sent it) fails the transaction.
    pub(super) async fn join(&mut self, data_sources: &[String]) -> Result<Outcome, Broken> {
        let Some(txn) = self.txn.as_ref().filter(|t| t.saga.is_none()) else {
            // Inside a saga reads run as outside a transaction (`saga.rs`).
            return Ok(Outcome::Done);
        };
        let joining: Vec<String> = data_sources
            .iter()
            .filter(|ds| !txn.joined.contains(ds))
            .cloned()
            .collect();
        if joining.is_empty() {
            return Ok(Outcome::Done);
        }
        let statements: Vec<String> = std::iter::once(txn.begin.clone())
            .chain(txn.replay.iter().cloned())
            .collect();
        // Every connection first, so a data source that cannot be reached leaves no
        // request in flight on the others.
        for ds in &joining {
            if let Err(e) = self.backends.open(ds, &self.session).await {
                return Ok(self.fail(&e));
            }
        }
        for ds in &joining {
            let conn = self.backends.get(ds).expect("opened above");
            for sql in &statements {
                write_unit(&mut conn.writer.buf, sql, None, &[], false, true).map_err(|e| {
                    Broken::Backend {
                        data_source: ds.clone(),
                        cause: e.to_string(),
                    }
                })?;
            }
            frontend::flush(&mut conn.writer.buf);
            send(conn, ds).await?;
        }
        let mut error = None;
        for ds in &joining {
            let conn = self.backends.get(ds).expect("opened above");
            let mut expected = statements.len() * JOIN_ANSWERS_PER_STATEMENT;
            let mut failed = false;
            while expected > 0 {
                let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
                match tag {
                    b'1' | b'2' | b'3' | b'C' => expected -= 1,
                    b'E' => {
                        error.get_or_insert_with(|| on_data_source(&msg, ds));
                        failed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if failed {
                // The backend skips to a Sync after an error.
                frontend::sync(&mut conn.writer.buf);
                send(conn, ds).await?;
                loop {
                    let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
                    if tag == b'Z' {
                        conn.tx_status = msg[5];
                        conn.healthy = true;
                        break;
                    }
                }
            } else {
                conn.tx_status = b'T';
                conn.healthy = true;
                if let Some(t) = &mut self.txn {
                    t.joined.push(ds.clone());
                }
            }
        }
        if let Some(e) = error {
            self.relay_error(&e);
            return Ok(Outcome::Failed);
        }
        Ok(Outcome::Done)
    }

    /// Whether `data_source` is in the open transaction (or there is none to join).
    pub(super) fn joined(&self, data_source: &str) -> bool {
        self.txn
            .as_ref()
            .is_none_or(|t| t.joined.iter().any(|d| d == data_source))
    }
}

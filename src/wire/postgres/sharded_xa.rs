//! XA transactions of a sharded PostgreSQL session, driven by the [`crate::txn`]
//! coordinator's protocol over the session's own backend connections.
//!
//! Data sources join with the client's `BEGIN`, as in LOCAL transactions. `COMMIT` with
//! one participant is a plain `COMMIT` (one phase). With several, each runs
//! `PREPARE TRANSACTION '<gtrid>.<data source>'`; if one fails (or its transaction had
//! failed and it answers ROLLBACK), the prepared ones run `ROLLBACK PREPARED` and the client
//! gets the error; otherwise the decision is logged and each runs `COMMIT PREPARED`. After
//! the decision the transaction is committed: a branch left prepared (its connection broke)
//! is committed by recovery.

use tracing::warn;

use super::sharded::{Broken, Outcome, ShardedSession};
use crate::config::TransactionType;
use crate::error::Error;
use crate::txn::{failpoint, session_statement, XaTxn};

impl ShardedSession {
    /// Whether a BEGIN now starts an XA transaction: the session's
    /// `dbmesh_transaction_type`, else the database's `transaction` setting.
    pub(super) fn xa_wanted(&self) -> bool {
        let configured = self.backends.database().config.transaction;
        self.session.transaction_type.unwrap_or(configured) == TransactionType::Xa
    }

    /// `SET dbmesh_transaction_type = ...`: recorded for the session, outside a transaction
    /// only. `None` for any other statement.
    pub(super) fn set_transaction_type(&mut self, statement: &str) -> Option<Outcome> {
        let parsed = session_statement::parse(statement)?;
        Some(match parsed {
            Err(e) => self.fail(&e),
            Ok(_) if self.txn.is_some() => self.fail(&Error::InTransaction(format!(
                "{} can only be changed outside a transaction",
                session_statement::VARIABLE
            ))),
            Ok(t) => {
                self.session.transaction_type = Some(t);
                self.writer
                    .write(&pgwire::messages::response::CommandComplete::new(
                        "SET".to_string(),
                    ));
                Outcome::Done
            }
        })
    }

    /// The application's own two-phase statements (`PREPARE TRANSACTION`, `COMMIT
    /// PREPARED`, ...): refused on a database with several data sources.
    pub(super) fn refuse_raw_xa(&mut self, statement: &str) -> Option<Outcome> {
        let e = self.raw_xa_error(statement)?;
        Some(self.fail(&e))
    }

    /// Why the application's own two-phase statement `statement` is refused here, if it is
    /// one and the database has several data sources. The simple-query path and the
    /// extended protocol's Parse both ask, so neither sends it to the default data source.
    pub(super) fn raw_xa_error(&self, statement: &str) -> Option<Error> {
        let database = self.backends.database();
        if database.data_sources.len() < 2 || !session_statement::is_raw_xa(statement) {
            return None;
        }
        Some(Error::RawXa(format!(
            "two-phase commit statements from the application are not supported on database \"{}\", which has {} data sources: \
             dbmesh coordinates the data sources itself; run BEGIN ... COMMIT with transaction type XA \
             (transaction = \"XA\" in the database's config, or SET {} = 'XA'), see docs/transactions.md",
            database.config.name,
            database.data_sources.len(),
            session_statement::VARIABLE
        )))
    }

    /// COMMIT of XA transaction `xa` over `targets` (several data sources): prepare all,
    /// log the decision, commit all. `tag` is the CommandComplete of a success.
    pub(super) async fn commit_two_phase(
        &mut self,
        xa: XaTxn,
        targets: &[String],
        tag: &str,
    ) -> Result<Outcome, Broken> {
        let each = |statement: &str| -> Vec<(String, String)> {
            targets
                .iter()
                .map(|ds| {
                    (
                        ds.clone(),
                        format!("{statement} {}", xa.branch(ds).pg_gid_literal()),
                    )
                })
                .collect()
        };
        let answers = self
            .everywhere_each(&each("PREPARE TRANSACTION"), Some("xa_after_first_prepare"))
            .await?;
        let prepared: Vec<String> = targets
            .iter()
            .zip(&answers.outcomes)
            .filter(|(_, o)| o.as_deref() == Some("PREPARE TRANSACTION"))
            .map(|(ds, _)| ds.clone())
            .collect();
        if prepared.len() < targets.len() {
            self.rollback_prepared(&xa, &prepared).await?;
            return Ok(match answers.error {
                Some(e) => {
                    self.writer.write_raw(&e);
                    Outcome::Failed
                }
                None => {
                    // A data source whose transaction had failed rolled back instead.
                    self.writer
                        .write(&pgwire::messages::response::CommandComplete::new(
                            "ROLLBACK".to_string(),
                        ));
                    Outcome::Done
                }
            });
        }
        failpoint::hit("xa_after_prepare");
        let log = &xa.coordinator().log;
        if let Err(e) = log.record_commit(&xa.gtrid, targets).await {
            self.rollback_prepared(&xa, targets).await?;
            return Ok(self.fail(&Error::XaRolledBack(format!(
                "{e}; the XA transaction {} was rolled back on every data source",
                xa.gtrid
            ))));
        }
        failpoint::hit("xa_after_decision");
        let answers = self
            .everywhere_each(&each("COMMIT PREPARED"), Some("xa_after_first_commit"))
            .await?;
        if answers.error.is_some() {
            warn!(gtrid = %xa.gtrid, "XA commit decided but a branch did not commit; recovery will commit it");
        } else if let Err(e) = log.forget(&[xa.gtrid.to_string()]).await {
            warn!(gtrid = %xa.gtrid, "trimming the XA log failed (recovery trims it later): {e}");
        }
        self.writer
            .write(&pgwire::messages::response::CommandComplete::new(
                tag.to_string(),
            ));
        Ok(Outcome::Done)
    }

    /// `ROLLBACK PREPARED` of `xa`'s branches on `data_sources`; failures are left to
    /// recovery (the branches have no decision, so it rolls them back).
    async fn rollback_prepared(
        &mut self,
        xa: &XaTxn,
        data_sources: &[String],
    ) -> Result<(), Broken> {
        let work: Vec<(String, String)> = data_sources
            .iter()
            .map(|ds| {
                (
                    ds.clone(),
                    format!("ROLLBACK PREPARED {}", xa.branch(ds).pg_gid_literal()),
                )
            })
            .collect();
        let answers = self.everywhere_each(&work, None).await?;
        if answers.error.is_some() {
            warn!(gtrid = %xa.gtrid, "rolling back a prepared branch failed; recovery will roll it back");
        }
        Ok(())
    }
}

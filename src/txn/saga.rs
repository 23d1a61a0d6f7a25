//! SAGA transactions: each statement commits on its data sources at once, and what
//! undoes it (compensating statements planned by `route::shard::saga_undo`) is written to
//! the transaction log first. COMMIT forgets the saga; ROLLBACK, or a statement that
//! fails, runs the compensations in reverse order. Compensations are idempotent, so
//! recovery can run a saga's again after a crash left it half compensated (see
//! [`super::recovery`]).
//!
//! This module is protocol-neutral: the wire layers (`wire/mysql/saga.rs`,
//! `wire/postgres/saga.rs`) run the statements over the session's connections.

use std::collections::HashMap;

use super::log::UndoStep;
use super::XaTxn;
use crate::route::shard::saga_undo::TableShape;

/// One saga a session runs: its id (a gtrid, registered in flight like an XA
/// transaction's, so recovery leaves it alone while the session runs it) and the
/// compensations recorded so far.
#[derive(Debug)]
pub struct SagaTxn {
    pub id: XaTxn,
    /// Every compensation recorded, in order.
    pub steps: Vec<UndoStep>,
    /// Statements run so far (for the `saga_after_statement_<n>` failpoint).
    pub statements: usize,
    /// Table shapes read so far, by data source and actual table.
    pub shapes: HashMap<(String, String), TableShape>,
}

impl SagaTxn {
    pub fn new(id: XaTxn) -> SagaTxn {
        SagaTxn {
            id,
            steps: Vec::new(),
            statements: 0,
            shapes: HashMap::new(),
        }
    }

    /// The compensations in the order they run: the last recorded first.
    pub fn compensation(&self) -> Vec<UndoStep> {
        self.steps.iter().rev().cloned().collect()
    }
}

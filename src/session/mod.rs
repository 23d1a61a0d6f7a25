//! Per-client session state, independent of the protocol.
//!
//! The session records everything that must follow the client to whichever backend connection
//! serves it: the logical database, transaction status, and the `SET` statements it ran (so a
//! new backend connection can be brought to the same state by replaying them). Prepared
//! statements are recorded by the wire layer, which knows their protocol form.

pub mod registry;

use std::sync::Arc;

use crate::config::UserConfig;

/// One client's session.
pub struct Session {
    pub user: Arc<UserConfig>,
    /// The logical database in use (`USE shop`), if any.
    pub database: Option<String>,
    /// The client's address, for error messages.
    pub host: String,
    /// True between BEGIN and COMMIT/ROLLBACK (as the backend reports it).
    pub in_transaction: bool,
    pub autocommit: bool,
    /// `SET dbmesh_transaction_type`: overrides the database's `transaction` setting.
    pub transaction_type: Option<crate::config::TransactionType>,
    /// Session-changing statements in the order they ran (`SET NAMES`, `SET @@x`, ...).
    set_statements: Vec<String>,
}

impl Session {
    pub fn new(user: Arc<UserConfig>, database: Option<String>, host: String) -> Self {
        Session {
            user,
            database,
            host,
            in_transaction: false,
            autocommit: true,
            transaction_type: None,
            set_statements: Vec::new(),
        }
    }

    /// Records a statement that changed session state, for replay on new backend connections.
    pub fn record_set(&mut self, sql: &str) {
        // Bounded: a client looping over SET must not grow the session without end. Only
        // the most recent statements are kept once the bound is reached.
        const MAX_RECORDED: usize = 256;
        if self.set_statements.len() == MAX_RECORDED {
            self.set_statements.remove(0);
        }
        self.set_statements.push(sql.to_string());
    }

    /// Recorded statements from index `from` on.
    pub fn set_statements_since(&self, from: usize) -> &[String] {
        &self.set_statements[from.min(self.set_statements.len())..]
    }

    pub fn set_statement_count(&self) -> usize {
        self.set_statements.len()
    }

    /// COM_RESET_CONNECTION / COM_CHANGE_USER: back to a fresh session (the database stays).
    pub fn reset(&mut self) {
        self.in_transaction = false;
        self.autocommit = true;
        self.set_statements.clear();
    }
}

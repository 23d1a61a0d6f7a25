//! Several statements in one COM_QUERY (`CLIENT_MULTI_STATEMENTS`) on a sharded database.
//!
//! A string that names no sharded or broadcast table still goes whole to the default data
//! source, whose multi-results are relayed as they are. One that does is cut into its
//! statements ([`split_statements`]), and each runs as if the client had sent it alone
//! (planned, routed, answered by dbmesh where it answers statements itself), as the server
//! would run them: in order, the client getting one result per statement, every final OK or
//! EOF but the last saying `SERVER_MORE_RESULTS_EXISTS`. The first error ends the string:
//! the statements after it do not run, as on a server.

use bytes::{BufMut, BytesMut};

use super::frontend::{ClientConn, Fatal, COM_QUERY};
use crate::config::BackendKind;
use crate::sql::analyze::Dialect;
use crate::sql::split::split_statements;

impl ClientConn {
    /// The statements of a COM_QUERY that must run one by one: a multi-statement string,
    /// from a client that may send one, on a sharded database, that the router cannot take
    /// whole (it names a sharded or broadcast table). `None` for anything else.
    pub(crate) fn split_multi_statement(&self, payload: &[u8]) -> Option<Vec<String>> {
        if !self.multi_statements {
            return None;
        }
        let text = std::str::from_utf8(payload.get(1..)?).ok()?;
        if !text.contains(';') {
            return None;
        }
        let route = crate::route::plan(&self.session, &self.cluster, BackendKind::Mysql).ok()?;
        let router = route.database.router.as_ref()?;
        let statements = split_statements(text, Dialect::MySql);
        if statements.len() < 2 || router.prepare(text).is_ok() {
            return None;
        }
        Some(statements.into_iter().map(str::to_string).collect())
    }

    /// Runs `statements` in order, each answered as a result of the one COM_QUERY; stops
    /// after the first that fails.
    pub(crate) async fn run_multi_statement(
        &mut self,
        statements: Vec<String>,
    ) -> Result<(), Fatal> {
        self.writer.track_last_packet(true);
        let last = statements.len().saturating_sub(1);
        let mut outcome = Ok(());
        for (i, sql) in statements.into_iter().enumerate() {
            self.more_results = i < last;
            let mut payload = BytesMut::with_capacity(sql.len() + 1);
            payload.put_u8(COM_QUERY);
            payload.extend_from_slice(sql.as_bytes());
            outcome = self.one_query(payload).await;
            if outcome.is_err() || self.writer.last_was_error() {
                break;
            }
        }
        self.more_results = false;
        self.writer.track_last_packet(false);
        outcome
    }
}

//! COM_QUERY: statements dbmesh answers itself (USE, SHOW DATABASES, KILL, SET, admin
//! statements) and those it routes.

use super::frontend::{ClientConn, Fatal};
use super::response::ResponseKind;
use crate::config::BackendKind;
use crate::sql::{classify, StatementKind};

impl ClientConn {
    pub(super) async fn com_query(&mut self, payload: bytes::BytesMut) -> Result<(), Fatal> {
        match self.split_multi_statement(&payload) {
            Some(statements) => self.run_multi_statement(statements).await,
            None => self.one_query(payload).await,
        }
    }

    /// COM_SET_OPTION: forwarded to the default data source; dbmesh notes whether
    /// multi-statements are now on (option 0) or off (1).
    pub(super) async fn set_option(&mut self, payload: &[u8]) -> Result<(), Fatal> {
        let answered = self
            .forward_routed_index(payload, ResponseKind::Single)
            .await?;
        if let Some((_, Some(tracker))) = answered {
            match payload.get(1..3) {
                Some([0, 0]) if !tracker.error => self.multi_statements = true,
                Some([1, 0]) if !tracker.error => self.multi_statements = false,
                _ => {}
            }
        }
        Ok(())
    }

    /// One statement (or a multi-statement string passed through whole).
    pub(crate) async fn one_query(&mut self, payload: bytes::BytesMut) -> Result<(), Fatal> {
        if let Some(parsed) = std::str::from_utf8(&payload[1..])
            .ok()
            .and_then(crate::txn::session_statement::parse)
        {
            self.set_transaction_type(parsed);
            return Ok(());
        }
        let kind = std::str::from_utf8(&payload[1..])
            .map(classify)
            .unwrap_or(StatementKind::Other);
        match kind {
            StatementKind::Use(db) => {
                self.use_database(&db);
                Ok(())
            }
            StatementKind::ShowDatabases => {
                self.show_databases();
                Ok(())
            }
            StatementKind::Kill { query_only, id } => self.kill(query_only, id).await,
            // MySQL's SET LOCAL is a synonym of SET SESSION.
            StatementKind::SessionSet | StatementKind::SetLocal => {
                let Some(index) = self
                    .forward_routed_index(&payload, ResponseKind::Query)
                    .await?
                else {
                    return Ok(());
                };
                if let Some(tracker) = index.1 {
                    if !tracker.error {
                        let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
                        self.session.record_set(&sql);
                        // It already ran on this backend connection.
                        if let Some(held) = self.backends.get_mut(index.0) {
                            held.conn.applied_sets = self.session.set_statements_since(0).to_vec();
                        }
                        if self.backends.len() > 1 {
                            // A sharded session: the others follow now, not at their next
                            // statement (`SET autocommit = 1` commits there too).
                            self.replay_on_held_backends().await;
                        }
                    }
                }
                Ok(())
            }
            StatementKind::Preview(sql) => {
                self.preview(&sql);
                Ok(())
            }
            StatementKind::Admin => {
                let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
                self.admin(&sql).await;
                Ok(())
            }
            StatementKind::Other => self.query_routed(payload).await,
        }
    }

    /// A statement dbmesh does not answer itself: to the default data source as sent, or,
    /// on a database with sharding rules, wherever its plan says.
    async fn query_routed(&mut self, payload: bytes::BytesMut) -> Result<(), Fatal> {
        let route = match crate::route::plan(&self.session, &self.cluster, BackendKind::Mysql) {
            Ok(r) => r,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        if let Some(router) = route.database.router.clone() {
            return self.query_sharded(route.database, router, &payload).await;
        }
        let command = super::replica_retry::ReadCommand::Payload(&payload);
        let ran = self
            .run_routed(&route.data_source, &payload[1..], command)
            .await?;
        if let Some((index, false, tracker)) = ran {
            if !tracker.error {
                self.note_write(index, &route.data_source, &payload[1..])
                    .await;
            }
        }
        Ok(())
    }
}

//! Admin statements in the single-data-source pump: dbmesh answers them itself, in a
//! simple Query or with the extended protocol, without the backend seeing them.
//!
//! Answers must reach the client in the order of its messages, and the backend's come
//! only at its Sync. So before dbmesh answers, the backend has answered everything sent
//! before (`settle_backend`); an admin statement's messages in a batch whose earlier
//! messages already went to the backend cannot be answered in order, and are handled so
//! the batch still fails cleanly (see `admin_parse`). A batch dbmesh answered alone ends
//! with dbmesh's own ReadyForQuery.
//!
//! `PREVIEW <sql>` is answered here too: without sharding rules a statement runs as it is
//! on the session's data source, which is the one row of the answer.

use std::collections::HashMap;

use bytes::BytesMut;
use pgwire::messages::data::ParameterDescription;
use pgwire::messages::extendedquery::{BindComplete, CloseComplete, ParseComplete};
use pgwire::messages::response::CommandComplete;

use super::super::admin::{write_admin, write_description};
use super::super::error::{from_error, Severity};
use super::super::statements::{bind_statement, parse_query, parse_statement, target};
use super::{Close, PgClient};
use crate::sql::{classify, StatementKind};

/// The admin statements and portals of a pump session.
#[derive(Default)]
pub(super) struct AdminPump {
    /// Prepared admin statements: name → (SQL, columns).
    statements: HashMap<String, (String, Option<Vec<&'static str>>)>,
    /// Bound portals of admin statements: portal → statement name.
    portals: HashMap<String, String>,
    /// The current batch has been answered by dbmesh so far (nothing forwarded).
    own_batch: bool,
}

/// Whether dbmesh answers statement `q` itself: admin statements and `PREVIEW`.
fn dbmesh_answers(q: &str) -> bool {
    matches!(
        classify(q),
        StatementKind::Admin | StatementKind::Preview(_)
    )
}

/// The columns of a `PREVIEW` answer.
const PREVIEW_COLUMNS: [&str; 2] = ["data_source_name", "actual_sql"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl PgClient {
    /// Handles the client's next message (`len` bytes at the front of the read buffer) if
    /// it is dbmesh's to answer; returns whether it did (the message is consumed then).
    pub(super) async fn admin_message(&mut self, tag: u8, len: usize) -> Result<bool, Close> {
        let msg = &self.reader.buf[..len];
        let ours = match tag {
            b'Q' => msg
                .get(5..len.saturating_sub(1))
                .and_then(|q| std::str::from_utf8(q).ok())
                .filter(|q| dbmesh_answers(q))
                .is_some(),
            b'P' => {
                let admin = parse_query(msg)
                    .and_then(|q| std::str::from_utf8(q).ok())
                    .is_some_and(dbmesh_answers);
                if !admin {
                    // The backend's statement of that name replaces an admin one.
                    if let Some(name) = parse_statement(msg) {
                        self.admin.statements.remove(&text(name));
                    }
                }
                admin
            }
            b'B' => {
                let portal = parse_statement(msg).map(text).unwrap_or_default();
                let admin = bind_statement(msg)
                    .is_some_and(|s| self.admin.statements.contains_key(&text(s)));
                if !admin {
                    self.admin.portals.remove(&portal);
                }
                admin && !self.unsynced
            }
            // Inside a batch that went to the backend they are forwarded, and fail there
            // (the backend has no such statement or portal), in order.
            b'D' | b'C' => match target(msg) {
                Some((b'S', name)) => self.admin.statements.contains_key(&text(name)),
                Some((_, name)) => self.admin.portals.contains_key(&text(name)),
                None => false,
            },
            b'E' => {
                !self.unsynced
                    && parse_statement(msg)
                        .is_some_and(|p| self.admin.portals.contains_key(&text(p)))
            }
            b'S' | b'H' => self.admin.own_batch && !self.unsynced,
            _ => false,
        };
        if !ours {
            if matches!(tag, b'P' | b'B' | b'D' | b'E' | b'C') {
                self.admin.own_batch = false;
            }
            return Ok(false);
        }
        if tag == b'D' && self.unsynced {
            return Ok(false);
        }
        if tag == b'C' && self.unsynced {
            // Closing what the backend never had is no error there: forget it, forward.
            if let Some((kind, name)) = target(msg) {
                let name = text(name);
                match kind {
                    b'S' => self.admin.statements.remove(&name),
                    _ => self.admin.portals.remove(&name).map(|_| Default::default()),
                };
            }
            return Ok(false);
        }
        let msg = self.reader.buf.split_to(len);
        if tag == b'P' && self.unsynced {
            self.admin_parse_in_forwarded_batch(&msg);
            return Ok(true);
        }
        if !matches!(tag, b'S' | b'H') {
            self.settle_backend().await?;
            self.admin.own_batch = true;
        }
        match tag {
            b'Q' => self.admin_query(&msg).await,
            b'P' => self.admin_parse(&msg),
            b'B' => {
                let portal = parse_statement(&msg).map(text).unwrap_or_default();
                let statement = bind_statement(&msg).map(text).unwrap_or_default();
                self.admin.portals.insert(portal, statement);
                self.writer.write(&BindComplete::new());
            }
            b'D' => self.admin_describe(&msg),
            b'E' => self.admin_execute(&msg).await,
            b'C' => {
                if let Some((kind, name)) = target(&msg) {
                    let name = text(name);
                    if kind == b'S' {
                        self.admin.statements.remove(&name);
                    } else {
                        self.admin.portals.remove(&name);
                    }
                }
                self.writer.write(&CloseComplete::new());
            }
            b'S' => {
                self.admin.own_batch = false;
                if self.tx_status == b'I' {
                    self.admin.portals.clear();
                }
                self.write_ready();
                if let Some(info) = &self.info {
                    info.end_statement(self.tx_status != b'I');
                }
            }
            _ => {} // Flush: the writer is flushed after every client read.
        }
        Ok(true)
    }

    /// A simple Query holding an admin statement.
    async fn admin_query(&mut self, msg: &[u8]) {
        let sql = text(msg.get(5..msg.len().saturating_sub(1)).unwrap_or_default());
        if let Some(info) = &self.info {
            info.begin_statement(&sql);
        }
        if let StatementKind::Preview(inner) = classify(&sql) {
            write_description(&Some(PREVIEW_COLUMNS.to_vec()), &mut self.writer);
            self.write_preview(&inner);
        } else {
            let (rt, user) = (self.rt.clone(), self.session.user.clone());
            write_admin(&rt, &user, &sql, true, &mut self.writer).await;
        }
        self.write_ready();
        self.admin.own_batch = false;
        if let Some(info) = &self.info {
            info.end_statement(self.tx_status != b'I');
        }
    }

    /// Parse of an admin statement: its syntax and the user's privilege are checked now,
    /// as PostgreSQL checks a statement at Parse.
    fn admin_parse(&mut self, msg: &[u8]) {
        let name = parse_statement(msg).map(text).unwrap_or_default();
        let sql = parse_query(msg).map(text).unwrap_or_default();
        if let StatementKind::Preview(_) = classify(&sql) {
            let columns = Some(PREVIEW_COLUMNS.to_vec());
            self.admin.statements.insert(name, (sql, columns));
            self.writer.write(&ParseComplete::new());
            return;
        }
        match crate::admin::answer::describe(&self.rt, &self.session.user, &sql) {
            Ok(columns) => {
                self.admin.statements.insert(name, (sql, columns));
                self.writer.write(&ParseComplete::new());
            }
            Err(e) => {
                self.writer.write(&from_error(Severity::Error, &e));
                self.skip_until_sync = true;
                self.admin.own_batch = false;
            }
        }
    }

    /// Parse of an admin statement after messages of the same batch went to the backend:
    /// dbmesh cannot answer in between, so the backend gets a Parse that fails with a
    /// message saying why, and the batch fails there, in order.
    fn admin_parse_in_forwarded_batch(&mut self, msg: &[u8]) {
        let name = parse_statement(msg).map(text).unwrap_or_default();
        let mut parse = BytesMut::new();
        let failing = "SELECT \"dbmesh: admin statements cannot share a pipelined batch with other statements\"";
        let _ = postgres_protocol::message::frontend::parse(
            &name,
            failing,
            std::iter::empty(),
            &mut parse,
        );
        self.forward_client_message(b'P', &parse);
    }

    fn admin_describe(&mut self, msg: &[u8]) {
        let Some((kind, name)) = target(msg) else {
            return;
        };
        let statement = if kind == b'S' {
            Some(text(name))
        } else {
            self.admin.portals.get(&text(name)).cloned()
        };
        let columns = statement
            .and_then(|s| self.admin.statements.get(&s))
            .and_then(|(_, c)| c.clone());
        if kind == b'S' {
            self.writer.write(&ParameterDescription::new(Vec::new()));
        }
        write_description(&columns, &mut self.writer);
    }

    async fn admin_execute(&mut self, msg: &[u8]) {
        let portal = parse_statement(msg).map(text).unwrap_or_default();
        let sql = self
            .admin
            .portals
            .get(&portal)
            .and_then(|s| self.admin.statements.get(s))
            .map(|(sql, _)| sql.clone())
            .unwrap_or_default();
        if let Some(info) = &self.info {
            info.begin_statement(&sql);
        }
        if let StatementKind::Preview(inner) = classify(&sql) {
            self.write_preview(&inner);
            return;
        }
        let (rt, user) = (self.rt.clone(), self.session.user.clone());
        if !write_admin(&rt, &user, &sql, false, &mut self.writer).await {
            self.skip_until_sync = true;
            self.admin.own_batch = false;
        }
    }

    /// The rows of `PREVIEW <sql>` (after their RowDescription, if any): the statement as
    /// it is, on the session's data source.
    fn write_preview(&mut self, sql: &str) {
        let ds = self.data_source.name.clone();
        super::super::preview::write_data_row(&mut self.writer.buf, &[&ds, sql]);
        self.writer
            .write(&CommandComplete::new("SELECT 1".to_string()));
    }

    /// Waits until the backend has answered every Query and Sync forwarded so far.
    pub(super) async fn settle_backend(&mut self) -> Result<(), Close> {
        if let Some(b) = &mut self.backend {
            if b.conn.writer.pending() > 0 && b.conn.writer.flush().await.is_err() {
                b.conn.healthy = false;
            }
        }
        while self.pending_syncs > 0 {
            let Some(b) = &mut self.backend else {
                return Ok(());
            };
            match b.conn.reader.fill().await {
                Ok(()) => self.on_backend_data().await?,
                Err(e) => self.on_backend_lost(e.to_string()).await?,
            }
        }
        Ok(())
    }
}

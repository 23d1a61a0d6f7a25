//! The extended query protocol in a sharded session: Parse, Bind, Describe, Execute,
//! Close, Sync and Flush.
//!
//! Statements and portals are dbmesh's, per session. Parse asks the router to prepare the
//! statement once:
//!
//! - one that names no sharded or broadcast table is a *passthrough* statement: all its
//!   messages go to the default data source as they are (`passthrough.rs`);
//! - a sharded one is described on the data source the router names
//!   ([`ShardRouter::describe_target`](crate::route::shard::ShardRouter::describe_target))
//!   for its ParameterDescription and RowDescription, its parameters are decoded at Bind
//!   (`bind_params.rs`), and it is planned once per portal with the bound values, each
//!   unit running with the client's result formats (`fanout.rs`);
//! - `PREVIEW`, `SET`, and transaction control are answered as in a simple query.
//!
//! A portal dbmesh did not bind (a cursor the client `DECLARE`d) is the default data
//! source's: its Describe, Execute and Close go there.
//!
//! After an error the client's messages are skipped up to Sync, as PostgreSQL does; Sync
//! answers ReadyForQuery with the session's status. An Execute row limit is not applied to
//! sharded statements: every row comes back, then CommandComplete.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{BindComplete, CloseComplete, ParseComplete};
use pgwire::messages::response::CommandComplete;
use postgres_protocol::message::frontend;

use super::bind_params::{decode_params, needs_types};
use super::error::SessionError;
use super::extended_messages::{
    write_unit, BindMessage, ExecuteMessage, ParseMessage, RawParams, TargetMessage,
    DBMESH_STATEMENT,
};
use super::fanout::UnitProtocol;
use super::message::frame_at;
use super::preview;
use super::sharded::{next_message, send, Broken, Outcome, ShardedSession};
use super::sharded_simple::transaction_setting;
use crate::error::Error;
use crate::route::shard::{
    ParamMode, ParamValue, Plan, PlanKind, PreparedRoute, ShardRouter, Unit,
};
use crate::sql::{classify, StatementKind};

/// The session's statements and portals.
#[derive(Default)]
pub struct Extended {
    statements: HashMap<String, Arc<Statement>>,
    /// What the data sources said of sharded statements (Describe), by statement name.
    descriptions: HashMap<String, Description>,
    portals: HashMap<String, Portal>,
    /// An error was reported: skip the client's messages up to Sync.
    skip_until_sync: bool,
}

/// A parsed statement.
struct Statement {
    sql: String,
    /// The router it was prepared with: a reload does not change what a prepared
    /// statement means.
    router: Arc<ShardRouter>,
    /// The types the client declared in Parse (0 = unspecified).
    param_types: Vec<u32>,
    route: Route,
}

/// Who answers a statement's messages.
enum Route {
    Passthrough,
    Preview(String),
    /// An admin statement, with the columns it answers (`None`: no rows).
    Admin(Option<Vec<&'static str>>),
    Set {
        local: bool,
    },
    Txn(Plan),
    Sharded(PreparedRoute),
}

/// A sharded statement's ParameterDescription and RowDescription / NoData, as a data
/// source sent them, and the parameter types they give.
#[derive(Clone)]
struct Description {
    param_types: Vec<u32>,
    messages: Bytes,
}

enum Portal {
    Passthrough,
    Own(Box<OwnPortal>),
}

/// A portal dbmesh runs itself.
struct OwnPortal {
    statement: Arc<Statement>,
    bind: BindMessage,
    /// The parameter types the values were decoded with.
    param_types: Vec<u32>,
    params: Vec<ParamValue>,
    /// Planned on first need (Describe or Execute), then kept: planning may generate keys.
    plan: Option<Plan>,
    /// The client described the portal and its Execute follows: the first unit describes.
    describe: bool,
    done: bool,
}

fn is_txn_control(kind: PlanKind) -> bool {
    matches!(
        kind,
        PlanKind::Begin | PlanKind::Commit | PlanKind::Rollback | PlanKind::Savepoint
    )
}

impl ShardedSession {
    /// Handles one extended-protocol message (whole, type byte and length included).
    pub(super) async fn extended(&mut self, tag: u8, msg: &[u8]) -> Result<(), Broken> {
        if tag == b'S' {
            return self.sync().await;
        }
        if self.ext.skip_until_sync {
            return Ok(());
        }
        let outcome = match tag {
            b'P' => self.parse(msg).await?,
            b'B' => self.bind(msg).await?,
            b'D' => self.describe(msg).await?,
            b'E' => self.execute(msg).await?,
            b'C' => self.close(msg).await?,
            _ => {
                let outcome = self.settle().await?;
                self.writer.flush().await.map_err(|_| Broken::Client)?;
                outcome
            }
        };
        if outcome == Outcome::Failed {
            self.ext.skip_until_sync = true;
        }
        Ok(())
    }

    /// Whether the client's messages are being skipped up to Sync after an error.
    pub(super) fn skipping(&self) -> bool {
        self.ext.skip_until_sync
    }

    async fn sync(&mut self) -> Result<(), Broken> {
        self.sync_passthrough().await?;
        self.ext.skip_until_sync = false;
        if self.status() == b'I' {
            // Outside a transaction, Sync ends the implicit one, and portals with it.
            self.ext.portals.clear();
        }
        self.write_ready();
        Ok(())
    }

    /// Settles the passthrough answers, then reports `e`.
    async fn settle_and_fail(&mut self, e: SessionError) -> Result<Outcome, Broken> {
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        Ok(self.fail_session(e))
    }

    async fn settle_and_fail_with(&mut self, e: &Error) -> Result<Outcome, Broken> {
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        Ok(self.fail(e))
    }

    /// Prepares a parsed statement's route. When the router must first read a table's
    /// columns, the forwarded messages are settled before the listing runs; `None` when
    /// settling reported an error of theirs (the batch is failed then).
    async fn prepare_parsed(
        &mut self,
        sql: &str,
    ) -> Result<Option<Result<PreparedRoute, Error>>, Broken> {
        let first = self.router.prepare(sql);
        if first.is_ok() || self.router.columns_wanted(sql).is_none() {
            return Ok(Some(first));
        }
        if self.settle().await? == Outcome::Failed {
            return Ok(None);
        }
        Ok(Some(self.prepare_route(sql).await))
    }

    async fn parse(&mut self, msg: &[u8]) -> Result<Outcome, Broken> {
        let p = match ParseMessage::decode(msg) {
            Ok(p) => p,
            Err(e) => return self.settle_and_fail_with(&e).await,
        };
        if !p.name.is_empty() && self.ext.statements.contains_key(&p.name) {
            return self
                .settle_and_fail(SessionError::DuplicateStatement(p.name))
                .await;
        }
        if let Some(e) = self.raw_xa_error(&p.query) {
            return self.settle_and_fail_with(&e).await;
        }
        let route = match classify(&p.query) {
            StatementKind::Admin => {
                match crate::admin::answer::describe(&self.rt, &self.session.user, &p.query) {
                    Ok(columns) => Route::Admin(columns),
                    Err(e) => return self.settle_and_fail_with(&e).await,
                }
            }
            StatementKind::Preview(inner) => Route::Preview(inner),
            StatementKind::SessionSet => Route::Set { local: false },
            _ if transaction_setting(&p.query) => Route::Set { local: true },
            _ => match self.prepare_parsed(&p.query).await? {
                None => return Ok(Outcome::Failed),
                Some(Err(e)) => return self.settle_and_fail_with(&e).await,
                Some(Ok(prepared)) if prepared.analysis.is_some() => Route::Sharded(prepared),
                Some(Ok(prepared)) if is_txn_control(prepared.kind) => {
                    match self.router.plan(&prepared, None, ParamMode::Inline) {
                        Ok(plan) => Route::Txn(plan),
                        Err(e) => return self.settle_and_fail_with(&e).await,
                    }
                }
                Some(Ok(_)) if self.saga_refuses_passthrough(&p.query) => {
                    return self
                        .settle_and_fail_with(&super::saga::passthrough_refused())
                        .await
                }
                Some(Ok(_)) => Route::Passthrough,
            },
        };
        self.ext.descriptions.remove(&p.name);
        let passthrough = matches!(route, Route::Passthrough);
        let statement = Arc::new(Statement {
            router: self.router.clone(),
            sql: p.query,
            param_types: p.param_types,
            route,
        });
        if passthrough {
            let outcome = self.forward(b'P', msg, Some(p.name.clone())).await?;
            if outcome == Outcome::Done {
                self.ext.statements.insert(p.name, statement);
            }
            return Ok(outcome);
        }
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        self.ext.statements.insert(p.name, statement);
        self.writer.write(&ParseComplete::new());
        Ok(Outcome::Done)
    }

    /// A passthrough Parse failed on the backend: the statement does not exist.
    pub(super) fn forget_statement(&mut self, name: &str) {
        if self
            .ext
            .statements
            .get(name)
            .is_some_and(|s| matches!(s.route, Route::Passthrough))
        {
            self.ext.statements.remove(name);
        }
    }

    async fn bind(&mut self, msg: &[u8]) -> Result<Outcome, Broken> {
        let b = match BindMessage::decode(msg) {
            Ok(b) => b,
            Err(e) => return self.settle_and_fail_with(&e).await,
        };
        let Some(statement) = self.ext.statements.get(&b.statement).cloned() else {
            return self
                .settle_and_fail(SessionError::UnknownStatement(b.statement))
                .await;
        };
        if let Route::Passthrough = statement.route {
            let sql = &statement.sql;
            if self
                .ensure_prepared(&b.statement, sql, &statement.param_types)
                .await?
                == Outcome::Failed
            {
                return Ok(Outcome::Failed);
            }
            let outcome = self.forward(b'B', msg, None).await?;
            self.ext.portals.insert(b.portal, Portal::Passthrough);
            return Ok(outcome);
        }
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        if !b.portal.is_empty() && matches!(self.ext.portals.get(&b.portal), Some(Portal::Own(_))) {
            return Ok(self.fail_session(SessionError::DuplicatePortal(b.portal)));
        }
        let formats = b.param_formats.len();
        if formats > 1 && formats != b.params.len() {
            return Ok(self.fail_session(SessionError::BindFormats {
                given: formats,
                params: b.params.len(),
            }));
        }
        let needed = match &statement.route {
            Route::Sharded(p) => p.param_count.max(statement.param_types.len()),
            _ => statement.param_types.len(),
        };
        if b.params.len() != needed {
            return Ok(self.fail_session(SessionError::BindCount {
                statement: b.statement,
                given: b.params.len(),
                needed,
            }));
        }
        let mut param_types = self.param_types(&b.statement, &statement);
        let mut params = Vec::new();
        if let Route::Sharded(_) = statement.route {
            if needs_types(&b, &param_types) {
                match self.describe_statement(&b.statement, &statement).await? {
                    Some(_) => param_types = self.param_types(&b.statement, &statement),
                    None => return Ok(Outcome::Failed),
                }
            }
            params = match decode_params(&b, &param_types) {
                Ok(p) => p,
                Err(e) => return Ok(self.fail(&e)),
            };
        }
        let portal = OwnPortal {
            statement,
            param_types,
            params,
            plan: None,
            describe: false,
            done: false,
            bind: b,
        };
        self.ext
            .portals
            .insert(portal.bind.portal.clone(), Portal::Own(Box::new(portal)));
        self.writer.write(&BindComplete::new());
        Ok(Outcome::Done)
    }

    /// The parameter types of a statement: those declared in Parse, the rest from its
    /// description if it has one (0 = unknown).
    fn param_types(&self, name: &str, statement: &Statement) -> Vec<u32> {
        let described = self.ext.descriptions.get(name).map(|d| &d.param_types);
        let n = statement
            .param_types
            .len()
            .max(described.map_or(0, |d| d.len()));
        (0..n)
            .map(|i| match statement.param_types.get(i) {
                Some(t) if *t != 0 => *t,
                _ => described.and_then(|d| d.get(i)).copied().unwrap_or(0),
            })
            .collect()
    }

    async fn describe(&mut self, msg: &[u8]) -> Result<Outcome, Broken> {
        let t = match TargetMessage::decode(msg) {
            Ok(t) => t,
            Err(e) => return self.settle_and_fail_with(&e).await,
        };
        if t.kind == b'S' {
            let Some(statement) = self.ext.statements.get(&t.name).cloned() else {
                return self
                    .settle_and_fail(SessionError::UnknownStatement(t.name))
                    .await;
            };
            if let Route::Passthrough = statement.route {
                let types = &statement.param_types;
                if self.ensure_prepared(&t.name, &statement.sql, types).await? == Outcome::Failed {
                    return Ok(Outcome::Failed);
                }
                return self.forward(b'D', msg, None).await;
            }
            if self.settle().await? == Outcome::Failed {
                return Ok(Outcome::Failed);
            }
            let params = ParameterDescription::new(statement.param_types.clone());
            match &statement.route {
                Route::Preview(_) => {
                    self.writer.write(&params);
                    self.writer.write(&preview::row_description());
                }
                Route::Admin(columns) => {
                    self.writer.write(&params);
                    super::admin::write_description(columns, &mut self.writer);
                }
                Route::Sharded(_) => match self.describe_statement(&t.name, &statement).await? {
                    Some(d) => self.writer.write_raw(&d.messages),
                    None => return Ok(Outcome::Failed),
                },
                _ => {
                    self.writer.write(&params);
                    self.writer.write(&NoData::new());
                }
            }
            return Ok(Outcome::Done);
        }
        // A portal dbmesh does not know may be a cursor the client DECLAREd on the default
        // data source.
        let Some(Portal::Own(mut portal)) = self.ext.portals.remove(&t.name) else {
            self.ext.portals.insert(t.name, Portal::Passthrough);
            return self.forward(b'D', msg, None).await;
        };
        let outcome = self.describe_portal(&t.name, &mut portal).await;
        self.ext.portals.insert(t.name, Portal::Own(portal));
        outcome
    }

    async fn describe_portal(
        &mut self,
        name: &str,
        portal: &mut OwnPortal,
    ) -> Result<Outcome, Broken> {
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        let statement = portal.statement.clone();
        let Route::Sharded(prepared) = &statement.route else {
            if let Route::Preview(_) = statement.route {
                self.writer.write(&preview::row_description());
            } else if let Route::Admin(columns) = &statement.route {
                super::admin::write_description(columns, &mut self.writer);
            } else {
                self.writer.write(&NoData::new());
            }
            return Ok(Outcome::Done);
        };
        if self.execute_follows(name) {
            // Described by the first unit of the Execute that follows, in one round trip.
            portal.describe = true;
            return Ok(Outcome::Done);
        }
        let plan = match self.plan_portal(prepared, portal) {
            Ok(p) => p,
            Err(e) => return Ok(self.fail(&e)),
        };
        let Some(unit) = plan.units.first().filter(|_| !is_txn_control(plan.kind)) else {
            self.writer.write(&NoData::new());
            return Ok(Outcome::Done);
        };
        let sql = unit.sql.clone().unwrap_or_else(|| statement.sql.clone());
        let keep = plan.params == ParamMode::Keep;
        let mut buf = BytesMut::new();
        let raw = keep.then(|| RawParams {
            types: &portal.param_types,
            formats: &portal.bind.param_formats,
            values: &portal.bind.params,
        });
        if let Err(e) = write_unit(
            &mut buf,
            &sql,
            raw.as_ref(),
            &portal.bind.result_formats,
            true,
            false,
        ) {
            return Ok(self.fail(&e));
        }
        let ds = unit.data_source.clone();
        match self.ask(&ds, buf).await? {
            Some(messages) => {
                // A merged statement's first unit describes derived columns too.
                let messages = match &plan.merge {
                    Some(merge) => match super::merged::rewrite_description(merge, &messages) {
                        Ok(m) => m,
                        Err(e) => return Ok(self.fail(&e)),
                    },
                    None => messages,
                };
                self.writer.write_raw(&messages);
                Ok(Outcome::Done)
            }
            None => Ok(Outcome::Failed),
        }
    }

    /// Whether the client's next message, already received, is an Execute of `portal`.
    fn execute_follows(&self, portal: &str) -> bool {
        let buf = &self.reader.buf;
        match frame_at(buf, 0, self.reader.max) {
            Ok(Some(f)) if f.tag == b'E' => {
                ExecuteMessage::decode(&buf[..f.total_len]).is_ok_and(|e| e.portal == portal)
            }
            _ => false,
        }
    }

    fn plan_portal(&self, prepared: &PreparedRoute, portal: &mut OwnPortal) -> Result<Plan, Error> {
        if let Some(plan) = &portal.plan {
            return Ok(plan.clone());
        }
        let plan =
            portal
                .statement
                .router
                .plan(prepared, Some(&portal.params), ParamMode::Inline)?;
        portal.plan = Some(plan.clone());
        Ok(plan)
    }

    /// The description of sharded statement `name`, asked of the data source the router
    /// names the first time. `None` when that failed (the client has the error).
    async fn describe_statement(
        &mut self,
        name: &str,
        statement: &Statement,
    ) -> Result<Option<Description>, Broken> {
        if let Some(d) = self.ext.descriptions.get(name) {
            return Ok(Some(d.clone()));
        }
        let Route::Sharded(prepared) = &statement.route else {
            return Ok(None);
        };
        let unit = match statement.router.describe_target(prepared) {
            Ok(u) => u,
            Err(e) => {
                self.fail(&e);
                return Ok(None);
            }
        };
        let sql = unit.sql.as_deref().unwrap_or(&statement.sql);
        let mut buf = BytesMut::new();
        let encoded = frontend::close(b'S', DBMESH_STATEMENT, &mut buf)
            .and_then(|()| {
                frontend::parse(
                    DBMESH_STATEMENT,
                    sql,
                    statement.param_types.iter().copied(),
                    &mut buf,
                )
            })
            .and_then(|()| frontend::describe(b'S', DBMESH_STATEMENT, &mut buf))
            .and_then(|()| frontend::close(b'S', DBMESH_STATEMENT, &mut buf));
        if let Err(e) = encoded {
            self.fail(&Error::Malformed(e.to_string()));
            return Ok(None);
        }
        let Some(messages) = self.ask(&unit.data_source, buf).await? else {
            return Ok(None);
        };
        let param_types = parameter_types(&messages);
        let d = Description {
            param_types,
            messages: messages.freeze(),
        };
        self.ext.descriptions.insert(name.to_string(), d.clone());
        Ok(Some(d))
    }

    /// Sends `request` and a Sync to `ds`, and returns the ParameterDescription,
    /// RowDescription and NoData messages of the answer. On an error the client gets it and
    /// the answer is `None`.
    async fn ask(&mut self, ds: &str, mut request: BytesMut) -> Result<Option<BytesMut>, Broken> {
        frontend::sync(&mut request);
        if ds == self.backends.default_name() {
            self.pass.unsynced = false;
        }
        let conn = match self.backends.open(ds, &self.session).await {
            Ok(c) => c,
            Err(e) => {
                self.fail(&e);
                return Ok(None);
            }
        };
        conn.writer.write_raw(&request);
        send(conn, ds).await?;
        let mut out = BytesMut::new();
        let mut failed = false;
        loop {
            let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
            match tag {
                b'Z' => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    break;
                }
                b't' | b'T' | b'n' => out.extend_from_slice(&msg),
                b'E' if !failed => {
                    failed = true;
                    super::error::count_backend_error(&msg);
                    self.writer.write_raw(&msg);
                }
                b'S' | b'N' => self.writer.write_raw(&msg),
                _ => {}
            }
        }
        if failed {
            self.mark_failed();
            return Ok(None);
        }
        Ok(Some(out))
    }

    async fn execute(&mut self, msg: &[u8]) -> Result<Outcome, Broken> {
        let e = match ExecuteMessage::decode(msg) {
            Ok(e) => e,
            Err(e) => return self.settle_and_fail_with(&e).await,
        };
        let Some(Portal::Own(mut portal)) = self.ext.portals.remove(&e.portal) else {
            self.ext.portals.insert(e.portal, Portal::Passthrough);
            return self.execute_passthrough(msg).await;
        };
        let outcome = self.execute_own(&mut portal).await;
        self.ext.portals.insert(e.portal, Portal::Own(portal));
        outcome
    }

    async fn execute_passthrough(&mut self, msg: &[u8]) -> Result<Outcome, Broken> {
        if self.txn.is_some() {
            if self.settle().await? == Outcome::Failed {
                return Ok(Outcome::Failed);
            }
            if self.txn_failed() {
                return Ok(self.fail_session(SessionError::TransactionAborted));
            }
            let default = self.backends.default_name().to_string();
            if !self.joined(&default) && self.join(&[default]).await? == Outcome::Failed {
                return Ok(Outcome::Failed);
            }
        }
        self.forward(b'E', msg, None).await
    }

    async fn execute_own(&mut self, portal: &mut OwnPortal) -> Result<Outcome, Broken> {
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        let statement = portal.statement.clone();
        let sql = statement.sql.as_str();
        match &statement.route {
            Route::Passthrough => unreachable!("passthrough statements make passthrough portals"),
            Route::Preview(inner) => Ok(self.preview(inner, false)),
            Route::Admin(_) => {
                let (rt, user) = (self.rt.clone(), self.session.user.clone());
                if super::admin::write_admin(&rt, &user, sql, false, &mut self.writer).await {
                    Ok(Outcome::Done)
                } else {
                    Ok(Outcome::Failed)
                }
            }
            Route::Set { local: false } => self.session_set(sql).await,
            Route::Set { local: true } if self.txn.is_some() => self.set_local(sql).await,
            Route::Set { local: true } => {
                let unit = Unit {
                    data_source: self.backends.default_name().to_string(),
                    sql: None,
                };
                self.run_units(PlanKind::Other, &[unit], sql, &UnitProtocol::Simple)
                    .await
            }
            Route::Txn(plan) => self.run_txn_control(plan.kind, &plan.units, sql).await,
            Route::Sharded(prepared) => {
                if portal.done {
                    // Run to completion already: nothing more, as PostgreSQL answers.
                    self.writer
                        .write(&CommandComplete::new("SELECT 0".to_string()));
                    return Ok(Outcome::Done);
                }
                let plan = match self.plan_portal(prepared, portal) {
                    Ok(p) => p,
                    // Under XA the UPDATE moves its rows instead (`row_move.rs`).
                    Err(Error::ShardingKeyChange { .. }) if self.xa_wanted() => {
                        let params = portal.params.clone();
                        let outcome = self.update_moving_rows(prepared, Some(&params)).await?;
                        portal.done = true;
                        return Ok(outcome);
                    }
                    Err(e) => return Ok(self.fail(&e)),
                };
                let raw = (plan.params == ParamMode::Keep).then(|| RawParams {
                    types: &portal.param_types,
                    formats: &portal.bind.param_formats,
                    values: &portal.bind.params,
                });
                let protocol = UnitProtocol::Extended {
                    result_formats: &portal.bind.result_formats,
                    describe: portal.describe,
                    params: raw,
                };
                let outcome = self.run_plan(&plan, sql, &protocol).await?;
                portal.done = true;
                portal.describe = false;
                Ok(outcome)
            }
        }
    }

    async fn close(&mut self, msg: &[u8]) -> Result<Outcome, Broken> {
        let t = match TargetMessage::decode(msg) {
            Ok(t) => t,
            Err(e) => return self.settle_and_fail_with(&e).await,
        };
        let passthrough = if t.kind == b'S' {
            self.ext.descriptions.remove(&t.name);
            self.ext
                .statements
                .remove(&t.name)
                .is_some_and(|s| matches!(s.route, Route::Passthrough))
        } else {
            !matches!(self.ext.portals.remove(&t.name), Some(Portal::Own(_)))
        };
        if passthrough {
            if t.kind == b'S' {
                let default = self.backends.default_name().to_string();
                if let Some(conn) = self.backends.get(&default) {
                    conn.prepared.remove(&t.name);
                }
            }
            return self.forward(b'C', msg, None).await;
        }
        if self.settle().await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        // Closing what does not exist is not an error.
        self.writer.write(&CloseComplete::new());
        Ok(Outcome::Done)
    }
}

/// The type OIDs of the ParameterDescription at the start of `messages`.
fn parameter_types(messages: &[u8]) -> Vec<u32> {
    if messages.first() != Some(&b't') || messages.len() < 7 {
        return Vec::new();
    }
    let n = u16::from_be_bytes([messages[5], messages[6]]) as usize;
    (0..n)
        .filter_map(|i| messages.get(7 + 4 * i..11 + 4 * i))
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

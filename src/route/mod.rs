//! Routing: which data source runs a statement.
//!
//! Today every logical database sends every statement to its default data source; sharding
//! and read/write splitting will decide here from the analysed statement.

pub mod algorithms;
pub mod data_nodes;
pub mod inline_expr;
pub mod keygen;
pub mod rw_split;
pub mod shard;

use std::sync::Arc;

use crate::config::BackendKind;
use crate::error::Error;
use crate::execute::{Cluster, DataSource, LogicalDatabase};
use crate::session::Session;

/// Where a statement runs.
pub struct Route {
    pub database: Arc<LogicalDatabase>,
    pub data_source: Arc<DataSource>,
}

/// Plans the route of a statement for `session`. With no database selected, statements go
/// to the first logical database the user may use, so driver start-up queries
/// (`SELECT @@version`, `SET NAMES`) work before `USE`; `kind` is the protocol the client
/// speaks, so that database is one it can reach.
pub fn plan(session: &Session, cluster: &Cluster, kind: BackendKind) -> Result<Route, Error> {
    let database = match &session.database {
        Some(name) => cluster
            .databases
            .get(name)
            .ok_or_else(|| Error::UnknownDatabase(name.clone()))?,
        None => cluster
            .databases
            .iter()
            .find(|(name, db)| db.config.backend == kind && session.user.may_use(name))
            .map(|(_, db)| db)
            .ok_or(Error::NoDatabaseSelected)?,
    };
    Ok(Route {
        database: database.clone(),
        data_source: database.default_data_source().clone(),
    })
}

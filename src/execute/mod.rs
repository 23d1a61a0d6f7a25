//! Execution: the data sources of every logical database, with their connection pools.
//!
//! Built once from the configuration (`Cluster::new`); frontends check out backend connections
//! through it. Protocol-specific connection types live in the wire layer; the pools here only
//! count and hold them.

pub mod pool;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{BackendKind, Config, DataSourceUrl, DatabaseConfig};
use crate::route::shard::ShardRouter;
use crate::wire::mysql::backend::{BackendConn, Profile};
use crate::wire::postgres::backend::PgBackendConn;
use pool::Pool;

/// One data source: a real database on a real server.
pub struct DataSource {
    /// Data source name from the config (`ds_0`).
    pub name: String,
    /// The logical database it belongs to.
    pub database: String,
    pub url: DataSourceUrl,
    /// Pool of MySQL backend connections (used when the logical database is MySQL).
    pub mysql: Pool<BackendConn, Profile>,
    /// Pool of PostgreSQL backend connections, keyed by the startup parameters' hash.
    pub postgres: Pool<PgBackendConn, u64>,
}

/// A logical database as apps see it, with its data sources.
pub struct LogicalDatabase {
    pub config: DatabaseConfig,
    pub data_sources: BTreeMap<String, Arc<DataSource>>,
    /// Plans statements over the sharding rules; `None` for a database without rules,
    /// whose statements all go to the default data source unchanged.
    pub router: Option<Arc<ShardRouter>>,
}

impl LogicalDatabase {
    /// The data source that takes statements no rule routes elsewhere.
    pub fn default_data_source(&self) -> &Arc<DataSource> {
        &self.data_sources[&self.config.default_data_source]
    }
}

/// Every logical database of the running configuration.
pub struct Cluster {
    pub databases: BTreeMap<String, Arc<LogicalDatabase>>,
}

impl Cluster {
    pub fn new(config: &Config) -> Cluster {
        let databases = config
            .databases
            .iter()
            .map(|(name, db)| {
                let data_sources = db
                    .data_sources
                    .iter()
                    .map(|(ds_name, ds)| {
                        (
                            ds_name.clone(),
                            Arc::new(DataSource {
                                name: ds_name.clone(),
                                database: name.clone(),
                                url: ds.url.clone(),
                                mysql: Pool::new(ds.max_connections),
                                postgres: Pool::new(ds.max_connections),
                            }),
                        )
                    })
                    .collect();
                (
                    name.clone(),
                    Arc::new(LogicalDatabase {
                        config: db.clone(),
                        data_sources,
                        router: db.sharding.as_ref().filter(|rules| !rules.is_empty()).map(
                            |rules| {
                                let router = ShardRouter::new(
                                    db,
                                    Arc::new(rules.clone()),
                                    config.server.snowflake_worker_id,
                                );
                                Arc::new(router.with_merge(match db.backend {
                                    BackendKind::Mysql => crate::wire::mysql::MERGES_RESULTS,
                                    BackendKind::Postgres => crate::wire::postgres::MERGES_RESULTS,
                                }))
                            },
                        ),
                    }),
                )
            })
            .collect();
        Cluster { databases }
    }
}

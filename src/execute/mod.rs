//! Execution: the data sources of every logical database, with their connection pools.
//!
//! Built from the configuration (`Cluster::new`), and again on a reload
//! (`Cluster::rebuild`), which keeps the data sources (and their pools) whose settings did
//! not change; frontends check out backend connections through it. Protocol-specific
//! connection types live in the wire layer; the pools here only count and hold them.

pub mod health;
pub mod health_monitor;
pub mod pool;
pub mod replicas;
pub mod upkeep;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{
    BackendKind, Config, DataSourceConfig, DataSourceUrl, DatabaseConfig, ReadWriteConfig,
    ReplicaConfig, ServerConfig,
};
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
    /// Outcomes of the connects to it.
    pub health: health::Health,
    /// A primary's replicas (each a data source of its own, named `<name>.replica_<i>`);
    /// empty for a primary alone and for a replica.
    pub replicas: Vec<Arc<DataSource>>,
    /// The replicas as configured, to tell on reload whether they changed.
    pub replica_configs: Vec<ReplicaConfig>,
    /// How reads are split over `replicas`.
    pub read_write: ReadWriteConfig,
    /// Admission state, when this data source is a replica.
    pub replica: Option<replicas::ReplicaState>,
    balancer: replicas::Balancer,
}

impl DataSource {
    /// A primary (with its replicas, their health monitors started) from its configuration.
    fn new(
        database: &str,
        config: &DataSourceConfig,
        kind: BackendKind,
        server: &ServerConfig,
    ) -> Arc<DataSource> {
        let replicas = config
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let replica = Arc::new(DataSource {
                    replica: Some(replicas::ReplicaState::new(r.weight)),
                    ..Self::bare(
                        database,
                        format!("{}.replica_{i}", config.name),
                        r.url.clone(),
                        config,
                    )
                });
                health_monitor::spawn(&replica, kind);
                upkeep::spawn(&replica, kind, server);
                replica
            })
            .collect();
        let primary = Arc::new(DataSource {
            replicas,
            replica_configs: config.replicas.clone(),
            read_write: config.read_write,
            ..Self::bare(database, config.name.clone(), config.url.clone(), config)
        });
        upkeep::spawn(&primary, kind, server);
        primary
    }

    fn bare(database: &str, name: String, url: DataSourceUrl, config: &DataSourceConfig) -> Self {
        DataSource {
            name,
            database: database.to_string(),
            url,
            mysql: Pool::with_settings(config.max_connections, config.pool),
            postgres: Pool::with_settings(config.max_connections, config.pool),
            health: Default::default(),
            replicas: Vec::new(),
            replica_configs: Vec::new(),
            read_write: config.read_write,
            replica: None,
            balancer: Default::default(),
        }
    }

    /// The admitted replica that takes the next read, by the load balancer; `None` when
    /// this data source has no replica admitted (the read goes to the primary).
    pub fn pick_replica(&self, kind: BackendKind) -> Option<&Arc<DataSource>> {
        self.balancer
            .pick(self.read_write.load_balancer, &self.replicas, kind)
    }

    /// The pool of the protocol `kind`'s connections: its counters.
    pub fn pool_stats(&self, kind: BackendKind) -> pool::PoolStats {
        match kind {
            BackendKind::Mysql => self.mysql.stats(),
            BackendKind::Postgres => self.postgres.stats(),
        }
    }
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
    /// `server.snowflake_worker_id` the routers were built with.
    snowflake_worker_id: Option<u16>,
}

impl Cluster {
    pub fn new(config: &Config) -> Cluster {
        Self::build(config, None)
    }

    /// The cluster of a reloaded `config`. A data source whose URL and pool size did not
    /// change keeps its `DataSource` (its pools, idle connections and health) so sessions
    /// holding connections to it go on using them; a logical database whose whole
    /// configuration (rules included) and the server settings its router reads did not
    /// change keeps its `LogicalDatabase` (its router, and the key generators' state).
    pub fn rebuild(config: &Config, old: &Cluster) -> Cluster {
        Self::build(config, Some(old))
    }

    fn build(config: &Config, old: Option<&Cluster>) -> Cluster {
        // Routers also read the server's snowflake worker id.
        let same_worker =
            old.is_some_and(|c| c.snowflake_worker_id == config.server.snowflake_worker_id);
        let databases = config
            .databases
            .iter()
            .map(|(name, db)| {
                let old_db = old.and_then(|c| c.databases.get(name));
                if let Some(old_db) = old_db.filter(|o| same_worker && same_database(&o.config, db))
                {
                    return (name.clone(), old_db.clone());
                }
                let data_sources = db
                    .data_sources
                    .iter()
                    .map(|(ds_name, ds)| {
                        let kept = old_db
                            .and_then(|o| o.data_sources.get(ds_name))
                            .filter(|o| o.url == ds.url && o.mysql.max() == ds.max_connections)
                            .filter(|o| o.mysql.settings() == ds.pool)
                            .filter(|o| {
                                o.replica_configs == ds.replicas && o.read_write == ds.read_write
                            })
                            .filter(|_| old_db.is_some_and(|o| o.config.backend == db.backend));
                        let source = match kept {
                            Some(kept) => kept.clone(),
                            None => DataSource::new(name, ds, db.backend, &config.server),
                        };
                        (ds_name.clone(), source)
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
        Cluster {
            databases,
            snowflake_worker_id: config.server.snowflake_worker_id,
        }
    }

    /// Every data source of every logical database, with its database (replicas follow
    /// their primary in [`DataSource::replicas`]).
    pub fn data_sources(&self) -> impl Iterator<Item = (&Arc<LogicalDatabase>, &Arc<DataSource>)> {
        self.databases
            .values()
            .flat_map(|db| db.data_sources.values().map(move |ds| (db, ds)))
    }
}

/// Whether two configurations of a logical database are the same. `DatabaseConfig` holds
/// built sharding algorithms (trait objects without `PartialEq`); their `Debug` forms
/// carry every setting, so comparing those is exact enough: a difference only costs a
/// rebuilt router.
fn same_database(a: &DatabaseConfig, b: &DatabaseConfig) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replica_keys: &str) -> Config {
        let text = format!(
            "[server]\nmysql_listen = \"127.0.0.1:3307\"\n[[users]]\nname = \"app\"\npassword = \"x\"\n\
             [databases.shop]\nbackend = \"mysql\"\n[databases.shop.data_sources.ds_0]\n\
             url = \"mysql://root@127.0.0.1:3306/a\"\n{replica_keys}"
        );
        crate::config::parse(&text, std::path::Path::new("dbmesh.toml")).unwrap()
    }

    const ONE_REPLICA: &str =
        "[[databases.shop.data_sources.ds_0.replicas]]\nurl = \"mysql://root@127.0.0.1:3307/a\"\n";

    #[test]
    fn replicas_are_data_sources_named_after_their_primary() {
        let cluster = Cluster::new(&config(ONE_REPLICA));
        let ds = &cluster.databases["shop"].data_sources["ds_0"];
        assert!(ds.replica.is_none());
        assert_eq!(ds.replicas.len(), 1);
        assert_eq!(ds.replicas[0].name, "ds_0.replica_0");
        assert_eq!(ds.replicas[0].url.port, 3307);
        assert!(ds.replicas[0].replica.as_ref().unwrap().is_admitted());
        assert!(Arc::ptr_eq(
            ds.pick_replica(BackendKind::Mysql).unwrap(),
            &ds.replicas[0]
        ));
    }

    #[test]
    fn a_reload_that_changes_the_replicas_builds_a_new_data_source() {
        let old = Cluster::new(&config(ONE_REPLICA));
        let old_ds = &old.databases["shop"].data_sources["ds_0"];
        let same = Cluster::rebuild(&config(ONE_REPLICA), &old);
        assert!(Arc::ptr_eq(
            old_ds,
            &same.databases["shop"].data_sources["ds_0"]
        ));
        let weighted = format!("{ONE_REPLICA}weight = 2\n");
        let changed = Cluster::rebuild(&config(&weighted), &old);
        let new_ds = &changed.databases["shop"].data_sources["ds_0"];
        assert!(!Arc::ptr_eq(old_ds, new_ds));
        assert_eq!(new_ds.replicas[0].replica.as_ref().unwrap().weight, 2);
        let dropped = Cluster::rebuild(&config(""), &old);
        assert!(dropped.databases["shop"].data_sources["ds_0"]
            .replicas
            .is_empty());
    }
}

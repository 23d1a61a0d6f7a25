//! A sharded logical database for tests: two physical databases (data sources `ds_0` and
//! `ds_1`) on the test server, a rule file written to a temp dir, and dbmesh in process.
//!
//! [`ORDERS_RULES`] is the reference layout of docs/sharding.md: `t_order` and
//! `t_order_item` bound, over `ds_${0..1}.t_<table>_${0..1}`, database by `user_id % 2`,
//! table by `order_id % 2`, snowflake `order_id`; `t_province` broadcast; anything else a
//! single table on `ds_0`.

use crate::{
    free_port, listen_on, unique_name, ChildProxy, MysqlDatabase, PgDatabase, Proxy, TempDir,
    APP_PASSWORD, APP_USER,
};

/// The rule file most sharding tests use (see the module docs).
pub const ORDERS_RULES: &str = r#"
binding_tables   = [["t_order", "t_order_item"]]
broadcast_tables = ["t_province"]

[tables.t_order]
nodes             = "ds_${0..1}.t_order_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }
key_generator     = { column = "order_id", generator = "snowflake" }

[tables.t_order_item]
nodes             = "ds_${0..1}.t_order_item_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }

[algorithms.db_inline]
type       = "INLINE"
expression = "ds_${user_id % 2}"

[algorithms.order_mod]
type           = "MOD"
sharding_count = 2

[key_generators.snowflake]
type      = "SNOWFLAKE"
worker_id = 1
"#;

/// The tables of [`ORDERS_RULES`], created through dbmesh (each statement fans out to every
/// actual table of its logical table; `t_province` to every data source).
pub const ORDERS_DDL: [&str; 3] = [
    "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, amount INT)",
    "CREATE TABLE t_order_item (item_id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL, user_id INT NOT NULL, sku VARCHAR(32))",
    "CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32))",
];

/// Extra configuration for [`ShardedDb::mysql_with`] / [`ShardedDb::postgres_with`].
#[derive(Debug, Default, Clone)]
pub struct Extra {
    /// Keys added to `[databases.<logical>]`.
    pub database_keys: String,
    /// Tables appended to the file; `{logical}` is replaced by the logical name.
    pub tables: String,
    /// `max_connections` per data source and `checkout_timeout_ms` (default 32, 5000).
    pub pools: Option<(u32, u64)>,
}

/// The physical databases behind one sharded logical database.
pub enum Shards {
    Mysql(Vec<MysqlDatabase>),
    Postgres(Vec<PgDatabase>),
}

/// A sharded logical database served by an in-process dbmesh. Dropping it drops the
/// physical databases and the rule file.
pub struct ShardedDb {
    pub proxy: Proxy,
    /// The logical database's name.
    pub logical: String,
    /// `ds_0`, `ds_1`, ... in order.
    pub shards: Shards,
    /// The dbmesh configuration `proxy` runs.
    toml: String,
    _dir: TempDir,
}

impl ShardedDb {
    /// `count` MariaDB databases as `ds_0..`, `rules` as the rule file; `ds_0` is the
    /// default data source.
    pub async fn mysql(rules: &str, count: usize) -> ShardedDb {
        let shards: Vec<MysqlDatabase> = (0..count)
            .map(|i| MysqlDatabase::create(&format!("shard{i}")))
            .collect();
        let urls: Vec<String> = shards.iter().map(MysqlDatabase::url).collect();
        Self::start("mysql", rules, &urls, Shards::Mysql(shards)).await
    }

    /// [`ShardedDb::mysql`] with pools of `max_connections` per data source and a checkout
    /// timeout of `checkout_timeout_ms` (for tests of pool exhaustion).
    pub async fn mysql_with_pools(
        rules: &str,
        count: usize,
        max_connections: u32,
        checkout_timeout_ms: u64,
    ) -> ShardedDb {
        let shards: Vec<MysqlDatabase> = (0..count)
            .map(|i| MysqlDatabase::create(&format!("shard{i}")))
            .collect();
        let urls: Vec<String> = shards.iter().map(MysqlDatabase::url).collect();
        let extra = Extra {
            pools: Some((max_connections, checkout_timeout_ms)),
            ..Extra::default()
        };
        Self::start_with("mysql", rules, &urls, Shards::Mysql(shards), None, &extra).await
    }

    /// `count` PostgreSQL databases as `ds_0..`, `rules` as the rule file.
    pub async fn postgres(rules: &str, count: usize) -> ShardedDb {
        let shards: Vec<PgDatabase> = (0..count)
            .map(|i| PgDatabase::create(&format!("shard{i}")))
            .collect();
        let urls: Vec<String> = shards.iter().map(PgDatabase::url).collect();
        Self::start("postgres", rules, &urls, Shards::Postgres(shards)).await
    }

    /// [`ShardedDb::postgres`] with one more user, authenticated by cleartext password
    /// (what [`crate::PgRaw`] can answer).
    pub async fn postgres_with_raw_user(
        rules: &str,
        count: usize,
        user: (&str, &str),
    ) -> ShardedDb {
        let shards: Vec<PgDatabase> = (0..count)
            .map(|i| PgDatabase::create(&format!("shard{i}")))
            .collect();
        let urls: Vec<String> = shards.iter().map(PgDatabase::url).collect();
        Self::start_with(
            "postgres",
            rules,
            &urls,
            Shards::Postgres(shards),
            Some(user),
            &Extra::default(),
        )
        .await
    }

    async fn start(backend: &str, rules: &str, urls: &[String], shards: Shards) -> ShardedDb {
        Self::start_with(backend, rules, urls, shards, None, &Extra::default()).await
    }

    /// [`ShardedDb::mysql`] with extra config: keys of the logical database's table
    /// (`transaction = "XA"`) and tables at the end of the file (`[transaction]`, where
    /// `{logical}` stands for the logical database's name).
    pub async fn mysql_with(rules: &str, count: usize, extra: &Extra) -> ShardedDb {
        let shards: Vec<MysqlDatabase> = (0..count)
            .map(|i| MysqlDatabase::create(&format!("shard{i}")))
            .collect();
        let urls: Vec<String> = shards.iter().map(MysqlDatabase::url).collect();
        Self::start_with("mysql", rules, &urls, Shards::Mysql(shards), None, extra).await
    }

    /// [`ShardedDb::postgres`] with extra config, as [`ShardedDb::mysql_with`].
    pub async fn postgres_with(rules: &str, count: usize, extra: &Extra) -> ShardedDb {
        let shards: Vec<PgDatabase> = (0..count)
            .map(|i| PgDatabase::create(&format!("shard{i}")))
            .collect();
        let urls: Vec<String> = shards.iter().map(PgDatabase::url).collect();
        Self::start_with(
            "postgres",
            rules,
            &urls,
            Shards::Postgres(shards),
            None,
            extra,
        )
        .await
    }

    /// The configuration the in-process dbmesh runs (for starting others like it).
    pub fn toml(&self) -> &str {
        &self.toml
    }

    async fn start_with(
        backend: &str,
        rules: &str,
        urls: &[String],
        shards: Shards,
        extra_user: Option<(&str, &str)>,
        extra: &Extra,
    ) -> ShardedDb {
        let (max_connections, checkout_timeout_ms) = extra.pools.unwrap_or((32, 5000));
        let dir = TempDir::new("rules");
        let rules_path = dir.path.join("rules.toml");
        std::fs::write(&rules_path, rules).expect("write rule file");
        let logical = unique_name("logical");
        let users = extra_user.map_or(String::new(), |(name, password)| {
            crate::pg_user(name, password, "password", &[&logical])
        });
        let mut sources = String::new();
        for (i, url) in urls.iter().enumerate() {
            sources.push_str(&format!(
                "[databases.{logical}.data_sources.ds_{i}]\nurl = \"{url}\"\nmax_connections = {max_connections}\n\n"
            ));
        }
        let toml = format!(
            r#"
[server]
{backend}_listen = "127.0.0.1:0"
connect_timeout_ms = 2000
checkout_timeout_ms = {checkout_timeout_ms}

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{logical}"]
{users}
[databases.{logical}]
backend = "{backend}"
default_data_source = "ds_0"
rules = ["{rules}"]
{database_keys}

{sources}
{tables}"#,
            rules = rules_path.display(),
            database_keys = extra.database_keys,
            tables = extra.tables.replace("{logical}", &logical),
        );
        let proxy = Proxy::start(&toml).await;
        ShardedDb {
            proxy,
            logical,
            shards,
            toml,
            _dir: dir,
        }
    }

    /// The same sharded MySQL database served by a separate dbmesh process, on a free port
    /// (for measuring dbmesh's own memory); killed when dropped.
    pub async fn mysql_child(&self) -> ChildProxy {
        let port = free_port();
        ChildProxy::start(&listen_on(&self.toml, port), port).await
    }

    /// [`ShardedDb::mysql_child`] with `env` set in the child's environment.
    pub async fn mysql_child_with_env(&self, env: &[(&str, &str)]) -> ChildProxy {
        let port = free_port();
        ChildProxy::start_with_env(&listen_on(&self.toml, port), port, env).await
    }

    /// The same sharded PostgreSQL database served by a separate dbmesh process, on a free
    /// port (for measuring dbmesh's own memory); killed when dropped.
    pub async fn pg_child(&self) -> ChildProxy {
        let port = free_port();
        ChildProxy::start(&crate::pg_listen_on(&self.toml, port), port).await
    }

    /// mysql_async options for the app user into the logical database.
    pub fn mysql_opts(&self) -> mysql_async::Opts {
        self.proxy.app_opts(&self.logical)
    }

    /// A tokio-postgres / libpq connection string for the app user.
    pub fn pg_dsn(&self) -> String {
        self.proxy.pg_dsn(APP_USER, APP_PASSWORD, &self.logical)
    }

    /// Direct mysql_async options for data source `ds_<i>` (MySQL shards only).
    pub fn mysql_direct(&self, i: usize) -> mysql_async::Opts {
        match &self.shards {
            Shards::Mysql(dbs) => dbs[i].direct_opts(),
            Shards::Postgres(_) => panic!("not a MySQL sharded database"),
        }
    }

    /// Runs `sql` on data source `ds_<i>` directly, not through dbmesh (MySQL shards only):
    /// what a data node really holds.
    pub async fn mysql_direct_query<T>(&self, i: usize, sql: &str) -> Vec<T>
    where
        T: mysql_async::prelude::FromRow + Send + 'static,
    {
        use mysql_async::prelude::Queryable;
        let mut conn = mysql_async::Conn::new(self.mysql_direct(i))
            .await
            .expect("direct connection to the data source");
        let rows = conn.query(sql).await.expect("direct query");
        let _ = conn.disconnect().await;
        rows
    }

    /// Direct tokio-postgres connection string for data source `ds_<i>` (PostgreSQL only).
    pub fn pg_direct(&self, i: usize) -> String {
        match &self.shards {
            Shards::Postgres(dbs) => dbs[i].direct_dsn(),
            Shards::Mysql(_) => panic!("not a PostgreSQL sharded database"),
        }
    }
}

//! A dbmesh for admin and reload tests, loaded from a real file (so `RELOAD DBMESH CONFIG`
//! and SIGHUP have something to read again): a sharded logical database with
//! [`ORDERS_RULES`](crate::ORDERS_RULES) over two data sources, an unsharded one, and
//! `ghost`, whose only data source is unreachable and has a password in its URL; users
//! `app` (not admin) and `admin` (`admin = true`).

use std::path::PathBuf;

use crate::{MysqlDatabase, PgDatabase, Proxy, TempDir, APP_PASSWORD, APP_USER, ORDERS_RULES};

/// The admin user's name and password.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// The password in `ghost`'s data source URL, which admin output must never show.
pub const GHOST_PASSWORD: &str = "ghost-s3cret";

/// The physical databases behind an [`AdminCluster`].
pub enum AdminShards {
    Mysql(Vec<MysqlDatabase>),
    Postgres(Vec<PgDatabase>),
}

/// The configuration files and physical databases of an admin test; see the module docs.
pub struct AdminCluster {
    /// `mysql` or `postgres`.
    pub backend: &'static str,
    /// The sharded logical database, and the unsharded one.
    pub sharded: String,
    pub plain: String,
    pub ghost: String,
    /// The config file and the rule file it names.
    pub config_path: PathBuf,
    pub rules_path: PathBuf,
    /// ds_0, ds_1 of `sharded`, then `plain`'s data source.
    pub shards: AdminShards,
    /// The port the listener binds: 0 in process, a fixed one for a child process.
    pub port: u16,
    pub dir: TempDir,
}

impl AdminCluster {
    /// Creates the databases and writes the files; `port` 0 = ephemeral.
    pub fn new(backend: &'static str, port: u16) -> AdminCluster {
        let dir = TempDir::new("admin");
        let shards = match backend {
            "mysql" => AdminShards::Mysql(
                (0..3)
                    .map(|i| MysqlDatabase::create(&format!("adm{i}")))
                    .collect(),
            ),
            _ => AdminShards::Postgres(
                (0..3)
                    .map(|i| PgDatabase::create(&format!("adm{i}")))
                    .collect(),
            ),
        };
        let cluster = AdminCluster {
            backend,
            sharded: crate::unique_name("sharded"),
            plain: crate::unique_name("plain"),
            // Sorts last: sessions without a database go to the first one they may use.
            ghost: crate::unique_name("zz_ghost"),
            config_path: dir.path.join("dbmesh.toml"),
            rules_path: dir.path.join("rules.toml"),
            shards,
            port,
            dir,
        };
        std::fs::write(&cluster.rules_path, ORDERS_RULES).unwrap();
        std::fs::write(&cluster.config_path, cluster.config_text("")).unwrap();
        cluster
    }

    /// The name of physical database `i`.
    pub fn physical(&self, i: usize) -> String {
        match &self.shards {
            AdminShards::Mysql(dbs) => dbs[i].name.clone(),
            AdminShards::Postgres(dbs) => dbs[i].name.clone(),
        }
    }

    /// The data source URL of physical database `i`.
    pub fn url(&self, i: usize) -> String {
        match &self.shards {
            AdminShards::Mysql(dbs) => dbs[i].url(),
            AdminShards::Postgres(dbs) => dbs[i].url(),
        }
    }

    /// The configuration, with `server_extra` lines added to `[server]`.
    pub fn config_text(&self, server_extra: &str) -> String {
        let backend = self.backend;
        let (sharded, plain, ghost) = (&self.sharded, &self.plain, &self.ghost);
        let ghost_url = match backend {
            "mysql" => format!("mysql://root:{GHOST_PASSWORD}@127.0.0.1:1/ghost"),
            _ => format!("postgres://postgres:{GHOST_PASSWORD}@127.0.0.1:1/ghost"),
        };
        format!(
            r#"[server]
{backend}_listen = "127.0.0.1:{port}"
connect_timeout_ms = 2000
checkout_timeout_ms = 5000
{server_extra}

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{sharded}", "{plain}", "{ghost}"]

[[users]]
name = "{ADMIN_USER}"
password = "{ADMIN_PASSWORD}"
databases = ["*"]
admin = true

[databases.{sharded}]
backend = "{backend}"
default_data_source = "ds_0"
rules = ["{rules}"]

[databases.{sharded}.data_sources.ds_0]
url = "{ds0}"
max_connections = 32

[databases.{sharded}.data_sources.ds_1]
url = "{ds1}"
max_connections = 32

[databases.{plain}]
backend = "{backend}"
default_data_source = "ds_0"

[databases.{plain}.data_sources.ds_0]
url = "{ds2}"

[databases.{ghost}]
backend = "{backend}"
default_data_source = "ds_0"

[databases.{ghost}.data_sources.ds_0]
url = "{ghost_url}"
"#,
            port = self.port,
            rules = self.rules_path.display(),
            ds0 = self.url(0),
            ds1 = self.url(1),
            ds2 = self.url(2),
        )
    }

    /// Starts dbmesh in process from the config file.
    pub async fn start(&self) -> Proxy {
        let config = dbmesh::config::load(&self.config_path)
            .unwrap_or_else(|e| panic!("admin test config is invalid:\n{e}"));
        let server = dbmesh::Server::start(config).await.expect("proxy starts");
        Proxy { server }
    }

    /// Rewrites the rule file.
    pub fn write_rules(&self, rules: &str) {
        std::fs::write(&self.rules_path, rules).unwrap();
    }

    /// Rewrites the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// Direct mysql_async options for physical database `i` (MySQL only).
    pub fn mysql_direct(&self, i: usize) -> mysql_async::Opts {
        match &self.shards {
            AdminShards::Mysql(dbs) => dbs[i].direct_opts(),
            AdminShards::Postgres(_) => panic!("not MySQL"),
        }
    }

    /// Direct connection string for physical database `i` (PostgreSQL only).
    pub fn pg_direct(&self, i: usize) -> String {
        match &self.shards {
            AdminShards::Postgres(dbs) => dbs[i].direct_dsn(),
            AdminShards::Mysql(_) => panic!("not PostgreSQL"),
        }
    }
}

/// [`ORDERS_RULES`] with `t_order`'s rows placed on the other data source: users with an
/// even id go to `ds_1`, odd ones to `ds_0`.
pub fn swapped_orders_rules() -> String {
    let swapped = ORDERS_RULES.replace(
        r#"expression = "ds_${user_id % 2}""#,
        r#"expression = "ds_${1 - user_id % 2}""#,
    );
    assert_ne!(swapped, ORDERS_RULES, "the rule to swap is in ORDERS_RULES");
    swapped
}

//! From raw sections to a [`Config`]: every cross-check, every environment
//! lookup and every file-existence check, all problems reported together.

mod pool;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::data_source_url::DataSourceUrl;
use super::document::{DatabaseSection, Document, Section};
use super::error::{child_key, index_key, Report};
use super::model::{
    BackendKind, Config, DataSourceConfig, DatabaseConfig, LoadBalancer, LogFormat,
    MysqlAuthPlugin, PoolMode, PostgresAuthMethod, ReadWriteConfig, ReplicaConfig, ServerConfig,
    TransactionType, TransactionalRead, UserConfig,
};
use super::raw::{RawDataSource, RawServer, RawUser};

/// Reads an environment variable; injected so tests need not touch the process environment.
pub(super) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What validation needs besides the document.
pub(super) struct Context<'a> {
    /// The config file, as given.
    pub path: &'a Path,
    /// Relative paths in the file are resolved against this directory.
    pub base_dir: &'a Path,
    pub env: EnvLookup<'a>,
}

/// Checks `document` and builds the [`Config`]; the result is only meaningful
/// when `report` is still empty afterwards.
pub(super) fn validate(document: Document, cx: &Context<'_>, report: &mut Report) -> Config {
    let database_names: BTreeSet<&str> =
        document.databases.iter().map(|d| d.name.as_str()).collect();
    let server = server(document.server.as_ref(), cx, report);
    let users = users(
        &document.users,
        &database_names,
        server.tls.is_some(),
        cx,
        report,
    );
    let databases: BTreeMap<String, DatabaseConfig> = document
        .databases
        .iter()
        .filter_map(|d| database(d, cx, report).map(|db| (d.name.clone(), db)))
        .collect();
    let transaction =
        super::transaction::transaction(document.transaction.as_ref(), &databases, cx, report);
    Config {
        path: cx.path.to_path_buf(),
        server,
        users,
        databases,
        transaction,
    }
}

fn server(
    section: Option<&Section<RawServer>>,
    cx: &Context<'_>,
    report: &mut Report,
) -> ServerConfig {
    let mut server = ServerConfig {
        mysql_listen: None,
        postgres_listen: None,
        admin_listen: None,
        mysql_server_version: None,
        mysql_auth_plugin: MysqlAuthPlugin::MysqlNativePassword,
        rsa_private_key: None,
        rsa_public_key: None,
        max_packet_size: ServerConfig::DEFAULT_MAX_PACKET_SIZE,
        connect_timeout: ServerConfig::DEFAULT_CONNECT_TIMEOUT,
        checkout_timeout: ServerConfig::DEFAULT_CHECKOUT_TIMEOUT,
        worker_threads: None,
        snowflake_worker_id: None,
        log_level: None,
        tls: None,
        log_format: LogFormat::Text,
        slow_statement: None,
        shutdown_timeout: ServerConfig::DEFAULT_SHUTDOWN_TIMEOUT,
        pool_mode: PoolMode::Transaction,
        pool_check_idle: ServerConfig::DEFAULT_POOL_CHECK_IDLE,
        config_watch: None,
    };
    let Some(section) = section else {
        report.at(
            None,
            "server",
            "missing [server] table; it needs at least one of mysql_listen or postgres_listen",
        );
        return server;
    };
    let Some(raw) = &section.raw else {
        return server;
    };
    let key = |field: &str| child_key("server", field);

    if raw.mysql_listen.is_none() && raw.postgres_listen.is_none() {
        report.at(
            Some(section.span.clone()),
            "server",
            "set at least one of mysql_listen or postgres_listen, e.g. mysql_listen = \"127.0.0.1:3307\"",
        );
    }
    server.mysql_listen = listen_address(raw.mysql_listen.as_ref(), &key("mysql_listen"), report);
    server.postgres_listen = listen_address(
        raw.postgres_listen.as_ref(),
        &key("postgres_listen"),
        report,
    );
    server.admin_listen = listen_address(raw.admin_listen.as_ref(), &key("admin_listen"), report);
    let listeners = [
        ("mysql_listen", server.mysql_listen, &raw.mysql_listen),
        (
            "postgres_listen",
            server.postgres_listen,
            &raw.postgres_listen,
        ),
        ("admin_listen", server.admin_listen, &raw.admin_listen),
    ];
    for (i, (name, addr, value)) in listeners.iter().enumerate() {
        let (Some(addr), Some(value)) = (addr, value) else {
            continue;
        };
        // Port 0 asks the system for a free port, so two such listeners never clash.
        if addr.port() == 0 {
            continue;
        }
        if let Some((first, ..)) = listeners[..i]
            .iter()
            .find(|(_, other, _)| *other == Some(*addr))
        {
            report.at(
                Some(value.span()),
                key(name),
                format!(
                    "{addr} is already used by server.{first}; each listener needs its own port"
                ),
            );
        }
    }

    if let Some(version) = &raw.mysql_server_version {
        if !version.get_ref().starts_with(|c: char| c.is_ascii_digit()) {
            report.at(
                Some(version.span()),
                key("mysql_server_version"),
                "must start with a version number, e.g. \"8.0.36\"; leave it out to use the backend's version",
            );
        }
        server.mysql_server_version = Some(version.get_ref().clone());
    }
    if let Some(plugin) = auth_plugin(
        raw.mysql_auth_plugin.as_ref(),
        &key("mysql_auth_plugin"),
        report,
    ) {
        server.mysql_auth_plugin = plugin;
    }
    server.rsa_private_key = existing_file(
        raw.rsa_private_key.as_ref(),
        &key("rsa_private_key"),
        cx,
        report,
    );
    server.rsa_public_key = existing_file(
        raw.rsa_public_key.as_ref(),
        &key("rsa_public_key"),
        cx,
        report,
    );

    if let Some(size) = &raw.max_packet_size {
        if *size.get_ref() < ServerConfig::MIN_MAX_PACKET_SIZE {
            report.at(
                Some(size.span()),
                key("max_packet_size"),
                format!(
                    "must be at least {} bytes (the default is {} = 64 MiB)",
                    ServerConfig::MIN_MAX_PACKET_SIZE,
                    ServerConfig::DEFAULT_MAX_PACKET_SIZE
                ),
            );
        }
        server.max_packet_size = *size.get_ref();
    }
    if let Some(ms) = positive(
        raw.connect_timeout_ms.as_ref(),
        &key("connect_timeout_ms"),
        report,
    ) {
        server.connect_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(
        raw.checkout_timeout_ms.as_ref(),
        &key("checkout_timeout_ms"),
        report,
    ) {
        server.checkout_timeout = Duration::from_millis(ms);
    }
    server.worker_threads = positive(raw.worker_threads.as_ref(), &key("worker_threads"), report);
    server.config_watch = positive(
        raw.config_watch_ms.as_ref(),
        &key("config_watch_ms"),
        report,
    )
    .map(Duration::from_millis);
    if let Some(id) = &raw.snowflake_worker_id {
        match u16::try_from(*id.get_ref()) {
            Ok(worker) if worker <= 1023 => server.snowflake_worker_id = Some(worker),
            _ => report.at(
                Some(id.span()),
                key("snowflake_worker_id"),
                format!("must be between 0 and 1023, got {}", id.get_ref()),
            ),
        }
    }
    if let Some(level) = &raw.log_level {
        if level.get_ref().trim().is_empty() {
            report.at(
                Some(level.span()),
                key("log_level"),
                "must not be empty; leave it out for the default",
            );
        }
        server.log_level = Some(level.get_ref().clone());
    }
    server.tls = server_tls(raw, cx, report);
    operations(raw, &mut server, report);
    server
}

/// `tls_cert` + `tls_key` (+ `tls_min_version`): both files exist, parse, and belong
/// together.
fn server_tls(
    raw: &RawServer,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<crate::tls::ServerTls> {
    use crate::tls::{ServerTls, TlsVersion};
    let key = |field: &str| child_key("server", field);
    let min_version = match &raw.tls_min_version {
        None => TlsVersion::default(),
        Some(v) => TlsVersion::from_name(v.get_ref()).unwrap_or_else(|| {
            report.at(
                Some(v.span()),
                key("tls_min_version"),
                bad_value(v.get_ref(), TlsVersion::ALL.map(|t| t.name())),
            );
            TlsVersion::default()
        }),
    };
    let cert = existing_file(raw.tls_cert.as_ref(), &key("tls_cert"), cx, report);
    let private = existing_file(raw.tls_key.as_ref(), &key("tls_key"), cx, report);
    match (&raw.tls_cert, &raw.tls_key) {
        (Some(_), None) => report.at(
            raw.tls_cert.as_ref().map(|c| c.span()),
            key("tls_key"),
            "tls_cert is set but tls_key is not; TLS needs both the certificate and its private key",
        ),
        (None, Some(_)) => report.at(
            raw.tls_key.as_ref().map(|k| k.span()),
            key("tls_cert"),
            "tls_key is set but tls_cert is not; TLS needs both the certificate and its private key",
        ),
        (None, None) => {
            if let Some(v) = &raw.tls_min_version {
                report.at(
                    Some(v.span()),
                    key("tls_min_version"),
                    "has no effect without tls_cert and tls_key",
                );
            }
        }
        (Some(_), Some(_)) => {}
    }
    let (cert, private) = (cert?, private?);
    if !cert.is_file() || !private.is_file() {
        return None; // already reported
    }
    match ServerTls::load(&cert, &private, min_version) {
        Ok(tls) => Some(tls),
        Err(e) => {
            report.at(raw.tls_cert.as_ref().map(|c| c.span()), key("tls_cert"), e);
            None
        }
    }
}

/// The operations keys of `[server]`: log format, slow-statement log, shutdown deadline.
fn operations(raw: &RawServer, server: &mut ServerConfig, report: &mut Report) {
    let key = |field: &str| child_key("server", field);
    pool::server_keys(raw, server, report);
    if let Some(format) = &raw.log_format {
        match LogFormat::from_name(format.get_ref()) {
            Some(f) => server.log_format = f,
            None => report.at(
                Some(format.span()),
                key("log_format"),
                bad_value(format.get_ref(), LogFormat::ALL.map(|f| f.name())),
            ),
        }
    }
    // 0 would log every statement: allowed, a debugging aid.
    server.slow_statement = raw
        .slow_statement_ms
        .as_ref()
        .map(|ms| Duration::from_millis(*ms.get_ref()));
    if let Some(ms) = positive(
        raw.shutdown_timeout_ms.as_ref(),
        &key("shutdown_timeout_ms"),
        report,
    ) {
        server.shutdown_timeout = Duration::from_millis(ms);
    }
}

fn users(
    sections: &[Section<RawUser>],
    database_names: &BTreeSet<&str>,
    tls_configured: bool,
    cx: &Context<'_>,
    report: &mut Report,
) -> Vec<UserConfig> {
    if sections.is_empty() {
        report.at(
            None,
            "users",
            "no [[users]] defined; clients need at least one user to log in",
        );
    }
    let mut first_by_name: HashMap<&str, &str> = HashMap::new();
    let mut users = Vec::new();
    for section in sections {
        let Some(raw) = &section.raw else { continue };
        let key = |field: &str| child_key(&section.key, field);
        let name = raw.name.get_ref();
        if name.is_empty() {
            report.at(Some(raw.name.span()), key("name"), "must not be empty");
        } else if let Some(first) = first_by_name.get(name.as_str()) {
            report.at(
                Some(raw.name.span()),
                key("name"),
                format!("duplicate user `{name}`, already defined by {first}"),
            );
        } else {
            first_by_name.insert(name, &section.key);
        }

        let password = match (&raw.password, &raw.password_env) {
            (Some(password), None) => inline_password(password, &key("password"), cx, report),
            (None, Some(var)) => env_password(var, &key("password_env"), cx, report),
            (Some(_), Some(var)) => {
                report.at(
                    Some(var.span()),
                    key("password_env"),
                    "set either password or password_env, not both",
                );
                None
            }
            (None, None) => {
                report.at(
                    Some(section.span.clone()),
                    section.key.clone(),
                    format!("user `{name}` has no password; set password or password_env"),
                );
                None
            }
        };

        for (i, database) in raw.databases.iter().enumerate() {
            let database_name = database.get_ref().as_str();
            if database_name != "*" && !database_names.contains(database_name) {
                report.at(
                    Some(database.span()),
                    index_key(&key("databases"), i),
                    format!(
                        "unknown database `{database_name}`; defined databases: {} (or \"*\" for all)",
                        list_or_none(database_names.iter().copied())
                    ),
                );
            }
        }

        if raw.require_tls && !tls_configured {
            report.at(
                Some(section.span.clone()),
                key("require_tls"),
                format!("user `{name}` requires TLS but the server offers none; set server.tls_cert and server.tls_key"),
            );
        }

        users.push(UserConfig {
            name: name.clone(),
            password: password.unwrap_or_default(),
            databases: raw.databases.iter().map(|d| d.get_ref().clone()).collect(),
            mysql_auth_plugin: auth_plugin(
                raw.mysql_auth_plugin.as_ref(),
                &key("mysql_auth_plugin"),
                report,
            ),
            postgres_auth: postgres_auth(raw.postgres_auth.as_ref(), &key("postgres_auth"), report),
            admin: raw.admin,
            require_tls: raw.require_tls,
        });
    }
    users
}

fn database(db: &DatabaseSection, cx: &Context<'_>, report: &mut Report) -> Option<DatabaseConfig> {
    let section = &db.section;
    let key = |field: &str| child_key(&section.key, field);
    let data_source_names: Vec<&str> = db.data_sources.iter().map(|(n, _)| n.as_str()).collect();
    if db.data_sources.is_empty() {
        report.at(
            Some(section.span.clone()),
            section.key.clone(),
            format!(
                "database `{}` has no data sources; add a [{}.<name>] table with a url",
                db.name,
                key("data_sources")
            ),
        );
    }
    let raw = section.raw.as_ref()?;

    let backend = BackendKind::from_name(raw.backend.get_ref());
    if backend.is_none() {
        report.at(
            Some(raw.backend.span()),
            key("backend"),
            bad_value(raw.backend.get_ref(), BackendKind::ALL.map(|b| b.name())),
        );
    }

    let default_data_source = match &raw.default_data_source {
        Some(name) => {
            if !data_source_names.contains(&name.get_ref().as_str())
                && !data_source_names.is_empty()
            {
                report.at(
                    Some(name.span()),
                    key("default_data_source"),
                    format!(
                        "unknown data source `{}`; data sources of `{}`: {}",
                        name.get_ref(),
                        db.name,
                        list_or_none(data_source_names.iter().copied())
                    ),
                );
            }
            name.get_ref().clone()
        }
        None => match data_source_names.as_slice() {
            [only] => only.to_string(),
            [] => String::new(),
            _ => {
                report.at(
                    Some(section.span.clone()),
                    key("default_data_source"),
                    format!(
                        "missing; database `{}` has several data sources ({}), name the one for unsharded tables",
                        db.name,
                        list_or_none(data_source_names.iter().copied())
                    ),
                );
                String::new()
            }
        },
    };

    let rules: Vec<PathBuf> = raw
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| existing_file(Some(rule), &index_key(&key("rules"), i), cx, report))
        .collect();

    let transaction = match &raw.transaction {
        None => TransactionType::Local,
        Some(value) => match TransactionType::from_name(value.get_ref()) {
            Some(TransactionType::Saga) if backend == Some(BackendKind::Postgres) => {
                report.at(
                    Some(value.span()),
                    key("transaction"),
                    "SAGA transactions are implemented for MySQL databases only yet; use \"LOCAL\" (one transaction per data source) or \"XA\" (two-phase commit, see docs/transactions.md)",
                );
                TransactionType::Local
            }
            Some(t) => t,
            None => {
                report.at(
                    Some(value.span()),
                    key("transaction"),
                    bad_value(value.get_ref(), TransactionType::ALL.map(|t| t.name())),
                );
                TransactionType::Local
            }
        },
    };

    let data_sources = db
        .data_sources
        .iter()
        .filter_map(|(name, ds)| {
            let config = data_source(name, ds, &db.name, backend, cx, report)?;
            Some((name.clone(), config))
        })
        .collect::<BTreeMap<_, _>>();

    // Rule files are read only when they exist (a missing one is reported above).
    let readable: Vec<PathBuf> = rules.iter().filter(|p| p.is_file()).cloned().collect();
    let sharding = match super::rules::load_all(&readable, &db.name, &data_source_names) {
        Ok(sharding) => sharding,
        Err(error) => {
            report.absorb(error);
            None
        }
    };

    Some(DatabaseConfig {
        name: db.name.clone(),
        backend: backend.unwrap_or(BackendKind::Mysql),
        default_data_source,
        rules,
        transaction,
        data_sources,
        sharding,
    })
}

fn data_source(
    name: &str,
    section: &Section<RawDataSource>,
    database: &str,
    backend: Option<BackendKind>,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<DataSourceConfig> {
    let raw = section.raw.as_ref()?;
    let key = |field: &str| child_key(&section.key, field);

    let url = backend_url(
        &raw.url,
        raw.password_env.as_ref(),
        &section.key,
        database,
        backend,
        cx,
        report,
    );
    let max_connections = positive(
        raw.max_connections.as_ref(),
        &key("max_connections"),
        report,
    )
    .unwrap_or(DataSourceConfig::DEFAULT_MAX_CONNECTIONS);
    let pool = pool::settings(raw, &section.key, max_connections, report);

    let mut replicas = Vec::new();
    let mut replicas_ok = true;
    for (i, replica) in raw.replicas.iter().enumerate() {
        let replica_key = index_key(&key("replicas"), i);
        let url = backend_url(
            &replica.url,
            replica.password_env.as_ref(),
            &replica_key,
            database,
            backend,
            cx,
            report,
        );
        let weight = positive(
            replica.weight.as_ref(),
            &child_key(&replica_key, "weight"),
            report,
        )
        .unwrap_or(1);
        match url {
            Some(url) => replicas.push(ReplicaConfig { url, weight }),
            None => replicas_ok = false,
        }
    }
    let read_write = read_write(raw, &section.key, report);

    let url = url?;
    if !replicas_ok {
        return None;
    }
    Some(DataSourceConfig {
        name: name.to_string(),
        url,
        max_connections,
        pool,
        replicas,
        read_write,
    })
}

/// A data source's primary or replica URL: it parses, its scheme matches the database's
/// backend, the password is taken from `password_env` when set, and its TLS settings hold.
#[allow(clippy::too_many_arguments)]
fn backend_url(
    raw_url: &Spanned<String>,
    password_env: Option<&Spanned<String>>,
    section_key: &str,
    database: &str,
    backend: Option<BackendKind>,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<DataSourceUrl> {
    let key = |field: &str| child_key(section_key, field);
    let url = match DataSourceUrl::parse(raw_url.get_ref()) {
        Ok(url) => Some(url),
        Err(problems) => {
            for problem in problems {
                report.at(Some(raw_url.span()), key("url"), problem);
            }
            None
        }
    };
    if let (Some(url), Some(backend)) = (&url, backend) {
        if url.kind != backend {
            report.at(
                Some(raw_url.span()),
                key("url"),
                format!(
                    "this is a {} URL but database `{database}` has backend = \"{}\"",
                    url.kind.name(),
                    backend.name()
                ),
            );
        }
    }
    let password = password_env.and_then(|var| env_password(var, &key("password_env"), cx, report));
    let mut url = url?;
    if let Some(password) = password {
        url.password = password;
    }
    url.tls = backend_tls(&url, raw_url, &key("url"), cx, report);
    Some(url)
}

/// The read/write splitting settings of a data source; each is refused without replicas,
/// where it would silently do nothing.
fn read_write(raw: &RawDataSource, section_key: &str, report: &mut Report) -> ReadWriteConfig {
    let key = |field: &str| child_key(section_key, field);
    let mut config = ReadWriteConfig::default();
    if raw.replicas.is_empty() {
        let spans = [
            (
                "load_balancer",
                raw.load_balancer.as_ref().map(|v| v.span()),
            ),
            (
                "transactional_read",
                raw.transactional_read.as_ref().map(|v| v.span()),
            ),
            (
                "max_replica_lag_ms",
                raw.max_replica_lag_ms.as_ref().map(|v| v.span()),
            ),
            (
                "health_check_interval_ms",
                raw.health_check_interval_ms.as_ref().map(|v| v.span()),
            ),
            (
                "read_your_writes_timeout_ms",
                raw.read_your_writes_timeout_ms.as_ref().map(|v| v.span()),
            ),
        ];
        for (field, span) in spans {
            if let Some(span) = span {
                report.at(
                    Some(span),
                    key(field),
                    "has no effect without replicas; add [[...replicas]] entries or remove it",
                );
            }
        }
        return config;
    }
    if let Some(value) = &raw.load_balancer {
        match LoadBalancer::from_name(value.get_ref()) {
            Some(b) => config.load_balancer = b,
            None => report.at(
                Some(value.span()),
                key("load_balancer"),
                bad_value(value.get_ref(), LoadBalancer::ALL.map(|b| b.name())),
            ),
        }
    }
    if let Some(value) = &raw.transactional_read {
        match TransactionalRead::from_name(value.get_ref()) {
            Some(t) => config.transactional_read = t,
            None => report.at(
                Some(value.span()),
                key("transactional_read"),
                bad_value(value.get_ref(), TransactionalRead::ALL.map(|t| t.name())),
            ),
        }
    }
    if let Some(ms) = positive(
        raw.max_replica_lag_ms.as_ref(),
        &key("max_replica_lag_ms"),
        report,
    ) {
        config.max_replica_lag = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(
        raw.health_check_interval_ms.as_ref(),
        &key("health_check_interval_ms"),
        report,
    ) {
        config.health_check_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = &raw.read_your_writes_timeout_ms {
        // 0 turns read-your-writes off.
        config.read_your_writes_timeout =
            (*ms.get_ref() > 0).then(|| Duration::from_millis(*ms.get_ref()));
    }
    config
}

/// The TLS a data source URL asks for: a known mode, and a CA file that exists and
/// holds certificates (relative paths start at the config file's directory).
fn backend_tls(
    url: &DataSourceUrl,
    raw: &Spanned<String>,
    key: &str,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<crate::tls::BackendTls> {
    use crate::tls::{BackendTls, BackendTlsMode};
    let (mode, ca) = url.tls_params();
    let mode = match mode {
        None => BackendTlsMode::Disable,
        Some((name, value)) => match BackendTlsMode::from_name(value) {
            Some(m) => m,
            None => {
                report.at(
                    Some(raw.span()),
                    key,
                    format!(
                        "{name}={value} is not a TLS mode; use one of disable, prefer, require, verify-ca, verify-full (or DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY)"
                    ),
                );
                return None;
            }
        },
    };
    if mode == BackendTlsMode::Disable {
        if let Some((name, _)) = ca {
            report.at(
                Some(raw.span()),
                key,
                format!("{name} has no effect without a TLS mode; add sslmode=verify-full (PostgreSQL) or ssl-mode=VERIFY_IDENTITY (MySQL)"),
            );
        }
        return None;
    }
    let ca_path = ca.map(|(_, path)| cx.base_dir.join(path));
    match BackendTls::new(mode, &url.host, ca_path.as_deref()) {
        Ok(tls) => Some(tls),
        Err(e) => {
            report.at(Some(raw.span()), key, e);
            None
        }
    }
}

fn listen_address(
    value: Option<&Spanned<String>>,
    key: &str,
    report: &mut Report,
) -> Option<SocketAddr> {
    let value = value?;
    match value.get_ref().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            report.at(
                Some(value.span()),
                key,
                format!(
                    "`{}` is not an IP address with a port, e.g. \"127.0.0.1:3307\" or \"[::]:3307\" (host names are not accepted)",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

fn auth_plugin(
    value: Option<&Spanned<String>>,
    key: &str,
    report: &mut Report,
) -> Option<MysqlAuthPlugin> {
    let value = value?;
    let plugin = MysqlAuthPlugin::from_name(value.get_ref());
    if plugin.is_none() {
        report.at(
            Some(value.span()),
            key,
            bad_value(value.get_ref(), MysqlAuthPlugin::ALL.map(|p| p.name())),
        );
    }
    plugin
}

fn postgres_auth(
    value: Option<&Spanned<String>>,
    key: &str,
    report: &mut Report,
) -> PostgresAuthMethod {
    let Some(value) = value else {
        return PostgresAuthMethod::default();
    };
    PostgresAuthMethod::from_name(value.get_ref()).unwrap_or_else(|| {
        report.at(
            Some(value.span()),
            key,
            bad_value(value.get_ref(), PostgresAuthMethod::ALL.map(|p| p.name())),
        );
        PostgresAuthMethod::default()
    })
}

/// A number that must be greater than zero; `None` when absent (or zero, reported).
pub(super) fn positive<T>(value: Option<&Spanned<T>>, key: &str, report: &mut Report) -> Option<T>
where
    T: Copy + Default + PartialEq,
{
    let value = value?;
    if *value.get_ref() == T::default() {
        report.at(Some(value.span()), key, "must be greater than 0");
        return None;
    }
    Some(*value.get_ref())
}

/// Resolves a path against the config file's directory and checks the file exists.
fn existing_file(
    value: Option<&Spanned<String>>,
    key: &str,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<PathBuf> {
    let value = value?;
    let path = cx.base_dir.join(value.get_ref());
    if !path.is_file() {
        let why = if path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        report.at(
            Some(value.span()),
            key,
            format!(
                "{} {why} (relative paths are resolved against the config file's directory)",
                path.display()
            ),
        );
    }
    Some(path)
}

/// `password = "…"`: a literal, or `"${VAR}"` to read it from the environment.
fn inline_password(
    value: &Spanned<String>,
    key: &str,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<String> {
    let text = value.get_ref();
    let Some(var) = text
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    else {
        return Some(text.clone());
    };
    let valid_name = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        report.at(
            Some(value.span()),
            key,
            format!("`{text}` is not a valid environment variable reference; use \"${{NAME}}\" with letters, digits and _"),
        );
        return None;
    }
    lookup(var, value, key, cx, report)
}

/// `password_env = "VAR"`.
fn env_password(
    var: &Spanned<String>,
    key: &str,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<String> {
    if var.get_ref().is_empty() || var.get_ref().contains(['=', '\0']) {
        report.at(
            Some(var.span()),
            key,
            "must be the name of an environment variable",
        );
        return None;
    }
    lookup(var.get_ref(), var, key, cx, report)
}

fn lookup<T>(
    var: &str,
    at: &Spanned<T>,
    key: &str,
    cx: &Context<'_>,
    report: &mut Report,
) -> Option<String> {
    let value = (cx.env)(var);
    if value.is_none() {
        report.at(
            Some(at.span()),
            key,
            format!("environment variable `{var}` is not set (or is not valid UTF-8)"),
        );
    }
    value
}

fn bad_value<const N: usize>(value: &str, allowed: [&str; N]) -> String {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "`{value}` is not allowed; expected one of: {}",
        allowed.join(", ")
    )
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

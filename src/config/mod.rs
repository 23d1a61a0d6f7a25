//! The `dbmesh.toml` configuration: model, loading and validation.
//!
//! [`load`] reads a file, [`parse`] takes the text directly. Both return a
//! fully checked [`Config`] or a [`ConfigError`] listing *every* problem found,
//! each as `file:line:column: key.path: message`, so a DBA can fix a file in
//! one pass. The stages are:
//!
//! 1. `document`: TOML syntax, unknown keys and value types, section by section
//!    into the plain serde structs of `raw`;
//! 2. `validate`: references between sections, listen addresses, data source
//!    URLs, environment variables and file paths, into the types of `model`.
//!
//! See `docs/configuration.md` for the file format.

mod data_source_url;
mod document;
mod error;
mod field_names;
mod model;
mod raw;
#[cfg(test)]
mod replica_tests;
pub mod rules;
#[cfg(test)]
mod tls_tests;
mod transaction;
mod validate;

use std::path::Path;

pub use data_source_url::DataSourceUrl;
pub use error::{ConfigError, ConfigProblem};
pub use model::{
    BackendKind, Config, DataSourceConfig, DatabaseConfig, LoadBalancer, LogFormat,
    MysqlAuthPlugin, PoolMode, PoolSettings, PostgresAuthMethod, ReadWriteConfig, ReplicaConfig,
    ServerConfig, TransactionConfig, TransactionType, TransactionalRead, TxnLogConfig, UserConfig,
};
pub use rules::{KeyGen, ShardingRules, Strategy, TableRule};

use error::Report;
use validate::{Context, EnvLookup};

/// Reads, parses and validates the config file at `path`.
///
/// Passwords given as `${VAR}` or `password_env` are read from the process
/// environment now; relative paths are resolved against `path`'s directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![ConfigProblem {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read config file: {e}"),
        }],
    })?;
    parse(&text, path)
}

/// Parses and validates config `text` as if it had been read from `path`.
///
/// `path` names the file in problems and its directory anchors relative paths
/// (`rules`, `rsa_private_key`, …); the file itself is not read.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

fn parse_with_env(text: &str, path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let mut report = Report::new(path, text);
    let Some(document) = document::read(text, &mut report) else {
        report.finish()?;
        unreachable!("document::read reports why it returned nothing");
    };
    let cx = Context {
        path,
        base_dir: path.parent().unwrap_or(Path::new("")),
        env,
    };
    let config = validate::validate(document, &cx, &mut report);
    report.finish()?;
    Ok(config)
}

#[cfg(test)]
mod tests;

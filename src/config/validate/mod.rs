//! From raw sections to a [`Config`]: every cross-check, every environment
//! lookup and every file-existence check, all problems reported together.

mod data_sources;
mod pool;
mod server;
mod users;

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
use data_sources::data_source;
use server::server;
use users::users;

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

//! The results of `SHOW DBMESH ...`, one function per statement, in ShardingSphere's
//! vocabulary (logical table, actual data nodes, sharding column, algorithm type and
//! properties, key generator, binding and broadcast tables). Every value is text or NULL.

use std::sync::Arc;

use super::answer::AdminResult;
use super::statement::{like, Show, ShowWhat};
use crate::config::rules::Definition;
use crate::config::{Strategy, TableRule};
use crate::execute::health::HealthState;
use crate::execute::{Cluster, LogicalDatabase};
use crate::route::algorithms::{Properties, PropertyValue};
use crate::server::Runtime;

/// Answers a `SHOW DBMESH` statement from the running configuration.
pub fn show(rt: &Arc<Runtime>, show: &Show) -> AdminResult {
    let cluster = rt.cluster();
    match show.what {
        ShowWhat::DataSources => data_sources(&cluster, show),
        ShowWhat::Rules => rules(&cluster, show),
        ShowWhat::Tables => tables(&cluster, show),
        ShowWhat::Sessions => sessions(rt, show),
        ShowWhat::Variables => variables(rt, show),
    }
}

fn keep(show: &Show, name: &str) -> bool {
    show.like.as_deref().is_none_or(|p| like(p, name))
}

fn databases<'a>(
    cluster: &'a Cluster,
    show: &'a Show,
) -> impl Iterator<Item = &'a Arc<LogicalDatabase>> + 'a {
    cluster
        .databases
        .iter()
        .filter(move |(name, _)| show.from.as_deref().is_none_or(|f| f == name.as_str()))
        .map(|(_, db)| db)
}

/// Unix time in ms as `2026-12-03T08:49:59.123Z`.
pub fn timestamp(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn text(s: impl Into<String>) -> Option<String> {
    Some(s.into())
}

/// `SHOW DBMESH DATA SOURCES`: one row per (logical database, data source).
fn data_sources(cluster: &Cluster, show: &Show) -> AdminResult {
    let columns = vec![
        "database",
        "data_source",
        "backend",
        "url",
        "role",
        "health",
        "health_since",
        "last_error",
        "pool_in_use",
        "pool_idle",
        "pool_waiting",
        "pool_max",
        "lag_ms",
    ];
    let mut rows = Vec::new();
    for db in databases(cluster, show) {
        for ds in db.data_sources.values() {
            // A primary, then its replicas (named `<data source>.replica_<i>`).
            for ds in std::iter::once(ds).chain(&ds.replicas) {
                if !keep(show, &ds.name) {
                    continue;
                }
                let pool = ds.pool_stats(db.config.backend);
                let health = ds.health.snapshot();
                let replica = ds.replica.as_ref().map(|r| r.snapshot());
                let (role, health_state, last_error) = match &replica {
                    None => (
                        "primary",
                        health.state.name(),
                        health
                            .last_error
                            .filter(|_| health.state == HealthState::Down),
                    ),
                    Some(r) if r.admitted => ("replica", health.state.name(), None),
                    Some(r) => ("replica", "ejected", r.reason.clone()),
                };
                rows.push(vec![
                    text(&db.config.name),
                    text(&ds.name),
                    text(db.config.backend.name()),
                    // DataSourceUrl's Display leaves the password out.
                    text(ds.url.to_string()),
                    text(role),
                    text(health_state),
                    health.since_ms.map(timestamp),
                    last_error,
                    text(pool.in_use.to_string()),
                    text(pool.idle.to_string()),
                    text(pool.waiting.to_string()),
                    text(pool.max.to_string()),
                    replica.and_then(|r| r.lag_ms).map(|l| l.to_string()),
                ]);
            }
        }
    }
    AdminResult::Rows { columns, rows }
}

/// `SHOW DBMESH RULES`: every rule of every sharded database, one row each: sharded
/// tables, binding groups, broadcast tables, algorithms and key generators.
fn rules(cluster: &Cluster, show: &Show) -> AdminResult {
    let columns = vec!["database", "rule", "name", "type", "definition"];
    let mut rows = Vec::new();
    for db in databases(cluster, show) {
        let Some(rules) = &db.config.sharding else {
            continue;
        };
        let mut row = |rule: &str, name: &str, kind: Option<String>, definition: String| {
            if keep(show, name) {
                rows.push(vec![
                    text(&db.config.name),
                    text(rule),
                    text(name),
                    kind,
                    text(definition),
                ]);
            }
        };
        for (name, t) in &rules.tables {
            let mut parts = vec![format!("nodes: {}", nodes(t))];
            if let Some(s) = &t.database_strategy {
                parts.push(format!("database_strategy: {}", strategy(s)));
            }
            if let Some(s) = &t.table_strategy {
                parts.push(format!("table_strategy: {}", strategy(s)));
            }
            if let Some(k) = &t.key_generator {
                parts.push(format!("key_generator: {} by {}", k.column, k.generator));
            }
            row("sharding_table", name, text("SHARDING"), parts.join("; "));
        }
        for group in &rules.binding_groups {
            let name = group.join(",");
            row("binding_tables", &name, None, name.clone());
        }
        for name in &rules.broadcast_tables {
            row("broadcast_table", name, text("BROADCAST"), String::new());
        }
        for (name, d) in &rules.algorithm_definitions {
            row(
                "sharding_algorithm",
                name,
                text(&d.kind),
                properties(&d.properties),
            );
        }
        for (name, d) in &rules.key_generator_definitions {
            row(
                "key_generator",
                name,
                text(&d.kind),
                properties(&d.properties),
            );
        }
    }
    AdminResult::Rows { columns, rows }
}

/// `SHOW DBMESH TABLES`: each sharded or broadcast logical table, with where its rows are
/// and how they are placed (ShardingSphere's `SHOW SHARDING TABLE RULES`).
fn tables(cluster: &Cluster, show: &Show) -> AdminResult {
    let columns = vec![
        "database",
        "table",
        "type",
        "actual_data_nodes",
        "database_sharding_column",
        "database_sharding_algorithm",
        "database_algorithm_type",
        "database_algorithm_props",
        "table_sharding_column",
        "table_sharding_algorithm",
        "table_algorithm_type",
        "table_algorithm_props",
        "key_generate_column",
        "key_generator",
        "key_generator_type",
        "key_generator_props",
        "binding_tables",
    ];
    let mut rows = Vec::new();
    for db in databases(cluster, show) {
        let Some(rules) = &db.config.sharding else {
            continue;
        };
        let definition =
            |name: &str, of: &std::collections::BTreeMap<String, Definition>| of.get(name).cloned();
        for (name, t) in &rules.tables {
            if !keep(show, name) {
                continue;
            }
            let mut row = vec![
                text(&db.config.name),
                text(name),
                text("sharded"),
                text(nodes(t)),
            ];
            for s in [&t.database_strategy, &t.table_strategy] {
                match s {
                    Some(s) => {
                        let d = definition(&s.algorithm, &rules.algorithm_definitions);
                        row.push((!s.columns.is_empty()).then(|| s.columns.join(",")));
                        row.push(text(&s.algorithm));
                        row.push(d.as_ref().map(|d| d.kind.clone()));
                        row.push(d.map(|d| properties(&d.properties)));
                    }
                    None => row.extend([None, None, None, None]),
                }
            }
            match &t.key_generator {
                Some(k) => {
                    let d = definition(&k.generator, &rules.key_generator_definitions);
                    row.push(text(&k.column));
                    row.push(text(&k.generator));
                    row.push(d.as_ref().map(|d| d.kind.clone()));
                    row.push(d.map(|d| properties(&d.properties)));
                }
                None => row.extend([None, None, None, None]),
            }
            row.push(rules.binding_group(name).map(|g| g.join(",")));
            rows.push(row);
        }
        for name in &rules.broadcast_tables {
            if !keep(show, name) {
                continue;
            }
            let everywhere: Vec<String> = db
                .data_sources
                .keys()
                .map(|ds| format!("{ds}.{name}"))
                .collect();
            let mut row = vec![
                text(&db.config.name),
                text(name),
                text("broadcast"),
                text(everywhere.join(", ")),
            ];
            row.extend(std::iter::repeat_n(None, 13));
            rows.push(row);
        }
    }
    AdminResult::Rows { columns, rows }
}

/// `SHOW DBMESH SESSIONS`: every live client session.
fn sessions(rt: &Runtime, show: &Show) -> AdminResult {
    let columns = vec![
        "id",
        "user",
        "protocol",
        "client",
        "database",
        "state",
        "statement",
        "statement_started_at",
        "connected_at",
    ];
    let rows = rt
        .sessions
        .rows()
        .into_iter()
        .filter(|s| keep(show, &s.user))
        .map(|s| {
            vec![
                text(s.id.to_string()),
                text(s.user),
                text(s.protocol),
                text(s.client),
                s.database,
                text(s.state.name()),
                s.statement,
                s.statement_ms.map(timestamp),
                text(timestamp(s.connected_ms)),
            ]
        })
        .collect();
    AdminResult::Rows { columns, rows }
}

/// `SHOW DBMESH VARIABLES`: the effective server settings and a few facts about the
/// running proxy, as (variable_name, value).
fn variables(rt: &Runtime, show: &Show) -> AdminResult {
    let config = rt.config();
    let s = &config.server;
    // An unset setting is NULL, not an empty string.
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis().to_string());
    let now = crate::session::registry::now_ms();
    let vars: Vec<(&str, Option<String>)> = vec![
        ("version", text(env!("CARGO_PKG_VERSION").to_string())),
        ("config_path", text(config.path.display().to_string())),
        ("config_generation", text(rt.generation().to_string())),
        ("started_at", text(timestamp(rt.started_ms))),
        (
            "uptime_s",
            text((now.saturating_sub(rt.started_ms) / 1000).to_string()),
        ),
        ("mysql_listen", s.mysql_listen.map(|a| a.to_string())),
        ("postgres_listen", s.postgres_listen.map(|a| a.to_string())),
        ("admin_listen", s.admin_listen.map(|a| a.to_string())),
        ("mysql_server_version", text(rt.mysql.version.clone())),
        (
            "mysql_auth_plugin",
            text(s.mysql_auth_plugin.name().to_string()),
        ),
        ("max_packet_size", text(s.max_packet_size.to_string())),
        (
            "connect_timeout_ms",
            text(s.connect_timeout.as_millis().to_string()),
        ),
        (
            "checkout_timeout_ms",
            text(s.checkout_timeout.as_millis().to_string()),
        ),
        (
            "login_timeout_ms",
            text(crate::server::LOGIN_TIMEOUT.as_millis().to_string()),
        ),
        (
            "worker_threads",
            text(
                s.worker_threads
                    .map_or_else(|| "auto".to_string(), |n| n.to_string()),
            ),
        ),
        (
            "snowflake_worker_id",
            s.snowflake_worker_id.map(|n| n.to_string()),
        ),
        // The filter logging started with (main.rs): RUST_LOG wins, then the file, then info.
        (
            "log_level",
            text(
                std::env::var("RUST_LOG")
                    .ok()
                    .or_else(|| s.log_level.clone())
                    .unwrap_or_else(|| "info".to_string()),
            ),
        ),
        ("log_format", text(s.log_format.name().to_string())),
        ("slow_statement_ms", ms(s.slow_statement)),
        (
            "shutdown_timeout_ms",
            text(s.shutdown_timeout.as_millis().to_string()),
        ),
        ("config_watch_ms", ms(s.config_watch)),
        ("pool_mode", text(s.pool_mode.name().to_string())),
        (
            "tls",
            text(if s.tls.is_some() { "on" } else { "off" }.to_string()),
        ),
        ("databases", text(config.databases.len().to_string())),
        ("users", text(config.users.len().to_string())),
        ("sessions", text(rt.sessions.len().to_string())),
    ];
    let rows = vars
        .into_iter()
        .filter(|(name, _)| keep(show, name))
        .map(|(name, value)| vec![text(name), value])
        .collect();
    AdminResult::Rows {
        columns: vec!["variable_name", "value"],
        rows,
    }
}

fn nodes(t: &TableRule) -> String {
    t.nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn strategy(s: &Strategy) -> String {
    if s.columns.is_empty() {
        format!("hint by {}", s.algorithm)
    } else {
        format!("{} by {}", s.columns.join(","), s.algorithm)
    }
}

/// Properties as `name=value` pairs, in file order.
pub fn properties(p: &Properties) -> String {
    p.names()
        .filter_map(|n| p.get(n).map(|v| format!("{n}={}", value(v))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn value(v: &PropertyValue) -> String {
    match v {
        PropertyValue::Int(i) => i.to_string(),
        PropertyValue::Float(f) => f.to_string(),
        PropertyValue::Bool(b) => b.to_string(),
        PropertyValue::Text(t) => t.clone(),
        PropertyValue::List(items) => {
            format!(
                "[{}]",
                items.iter().map(value).collect::<Vec<_>>().join(", ")
            )
        }
        PropertyValue::Other(kind) => format!("<{kind}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_print_in_file_order() {
        let p = Properties::new()
            .with("sharding_count", PropertyValue::Int(4))
            .with(
                "ranges",
                PropertyValue::List(vec![PropertyValue::Int(1), PropertyValue::Int(2)]),
            )
            .with("expression", PropertyValue::Text("ds_${id % 2}".into()));
        assert_eq!(
            properties(&p),
            "sharding_count=4, ranges=[1, 2], expression=ds_${id % 2}"
        );
    }

    #[test]
    fn timestamps_are_utc_iso_8601() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_500), "1970-01-01T00:00:01.500Z");
    }
}

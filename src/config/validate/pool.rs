//! The pool keys: `[server] pool_mode` / `pool_check_idle_ms`, and per data source
//! `min_connections`, `idle_timeout_ms`, `max_lifetime_ms` (docs/pooling.md).

use std::time::Duration;

use super::super::error::{child_key, Report};
use super::super::model::{PoolMode, PoolSettings, ServerConfig};
use super::super::raw::{RawDataSource, RawServer};
use super::{bad_value, positive};

/// `[server] pool_mode` and `pool_check_idle_ms`.
pub(super) fn server_keys(raw: &RawServer, server: &mut ServerConfig, report: &mut Report) {
    let key = |field: &str| child_key("server", field);
    if let Some(mode) = &raw.pool_mode {
        match PoolMode::from_name(mode.get_ref()) {
            Some(m) => server.pool_mode = m,
            None => report.at(
                Some(mode.span()),
                key("pool_mode"),
                bad_value(mode.get_ref(), PoolMode::ALL.map(|m| m.name())),
            ),
        }
    }
    if let Some(ms) = &raw.pool_check_idle_ms {
        // 0 is allowed: ping every idle connection on checkout.
        server.pool_check_idle = Duration::from_millis(*ms.get_ref());
    }
}

/// A data source's pool upkeep; `min_connections` may not exceed `max_connections`.
pub(super) fn settings(
    raw: &RawDataSource,
    section_key: &str,
    max_connections: u32,
    report: &mut Report,
) -> PoolSettings {
    let key = |field: &str| child_key(section_key, field);
    let mut settings = PoolSettings::default();
    if let Some(min) = &raw.min_connections {
        if *min.get_ref() > max_connections {
            report.at(
                Some(min.span()),
                key("min_connections"),
                format!(
                    "must not exceed max_connections ({max_connections}); the pool could never keep that many"
                ),
            );
        } else {
            settings.min_connections = *min.get_ref();
        }
    }
    if let Some(ms) = positive(
        raw.idle_timeout_ms.as_ref(),
        &key("idle_timeout_ms"),
        report,
    ) {
        settings.idle_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(
        raw.max_lifetime_ms.as_ref(),
        &key("max_lifetime_ms"),
        report,
    ) {
        settings.max_lifetime = Duration::from_millis(ms);
    }
    settings
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{parse, ServerConfig};

    const REST: &str = "[[users]]\nname = \"app\"\npassword = \"x\"\n[databases.shop]\nbackend = \"mysql\"\n[databases.shop.data_sources.ds_0]\nurl = \"mysql://root@127.0.0.1/shop\"\nmax_connections = 8\n";

    #[test]
    fn pool_keys_have_defaults_and_are_read() {
        let text = format!("[server]\nmysql_listen = \"127.0.0.1:0\"\n{REST}");
        let config = parse(&text, Path::new("dbmesh.toml")).unwrap();
        let ds = &config.databases["shop"].data_sources["ds_0"];
        assert_eq!(ds.pool, Default::default());
        assert_eq!(
            config.server.pool_check_idle,
            ServerConfig::DEFAULT_POOL_CHECK_IDLE
        );

        let text = format!("[server]\nmysql_listen = \"127.0.0.1:0\"\npool_check_idle_ms = 0\n{REST}min_connections = 2\nidle_timeout_ms = 1000\nmax_lifetime_ms = 2000\n");
        let config = parse(&text, Path::new("dbmesh.toml")).unwrap();
        let pool = config.databases["shop"].data_sources["ds_0"].pool;
        assert_eq!(pool.min_connections, 2);
        assert_eq!(pool.idle_timeout, Duration::from_millis(1000));
        assert_eq!(pool.max_lifetime, Duration::from_millis(2000));
        assert_eq!(config.server.pool_check_idle, Duration::ZERO);
    }

    #[test]
    fn bad_pool_keys_are_reported_with_their_lines() {
        let text = format!("[server]\nmysql_listen = \"127.0.0.1:0\"\n{REST}min_connections = 9\nidle_timeout_ms = 0\nmax_lifetime_ms = 0\n");
        let problems = parse(&text, Path::new("dbmesh.toml"))
            .expect_err("rejected")
            .problems;
        let at = |key: &str| problems.iter().find(|p| p.key.ends_with(key));
        let min = at("min_connections").expect("min_connections reported");
        assert_eq!(min.line, Some(11));
        assert!(
            min.message.contains("max_connections (8)"),
            "{}",
            min.message
        );
        assert_eq!(at("idle_timeout_ms").and_then(|p| p.line), Some(12));
        assert_eq!(at("max_lifetime_ms").and_then(|p| p.line), Some(13));
    }
}

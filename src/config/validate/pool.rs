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

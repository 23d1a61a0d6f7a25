//! A logical database's data sources: their URLs (and TLS towards them), pool size, and
//! replicas with the read/write splitting keys.

use super::*;

pub(super) fn data_source(
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
pub(super) fn backend_url(
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
pub(super) fn read_write(
    raw: &RawDataSource,
    section_key: &str,
    report: &mut Report,
) -> ReadWriteConfig {
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
pub(super) fn backend_tls(
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

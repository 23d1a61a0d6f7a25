//! `[server]`: listeners, auth plugin, RSA keys, timeouts, TLS towards clients, and the
//! operations keys (logs, slow statements, shutdown).

use super::*;

pub(super) fn server(
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
pub(super) fn server_tls(
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
pub(super) fn operations(raw: &RawServer, server: &mut ServerConfig, report: &mut Report) {
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

pub(super) fn listen_address(
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

pub(super) fn auth_plugin(
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

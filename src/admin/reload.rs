//! Reloading the configuration while dbmesh serves: on SIGHUP, on
//! `RELOAD DBMESH CONFIG`, and when `server.config_watch_ms` is set, when the files change.
//!
//! The file the running configuration came from is read and validated in full first (the
//! same `config::load` as at start-up, rule files included). If it has problems, they are
//! logged and returned (every one, with file:line:column) and nothing changes. If it is
//! valid, the new configuration and a cluster built from it (`Cluster::rebuild`, which
//! keeps the pools of unchanged data sources) are installed in one step: statements that
//! start after that use them, while statements and transactions in flight finish on the
//! snapshot they started with; no client connection is closed.
//!
//! Listen addresses cannot change without a restart: a file that changes
//! `server.mysql_listen`, `server.postgres_listen` or `server.admin_listen` is refused.
//! Settings read only at start-up (`worker_threads`, `mysql_server_version`,
//! `mysql_auth_plugin`, the RSA key files, `log_level`, `log_format`, `config_watch_ms`) keep their
//! running values and a warning names them; everything else (users, databases, data
//! sources, sharding rules, timeouts, `max_packet_size` for new connections) takes effect.

use std::sync::Arc;

use tracing::{info, warn};

use crate::config::{Config, ServerConfig};
use crate::error::Error;
use crate::execute::Cluster;
use crate::server::Runtime;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Logical databases whose configuration changed, appeared or went away.
    pub changed_databases: Vec<String>,
    /// Data sources whose pools were kept, and those created anew.
    pub kept_data_sources: usize,
    pub new_data_sources: usize,
    /// Start-up-only settings the file changed, which keep their running values.
    pub needs_restart: Vec<&'static str>,
}

impl Reloaded {
    /// One line for the log and for the client.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "configuration reloaded: {} database(s) changed{}, {} data source pool(s) kept, {} new",
            self.changed_databases.len(),
            if self.changed_databases.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.changed_databases.join(", "))
            },
            self.kept_data_sources,
            self.new_data_sources
        );
        if !self.needs_restart.is_empty() {
            s.push_str(&format!(
                "; {} take(s) effect only after a restart",
                self.needs_restart.join(", ")
            ));
        }
        s
    }
}

/// Reloads the configuration from the file the running one was loaded from. Reloads run
/// one at a time.
pub async fn reload(rt: &Runtime) -> Result<Reloaded, Error> {
    let _one_at_a_time = rt.reload_lock.lock().await;
    let old = rt.config();
    let path = old.path.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path))
        .await
        .map_err(|e| Error::ConfigReload(format!("the reload task failed: {e}")))?;
    let mut new = match loaded {
        Ok(c) => c,
        Err(e) => {
            warn!(path = %old.path.display(), "configuration not reloaded, {} problem(s):\n{e}", e.problems.len());
            return Err(Error::ConfigReload(e.to_string()));
        }
    };
    if let Err(message) = check_listeners(&old, &new) {
        warn!("configuration not reloaded: {message}");
        return Err(Error::ConfigReload(message));
    }
    let needs_restart = keep_startup_settings(&old.server, &mut new.server);
    let old_cluster = rt.cluster();
    let cluster = Cluster::rebuild(&new, &old_cluster);
    let reloaded = compare(&old_cluster, &cluster, needs_restart);
    rt.install(new, cluster);
    if reloaded.needs_restart.is_empty() {
        info!("{}", reloaded.summary());
    } else {
        warn!("{}", reloaded.summary());
    }
    Ok(reloaded)
}

/// Reloads on every SIGHUP until the process ends. Problems are logged by [`reload`].
pub async fn reload_on_sighup(rt: Arc<Runtime>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot listen for SIGHUP, reload with RELOAD DBMESH CONFIG only: {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        info!("SIGHUP: reloading the configuration");
        let _ = reload(&rt).await;
    }
}

/// With `server.config_watch_ms` set: looks at the config file and the rule files of the
/// running configuration every interval, and reloads when one's modification time or
/// size changed. A file that fails to load is not tried again until it changes again.
/// Ends when the shutdown starts.
pub async fn watch_files(
    rt: Arc<Runtime>,
    interval: std::time::Duration,
    mut stopped: crate::shutdown::Shutdown,
) {
    let mut seen = fingerprint(&rt.config());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.started() => return,
        }
        let now = fingerprint(&rt.config());
        if now == seen {
            continue;
        }
        seen = now;
        info!("configuration file changed: reloading");
        if reload(&rt).await.is_ok() {
            // The new configuration may name other rule files.
            seen = fingerprint(&rt.config());
        }
    }
}

/// (path, modification time, size) of the config file and every rule file it names.
fn fingerprint(config: &Config) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)> {
    std::iter::once(&config.path)
        .chain(config.databases.values().flat_map(|db| db.rules.iter()))
        .map(|path| {
            let meta = std::fs::metadata(path).ok();
            (
                path.clone(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect()
}

/// Listeners are bound once: a changed address is refused rather than silently ignored.
fn check_listeners(old: &Config, new: &Config) -> Result<(), String> {
    let pairs = [
        (
            "server.mysql_listen",
            old.server.mysql_listen,
            new.server.mysql_listen,
        ),
        (
            "server.postgres_listen",
            old.server.postgres_listen,
            new.server.postgres_listen,
        ),
        (
            "server.admin_listen",
            old.server.admin_listen,
            new.server.admin_listen,
        ),
    ];
    let show = |a: Option<std::net::SocketAddr>| a.map_or("none".to_string(), |a| a.to_string());
    let changed: Vec<String> = pairs
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(key, a, b)| {
            format!(
                "{}: {key}: listen addresses cannot change without a restart (running: {}, file: {})",
                new.path.display(),
                show(*a),
                show(*b)
            )
        })
        .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(changed.join("\n"))
    }
}

/// Puts the running values of start-up-only settings into `new`; returns the names of
/// those the file changed.
fn keep_startup_settings(old: &ServerConfig, new: &mut ServerConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($field:ident) => {
            if old.$field != new.$field {
                changed.push(concat!("server.", stringify!($field)));
                new.$field = old.$field.clone();
            }
        };
    }
    keep!(worker_threads);
    keep!(mysql_server_version);
    keep!(mysql_auth_plugin);
    keep!(rsa_private_key);
    keep!(rsa_public_key);
    keep!(log_level);
    keep!(log_format);
    keep!(config_watch);
    changed
}

fn compare(old: &Cluster, new: &Cluster, needs_restart: Vec<&'static str>) -> Reloaded {
    let mut changed: Vec<String> = new
        .databases
        .iter()
        .filter(|(name, db)| old.databases.get(*name).is_none_or(|o| !Arc::ptr_eq(o, db)))
        .map(|(name, _)| name.clone())
        .collect();
    changed.extend(
        old.databases
            .keys()
            .filter(|name| !new.databases.contains_key(*name))
            .cloned(),
    );
    changed.sort();
    let (mut kept, mut fresh) = (0, 0);
    for (_, ds) in new.data_sources() {
        if old.data_sources().any(|(_, o)| Arc::ptr_eq(o, ds)) {
            kept += 1;
        } else {
            fresh += 1;
        }
    }
    Reloaded {
        changed_databases: changed,
        kept_data_sources: kept,
        new_data_sources: fresh,
        needs_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra_server: &str, ds_url: &str, rules_max: u32) -> Config {
        let text = format!(
            r#"
[server]
mysql_listen = "127.0.0.1:3307"
{extra_server}

[[users]]
name = "app"
password = "x"
databases = ["*"]

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"

[databases.shop.data_sources.ds_0]
url = "{ds_url}"
max_connections = {rules_max}

[databases.other]
backend = "mysql"
default_data_source = "ds_0"

[databases.other.data_sources.ds_0]
url = "mysql://root@127.0.0.1:3306/other"
"#
        );
        crate::config::parse(&text, Path::new("dbmesh.toml")).unwrap()
    }

    #[test]
    fn unchanged_data_sources_keep_their_pools_and_changed_ones_get_new_ones() {
        let old = config("", "mysql://root@127.0.0.1:3306/a", 8);
        let old_cluster = Cluster::new(&old);
        let same = Cluster::rebuild(&old, &old_cluster);
        let r = compare(&old_cluster, &same, Vec::new());
        assert!(r.changed_databases.is_empty(), "{r:?}");
        assert_eq!((r.kept_data_sources, r.new_data_sources), (2, 0));

        let moved = config("", "mysql://root@127.0.0.1:3306/b", 8);
        let rebuilt = Cluster::rebuild(&moved, &old_cluster);
        let r = compare(&old_cluster, &rebuilt, Vec::new());
        assert_eq!(r.changed_databases, vec!["shop".to_string()]);
        assert_eq!((r.kept_data_sources, r.new_data_sources), (1, 1));
        assert!(Arc::ptr_eq(
            &old_cluster.databases["other"],
            &rebuilt.databases["other"]
        ));

        let resized = config("", "mysql://root@127.0.0.1:3306/a", 16);
        let r = compare(
            &old_cluster,
            &Cluster::rebuild(&resized, &old_cluster),
            Vec::new(),
        );
        assert_eq!(r.new_data_sources, 1);
    }

    #[test]
    fn a_changed_listen_address_is_refused() {
        let old = config("", "mysql://root@127.0.0.1:3306/a", 8);
        let mut new = old.clone();
        assert!(check_listeners(&old, &new).is_ok());
        new.server.postgres_listen = Some("127.0.0.1:6432".parse().unwrap());
        let e = check_listeners(&old, &new).unwrap_err();
        assert!(e.contains("server.postgres_listen"), "{e}");
        assert!(e.contains("running: none, file: 127.0.0.1:6432"), "{e}");
    }

    #[test]
    fn start_up_settings_keep_their_running_values() {
        let old = config("", "mysql://root@127.0.0.1:3306/a", 8);
        let mut new = config(
            "worker_threads = 3\nconnect_timeout_ms = 1234",
            "mysql://root@127.0.0.1:3306/a",
            8,
        );
        let changed = keep_startup_settings(&old.server, &mut new.server);
        assert_eq!(changed, vec!["server.worker_threads"]);
        assert_eq!(new.server.worker_threads, None);
        assert_eq!(new.server.connect_timeout.as_millis(), 1234);
    }

    #[test]
    fn the_log_format_is_a_start_up_setting() {
        // The subscriber is installed once at start-up: a reload cannot switch it.
        let old = config("", "mysql://root@127.0.0.1:3306/a", 8);
        let mut new = config("log_format = \"json\"", "mysql://root@127.0.0.1:3306/a", 8);
        let changed = keep_startup_settings(&old.server, &mut new.server);
        assert_eq!(changed, vec!["server.log_format"]);
        assert_eq!(new.server.log_format, old.server.log_format);
    }
}

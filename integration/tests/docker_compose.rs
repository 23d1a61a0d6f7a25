//! docker-compose.yml cannot run here (no Docker engine), so this checks what can be
//! checked without one: it is well-formed YAML with the three services, every file it
//! mounts or builds from exists, the published ports are the ones the mounted config
//! listens on, the data sources point at the compose services and at databases the init
//! scripts create, and the config passes `dbmesh check` laid out as the container sees it.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    serde_yaml_ng::from_str(&text).expect("docker-compose.yml is valid YAML")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `(host path, container path)` of a service's bind mounts.
fn mounts(service: &Value) -> Vec<(PathBuf, String)> {
    strings(&service["volumes"])
        .iter()
        .map(|m| {
            let mut parts = m.split(':');
            let host = parts.next().unwrap();
            let container = parts.next().expect("host:container").to_string();
            assert!(
                host.starts_with("./"),
                "bind mount of a repository path: {m}"
            );
            (repo().join(host), container)
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn compose_file_has_the_services_and_every_file_it_names_exists() {
    let c = compose();
    let services = c["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    assert_eq!(names, ["mariadb", "postgres", "dbmesh"]);
    assert!(c["services"]["mariadb"]["image"]
        .as_str()
        .unwrap()
        .starts_with("mariadb:"));
    assert!(c["services"]["postgres"]["image"]
        .as_str()
        .unwrap()
        .starts_with("postgres:"));
    for (_, service) in services {
        for (host, _) in mounts(service) {
            assert!(host.exists(), "{} is mounted but missing", host.display());
        }
    }

    let build = &c["services"]["dbmesh"]["build"];
    assert_eq!(build["context"].as_str(), Some("."));
    let dockerfile = repo().join(build["dockerfile"].as_str().expect("build.dockerfile"));
    let text = std::fs::read_to_string(&dockerfile).expect("the Dockerfile exists");
    // Multi-stage: everything the build stage copies exists in the context.
    assert!(text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")) >= 2);
    for line in text.lines().filter(|l| l.starts_with("COPY ")) {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        if args.iter().any(|a| a.starts_with("--from")) {
            continue;
        }
        for src in &args[..args.len() - 1] {
            assert!(repo().join(src).exists(), "{line}: {src} missing");
        }
    }
    assert!(
        text.contains("ENTRYPOINT [\"/usr/local/bin/dbmesh\"]"),
        "{text}"
    );
}

#[test]
fn mounted_config_passes_dbmesh_check_as_the_container_sees_it() {
    let c = compose();
    let dbmesh = &c["services"]["dbmesh"];
    let command = strings(&dbmesh["command"]);
    assert_eq!(command[0], "--config");
    let config_in_container = &command[1];

    // Lay the mounts out under a scratch root, as inside the container.
    let root = dbmesh_integration::TempDir::new("compose_root");
    for (host, container) in mounts(dbmesh) {
        copy_tree(&host, &root.path.join(container.trim_start_matches('/')));
    }
    let config = root.path.join(config_in_container.trim_start_matches('/'));
    assert!(config.is_file(), "{config_in_container} is not mounted");
    let out = std::process::Command::new(dbmesh_integration::dbmesh_binary())
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dbmesh check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The published ports are the listeners, and the data sources are the compose
    // services' databases that the init scripts create.
    let parsed = dbmesh::config::load(&config).expect("loads");
    let published: Vec<u16> = strings(&dbmesh["ports"])
        .iter()
        .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let s = &parsed.server;
    for listener in [s.mysql_listen, s.postgres_listen, s.admin_listen] {
        let port = listener.expect("every listener is configured").port();
        assert!(published.contains(&port), "port {port} is not published");
    }
    let init = |service: &str| -> String {
        mounts(&c["services"][service])
            .iter()
            .filter(|(_, container)| container.starts_with("/docker-entrypoint-initdb.d/"))
            .map(|(host, _)| std::fs::read_to_string(host).unwrap())
            .collect()
    };
    let (mariadb_init, postgres_init) = (init("mariadb"), init("postgres"));
    let mut sources = 0;
    for db in parsed.databases.values() {
        for ds in db.data_sources.values() {
            let (service, init) = match db.backend {
                dbmesh::config::BackendKind::Mysql => ("mariadb", &mariadb_init),
                dbmesh::config::BackendKind::Postgres => ("postgres", &postgres_init),
            };
            assert_eq!(ds.url.host, service, "{}", ds.url);
            assert!(
                init.contains(&format!("CREATE DATABASE {}", ds.url.database))
                    || init.contains(&format!(
                        "CREATE DATABASE IF NOT EXISTS {}",
                        ds.url.database
                    )),
                "{} is not created by {service}'s init script",
                ds.url.database
            );
            sources += 1;
        }
    }
    assert_eq!(sources, 4, "two shard databases on each server");
    for (db, ds) in [("shop", "ds_1"), ("shop_pg", "ds_1")] {
        assert!(parsed.databases[db].data_sources.contains_key(ds));
        assert!(parsed.databases[db].sharding.is_some());
    }
}

//! Loading the read/write splitting settings of data sources: `[[...replicas]]`,
//! `load_balancer`, `transactional_read`, lag limit and check interval.

use std::path::Path;
use std::time::Duration;

use super::{parse_with_env, Config, ConfigError, LoadBalancer, TransactionalRead};

fn load(data_source: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "[server]\nmysql_listen = \"127.0.0.1:3307\"\n[[users]]\nname = \"app\"\npassword = \"x\"\n[databases.shop]\nbackend = \"mysql\"\n[databases.shop.data_sources.ds_0]\nurl = \"mysql://root@127.0.0.1:3306/shop\"\n{data_source}"
    );
    parse_with_env(&text, Path::new("dbmesh.toml"), &|var| {
        (var == "REPLICA_PASSWORD").then(|| "s3cret".to_string())
    })
}

fn problems(data_source: &str) -> Vec<(String, Option<usize>, String)> {
    load(data_source)
        .expect_err("config should be rejected")
        .problems
        .into_iter()
        .map(|p| (p.key, p.line, p.message))
        .collect()
}

#[test]
fn a_plain_url_is_a_primary_without_replicas() {
    let config = load("").unwrap();
    let ds = &config.databases["shop"].data_sources["ds_0"];
    assert!(ds.replicas.is_empty());
    assert_eq!(ds.read_write, super::ReadWriteConfig::default());
}

#[test]
fn replicas_load_with_weights_and_settings() {
    let config = load(
        "load_balancer = \"WEIGHT\"\ntransactional_read = \"FIXED\"\nmax_replica_lag_ms = 2500\nhealth_check_interval_ms = 200\nread_your_writes_timeout_ms = 250\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"mysql://root@127.0.0.1:3307/shop\"\nweight = 3\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"mysql://app@10.0.0.9/shop\"\npassword_env = \"REPLICA_PASSWORD\"\n",
    )
    .unwrap();
    let ds = &config.databases["shop"].data_sources["ds_0"];
    assert_eq!(ds.replicas.len(), 2);
    assert_eq!(ds.replicas[0].url.port, 3307);
    assert_eq!(ds.replicas[0].weight, 3);
    assert_eq!(ds.replicas[1].weight, 1, "weight defaults to 1");
    assert_eq!(ds.replicas[1].url.password, "s3cret");
    assert_eq!(ds.read_write.load_balancer, LoadBalancer::Weight);
    assert_eq!(ds.read_write.transactional_read, TransactionalRead::Fixed);
    assert_eq!(ds.read_write.max_replica_lag, Duration::from_millis(2500));
    assert_eq!(
        ds.read_write.health_check_interval,
        Duration::from_millis(200)
    );
    assert_eq!(
        ds.read_write.read_your_writes_timeout,
        Some(Duration::from_millis(250))
    );
}

#[test]
fn bad_replica_settings_are_each_reported_with_their_line() {
    let problems = problems(
        "load_balancer = \"FASTEST\"\ntransactional_read = \"SOMETIMES\"\nmax_replica_lag_ms = 0\n\
         [[databases.shop.data_sources.ds_0.replicas]]\nurl = \"postgres://pg@127.0.0.1/shop\"\nweight = 0\n",
    );
    let at = |key: &str| {
        problems
            .iter()
            .find(|(k, _, _)| k == key)
            .unwrap_or_else(|| panic!("{key} not reported: {problems:?}"))
    };
    let lb = at("databases.shop.data_sources.ds_0.load_balancer");
    assert_eq!(lb.1, Some(10));
    assert!(lb
        .2
        .contains("\"ROUND_ROBIN\", \"RANDOM\", \"WEIGHT\", \"LEAST_ACTIVE\""));
    assert_eq!(
        at("databases.shop.data_sources.ds_0.transactional_read").1,
        Some(11)
    );
    assert_eq!(
        at("databases.shop.data_sources.ds_0.max_replica_lag_ms").1,
        Some(12)
    );
    let url = at("databases.shop.data_sources.ds_0.replicas[0].url");
    assert!(url.2.contains("postgres URL"), "{}", url.2);
    assert_eq!(
        at("databases.shop.data_sources.ds_0.replicas[0].weight").1,
        Some(15)
    );
}

#[test]
fn replica_settings_without_replicas_are_refused() {
    let problems = problems("load_balancer = \"RANDOM\"\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].0,
        "databases.shop.data_sources.ds_0.load_balancer"
    );
    assert!(problems[0].2.contains("without replicas"));
}

#[test]
fn unknown_replica_keys_are_refused() {
    let problems = problems(
        "[[databases.shop.data_sources.ds_0.replicas]]\nurl = \"mysql://root@127.0.0.1:3307/shop\"\nwieght = 2\n",
    );
    assert!(
        problems.iter().any(|(_, _, m)| m.contains("wieght")),
        "{problems:?}"
    );
}

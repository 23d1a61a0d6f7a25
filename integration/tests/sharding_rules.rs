//! Rule files are validated, but statements are not routed by them yet: dbmesh must refuse
//! to serve a sharded logical database rather than send every statement to the default data
//! source.

use std::process::Command;

use dbmesh_integration::{dbmesh_binary, TempDir};

fn config_with_rules(dir: &TempDir) -> std::path::PathBuf {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sharding-rules/mysql-orders.toml"
    );
    let path = dir.path.join("dbmesh.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
mysql_listen = "127.0.0.1:0"

[[users]]
name = "app"
password = "app-secret"
databases = ["shop"]

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"
rules = ["{rules}"]

[databases.shop.data_sources.ds_0]
url = "mysql://root@127.0.0.1:3306/shop_ds_0"
[databases.shop.data_sources.ds_1]
url = "mysql://root@127.0.0.1:3306/shop_ds_1"
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_accepts_the_example_rule_file() {
    let dir = TempDir::new("rules");
    let out = Command::new(dbmesh_binary())
        .args(["check", "--config"])
        .arg(config_with_rules(&dir))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serving_a_sharded_database_is_refused_until_routing_exists() {
    let dir = TempDir::new("rules");
    let out = Command::new(dbmesh_binary())
        .arg("--config")
        .arg(config_with_rules(&dir))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "dbmesh must not serve sharding rules it cannot route by"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shop") && stderr.contains("sharding rules"),
        "{stderr}"
    );
}

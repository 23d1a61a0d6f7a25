//! The shipped rule files: `dbmesh check` accepts them, and dbmesh routes by them as their
//! comments say.

use std::process::Command;

use dbmesh_integration::{dbmesh_binary, ShardedDb, TempDir};

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

/// The shipped MySQL example routes as its comments say: user_id 7, order_id 12 is
/// ds_1.t_order_0, and its items are on the same node pair.
#[tokio::test]
async fn the_shipped_mysql_example_routes_as_its_comments_say() {
    use mysql_async::prelude::Queryable;
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sharding-rules/mysql-orders.toml"
    ))
    .unwrap();
    let db = ShardedDb::mysql(&rules, 2).await;
    let mut conn = mysql_async::Conn::new(db.mysql_opts()).await.unwrap();
    let rows: Vec<(String, String)> = conn
        .query("PREVIEW SELECT * FROM t_order WHERE user_id = 7 AND order_id = 12")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![(
            "ds_1".to_string(),
            "SELECT * FROM t_order_0 WHERE user_id = 7 AND order_id = 12".to_string()
        )]
    );
    let rows: Vec<(String, String)> = conn
        .query(
            "PREVIEW SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id \
             WHERE o.user_id = 7 AND o.order_id = 12",
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "ds_1");
    assert!(
        rows[0].1.contains("t_order_0 o JOIN t_order_item_0 i"),
        "{rows:?}"
    );
    conn.disconnect().await.unwrap();
}

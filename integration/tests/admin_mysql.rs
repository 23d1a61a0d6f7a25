//! Admin statements on the MySQL listener: every `SHOW DBMESH ...` answers an admin as a
//! result set, in a sharded session, an unsharded one and one without a database, inside
//! a transaction without disturbing it; `app` (not admin) is refused with 1227; the
//! connection stays usable after every error.

use std::collections::HashMap;

use dbmesh_integration::{
    server_error, AdminCluster, Proxy, ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER,
    GHOST_PASSWORD, ORDERS_DDL,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

type Rows = Vec<HashMap<String, Option<String>>>;

async fn show(conn: &mut Conn, sql: &str) -> Rows {
    let rows: Vec<mysql_async::Row> = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|row| {
            let names: Vec<String> = row
                .columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n, row.get::<Option<String>, _>(i).unwrap()))
                .collect()
        })
        .collect()
}

fn value<'a>(row: &'a HashMap<String, Option<String>>, column: &str) -> Option<&'a str> {
    row.get(column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
        .as_deref()
}

async fn admin(proxy: &Proxy, db: Option<&str>) -> Conn {
    Conn::new(proxy.mysql_opts(ADMIN_USER, ADMIN_PASSWORD, db))
        .await
        .unwrap()
}

async fn start() -> (AdminCluster, Proxy) {
    let cluster = AdminCluster::new("mysql", 0);
    let proxy = cluster.start().await;
    let mut conn = admin(&proxy, Some(&cluster.sharded)).await;
    for ddl in ORDERS_DDL {
        conn.query_drop(ddl).await.unwrap();
    }
    (cluster, proxy)
}

#[tokio::test]
async fn data_sources_show_every_pool_without_passwords_and_the_health_of_the_last_connect() {
    let (cluster, proxy) = start().await;
    // A connect to the unreachable data source fails, and is recorded.
    let mut app = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain)))
        .await
        .unwrap();
    app.query_drop(format!("USE `{}`", cluster.ghost))
        .await
        .unwrap();
    let (code, _, _) = server_error(app.query_drop("SELECT 1").await);
    assert_eq!(code, 2003);
    app.query_drop(format!("USE `{}`", cluster.plain))
        .await
        .unwrap();
    app.query_drop("SELECT 1").await.unwrap();

    for db in [
        Some(cluster.sharded.as_str()),
        Some(cluster.plain.as_str()),
        None,
    ] {
        let mut conn = admin(&proxy, db).await;
        let rows = show(&mut conn, "show dbmesh data sources;").await;
        assert_eq!(rows.len(), 4, "{rows:?}");
        for row in &rows {
            assert_eq!(value(row, "backend"), Some("mysql"));
            assert_eq!(value(row, "role"), Some("primary"));
            assert_eq!(value(row, "lag_ms"), None);
            assert!(value(row, "pool_max").is_some(), "{row:?}");
            assert!(
                !value(row, "url").unwrap().contains(GHOST_PASSWORD),
                "{row:?}"
            );
        }
        let ghost = rows
            .iter()
            .find(|r| value(r, "database") == Some(cluster.ghost.as_str()))
            .unwrap();
        assert_eq!(value(ghost, "health"), Some("down"));
        assert!(value(ghost, "last_error").is_some(), "{ghost:?}");
        assert!(value(ghost, "url")
            .unwrap()
            .starts_with("mysql://root@127.0.0.1:1/"));
        let plain = rows
            .iter()
            .find(|r| value(r, "database") == Some(cluster.plain.as_str()))
            .unwrap();
        assert_eq!(value(plain, "health"), Some("up"), "{plain:?}");
        assert_eq!(value(plain, "last_error"), None);
        // `app` used a connection to the plain data source and, outside a transaction
        // under `pool_mode = "transaction"`, gave it back: it waits idle in the pool.
        assert_eq!(value(plain, "pool_in_use"), Some("0"), "{plain:?}");
        let idle: u32 = value(plain, "pool_idle").unwrap().parse().unwrap();
        assert!(idle >= 1, "{plain:?}");
        assert_eq!(value(plain, "pool_waiting"), Some("0"));

        let filtered = show(
            &mut conn,
            &format!(
                "SHOW DBMESH DATA SOURCES FROM `{}` LIKE 'ds\\_1'",
                cluster.sharded
            ),
        )
        .await;
        assert_eq!(filtered.len(), 1, "{filtered:?}");
        assert_eq!(value(&filtered[0], "data_source"), Some("ds_1"));

        // A database that does not exist is an error, not an empty list.
        let (code, state, message) =
            server_error(conn.query_drop("SHOW DBMESH TABLES FROM no_such_db").await);
        assert_eq!((code, state.as_str()), (1049, "42000"), "{message}");
        assert!(message.contains("no_such_db"), "{message}");
        let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }
}

#[tokio::test]
async fn tables_and_rules_describe_the_sharding_rules() {
    let (cluster, proxy) = start().await;
    let mut conn = admin(&proxy, None).await;
    let tables = show(
        &mut conn,
        &format!("SHOW DBMESH TABLES FROM {}", cluster.sharded),
    )
    .await;
    let names: Vec<_> = tables.iter().map(|r| value(r, "table").unwrap()).collect();
    assert_eq!(names, ["t_order", "t_order_item", "t_province"]);
    let order = &tables[0];
    assert_eq!(value(order, "type"), Some("sharded"));
    assert_eq!(
        value(order, "actual_data_nodes"),
        Some("ds_0.t_order_0, ds_0.t_order_1, ds_1.t_order_0, ds_1.t_order_1")
    );
    assert_eq!(value(order, "database_sharding_column"), Some("user_id"));
    assert_eq!(
        value(order, "database_sharding_algorithm"),
        Some("db_inline")
    );
    assert_eq!(value(order, "database_algorithm_type"), Some("INLINE"));
    assert_eq!(
        value(order, "database_algorithm_props"),
        Some("expression=ds_${user_id % 2}")
    );
    assert_eq!(value(order, "table_algorithm_type"), Some("MOD"));
    assert_eq!(
        value(order, "table_algorithm_props"),
        Some("sharding_count=2")
    );
    assert_eq!(value(order, "key_generate_column"), Some("order_id"));
    assert_eq!(value(order, "key_generator_type"), Some("SNOWFLAKE"));
    assert_eq!(value(order, "key_generator_props"), Some("worker_id=1"));
    assert_eq!(value(order, "binding_tables"), Some("t_order,t_order_item"));
    let province = &tables[2];
    assert_eq!(value(province, "type"), Some("broadcast"));
    assert_eq!(
        value(province, "actual_data_nodes"),
        Some("ds_0.t_province, ds_1.t_province")
    );
    let like = show(&mut conn, "SHOW DBMESH TABLES LIKE 't\\_order%'").await;
    assert_eq!(like.len(), 2, "{like:?}");

    let rules = show(&mut conn, "SHOW DBMESH RULES").await;
    let kinds: Vec<(&str, &str)> = rules
        .iter()
        .map(|r| (value(r, "rule").unwrap(), value(r, "name").unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("sharding_table", "t_order"),
            ("sharding_table", "t_order_item"),
            ("binding_tables", "t_order,t_order_item"),
            ("broadcast_table", "t_province"),
            ("sharding_algorithm", "db_inline"),
            ("sharding_algorithm", "order_mod"),
            ("key_generator", "snowflake"),
        ]
    );
    assert!(rules
        .iter()
        .all(|r| value(r, "database") == Some(cluster.sharded.as_str())));
    assert_eq!(value(&rules[5], "definition"), Some("sharding_count=2"));
    assert!(value(&rules[0], "definition")
        .unwrap()
        .contains("database_strategy: user_id by db_inline"));
}

#[tokio::test]
async fn sessions_list_every_client_with_its_state_and_statement() {
    let (cluster, proxy) = start().await;
    let mut app = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.sharded)))
        .await
        .unwrap();
    app.query_drop("BEGIN").await.unwrap();
    app.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (1, 1)")
        .await
        .unwrap();
    let mut conn = admin(&proxy, Some(&cluster.plain)).await;
    let rows = show(&mut conn, "SHOW DBMESH SESSIONS").await;
    let me = rows
        .iter()
        .find(|r| value(r, "id") == Some(conn.id().to_string().as_str()))
        .unwrap();
    assert_eq!(value(me, "user"), Some(ADMIN_USER));
    assert_eq!(value(me, "protocol"), Some("mysql"));
    assert_eq!(value(me, "client"), Some("127.0.0.1"));
    assert_eq!(value(me, "database"), Some(cluster.plain.as_str()));
    assert_eq!(value(me, "state"), Some("active"));
    assert_eq!(value(me, "statement"), Some("SHOW DBMESH SESSIONS"));
    assert!(value(me, "connected_at").unwrap().ends_with('Z'));
    let other = rows
        .iter()
        .find(|r| value(r, "id") == Some(app.id().to_string().as_str()))
        .unwrap();
    assert_eq!(value(other, "user"), Some(APP_USER));
    assert_eq!(value(other, "state"), Some("in transaction"));
    assert_eq!(
        value(other, "statement"),
        Some("INSERT INTO t_order (order_id, user_id) VALUES (1, 1)")
    );
    assert!(value(other, "statement_started_at").is_some());
    app.query_drop("ROLLBACK").await.unwrap();
    let only_app = show(&mut conn, "SHOW DBMESH SESSIONS LIKE 'APP'").await;
    assert_eq!(only_app.len(), 1, "{only_app:?}");
    assert_eq!(value(&only_app[0], "state"), Some("idle"));
}

#[tokio::test]
async fn variables_show_the_effective_settings() {
    let (cluster, proxy) = start().await;
    let mut conn = admin(&proxy, None).await;
    let rows = show(&mut conn, "SHOW DBMESH VARIABLES").await;
    let vars: HashMap<&str, Option<&str>> = rows
        .iter()
        .map(|r| (value(r, "variable_name").unwrap(), value(r, "value")))
        .collect();
    assert_eq!(
        vars["config_path"],
        Some(cluster.config_path.display().to_string().as_str())
    );
    assert_eq!(vars["connect_timeout_ms"], Some("2000"));
    assert_eq!(vars["checkout_timeout_ms"], Some("5000"));
    assert_eq!(vars["max_packet_size"], Some("67108864"));
    assert_eq!(vars["mysql_listen"], Some("127.0.0.1:0"));
    // The file sets none: the filter logging runs with.
    let log_level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    assert_eq!(vars["log_level"], Some(log_level.as_str()));
    assert_eq!(vars["config_generation"], Some("0"));
    assert_eq!(vars["databases"], Some("3"));
    assert_eq!(vars["version"], Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(vars["pool_mode"], Some("transaction"));
    // Unset settings are NULL, not empty strings.
    assert_eq!(vars["snowflake_worker_id"], None);
    assert_eq!(vars["slow_statement_ms"], None);
    let timeouts = show(&mut conn, "SHOW DBMESH VARIABLES LIKE '%timeout%'").await;
    // connect, checkout, login, shutdown.
    assert_eq!(timeouts.len(), 4, "{timeouts:?}");
}

#[tokio::test]
async fn admin_statements_inside_a_transaction_leave_it_alone() {
    let (cluster, proxy) = start().await;
    let mut conn = admin(&proxy, Some(&cluster.sharded)).await;
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (10, 0)")
        .await
        .unwrap();
    assert!(!show(&mut conn, "SHOW DBMESH DATA SOURCES").await.is_empty());
    let (code, _, _) = server_error(conn.query_drop("SHOW DBMESH NOTHING").await);
    assert_eq!(code, 1064);
    conn.query_drop("INSERT INTO t_order (order_id, user_id) VALUES (11, 1)")
        .await
        .unwrap();
    conn.query_drop("ROLLBACK").await.unwrap();
    let count: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM t_order")
        .await
        .unwrap();
    assert_eq!(count, Some(0));
}

#[tokio::test]
async fn users_without_admin_are_refused_and_keep_their_connection() {
    let (cluster, proxy) = start().await;
    for db in [
        Some(cluster.sharded.as_str()),
        Some(cluster.plain.as_str()),
        None,
    ] {
        let mut app = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, db))
            .await
            .unwrap();
        for statement in [
            "SHOW DBMESH DATA SOURCES",
            "SHOW DBMESH RULES",
            "SHOW DBMESH TABLES",
            "SHOW DBMESH SESSIONS",
            "SHOW DBMESH VARIABLES",
            "RELOAD DBMESH CONFIG",
        ] {
            let (code, state, message) = server_error(app.query_drop(statement).await);
            assert_eq!(
                (code, state.as_str()),
                (1227, "42000"),
                "{statement}: {message}"
            );
            assert!(message.contains(statement), "{message}");
            assert!(message.contains("admin = true"), "{message}");
        }
        if db.is_some() {
            let one: Option<i64> = app.query_first("SELECT 1").await.unwrap();
            assert_eq!(one, Some(1));
        }
    }
}

#[tokio::test]
async fn prepared_admin_statements_get_a_clear_error() {
    let (cluster, proxy) = start().await;
    let mut conn = admin(&proxy, Some(&cluster.plain)).await;
    let (code, _, message) = server_error(conn.exec_drop("SHOW DBMESH RULES", ()).await);
    assert_eq!(code, 1235, "{message}");
    assert!(message.contains("plain query"), "{message}");
    assert!(!show(&mut conn, "SHOW DBMESH RULES").await.is_empty());
}

#[tokio::test]
async fn a_session_that_changes_user_is_listed_under_its_new_user() {
    let (cluster, proxy) = start().await;
    let mut conn = Conn::new(proxy.mysql_opts(APP_USER, APP_PASSWORD, Some(&cluster.plain)))
        .await
        .unwrap();
    let id = conn.id().to_string();
    conn.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(ADMIN_USER.into()))
            .with_pass(Some(ADMIN_PASSWORD.into()))
            .with_db_name(Some(cluster.plain.clone())),
    )
    .await
    .unwrap();
    let rows = show(&mut conn, "SHOW DBMESH SESSIONS LIKE 'admin'").await;
    let me = rows
        .iter()
        .find(|r| value(r, "id") == Some(id.as_str()))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(value(me, "user"), Some(ADMIN_USER));
}

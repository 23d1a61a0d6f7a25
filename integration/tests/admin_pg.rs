//! Admin statements on the PostgreSQL listener: answered to an admin in a simple Query, in
//! a sharded session and an unsharded one (the pump), inside a transaction without
//! touching it; refused with 42501 for `app`; in the simple and the extended query
//! protocol; the connection stays usable after every error.

use std::collections::HashMap;

use dbmesh_integration::{
    pg_connect, pg_sqlstate, AdminCluster, Proxy, ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD,
    APP_USER, GHOST_PASSWORD, PG_ORDERS_DDL,
};
use tokio_postgres::{Client, SimpleQueryMessage};

type Rows = Vec<HashMap<String, Option<String>>>;

async fn show(client: &Client, sql: &str) -> Rows {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                row.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), row.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn value<'a>(row: &'a HashMap<String, Option<String>>, column: &str) -> Option<&'a str> {
    row.get(column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
        .as_deref()
}

async fn connect(proxy: &Proxy, user: &str, password: &str, db: &str) -> Client {
    pg_connect(&proxy.pg_dsn(user, password, db))
        .await
        .unwrap_or_else(|e| panic!("connect as {user} to {db}: {e}"))
}

async fn start() -> (AdminCluster, Proxy) {
    let cluster = AdminCluster::new("postgres", 0);
    let proxy = cluster.start().await;
    let client = connect(&proxy, ADMIN_USER, ADMIN_PASSWORD, &cluster.sharded).await;
    for ddl in PG_ORDERS_DDL {
        client.batch_execute(ddl).await.unwrap();
    }
    (cluster, proxy)
}

#[tokio::test]
async fn every_show_answers_an_admin_in_sharded_and_unsharded_sessions() {
    let (cluster, proxy) = start().await;
    for db in [&cluster.sharded, &cluster.plain] {
        let client = connect(&proxy, ADMIN_USER, ADMIN_PASSWORD, db).await;
        let sources = show(&client, "SHOW DBMESH DATA SOURCES").await;
        assert_eq!(sources.len(), 4, "{sources:?}");
        for row in &sources {
            assert_eq!(value(row, "backend"), Some("postgres"));
            assert!(
                !value(row, "url").unwrap().contains(GHOST_PASSWORD),
                "{row:?}"
            );
            assert_eq!(value(row, "lag_ms"), None);
        }
        let mine = sources
            .iter()
            .find(|r| value(r, "database") == Some(db.as_str()))
            .unwrap();
        assert_eq!(value(mine, "health"), Some("up"), "{mine:?}");

        let tables = show(
            &client,
            &format!("show dbmesh tables from \"{}\";", cluster.sharded),
        )
        .await;
        let names: Vec<_> = tables.iter().map(|r| value(r, "table").unwrap()).collect();
        assert_eq!(names, ["t_order", "t_order_item", "t_province"]);
        assert_eq!(value(&tables[0], "table_sharding_column"), Some("order_id"));
        assert_eq!(value(&tables[2], "database_sharding_column"), None);

        let rules = show(&client, "SHOW DBMESH RULES LIKE 'order%'").await;
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(value(&rules[0], "type"), Some("MOD"));

        let sessions = show(&client, "SHOW DBMESH SESSIONS").await;
        let me = sessions
            .iter()
            .find(|r| {
                value(r, "database") == Some(db.as_str())
                    && value(r, "statement") == Some("SHOW DBMESH SESSIONS")
            })
            .unwrap_or_else(|| panic!("{sessions:?}"));
        assert_eq!(value(me, "user"), Some(ADMIN_USER));
        assert_eq!(value(me, "protocol"), Some("postgres"));
        assert_eq!(value(me, "state"), Some("active"));

        let vars = show(&client, "SHOW DBMESH VARIABLES LIKE 'postgres_listen'").await;
        assert_eq!(vars.len(), 1);
        assert_eq!(value(&vars[0], "value"), Some("127.0.0.1:0"));

        // The session goes on as usual.
        let one = show(&client, "SELECT 1 AS one").await;
        assert_eq!(value(&one[0], "one"), Some("1"));
    }
}

#[tokio::test]
async fn a_session_in_a_transaction_is_listed_so_and_its_transaction_survives_admin_errors() {
    let (cluster, proxy) = start().await;
    for db in [&cluster.sharded, &cluster.plain] {
        let app = connect(&proxy, APP_USER, APP_PASSWORD, db).await;
        let admin = connect(&proxy, ADMIN_USER, ADMIN_PASSWORD, db).await;
        if db == &cluster.plain {
            app.batch_execute("CREATE TABLE t_plain (id INT)")
                .await
                .unwrap();
        }
        let table = if db == &cluster.plain {
            "t_plain (id)"
        } else {
            "t_province (id)"
        };
        app.batch_execute("BEGIN").await.unwrap();
        app.batch_execute(&format!("INSERT INTO {table} VALUES (7)"))
            .await
            .unwrap();
        let sessions = show(&admin, "SHOW DBMESH SESSIONS LIKE 'app'").await;
        let listed = sessions
            .iter()
            .find(|r| value(r, "database") == Some(db.as_str()))
            .unwrap_or_else(|| panic!("{sessions:?}"));
        assert_eq!(value(listed, "state"), Some("in transaction"), "{listed:?}");

        // A refused admin statement inside the transaction does not abort it.
        let e = app.simple_query("SHOW DBMESH SESSIONS").await.unwrap_err();
        assert_eq!(pg_sqlstate(&e), "42501", "{e}");
        assert!(format!("{e:?}").contains("admin = true"), "{e:?}");
        let status = app.simple_query("SELECT 1").await;
        assert!(status.is_ok(), "{status:?}");
        app.batch_execute("ROLLBACK").await.unwrap();
        let left = show(
            &app,
            &format!(
                "SELECT count(*) AS n FROM {}",
                table.split(' ').next().unwrap()
            ),
        )
        .await;
        assert_eq!(value(&left[0], "n"), Some("0"));
    }
}

#[tokio::test]
async fn users_without_admin_are_refused_and_keep_their_connection() {
    let (cluster, proxy) = start().await;
    for db in [&cluster.sharded, &cluster.plain] {
        let app = connect(&proxy, APP_USER, APP_PASSWORD, db).await;
        for statement in [
            "SHOW DBMESH DATA SOURCES",
            "SHOW DBMESH RULES",
            "SHOW DBMESH TABLES",
            "SHOW DBMESH SESSIONS",
            "SHOW DBMESH VARIABLES",
            "RELOAD DBMESH CONFIG",
        ] {
            let e = app.simple_query(statement).await.unwrap_err();
            assert_eq!(pg_sqlstate(&e), "42501", "{statement}: {e}");
            let text = format!("{e:?}");
            assert!(text.contains(statement), "{text}");
        }
        let one = show(&app, "SELECT 1 AS one").await;
        assert_eq!(value(&one[0], "one"), Some("1"));
    }
}

#[tokio::test]
async fn the_extended_protocol_answers_admin_statements_too() {
    let (cluster, proxy) = start().await;
    for db in [&cluster.sharded, &cluster.plain] {
        let client = connect(&proxy, ADMIN_USER, ADMIN_PASSWORD, db).await;
        // tokio-postgres prepares (Parse + Describe), then binds and executes.
        let rows = client
            .query("SHOW DBMESH TABLES LIKE 't_order'", &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].columns()[1].name(), "table");
        assert_eq!(rows[0].get::<_, &str>("table"), "t_order");
        assert_eq!(
            rows[0].get::<_, Option<&str>>("key_generator"),
            Some("snowflake")
        );
        let statement = client.prepare("SHOW DBMESH VARIABLES").await.unwrap();
        assert_eq!(statement.columns()[0].name(), "variable_name");
        for _ in 0..2 {
            let vars = client.query(&statement, &[]).await.unwrap();
            assert!(vars.iter().any(|r| r.get::<_, &str>(0) == "config_path"));
        }
        drop(statement);
        let e = client.query("SHOW DBMESH NONSENSE", &[]).await.unwrap_err();
        assert_eq!(pg_sqlstate(&e), "42601", "{e:?}");
        // The connection goes on, in both protocols.
        let row = client
            .query_one("SELECT 1::int4 AS one", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
        let e = client
            .simple_query("SHOW DBMESH NONSENSE")
            .await
            .unwrap_err();
        assert_eq!(pg_sqlstate(&e), "42601", "{e:?}");
        assert!(!show(&client, "SHOW DBMESH RULES").await.is_empty());

        let app = connect(&proxy, APP_USER, APP_PASSWORD, db).await;
        let e = app.query("SHOW DBMESH SESSIONS", &[]).await.unwrap_err();
        assert_eq!(pg_sqlstate(&e), "42501", "{e:?}");
        let row = app.query_one("SELECT 2::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
    }
}

#[tokio::test]
async fn pipelined_admin_statements_are_answered_in_order() {
    let (cluster, proxy) = start().await;
    for db in [&cluster.plain, &cluster.sharded] {
        let client = connect(&proxy, ADMIN_USER, ADMIN_PASSWORD, db).await;
        // tokio-postgres pipelines concurrent queries on one connection.
        let (a, b, c, d) = tokio::join!(
            client.query("SELECT 1::int4, pg_sleep(0.05)::text", &[]),
            client.query("SHOW DBMESH VARIABLES LIKE 'version'", &[]),
            client.query("SELECT 3::int4", &[]),
            client.simple_query("SHOW DBMESH VARIABLES LIKE 'databases'"),
        );
        assert_eq!(a.unwrap()[0].get::<_, i32>(0), 1);
        assert_eq!(b.unwrap()[0].get::<_, &str>(0), "version");
        assert_eq!(c.unwrap()[0].get::<_, i32>(0), 3);
        let rows: Vec<_> = d
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r.get(1).unwrap().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(rows, ["3"]);
    }
}

/// A statement sent with the extended protocol (what tokio-postgres, JDBC and psycopg
/// send) is listed `active` with its text while it runs, in a sharded session and in an
/// unsharded one: here it waits for an advisory lock held by a direct connection.
#[tokio::test]
async fn a_running_extended_protocol_statement_is_listed_active() {
    let (cluster, proxy) = start().await;
    // The default data source of each database: ds_0 of `sharded`, `plain`'s only one.
    for (db, physical) in [(&cluster.sharded, 0), (&cluster.plain, 2)] {
        let holder = pg_connect(&cluster.pg_direct(physical)).await.unwrap();
        holder
            .batch_execute("SELECT pg_advisory_lock(4242)")
            .await
            .unwrap();
        let app = connect(&proxy, APP_USER, APP_PASSWORD, db).await;
        let admin = connect(&proxy, ADMIN_USER, ADMIN_PASSWORD, db).await;
        let waiting = tokio::spawn(async move {
            app.query("SELECT pg_advisory_lock(4242)", &[])
                .await
                .unwrap();
            app
        });
        // Until the backend runs it (and waits for the lock).
        loop {
            let row = holder
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                     AND query = 'SELECT pg_advisory_lock(4242)'",
                    &[],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let sessions = show(&admin, "SHOW DBMESH SESSIONS LIKE 'app'").await;
        let listed = sessions
            .iter()
            .find(|r| value(r, "database") == Some(db.as_str()))
            .unwrap_or_else(|| panic!("{sessions:?}"));
        assert_eq!(value(listed, "state"), Some("active"), "{listed:?}");
        assert_eq!(
            value(listed, "statement"),
            Some("SELECT pg_advisory_lock(4242)"),
            "{listed:?}"
        );
        holder
            .batch_execute("SELECT pg_advisory_unlock(4242)")
            .await
            .unwrap();
        let app = waiting.await.unwrap();
        let sessions = show(&admin, "SHOW DBMESH SESSIONS LIKE 'app'").await;
        let listed = sessions
            .iter()
            .find(|r| value(r, "database") == Some(db.as_str()))
            .unwrap_or_else(|| panic!("{sessions:?}"));
        assert_eq!(value(listed, "state"), Some("idle"), "{listed:?}");
        drop(app);
    }
}

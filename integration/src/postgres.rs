//! PostgreSQL test databases and configs, admin connections and error helpers.

use crate::unique_name;
use std::process::Command;

pub fn pg_port() -> u16 {
    std::env::var("DBMESH_TEST_PG_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432)
}

/// Runs SQL on the PostgreSQL test server with `psql` (setup and teardown).
pub fn psql_exec(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h127.0.0.1",
            "-Upostgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-p",
            &pg_port().to_string(),
            "-c",
            sql,
        ])
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "psql -c {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A physical PostgreSQL database created for one test and dropped when it ends.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn create(prefix: &str) -> PgDatabase {
        let name = unique_name(prefix);
        psql_exec(&format!("CREATE DATABASE \"{name}\""));
        PgDatabase { name }
    }

    /// `postgres://postgres@127.0.0.1:5432/<name>`, as a data source URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", pg_port(), self.name)
    }

    /// A tokio-postgres connection string for a direct connection.
    pub fn direct_dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={}",
            pg_port(),
            self.name
        )
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h127.0.0.1",
                "-Upostgres",
                "-p",
                &pg_port().to_string(),
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A config with one PostgreSQL logical database `logical` on data source `ds_0` = `url`,
/// user `app`/`app-secret` (SCRAM), and a PostgreSQL listener on an ephemeral port.
pub fn pg_config(logical: &str, url: &str, extra: &str) -> String {
    crate::single_source_config("postgres", logical, url, extra)
}

/// Connects with tokio-postgres and drives the connection on a task.
pub async fn pg_connect(dsn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Replaces the ephemeral `postgres_listen = "127.0.0.1:0"` of a config built by
/// [`pg_config`] with a fixed port, for [`ChildProxy`].
pub fn pg_listen_on(toml: &str, port: u16) -> String {
    let ephemeral = r#"postgres_listen = "127.0.0.1:0""#;
    assert!(
        toml.contains(ephemeral),
        "config has no ephemeral postgres_listen"
    );
    toml.replace(
        ephemeral,
        &format!(r#"postgres_listen = "127.0.0.1:{port}""#),
    )
}

/// Adds `key = value` lines to the `[server]` table of a config built by [`pg_config`] or
/// [`mysql_config`] (`extra` is appended after the data sources, where `[server]` keys
/// cannot go).
pub fn with_server_keys(toml: &str, lines: &str) -> String {
    toml.replacen("[server]\n", &format!("[server]\n{lines}\n"), 1)
}

/// A `[[users]]` block for a PostgreSQL user with the given `postgres_auth` method.
pub fn pg_user(name: &str, password: &str, method: &str, databases: &[&str]) -> String {
    let dbs: Vec<String> = databases.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "\n[[users]]\nname = \"{name}\"\npassword = \"{password}\"\npostgres_auth = \"{method}\"\ndatabases = [{}]\n",
        dbs.join(", ")
    )
}

/// A direct (trusted) connection as `postgres` to the server's `postgres` database.
pub async fn pg_admin() -> tokio_postgres::Client {
    pg_connect(&format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        pg_port()
    ))
    .await
    .expect("direct connection to PostgreSQL")
}

/// Terminates every server process connected to physical database `db` (other than the
/// caller's), as an operator or a server restart would, and waits until each has exited so
/// its socket is closed. Returns how many there were.
pub async fn pg_terminate_backends(db: &str) -> usize {
    let admin = pg_admin().await;
    let rows = admin
        .query(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap();
    for row in &rows {
        let pid: i32 = row.get(0);
        wait_for_exit(pid as u32).await;
    }
    rows.len()
}

/// Closes a direct connection and waits until its server process has exited, so a test
/// that counts or terminates the processes on a database next does not find it there (a
/// dropped client's Terminate is sent, and its process exits, in the background).
pub async fn pg_disconnect(client: tokio_postgres::Client) {
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    drop(client);
    wait_for_exit(pid as u32).await;
}

/// Waits (at most 30 s) until a local process has exited: gone, or a zombie whose file
/// descriptors are closed.
async fn wait_for_exit(pid: u32) {
    for _ in 0..3000 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = status.lines().find(|l| l.starts_with("State:"));
        if state.is_none_or(|s| s.contains("Z")) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("process {pid} did not exit");
}

/// SQLSTATE of a tokio-postgres error that came from the server; panics otherwise.
pub fn pg_sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {e:?}"))
        .code()
        .code()
        .to_string()
}

//! Shared helpers for integration tests: unique databases on the real servers, an in-process
//! dbmesh on an ephemeral port, and the path of the dbmesh binary for tests that need a
//! separate process (RSS measurements, restarts).
//!
//! Servers: MariaDB at 127.0.0.1:3306 (root, no password) and PostgreSQL at 127.0.0.1:5432
//! (postgres, trust), as `integration/setup/services.sh` leaves them. Override with
//! `DBMESH_TEST_MYSQL_PORT` / `DBMESH_TEST_PG_PORT`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub use dbmesh;

/// The application user every test config defines.
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app-secret";

pub fn mysql_port() -> u16 {
    std::env::var("DBMESH_TEST_MYSQL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3306)
}

/// A name no other test (or earlier run) uses: `prefix_<pid>_<counter>_<random>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos:x}", std::process::id())
}

/// Runs SQL on the MariaDB test server with the `mariadb` CLI (for setup and teardown, also
/// from `Drop`, where no async runtime is available).
pub fn mariadb_exec(sql: &str) {
    let out = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            "-uroot",
            &format!("-P{}", mysql_port()),
            "-e",
            sql,
        ])
        .output()
        .expect("the mariadb client is installed");
    assert!(
        out.status.success(),
        "mariadb -e {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A physical MariaDB database created for one test and dropped when it ends.
pub struct MysqlDatabase {
    pub name: String,
}

impl MysqlDatabase {
    pub fn create(prefix: &str) -> MysqlDatabase {
        let name = unique_name(prefix);
        mariadb_exec(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ));
        MysqlDatabase { name }
    }

    /// `mysql://root@127.0.0.1:3306/<name>`, as a data source URL.
    pub fn url(&self) -> String {
        format!("mysql://root:@127.0.0.1:{}/{}", mysql_port(), self.name)
    }

    /// mysql_async options for a direct connection (the reference in differential tests).
    pub fn direct_opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(mysql_port())
            .user(Some("root"))
            .db_name(Some(self.name.clone()))
            .into()
    }
}

impl Drop for MysqlDatabase {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                "-uroot",
                &format!("-P{}", mysql_port()),
                "-e",
                &format!("DROP DATABASE IF EXISTS `{}`", self.name),
            ])
            .output();
    }
}

/// A config with one MySQL logical database `logical` on data source `ds_0` = `url`, user
/// `app`/`app-secret`, and a MySQL listener on an ephemeral port. `extra` is appended
/// verbatim (more users, server keys under a later `[server]`-free section, ...).
pub fn mysql_config(logical: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
connect_timeout_ms = 2000
checkout_timeout_ms = 5000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{logical}"]

[databases.{logical}]
backend = "mysql"
default_data_source = "ds_0"

[databases.{logical}.data_sources.ds_0]
url = "{url}"
max_connections = 64
{extra}
"#
    )
}

/// dbmesh running inside the test process.
pub struct Proxy {
    pub server: dbmesh::Server,
}

impl Proxy {
    /// Parses `toml` (relative paths resolve against the integration crate) and starts it.
    pub async fn start(toml: &str) -> Proxy {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test.toml");
        let config = match dbmesh::config::parse(toml, &path) {
            Ok(c) => c,
            Err(e) => panic!("test config is invalid:\n{e}\n---\n{toml}"),
        };
        let server = dbmesh::Server::start(config).await.expect("proxy starts");
        Proxy { server }
    }

    pub fn mysql_port(&self) -> u16 {
        self.server.mysql_addr.expect("mysql listener").port()
    }

    /// mysql_async options for `user` through the proxy into logical database `db`.
    pub fn mysql_opts(&self, user: &str, password: &str, db: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.mysql_port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(db.map(str::to_string))
            .prefer_socket(false)
            .into()
    }

    /// Options for the standard `app` user.
    pub fn app_opts(&self, db: &str) -> mysql_async::Opts {
        self.mysql_opts(APP_USER, APP_PASSWORD, Some(db))
    }
}

/// The dbmesh binary, built on first use (tests that need a separate process).
pub fn dbmesh_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--bin", "dbmesh"])
                .current_dir(&root)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the dbmesh binary failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target.join("debug").join("dbmesh")
        })
        .clone()
}

/// Resident set size of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (for configs of separately spawned processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Replaces the ephemeral `mysql_listen = "127.0.0.1:0"` of a config built by
/// [`mysql_config`] with a fixed port (separate processes cannot report the port they bound).
pub fn listen_on(toml: &str, port: u16) -> String {
    let ephemeral = r#"mysql_listen = "127.0.0.1:0""#;
    assert!(
        toml.contains(ephemeral),
        "config has no ephemeral mysql_listen"
    );
    toml.replace(ephemeral, &format!(r#"mysql_listen = "127.0.0.1:{port}""#))
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// dbmesh running as a child process (`dbmesh --config FILE`), killed when dropped, so a
/// panicking test never leaves it behind. Its stderr goes to `dbmesh.log` in its directory.
pub struct ChildProxy {
    child: std::process::Child,
    pub port: u16,
    pub dir: TempDir,
}

impl ChildProxy {
    /// Writes `toml` (whose MySQL listener must be `127.0.0.1:port`) to a temp dir, starts
    /// the binary and waits until the port accepts connections.
    pub async fn start(toml: &str, port: u16) -> ChildProxy {
        let dir = TempDir::new("dbmesh_child");
        let config = dir.path.join("dbmesh.toml");
        std::fs::write(&config, toml).unwrap();
        let log = std::fs::File::create(dir.path.join("dbmesh.log")).unwrap();
        let child = Command::new(dbmesh_binary())
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dbmesh starts");
        let mut proxy = ChildProxy { child, port, dir };
        loop {
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!(
                    "dbmesh exited with {status} before listening:\n{}",
                    proxy.log()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return proxy;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("dbmesh.log")).unwrap_or_default()
    }
}

impl Drop for ChildProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test-local TCP forwarder in front of a real server: the "network path" to a backend,
/// which a test can cut (every open connection is closed) and restore on the same port.
pub struct TcpForwarder {
    pub port: u16,
    target: u16,
    accept: Option<tokio::task::JoinHandle<()>>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl TcpForwarder {
    /// Forwards a free local port to `127.0.0.1:target`.
    pub async fn start(target: u16) -> TcpForwarder {
        let mut f = TcpForwarder {
            port: free_port(),
            target,
            accept: None,
            conns: Default::default(),
        };
        f.resume().await;
        f
    }

    /// Listens again on the same port (after `cut`).
    pub async fn resume(&mut self) {
        assert!(self.accept.is_none(), "forwarder already running");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("forwarder port is free");
        let target = self.target;
        let conns = self.conns.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(task);
            }
        }));
    }

    /// Stops listening and closes every forwarded connection.
    pub async fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let tasks: Vec<_> = self.conns.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for TcpForwarder {
    fn drop(&mut self) {
        if let Some(a) = &self.accept {
            a.abort();
        }
        for t in self.conns.lock().unwrap().iter() {
            t.abort();
        }
    }
}

/// A hand-driven MySQL client over a raw socket, for what real drivers never send: garbage,
/// oversized packets, wrong sequence ids, COM_STMT_SEND_LONG_DATA.
pub struct RawClient {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// Client capabilities `RawClient::login` asks for: protocol 4.1, secure connection, plugin
/// auth, connect with db, transactions, multi results (no DEPRECATE_EOF: classic EOFs).
const RAW_CAPABILITIES: u32 =
    0x0000_0001 | 0x0000_0008 | 0x0000_0200 | 0x0000_2000 | 0x0000_8000 | 0x0002_0000 | 0x0008_0000;

impl RawClient {
    /// Opens a TCP connection (nothing is read or sent yet).
    pub async fn connect(port: u16) -> RawClient {
        RawClient {
            stream: tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Connects and logs in with `mysql_native_password`; panics unless the server says OK.
    pub async fn login(port: u16, user: &str, password: &str, db: &str) -> RawClient {
        let mut c = RawClient::connect(port).await;
        let (seq, greeting) = c.read_packet().await.expect("greeting");
        let nonce = greeting_nonce(&greeting);
        let scramble = dbmesh::wire::mysql::auth::native_response(&nonce, password);
        let mut p = Vec::new();
        p.extend_from_slice(&RAW_CAPABILITIES.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(scramble.len() as u8);
        p.extend_from_slice(&scramble);
        p.extend_from_slice(db.as_bytes());
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        c.write_packet(seq + 1, &p).await;
        let (_, reply) = c.read_packet().await.expect("login reply");
        assert_eq!(reply.first(), Some(&0x00), "login failed: {reply:?}");
        c
    }

    /// Writes one frame with the given sequence id (payloads under 16 MiB).
    pub async fn write_packet(&mut self, seq: u8, payload: &[u8]) {
        let n = payload.len();
        assert!(n < 0xFF_FFFF);
        let mut frame = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        frame.extend_from_slice(payload);
        self.write_raw(&frame).await;
    }

    /// Writes bytes as they are (no framing).
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Half-closes the connection: the server sees end of stream.
    pub async fn shutdown_write(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.stream.shutdown().await;
    }

    /// Reads one frame: `(sequence id, payload)`, or `None` at end of stream (or a reset).
    pub async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 4 {
                let n = self.buf[0] as usize
                    | (self.buf[1] as usize) << 8
                    | (self.buf[2] as usize) << 16;
                if self.buf.len() >= 4 + n {
                    let seq = self.buf[3];
                    let payload = self.buf[4..4 + n].to_vec();
                    self.buf.drain(..4 + n);
                    return Some((seq, payload));
                }
            }
            let mut chunk = [0u8; 8192];
            // A server that neither answers nor closes must fail the test, not hang it.
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                self.stream.read(&mut chunk),
            );
            match read.await.expect("no packet from the server within 60 s") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads packets until the server closes the connection, and returns them. Guarded by a
    /// generous timeout so a server that never closes fails the test instead of hanging it.
    pub async fn read_until_closed(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut packets = Vec::new();
        let read_all = async {
            while let Some(p) = self.read_packet().await {
                packets.push(p);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read_all)
            .await
            .expect("the server closes the connection");
        packets
    }

    /// Sends a command (sequence id 0) and reads its whole response: OK, ERR, or result sets
    /// (classic EOFs), following SERVER_MORE_RESULTS_EXISTS across statements. Returns every
    /// frame as `(sequence id, payload)`.
    pub async fn command(&mut self, payload: &[u8]) -> Vec<(u8, Vec<u8>)> {
        const MORE_RESULTS: u16 = 0x0008;
        self.write_packet(0, payload).await;
        let mut packets = Vec::new();
        loop {
            let first = self.read_packet().await.expect("response");
            let p = first.1.clone();
            packets.push(first);
            let status = match p.first() {
                // ERR, or the lone EOF answering COM_SET_OPTION.
                Some(0xFF) => return packets,
                Some(0xFE) if is_eof(&p) => return packets,
                Some(0x00) => ok_status(&p),
                _ => {
                    // Column definitions up to an EOF, then rows up to an EOF.
                    for _ in 0..2 {
                        loop {
                            let pkt = self.read_packet().await.expect("result set");
                            let (end, err) = (is_eof(&pkt.1), pkt.1.first() == Some(&0xFF));
                            packets.push(pkt);
                            if err {
                                return packets;
                            }
                            if end {
                                break;
                            }
                        }
                    }
                    let eof = &packets.last().unwrap().1;
                    u16::from_le_bytes([eof[3], eof[4]])
                }
            };
            if status & MORE_RESULTS == 0 {
                return packets;
            }
        }
    }
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

/// Status flags of an OK packet.
fn ok_status(p: &[u8]) -> u16 {
    let mut at = 1;
    for _ in 0..2 {
        at += match p[at] {
            0xFC => 3,
            0xFD => 4,
            0xFE => 9,
            _ => 1,
        };
    }
    u16::from_le_bytes([p[at], p[at + 1]])
}

/// The 20-byte nonce of a HandshakeV10 greeting.
fn greeting_nonce(g: &[u8]) -> Vec<u8> {
    let version_end = 1 + g[1..].iter().position(|b| *b == 0).expect("version string");
    let part1 = version_end + 1 + 4;
    let mut nonce = g[part1..part1 + 8].to_vec();
    // filler, capabilities (2), charset, status (2), capabilities (2), auth data length,
    // reserved (10), then the rest of the nonce.
    let part2 = part1 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    nonce.extend_from_slice(&g[part2..part2 + 12]);
    nonce
}

/// Error code and message of an ERR packet payload.
pub fn err_code(payload: &[u8]) -> Option<(u16, String)> {
    (payload.first() == Some(&0xFF) && payload.len() >= 3).then(|| {
        let code = u16::from_le_bytes([payload[1], payload[2]]);
        let msg = if payload.get(3) == Some(&b'#') {
            &payload[9.min(payload.len())..]
        } else {
            &payload[3..]
        };
        (code, String::from_utf8_lossy(msg).into_owned())
    })
}

/// The error code and message of a `mysql_async` server error; panics on any other outcome.
pub fn server_error<T: std::fmt::Debug>(r: Result<T, mysql_async::Error>) -> (u16, String, String) {
    match r {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

// ---- PostgreSQL ----

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
    format!(
        r#"
[server]
postgres_listen = "127.0.0.1:0"
connect_timeout_ms = 2000
checkout_timeout_ms = 5000

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
databases = ["{logical}"]

[databases.{logical}]
backend = "postgres"
default_data_source = "ds_0"

[databases.{logical}.data_sources.ds_0]
url = "{url}"
max_connections = 64
{extra}
"#
    )
}

impl Proxy {
    pub fn postgres_port(&self) -> u16 {
        self.server.postgres_addr.expect("postgres listener").port()
    }

    /// A tokio-postgres / libpq connection string through the proxy.
    pub fn pg_dsn(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
            self.postgres_port()
        )
    }
}

/// Connects with tokio-postgres and drives the connection on a task.
pub async fn pg_connect(dsn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

// ---- PostgreSQL: separate processes, server keys, backends, raw protocol ----

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

/// Runs a program to completion off the async runtime; panics if it cannot be started.
pub async fn run_program(
    program: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let program = program.to_string();
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("{program} could not run (run integration/setup/services.sh): {e}")
        })
}

/// SQLSTATE of a tokio-postgres error that came from the server; panics otherwise.
pub fn pg_sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {e:?}"))
        .code()
        .code()
        .to_string()
}

/// One backend message as a raw client sees it: type byte and body.
#[derive(Debug, Clone)]
pub struct PgMsg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl PgMsg {
    /// The fields of an ErrorResponse / NoticeResponse, by field type (`C` SQLSTATE, `M`
    /// message, `S` severity).
    pub fn field(&self, kind: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&k, tail)) = rest.split_first() {
            if k == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if k == kind {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    /// "E:<SQLSTATE>" for errors, "Z:<status>" for ReadyForQuery, the tag otherwise: a
    /// comparable summary of a response.
    pub fn summary(&self) -> String {
        match self.tag {
            b'E' => format!("E:{}", self.field(b'C').unwrap_or_default()),
            b'Z' => format!("Z:{}", self.body[0] as char),
            t => (t as char).to_string(),
        }
    }
}

/// A hand-driven PostgreSQL client over a raw socket, for what drivers never send (garbage,
/// oversized or unknown messages, protocol 3.2) and for exact response sequences. Knows trust
/// and cleartext authentication only.
pub struct PgRaw {
    pub stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// Frontend message encoders for [`PgRaw`].
pub mod pg_frontend {
    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A startup packet for protocol `major.minor` with the given parameters.
    pub fn startup(major: u16, minor: u16, params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&major.to_be_bytes());
        body.extend_from_slice(&minor.to_be_bytes());
        for (k, v) in params {
            cstr(&mut body, k);
            cstr(&mut body, v);
        }
        body.push(0);
        let mut m = (body.len() as i32 + 4).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m
    }

    /// SSLRequest (or GSSENCRequest with code 80877104).
    pub fn request_code(code: i32) -> Vec<u8> {
        let mut m = 8i32.to_be_bytes().to_vec();
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    pub fn query(sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        message(b'Q', &b)
    }

    /// Parse without parameter types.
    pub fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend_from_slice(&0i16.to_be_bytes());
        message(b'P', &b)
    }

    /// Bind without parameters, all results in text.
    pub fn bind(portal: &str, statement: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        cstr(&mut b, statement);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        message(b'B', &b)
    }

    pub fn execute(portal: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        b.extend_from_slice(&0i32.to_be_bytes());
        message(b'E', &b)
    }

    /// Describe of a statement (`S`) or portal (`P`).
    pub fn describe(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        cstr(&mut b, name);
        message(b'D', &b)
    }

    pub fn sync() -> Vec<u8> {
        message(b'S', &[])
    }

    /// Any typed message (e.g. an unknown type byte).
    pub fn raw(tag: u8, body: &[u8]) -> Vec<u8> {
        message(tag, body)
    }
}

impl PgRaw {
    /// Opens a TCP connection (nothing is sent yet).
    pub async fn connect(port: u16) -> PgRaw {
        PgRaw {
            stream: tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Connects with protocol 3.0 and logs in (trust or cleartext); panics unless the server
    /// reaches ReadyForQuery.
    pub async fn login(port: u16, user: &str, password: &str, db: &str) -> PgRaw {
        let mut c = PgRaw::connect(port).await;
        c.send(&pg_frontend::startup(
            3,
            0,
            &[("user", user), ("database", db)],
        ))
        .await;
        c.finish_login(password).await;
        c
    }

    /// After a startup packet: answers a cleartext password request and reads up to
    /// ReadyForQuery. Returns every message the server sent.
    pub async fn finish_login(&mut self, password: &str) -> Vec<PgMsg> {
        let mut seen = Vec::new();
        loop {
            let m = self.read().await.expect("server answers the login");
            match (m.tag, m.body.get(..4)) {
                (b'R', Some([0, 0, 0, 3])) => {
                    let mut b = password.as_bytes().to_vec();
                    b.push(0);
                    self.send(&pg_frontend::raw(b'p', &b)).await;
                }
                (b'R', Some([0, 0, 0, 0])) => {}
                (b'R', _) => panic!("unsupported authentication request {:?}", m.body),
                (b'E', _) => panic!("login failed: {:?}", m.field(b'M')),
                _ => {}
            }
            let done = m.tag == b'Z';
            seen.push(m);
            if done {
                return seen;
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one byte outside message framing (the answer to SSLRequest).
    pub async fn read_byte(&mut self) -> Option<u8> {
        use tokio::io::AsyncReadExt;
        if !self.buf.is_empty() {
            return Some(self.buf.remove(0));
        }
        let mut b = [0u8; 1];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(60), self.stream.read(&mut b));
        match read.await.expect("no byte from the server within 60 s") {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    /// Reads one typed message; `None` at end of stream (or a reset).
    pub async fn read(&mut self) -> Option<PgMsg> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                let total = 1 + len as usize;
                if self.buf.len() >= total {
                    let m = PgMsg {
                        tag: self.buf[0],
                        body: self.buf[5..total].to_vec(),
                    };
                    self.buf.drain(..total);
                    return Some(m);
                }
            }
            let mut chunk = [0u8; 16384];
            // A server that neither answers nor closes must fail the test, not hang it.
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                self.stream.read(&mut chunk),
            );
            match read.await.expect("no message from the server within 60 s") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads messages up to and including `count` ReadyForQuery messages (30 s at most).
    pub async fn read_until_ready(&mut self, count: usize) -> Vec<PgMsg> {
        let mut out = Vec::new();
        let read = async {
            let mut ready = 0;
            while ready < count {
                let m = self
                    .read()
                    .await
                    .expect("connection open until ReadyForQuery");
                ready += usize::from(m.tag == b'Z');
                out.push(m);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("ReadyForQuery within 30 s");
        out
    }

    /// Reads messages until the server closes the connection (30 s at most).
    pub async fn read_until_closed(&mut self) -> Vec<PgMsg> {
        let mut out = Vec::new();
        let read = async {
            while let Some(m) = self.read().await {
                out.push(m);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("the server closes the connection");
        out
    }

    /// Sends messages and returns the responses up to the ReadyForQuery of every Sync or
    /// Query among them, as [`PgMsg::summary`] strings.
    pub async fn exchange(&mut self, messages: &[Vec<u8>]) -> Vec<String> {
        let syncs = messages
            .iter()
            .filter(|m| m[0] == b'S' || m[0] == b'Q')
            .count();
        self.send(&messages.concat()).await;
        self.read_until_ready(syncs)
            .await
            .iter()
            .map(PgMsg::summary)
            .collect()
    }
}

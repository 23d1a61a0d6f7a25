//! A PostgreSQL server of a test's own: `initdb` (or a base backup) into a temp dir, its
//! own port and socket dir, trust auth, run as the `postgres` OS user when the tests run
//! as root (PostgreSQL refuses root), stopped when dropped. The shared PostgreSQL is never
//! reconfigured. Used by the read/write-splitting tests (`replica_postgres.rs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{free_port, TempDir};

pub struct TempPostgres {
    child: Option<Child>,
    pub port: u16,
    pub dir: TempDir,
}

/// `program` as the `postgres` OS user when running as root.
pub fn pg_server_command(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// The newest installed PostgreSQL server's `bin` directory.
pub fn pg_bin_dir() -> PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("bin/postgres").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server").join("bin")
}

/// Runs `cmd` off the async runtime; panics with its stderr when it fails.
async fn run(what: &str, mut cmd: Command) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what} runs: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TempPostgres {
    /// A temp dir the server user owns, and a free port.
    fn prepare(name: &str) -> (TempDir, u16) {
        let dir = TempDir::new(name);
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir.path)
            .status();
        (dir, free_port())
    }

    /// A new cluster (`initdb`) with `conf` appended to its postgresql.conf, started.
    pub async fn init(name: &str, conf: &str) -> TempPostgres {
        let (dir, port) = Self::prepare(name);
        let mut initdb = pg_server_command(&pg_bin_dir().join("initdb"));
        initdb.arg("-D").arg(dir.path.join("data")).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        run("initdb", initdb).await;
        Self::configure_and_start(dir, port, conf).await
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`) with `conf` appended,
    /// started; returns once it accepts connections (hot standby).
    pub async fn standby_of(primary: &TempPostgres, name: &str, conf: &str) -> TempPostgres {
        let (dir, port) = Self::prepare(name);
        let mut backup = pg_server_command(&pg_bin_dir().join("pg_basebackup"));
        backup
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                // An immediate checkpoint: the default spreads it over most of
                // checkpoint_timeout, which kept each standby start waiting for a minute.
                "-c",
                "fast",
                "-p",
            ])
            .arg(primary.port.to_string())
            .arg("-D")
            .arg(dir.path.join("data"));
        run("pg_basebackup", backup).await;
        Self::configure_and_start(dir, port, conf).await
    }

    async fn configure_and_start(dir: TempDir, port: u16, conf: &str) -> TempPostgres {
        let settings = format!(
            "\n# dbmesh test server\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = off\nshared_buffers = 16MB\n\
             max_connections = 60\n{conf}\n",
            dir.path.display()
        );
        let path = dir.path.join("data/postgresql.conf");
        let mut text = std::fs::read_to_string(&path).expect("postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&path, text).unwrap();
        let mut server = TempPostgres {
            child: None,
            port,
            dir,
        };
        server.start().await;
        server
    }

    /// Starts (again) the server on its data dir; returns once it accepts connections.
    pub async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path.join("server.log"))
            .unwrap();
        let child = pg_server_command(&pg_bin_dir().join("postgres"))
            .arg("-D")
            .arg(self.dir.path.join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let dsn = self.dsn("postgres");
        for _ in 0..1200 {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("postgres exited with {status}:\n{}", self.log());
            }
            if crate::pg_connect(&dsn).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("postgres did not start:\n{}", self.log());
    }

    /// Stops the server with an immediate shutdown (SIGQUIT: the backends go with the
    /// postmaster), as a crash would; [`TempPostgres::start`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// A connection string as `postgres` to `db`.
    pub fn dsn(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} sslmode=disable",
            self.port
        )
    }

    /// A data source URL as `postgres` to `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A connection as `postgres` to `db`.
    pub async fn connect(&self, db: &str) -> tokio_postgres::Client {
        crate::pg_connect(&self.dsn(db))
            .await
            .unwrap_or_else(|e| panic!("connect to port {}: {e}", self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("server.log")).unwrap_or_default()
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

//! dbmesh as a separate process (RSS, restarts), temp dirs, ports, external programs.

use crate::unique_name;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The dbmesh binary, built on first use (tests that need a separate process). Built with
/// the integration crate's feature set (`-p dbmesh-integration`), so its dependencies are
/// the very ones the tests were compiled with (nothing is rebuilt) and it has the
/// `failpoints` feature, inert unless `DBMESH_FAILPOINTS` is set.
pub fn dbmesh_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf();
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-p",
                    "dbmesh",
                    "-p",
                    "dbmesh-integration",
                    "--bin",
                    "dbmesh",
                ])
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
        Self::start_with_env(toml, port, &[]).await
    }

    /// [`ChildProxy::start`] with extra environment variables (`DBMESH_FAILPOINTS`, `TMPDIR`).
    pub async fn start_with_env(toml: &str, port: u16, env: &[(&str, &str)]) -> ChildProxy {
        let dir = TempDir::new("dbmesh_child");
        let config = dir.path.join("dbmesh.toml");
        std::fs::write(&config, toml).unwrap();
        let log = std::fs::File::create(dir.path.join("dbmesh.log")).unwrap();
        let child = Command::new(dbmesh_binary())
            .arg("--config")
            .arg(&config)
            .envs(env.iter().copied())
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

    /// Sends signal `name` (`TERM`, `INT`, ...) to the process.
    pub fn signal(&self, name: &str) {
        // The shell's builtin `kill`: no procps needed.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s {name} {}", self.pid())])
            .status()
            .expect("sh runs");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Waits for the process to exit and returns how it did.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
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

/// Where a differential driver script connects: host port, user, password, database.
pub struct Endpoint<'a> {
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
}

/// Runs one of the differential driver scripts in integration/drivers/ (same checks over a
/// direct connection and through dbmesh) and fails the test on any difference it reports.
pub async fn run_driver_check(
    program: &str,
    script: &str,
    direct: Endpoint<'_>,
    proxy: Endpoint<'_>,
) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/drivers");
    let mut args = vec![format!("{dir}/{script}")];
    for (side, e) in [("direct", &direct), ("proxy", &proxy)] {
        args.extend([
            format!("--{side}"),
            format!("127.0.0.1:{}", e.port),
            format!("--{side}-user"),
            e.user.to_string(),
            format!("--{side}-password={}", e.password),
            format!("--{side}-db"),
            e.database.to_string(),
        ]);
    }
    let out = run_program(program, &args, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} found differences between dbmesh and a direct connection:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(" passed, 0 failed") && !stdout.contains("\n0 passed"),
        "{script} printed no summary:\n{stdout}"
    );
}

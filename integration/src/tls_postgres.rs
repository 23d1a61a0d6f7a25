//! A second PostgreSQL server with TLS, for backend TLS tests: initdb into a temp dir,
//! its own port, `ssl = on` with the test certificate, trust auth; stopped when dropped.
//! The shared PostgreSQL is never reconfigured.

use std::process::{Child, Command, Stdio};

use crate::temp_postgres::{pg_bin_dir, pg_server_command};
use crate::{free_port, TempDir, TestCerts};

pub struct TlsPostgres {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl TlsPostgres {
    pub async fn start(certs: &TestCerts) -> TlsPostgres {
        let dir = TempDir::new("postgres_tls");
        let bin = pg_bin_dir();
        // The server user must own the data dir and be the only reader of its key.
        let key = dir.path.join("server.key");
        let cert = dir.path.join("server.crt");
        std::fs::copy(certs.dir.path.join("key.pem"), &key).unwrap();
        std::fs::copy(certs.dir.path.join("cert.pem"), &cert).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir.path)
            .status();
        let data = dir.path.join("data");
        let initdb = {
            let mut cmd = pg_server_command(&bin.join("initdb"));
            cmd.arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
            tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .expect("initdb runs")
        };
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path.join("server.log")).unwrap();
        let child = pg_server_command(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path.display()))
            .args(["-c", "ssl=on", "-c", "fsync=off"])
            .args(["-c", "max_prepared_transactions=8"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let mut server = TlsPostgres { child, port, dir };
        let dsn = server.dsn("postgres");
        for _ in 0..600 {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("postgres exited with {status}:\n{}", server.log());
            }
            if crate::pg_connect(&dsn).await.is_ok() {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("postgres did not start:\n{}", server.log());
    }

    /// A plain (NoTls) connection string as `postgres` to `db`.
    pub fn dsn(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} sslmode=disable",
            self.port
        )
    }

    /// Makes TLS required on TCP for every user but `postgres` (which the tests use for
    /// setup over plain TCP): `hostssl` for all, a plain `host` line only for `postgres`,
    /// then reloads. A plain connection as another user gets "no pg_hba.conf entry".
    pub async fn require_tls(&self) {
        require_tls_in(
            &self.dir.path.join("data/pg_hba.conf"),
            &self.dsn("postgres"),
        )
        .await;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("server.log")).unwrap_or_default()
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // Immediate shutdown (SIGQUIT): the backends go with the postmaster.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `pg_hba.conf` at `hba` allows plain TCP only to `postgres`, TLS to everyone; the server
/// reached by the plain `admin_dsn` is told to reload it (asynchronously: wait for a plain
/// login of another user to be refused).
pub async fn require_tls_in(hba: &std::path::Path, admin_dsn: &str) {
    let admin = crate::pg_connect(admin_dsn).await.unwrap();
    std::fs::write(
        hba,
        "local all all trust\n\
         hostssl all all 127.0.0.1/32 trust\n\
         host all postgres 127.0.0.1/32 trust\n\
         host replication all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    let reloaded: bool = admin
        .query_one("SELECT pg_reload_conf()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reloaded);
}

/// postgresql.conf lines turning TLS on with the test certificate, whose key and
/// certificate are copied into the returned dir (owned by the server user, key 0600, as
/// PostgreSQL demands); keep the dir as long as the server runs.
pub fn tls_conf(certs: &TestCerts) -> (TempDir, String) {
    let dir = TempDir::new("postgres_tls_keys");
    let key = dir.path.join("server.key");
    let cert = dir.path.join("server.crt");
    std::fs::copy(certs.dir.path.join("key.pem"), &key).unwrap();
    std::fs::copy(certs.dir.path.join("cert.pem"), &cert).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&dir.path)
        .status();
    let conf = format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cert.display(),
        key.display()
    );
    (dir, conf)
}

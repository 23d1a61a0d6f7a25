//! A second MariaDB server with TLS, for backend TLS tests: a [`TempMariadb`] started
//! with the certificate of a [`TestCerts`]. The shared MariaDB is never reconfigured.

use crate::{TempMariadb, TestCerts};

pub struct TlsMariadb {
    server: TempMariadb,
    pub port: u16,
}

impl TlsMariadb {
    /// Installs a fresh data directory (root with an empty password) and starts
    /// `mariadbd` with the certificate of `certs`; returns once it answers queries.
    pub async fn start(certs: &TestCerts) -> TlsMariadb {
        let server = TempMariadb::start(
            "mariadb_tls",
            &[
                format!("--ssl-cert={}", certs.dir.path.join("cert.pem").display()),
                format!("--ssl-key={}", certs.dir.path.join("key.pem").display()),
                "--skip-log-bin".to_string(),
            ],
        )
        .await;
        TlsMariadb {
            port: server.port,
            server,
        }
    }

    /// Options for root over plain TCP.
    pub fn root_opts(&self, db: Option<&str>) -> mysql_async::Opts {
        self.server.root_opts(db)
    }
}

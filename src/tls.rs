//! TLS settings: the certificate dbmesh shows its clients, and how it checks the
//! certificates of backends whose data source URL asks for TLS.
//!
//! One TLS stack, rustls with the ring provider, for both directions. The protocol
//! upgrades themselves (MySQL's SSL request, PostgreSQL's SSLRequest) live in `wire`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The oldest TLS version dbmesh accepts from clients (`server.tls_min_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the default; what MySQL 8 and PostgreSQL 15 accept too).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// Every version, in the order listed in error messages.
    pub const ALL: [TlsVersion; 2] = [TlsVersion::Tls12, TlsVersion::Tls13];

    /// The name in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    /// The version called `name` (`TLSv1.2`, `1.2`, case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        let n = n.strip_prefix("tlsv").unwrap_or(&n);
        match n {
            "1.2" => Some(TlsVersion::Tls12),
            "1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    fn protocol_versions(&self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        match self {
            TlsVersion::Tls12 => rustls::ALL_VERSIONS,
            TlsVersion::Tls13 => TLS13_ONLY,
        }
    }
}

static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The frontend TLS setup: the files it came from and the rustls configuration built
/// (and so checked) when the config file was loaded.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// PEM certificate chain, resolved against the config file's directory.
    pub cert: PathBuf,
    /// PEM private key matching the chain's first certificate.
    pub key: PathBuf,
    pub min_version: TlsVersion,
    pub config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// Loads and checks the certificate chain and key: both parse, and the key belongs to
    /// the certificate.
    pub fn load(cert: &Path, key: &Path, min_version: TlsVersion) -> Result<ServerTls, String> {
        let chain = read_certs(cert)?;
        let private = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("no private key read from {}: {e}", key.display()))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(min_version.protocol_versions())
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                format!(
                    "{} and {} do not make a usable certificate and key: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        Ok(ServerTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            min_version,
            config: Arc::new(config),
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// How a backend connection uses TLS, from its data source URL (`sslmode` / `ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendTlsMode {
    /// Plain TCP (`disable`, `DISABLED`); the default, as today's data sources expect.
    #[default]
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (unless a CA file is given,
    /// which makes it `VerifyCa`, as libpq does).
    Require,
    /// TLS with a certificate signed by a trusted CA, whatever name it carries.
    VerifyCa,
    /// TLS with a trusted certificate issued for the host in the URL.
    VerifyFull,
}

impl BackendTlsMode {
    /// The mode called `value` in PostgreSQL (`verify-full`) or MySQL (`VERIFY_IDENTITY`)
    /// spelling, case-insensitive, `-` and `_` alike.
    pub fn from_name(value: &str) -> Option<Self> {
        let v = value.to_ascii_lowercase().replace('_', "-");
        Some(match v.as_str() {
            "disable" | "disabled" | "false" | "0" => BackendTlsMode::Disable,
            "prefer" | "preferred" | "allow" => BackendTlsMode::Prefer,
            "require" | "required" | "true" | "1" => BackendTlsMode::Require,
            "verify-ca" => BackendTlsMode::VerifyCa,
            "verify-full" | "verify-identity" => BackendTlsMode::VerifyFull,
            _ => return None,
        })
    }

    /// Whether a server without TLS is refused.
    pub fn required(&self) -> bool {
        matches!(
            self,
            BackendTlsMode::Require | BackendTlsMode::VerifyCa | BackendTlsMode::VerifyFull
        )
    }
}

/// TLS towards one backend: the mode, the server name to check, and the rustls client.
#[derive(Debug, Clone)]
pub struct BackendTls {
    pub mode: BackendTlsMode,
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl PartialEq for BackendTls {
    /// Two data sources use TLS alike when mode and name match (the CA file is part of
    /// the URL they come from, which is compared as well).
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode && self.server_name == other.server_name
    }
}

impl Eq for BackendTls {}

impl BackendTls {
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }

    /// The client setup for `mode` (not `Disable`) towards `host`, trusting `ca_file`
    /// when given, else the Mozilla roots.
    pub fn new(mode: BackendTlsMode, host: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let mode = match (mode, ca_file) {
            (BackendTlsMode::Require, Some(_)) => BackendTlsMode::VerifyCa,
            (m, _) => m,
        };
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = match mode {
            BackendTlsMode::Disable | BackendTlsMode::Prefer | BackendTlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification))
                .with_no_client_auth(),
            BackendTlsMode::VerifyCa | BackendTlsMode::VerifyFull => {
                let mut roots = RootCertStore::empty();
                match ca_file {
                    Some(path) => {
                        for cert in read_certs(path)? {
                            roots
                                .add(cert)
                                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                        }
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| e.to_string())?;
                let verifier: Arc<dyn ServerCertVerifier> = if mode == BackendTlsMode::VerifyCa {
                    Arc::new(AnyName(webpki))
                } else {
                    webpki
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth()
            }
        };
        Ok(BackendTls {
            mode,
            config: Arc::new(config),
            server_name,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// `sslmode=require` / `ssl-mode=REQUIRED`: encryption without authentication of the
/// server, as libpq and the MySQL clients do. Signatures are still checked, so the
/// handshake itself is sound.
#[derive(Debug)]
struct NoVerification;

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca` / `VERIFY_CA`: the chain must lead to a trusted CA; the name in the
/// certificate is not compared with the host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_modes_accept_both_spellings() {
        for (name, mode) in [
            ("disable", BackendTlsMode::Disable),
            ("DISABLED", BackendTlsMode::Disable),
            ("prefer", BackendTlsMode::Prefer),
            ("PREFERRED", BackendTlsMode::Prefer),
            ("require", BackendTlsMode::Require),
            ("REQUIRED", BackendTlsMode::Require),
            ("verify-ca", BackendTlsMode::VerifyCa),
            ("VERIFY_CA", BackendTlsMode::VerifyCa),
            ("verify-full", BackendTlsMode::VerifyFull),
            ("VERIFY_IDENTITY", BackendTlsMode::VerifyFull),
        ] {
            assert_eq!(BackendTlsMode::from_name(name), Some(mode), "{name}");
        }
        assert_eq!(BackendTlsMode::from_name("sometimes"), None);
        assert!(!BackendTlsMode::Prefer.required());
        assert!(BackendTlsMode::Require.required());
    }

    #[test]
    fn versions_parse() {
        assert_eq!(TlsVersion::from_name("TLSv1.3"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::from_name("1.2"), Some(TlsVersion::Tls12));
        assert_eq!(TlsVersion::from_name("TLSv1.1"), None);
    }

    #[test]
    fn require_with_a_ca_file_verifies_the_chain() {
        let dir = std::env::temp_dir().join(format!("dbmesh-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = BackendTls::new(BackendTlsMode::Require, "db", Some(&missing)).unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
        let plain = BackendTls::new(BackendTlsMode::Require, "db", None).unwrap();
        assert_eq!(plain.mode, BackendTlsMode::Require);
    }

    #[tokio::test]
    async fn min_version_tls13_refuses_a_tls12_only_client() {
        let dir = std::env::temp_dir().join(format!("dbmesh-tls13-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let server = ServerTls::load(
            &dir.join("cert.pem"),
            &dir.join("key.pem"),
            TlsVersion::Tls13,
        )
        .unwrap();
        let tls12_only = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification))
            .with_no_client_auth();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls12_only));
        let name = ServerName::try_from("localhost").unwrap();
        let (s, c) = tokio::join!(
            server.acceptor().accept(accepted.unwrap().0),
            connector.connect(name, client.unwrap())
        );
        assert!(s.is_err() && c.is_err(), "a TLS 1.2 handshake succeeded");

        // The same client is fine with the default minimum.
        let server = ServerTls::load(
            &dir.join("cert.pem"),
            &dir.join("key.pem"),
            TlsVersion::Tls12,
        )
        .unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let name = ServerName::try_from("localhost").unwrap();
        let (s, c) = tokio::join!(
            server.acceptor().accept(accepted.unwrap().0),
            connector.connect(name, client.unwrap())
        );
        assert!(s.is_ok() && c.is_ok());
    }
}

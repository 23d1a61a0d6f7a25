//! Certificates for the TLS tests, made at test time: a throw-away CA and a server
//! certificate it signed for `localhost` and `127.0.0.1`. No key is ever committed.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::TempDir;

/// PEM files in a temp dir: `ca.pem`, `cert.pem` + `key.pem` (the server's), and
/// `other-ca.pem`, a CA that signed nothing (for verification failures).
pub struct TestCerts {
    pub dir: TempDir,
}

impl TestCerts {
    pub fn new() -> TestCerts {
        let dir = TempDir::new("dbmesh_tls");
        let (ca, ca_key, ca_params) = make_ca("dbmesh test CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (other, ..) = make_ca("unrelated CA");
        std::fs::write(dir.path.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path.join("other-ca.pem"), other.pem()).unwrap();
        // An RSA pair for caching_sha2_password over plain TCP, so dbmesh does not spend
        // seconds of a debug build generating one.
        let rsa = dir.path.join("rsa.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&rsa)
            .output()
            .expect("openssl is installed (integration/setup/services.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestCerts { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path.join("ca.pem")
    }

    pub fn other_ca(&self) -> PathBuf {
        self.dir.path.join("other-ca.pem")
    }

    /// `tls_cert = …` / `tls_key = …` (and `rsa_private_key = …`) lines for `[server]`
    /// (absolute paths).
    pub fn server_keys(&self) -> String {
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\nrsa_private_key = \"{}\"",
            self.dir.path.join("cert.pem").display(),
            self.dir.path.join("key.pem").display(),
            self.dir.path.join("rsa.pem").display()
        )
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        Self::new()
    }
}

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair, CertificateParams) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, key, params)
}

//! Loading the TLS settings: `[server] tls_*`, `[[users]] require_tls`, and the TLS
//! parameters of data source URLs. Certificates are made here, at test time.

use std::path::{Path, PathBuf};

use super::{parse_with_env, ConfigError};
use crate::tls::{BackendTlsMode, TlsVersion};

/// A scratch directory with a self-signed certificate for localhost (`cert.pem`,
/// `key.pem`) and a second, unrelated key (`other-key.pem`).
fn cert_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dbmesh-tls-config-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("other-key.pem"), other.serialize_pem()).unwrap();
    std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
    dir
}

fn load(dir: &Path, text: &str) -> Result<super::Config, ConfigError> {
    parse_with_env(text, &dir.join("dbmesh.toml"), &|_| None)
}

fn toml_text(server: &str, user: &str, url: &str) -> String {
    format!(
        "[server]\nmysql_listen = \"127.0.0.1:3307\"\n{server}\n[[users]]\nname = \"app\"\npassword = \"x\"\ndatabases = [\"*\"]\n{user}\n[databases.shop]\nbackend = \"postgres\"\n[databases.shop.data_sources.ds_0]\nurl = \"{url}\"\n"
    )
}

const PG: &str = "postgres://postgres@127.0.0.1/shop";

fn problems(dir: &Path, text: &str) -> Vec<(Option<usize>, String, String)> {
    load(dir, text)
        .expect_err("config should be rejected")
        .problems
        .into_iter()
        .map(|p| (p.line, p.key, p.message))
        .collect()
}

#[test]
fn loads_certificate_key_and_require_tls() {
    let dir = cert_dir("loads");
    let text = toml_text(
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls_min_version = \"TLSv1.3\"",
        "require_tls = true",
        PG,
    );
    let config = load(&dir, &text).unwrap();
    let tls = config.server.tls.expect("TLS configured");
    assert_eq!(tls.cert, dir.join("cert.pem"));
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert!(config.users[0].require_tls);

    let plain = load(&dir, &config_without_tls()).unwrap();
    assert!(plain.server.tls.is_none());
    assert!(!plain.users[0].require_tls);
}

fn config_without_tls() -> String {
    toml_text("", "", PG)
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_reported() {
    let dir = cert_dir("mismatch");
    let text = toml_text(
        "tls_cert = \"cert.pem\"\ntls_key = \"other-key.pem\"",
        "",
        PG,
    );
    let p = problems(&dir, &text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].0, p[0].1.as_str()), (Some(3), "server.tls_cert"));
    assert!(
        p[0].2.contains("do not make a usable certificate and key"),
        "{}",
        p[0].2
    );
}

#[test]
fn unparsable_missing_and_half_configured_files_are_reported() {
    let dir = cert_dir("broken");
    let text = toml_text("tls_cert = \"garbage.pem\"\ntls_key = \"key.pem\"", "", PG);
    let p = problems(&dir, &text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].2.contains("no PEM certificate"), "{}", p[0].2);

    let text = toml_text("tls_cert = \"missing.pem\"", "require_tls = true", PG);
    let keys: Vec<(Option<usize>, String)> = problems(&dir, &text)
        .into_iter()
        .map(|p| (p.0, p.1))
        .collect();
    assert_eq!(
        keys,
        [
            (Some(3), "server.tls_cert".to_string()),
            (Some(3), "server.tls_key".to_string()),
            (Some(4), "users[0].require_tls".to_string()),
        ]
    );
}

#[test]
fn bad_min_version_and_require_tls_without_a_certificate_are_reported() {
    let dir = cert_dir("version");
    let text = toml_text(
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls_min_version = \"SSLv3\"",
        "",
        PG,
    );
    let p = problems(&dir, &text);
    assert_eq!(
        (p.len(), p[0].0, p[0].1.as_str()),
        (1, Some(5), "server.tls_min_version")
    );
    assert!(p[0].2.contains("TLSv1.2"), "{}", p[0].2);

    let p = problems(&dir, &toml_text("", "require_tls = true", PG));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].2.contains("requires TLS but the server offers none"),
        "{}",
        p[0].2
    );
}

#[test]
fn data_source_urls_ask_for_backend_tls() {
    let dir = cert_dir("backend");
    let url = "postgres://postgres@db.example/shop?sslmode=verify-full&sslrootcert=cert.pem";
    let config = load(&dir, &toml_text("", "", url)).unwrap();
    let tls = config.databases["shop"].data_sources["ds_0"]
        .url
        .tls
        .clone()
        .expect("TLS asked for");
    assert_eq!(tls.mode, BackendTlsMode::VerifyFull);

    let url = "postgres://postgres@127.0.0.1/shop?sslmode=require";
    let config = load(&dir, &toml_text("", "", url)).unwrap();
    let tls = config.databases["shop"].data_sources["ds_0"]
        .url
        .tls
        .clone();
    assert_eq!(tls.map(|t| t.mode), Some(BackendTlsMode::Require));

    let url = "postgres://postgres@127.0.0.1/shop?sslmode=disable";
    let config = load(&dir, &toml_text("", "", url)).unwrap();
    assert!(config.databases["shop"].data_sources["ds_0"]
        .url
        .tls
        .is_none());
}

#[test]
fn bad_backend_tls_parameters_are_reported() {
    let dir = cert_dir("backend-bad");
    for (url, expect) in [
        (
            "postgres://postgres@127.0.0.1/shop?sslmode=sometimes",
            "is not a TLS mode",
        ),
        (
            "postgres://postgres@127.0.0.1/shop?sslmode=verify-ca&sslrootcert=nope.pem",
            "nope.pem",
        ),
        (
            "postgres://postgres@127.0.0.1/shop?sslrootcert=cert.pem",
            "has no effect without a TLS mode",
        ),
    ] {
        let p = problems(&dir, &toml_text("", "", url));
        assert_eq!(p.len(), 1, "{url}: {p:?}");
        assert_eq!(p[0].1, "databases.shop.data_sources.ds_0.url", "{url}");
        assert!(p[0].2.contains(expect), "{url}: {}", p[0].2);
    }
}

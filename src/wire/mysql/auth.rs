//! Password authentication, both directions.
//!
//! Towards clients dbmesh is the server: it knows each user's password from the config, so it
//! verifies `mysql_native_password` and `caching_sha2_password` scrambles directly. Like MySQL,
//! `caching_sha2_password` requires one *full* authentication per user after start-up (the
//! password travels RSA-encrypted, or in clear over TLS); later logins take the fast path.
//! Towards backends dbmesh is the client and computes the same scrambles.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use mysql_common::auth::plugins::caching_sha2_password::scramble_sha256;
use mysql_common::auth::plugins::mysql_native_password::scramble_native;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use tokio::sync::OnceCell;

use crate::config::MysqlAuthPlugin;

/// `caching_sha2_password` "more data" status bytes.
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;
pub const FAST_AUTH_SUCCESS: u8 = 0x03;
pub const PERFORM_FULL_AUTH: u8 = 0x04;

pub const NATIVE: &[u8] = b"mysql_native_password";
pub const CACHING_SHA2: &[u8] = b"caching_sha2_password";

/// Plugin name as sent on the wire.
pub fn plugin_name(p: MysqlAuthPlugin) -> &'static [u8] {
    match p {
        MysqlAuthPlugin::MysqlNativePassword => NATIVE,
        MysqlAuthPlugin::CachingSha2Password => CACHING_SHA2,
    }
}

/// A fresh 20-byte nonce with no NUL bytes (clients treat it as a C string).
pub fn new_nonce() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut n = [0u8; 20];
    for b in n.iter_mut() {
        *b = rng.gen_range(1..=127);
    }
    n
}

/// The client's answer to a `mysql_native_password` challenge.
pub fn native_response(nonce: &[u8], password: &str) -> Vec<u8> {
    scramble_native(nonce, password.as_bytes())
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// The client's answer to a `caching_sha2_password` challenge.
pub fn sha2_response(nonce: &[u8], password: &str) -> Vec<u8> {
    let Ok(n) = <&[u8; 20]>::try_from(&nonce[..20.min(nonce.len())]) else {
        return Vec::new();
    };
    scramble_sha256(n, password.as_bytes())
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// Constant-time-ish comparison of secrets.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// XOR of `data` with the nonce repeated, as `caching_sha2_password` does before RSA.
pub fn xor_with_nonce(data: &[u8], nonce: &[u8]) -> Vec<u8> {
    data.iter()
        .zip(nonce.iter().cycle())
        .map(|(d, n)| d ^ n)
        .collect()
}

/// The RSA key pair the server side offers for `caching_sha2_password` full authentication.
pub struct RsaKeys {
    private: RsaPrivateKey,
    public_pem: String,
}

impl RsaKeys {
    /// Loads the key from a PEM file, or generates a 2048-bit key when none is configured.
    pub fn load_or_generate(private_pem: Option<&std::path::Path>) -> Result<RsaKeys, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let private = match private_pem {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                RsaPrivateKey::from_pkcs8_pem(&text)
                    .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&text))
                    .map_err(|e| format!("parsing RSA key {}: {e}", path.display()))?
            }
            None => RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .map_err(|e| format!("generating RSA key: {e}"))?,
        };
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("encoding RSA public key: {e}"))?;
        Ok(RsaKeys {
            private,
            public_pem,
        })
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Decrypts an OAEP(SHA-1) block as MySQL 8 clients send it.
    pub fn decrypt(&self, block: &[u8]) -> Option<Vec<u8>> {
        self.private.decrypt(Oaep::new::<sha1::Sha1>(), block).ok()
    }
}

/// Server-side authentication state shared by all client connections.
#[derive(Default)]
pub struct AuthState {
    rsa: OnceCell<Arc<RsaKeys>>,
    rsa_path: Option<std::path::PathBuf>,
    /// Users (name and password) who completed a full `caching_sha2_password` authentication.
    sha2_cache: Mutex<HashSet<(String, String)>>,
}

impl AuthState {
    pub fn new(rsa_path: Option<std::path::PathBuf>) -> Self {
        AuthState {
            rsa_path,
            ..Default::default()
        }
    }

    /// The RSA keys, loaded or generated on first use (off the async threads).
    pub async fn rsa(&self) -> Result<Arc<RsaKeys>, String> {
        self.rsa
            .get_or_try_init(|| async {
                let path = self.rsa_path.clone();
                tokio::task::spawn_blocking(move || RsaKeys::load_or_generate(path.as_deref()))
                    .await
                    .map_err(|e| e.to_string())?
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    pub fn sha2_cached(&self, user: &str, password: &str) -> bool {
        self.sha2_cache
            .lock()
            .unwrap()
            .contains(&(user.to_string(), password.to_string()))
    }

    pub fn remember_sha2(&self, user: &str, password: &str) {
        self.sha2_cache
            .lock()
            .unwrap()
            .insert((user.to_string(), password.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_has_no_nul_bytes() {
        for _ in 0..100 {
            assert!(!new_nonce().contains(&0));
        }
    }

    #[test]
    fn empty_password_scrambles_to_nothing() {
        let n = new_nonce();
        assert!(native_response(&n, "").is_empty());
        assert!(sha2_response(&n, "").is_empty());
        assert_eq!(native_response(&n, "x").len(), 20);
        assert_eq!(sha2_response(&n, "x").len(), 32);
    }

    #[test]
    fn rsa_round_trip_matches_what_mysql_clients_send() {
        let keys = RsaKeys::load_or_generate(None).unwrap();
        let nonce = new_nonce();
        let plain = xor_with_nonce(b"secret\0", &nonce);
        let block = mysql_common::crypto::encrypt(&plain, keys.public_pem().as_bytes()).unwrap();
        let decrypted = keys.decrypt(&block).unwrap();
        assert_eq!(xor_with_nonce(&decrypted, &nonce), b"secret\0");
    }
}

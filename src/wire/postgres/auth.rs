//! Password authentication of PostgreSQL clients: SCRAM-SHA-256 (RFC 5802/7677, as
//! PostgreSQL implements it, without channel binding), md5, and cleartext.
//!
//! dbmesh knows each user's password from the config, so it derives the SCRAM keys itself
//! (once per user and password; the 4096 PBKDF2 rounds are not repeated on every login).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{DecodeContext, Message};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

use super::message::{MessageError, MessageReader, MessageWriter};
use crate::config::{PostgresAuthMethod, UserConfig};

const ITERATIONS: u32 = 4096;
const MECHANISM: &str = "SCRAM-SHA-256";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block: SCRAM's `Hi()`.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password, &[salt, &[0, 0, 0, 1]]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &[&u]);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// What the server keeps per user for SCRAM.
#[derive(Clone)]
pub struct ScramKeys {
    salt: [u8; 16],
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl ScramKeys {
    pub fn derive(password: &str) -> ScramKeys {
        use rand::RngCore;
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        // Clients normalise the password with SASLprep when it is valid; so must we.
        let normalized = stringprep::saslprep(password)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| password.to_string());
        let salted = hi(normalized.as_bytes(), &salt, ITERATIONS);
        let client_key = hmac(&salted, &[b"Client Key"]);
        ScramKeys {
            salt,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, &[b"Server Key"]),
        }
    }
}

/// SCRAM keys by (user, password), derived on first login.
#[derive(Default)]
pub struct ScramCache(Mutex<HashMap<(String, String), ScramKeys>>);

impl ScramCache {
    async fn keys(&self, user: &UserConfig) -> ScramKeys {
        let k = (user.name.clone(), user.password.clone());
        if let Some(keys) = self.0.lock().unwrap().get(&k) {
            return keys.clone();
        }
        let password = user.password.clone();
        let keys = tokio::task::spawn_blocking(move || ScramKeys::derive(&password))
            .await
            .expect("key derivation does not panic");
        self.0.lock().unwrap().insert(k, keys.clone());
        keys
    }
}

/// The server half of a SCRAM exchange, as pure functions of the messages.
pub struct ScramServer {
    keys: ScramKeys,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

impl ScramServer {
    /// Takes the client-first-message; returns the server-first-message to send.
    pub fn start(keys: ScramKeys, client_first: &str) -> Option<(ScramServer, String)> {
        use rand::RngCore;
        // gs2-header: "n,," or "y,," (no channel binding) [+ authzid]; "p=..." is refused.
        let mut parts = client_first.splitn(3, ',');
        let cb = parts.next()?;
        let authz = parts.next()?;
        let bare = parts.next()?;
        if cb != "n" && cb != "y" {
            return None;
        }
        let client_nonce = bare.split(',').find_map(|a| a.strip_prefix("r="))?;
        let mut extra = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut extra);
        let nonce = format!("{client_nonce}{}", B64.encode(extra));
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(keys.salt));
        Some((
            ScramServer {
                keys,
                client_first_bare: bare.to_string(),
                server_first: server_first.clone(),
                nonce,
                gs2_header: format!("{cb},{authz},"),
            },
            server_first,
        ))
    }

    /// Checks the client-final-message; returns the server-final-message when the proof is
    /// right.
    pub fn finish(&self, client_final: &str) -> Option<String> {
        let (without_proof, proof) = client_final.rsplit_once(",p=")?;
        let mut channel = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                channel = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        if nonce? != self.nonce || B64.decode(channel?).ok()? != self.gs2_header.as_bytes() {
            return None;
        }
        let proof = B64.decode(proof).ok()?;
        if proof.len() != 32 {
            return None;
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac(&self.keys.stored_key, &[auth_message.as_bytes()]);
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        if !crate::wire::mysql::auth::secrets_equal(&stored, &self.keys.stored_key) {
            return None;
        }
        let server_signature = hmac(&self.keys.server_key, &[auth_message.as_bytes()]);
        Some(format!("v={}", B64.encode(server_signature)))
    }
}

/// Why authentication did not succeed.
#[derive(Debug)]
pub enum AuthFailure {
    /// Wrong password (or a broken exchange): answer 28P01.
    Denied,
    /// The connection failed.
    Io(MessageError),
}

impl From<MessageError> for AuthFailure {
    fn from(e: MessageError) -> Self {
        AuthFailure::Io(e)
    }
}

async fn read_password<R: AsyncRead + Unpin>(
    r: &mut MessageReader<R>,
) -> Result<PasswordMessageFamily, AuthFailure> {
    let (tag, mut msg) = r.read_message().await?;
    if tag != b'p' {
        return Err(AuthFailure::Denied);
    }
    PasswordMessageFamily::decode(&mut msg, &DecodeContext::default())
        .ok()
        .flatten()
        .ok_or(AuthFailure::Denied)
}

/// Runs the user's authentication method to the end (AuthenticationOk is the caller's).
pub async fn authenticate<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut MessageReader<R>,
    writer: &mut MessageWriter<W>,
    user: &UserConfig,
    cache: &ScramCache,
) -> Result<(), AuthFailure> {
    match user.postgres_auth {
        PostgresAuthMethod::Cleartext => {
            writer.write(&Authentication::CleartextPassword);
            writer.flush().await.map_err(MessageError::Io)?;
            let pw = read_password(reader)
                .await?
                .into_password()
                .map_err(|_| AuthFailure::Denied)?;
            ok_if(crate::wire::mysql::auth::secrets_equal(
                pw.password.as_bytes(),
                user.password.as_bytes(),
            ))
        }
        PostgresAuthMethod::Md5 => {
            use rand::RngCore;
            let mut salt = [0u8; 4];
            rand::thread_rng().fill_bytes(&mut salt);
            writer.write(&Authentication::MD5Password(salt.to_vec()));
            writer.flush().await.map_err(MessageError::Io)?;
            let pw = read_password(reader)
                .await?
                .into_password()
                .map_err(|_| AuthFailure::Denied)?;
            let expected = postgres_protocol::authentication::md5_hash(
                user.name.as_bytes(),
                user.password.as_bytes(),
                salt,
            );
            ok_if(crate::wire::mysql::auth::secrets_equal(
                pw.password.as_bytes(),
                expected.as_bytes(),
            ))
        }
        PostgresAuthMethod::ScramSha256 => {
            writer.write(&Authentication::SASL(vec![MECHANISM.to_string()]));
            writer.flush().await.map_err(MessageError::Io)?;
            let initial = read_password(reader)
                .await?
                .into_sasl_initial_response()
                .map_err(|_| AuthFailure::Denied)?;
            if initial.auth_method != MECHANISM {
                return Err(AuthFailure::Denied);
            }
            let first = initial
                .data
                .as_deref()
                .and_then(|d| std::str::from_utf8(d).ok())
                .ok_or(AuthFailure::Denied)?;
            let keys = cache.keys(user).await;
            let (server, server_first) =
                ScramServer::start(keys, first).ok_or(AuthFailure::Denied)?;
            writer.write(&Authentication::SASLContinue(
                server_first.into_bytes().into(),
            ));
            writer.flush().await.map_err(MessageError::Io)?;
            let response = read_password(reader)
                .await?
                .into_sasl_response()
                .map_err(|_| AuthFailure::Denied)?;
            let fin = std::str::from_utf8(&response.data).map_err(|_| AuthFailure::Denied)?;
            let server_final = server.finish(fin).ok_or(AuthFailure::Denied)?;
            writer.write(&Authentication::SASLFinal(server_final.into_bytes().into()));
            Ok(())
        }
    }
}

fn ok_if(ok: bool) -> Result<(), AuthFailure> {
    if ok {
        Ok(())
    } else {
        Err(AuthFailure::Denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    #[test]
    fn scram_exchange_with_the_postgres_client_implementation() {
        let keys = ScramKeys::derive("app-secret");
        let mut client = ScramSha256::new(b"app-secret", ChannelBinding::unsupported());
        let first = std::str::from_utf8(client.message()).unwrap().to_string();
        let (server, server_first) = ScramServer::start(keys, &first).unwrap();
        client.update(server_first.as_bytes()).unwrap();
        let fin = std::str::from_utf8(client.message()).unwrap().to_string();
        let server_final = server.finish(&fin).expect("proof accepted");
        client
            .finish(server_final.as_bytes())
            .expect("server signature verified");
    }

    #[test]
    fn scram_rejects_a_wrong_password() {
        let keys = ScramKeys::derive("app-secret");
        let mut client = ScramSha256::new(b"wrong", ChannelBinding::unsupported());
        let first = std::str::from_utf8(client.message()).unwrap().to_string();
        let (server, server_first) = ScramServer::start(keys, &first).unwrap();
        client.update(server_first.as_bytes()).unwrap();
        let fin = std::str::from_utf8(client.message()).unwrap().to_string();
        assert!(server.finish(&fin).is_none());
    }

    #[test]
    fn hi_matches_rfc7677_test_vector() {
        // RFC 7677 section 3: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 rounds;
        // the resulting ServerSignature is checked through the full exchange below.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = hi(b"pencil", &salt, 4096);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac(&stored, &[auth.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_key = hmac(&salted, &[b"Server Key"]);
        assert_eq!(
            B64.encode(hmac(&server_key, &[auth.as_bytes()])),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}

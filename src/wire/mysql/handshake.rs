//! The connection phase towards clients: the server greeting, the client's handshake
//! response, and the authentication exchange (also used by COM_CHANGE_USER).

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::auth::{
    self, AuthState, CACHING_SHA2, FAST_AUTH_SUCCESS, NATIVE, PERFORM_FULL_AUTH, REQUEST_PUBLIC_KEY,
};
use super::packet::{PacketError, PacketReader, PacketWriter};
use crate::config::{MysqlAuthPlugin, UserConfig};

/// What dbmesh tells clients about itself.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Server version string (the backend's, so drivers enable the right dialect features).
    pub version: String,
    /// Capabilities offered to clients.
    pub capabilities: CapabilityFlags,
    /// MariaDB extended capabilities offered (the backend's, within what dbmesh forwards).
    pub mariadb_capabilities: MariadbCapabilities,
    /// Default collation id.
    pub collation: u8,
    /// Default authentication plugin.
    pub auth_plugin: MysqlAuthPlugin,
}

/// Capabilities dbmesh implements towards clients, whatever the backend supports.
pub const SERVER_CAPABILITIES: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits(),
);

/// The initial greeting packet (HandshakeV10).
pub fn greeting(info: &ServerInfo, connection_id: u32, nonce: &[u8; 20]) -> Vec<u8> {
    let mut scramble_1 = [0u8; 8];
    scramble_1.copy_from_slice(&nonce[..8]);
    let mut scramble_2 = nonce[8..].to_vec();
    scramble_2.push(0);
    let hs = HandshakePacket::new(
        10,
        info.version.as_bytes(),
        connection_id,
        scramble_1,
        Some(scramble_2),
        info.capabilities,
        info.collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(auth::plugin_name(info.auth_plugin)),
    )
    .with_mariadb_ext_capabilities(info.mariadb_capabilities);
    let mut out = Vec::new();
    hs.serialize(&mut out);
    out
}

/// The parts of a handshake response dbmesh uses.
#[derive(Debug, Clone)]
pub struct ClientHello {
    pub capabilities: CapabilityFlags,
    /// MariaDB extended capabilities (empty unless the client cleared CLIENT_MYSQL).
    pub mariadb_capabilities: MariadbCapabilities,
    pub collation: u8,
    pub user: String,
    pub auth_data: Vec<u8>,
    pub database: Option<String>,
    pub plugin: Vec<u8>,
    pub max_packet: u32,
}

/// Is this the SSL request, the short handshake response (capabilities, max packet size,
/// collation, filler) a client sends with CLIENT_SSL before starting TLS?
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32 && {
        let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        CapabilityFlags::from_bits_truncate(caps).contains(CapabilityFlags::CLIENT_SSL)
    }
}

/// Parses the client's handshake response; `None` when it is not one.
pub fn parse_hello(payload: &[u8]) -> Option<ClientHello> {
    if payload.len() < 32 {
        return None;
    }
    let hr: HandshakeResponse<'_> = ParseBuf(payload).parse(()).ok()?;
    let caps = hr.capabilities();
    Some(ClientHello {
        capabilities: caps,
        mariadb_capabilities: if caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
            MariadbCapabilities::empty()
        } else {
            hr.mariadb_ext_capabilities()
        },
        collation: hr.collation(),
        user: String::from_utf8_lossy(hr.user()).into_owned(),
        auth_data: hr.scramble_buf().to_vec(),
        database: hr
            .db_name()
            .filter(|d| !d.is_empty() && caps.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB))
            .map(|d| String::from_utf8_lossy(d).into_owned()),
        plugin: hr
            .auth_plugin()
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_else(|| NATIVE.to_vec()),
        max_packet: u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]),
    })
}

/// Client i/o during authentication.
pub struct AuthIo<'a, R, W> {
    pub reader: &'a mut PacketReader<R>,
    pub writer: &'a mut PacketWriter<W>,
    /// Next sequence id to send.
    pub seq: &'a mut u8,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> AuthIo<'_, R, W> {
    async fn send(&mut self, payload: &[u8]) -> Result<(), PacketError> {
        self.writer.write_packet(self.seq, payload);
        self.writer.flush().await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<Vec<u8>, PacketError> {
        let pkt = self.reader.read_packet_seq(*self.seq).await?;
        *self.seq = pkt.seq.wrapping_add(1);
        Ok(pkt.payload.to_vec())
    }
}

/// Checks the client's credentials for `user`, switching the client to the plugin the user
/// requires and running `caching_sha2_password` full authentication when needed. Returns
/// whether the client proved the password. The final OK/ERR is left to the caller.
/// Over TLS the full authentication takes the password in clear, as MySQL does.
#[allow(clippy::too_many_arguments)]
pub async fn authenticate<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    io: &mut AuthIo<'_, R, W>,
    state: &AuthState,
    user: &UserConfig,
    default_plugin: MysqlAuthPlugin,
    nonce: &[u8; 20],
    client_plugin: &[u8],
    mut auth_data: Vec<u8>,
    over_tls: bool,
) -> Result<bool, PacketError> {
    let required = user.mysql_auth_plugin.unwrap_or(default_plugin);
    let name = auth::plugin_name(required);
    if client_plugin != name {
        let mut switch = vec![0xFE];
        switch.extend_from_slice(name);
        switch.push(0);
        switch.extend_from_slice(nonce);
        switch.push(0);
        io.send(&switch).await?;
        auth_data = io.recv().await?;
    }
    let password = user.password.as_str();
    match required {
        MysqlAuthPlugin::MysqlNativePassword => Ok(auth::secrets_equal(
            &auth_data,
            &auth::native_response(nonce, password),
        )),
        MysqlAuthPlugin::CachingSha2Password => {
            debug_assert_eq!(name, CACHING_SHA2);
            if password.is_empty() {
                return Ok(auth_data.is_empty() || auth_data == [0]);
            }
            let fast_ok = auth::secrets_equal(&auth_data, &auth::sha2_response(nonce, password));
            if state.sha2_cached(&user.name, password) {
                if fast_ok {
                    io.send(&[0x01, FAST_AUTH_SUCCESS]).await?;
                }
                return Ok(fast_ok);
            }
            // Not cached since start-up: full authentication, as MySQL does.
            io.send(&[0x01, PERFORM_FULL_AUTH]).await?;
            let reply = io.recv().await?;
            if over_tls && reply != [REQUEST_PUBLIC_KEY] {
                let clear = reply.strip_suffix(&[0]).unwrap_or(&reply);
                let ok = auth::secrets_equal(clear, password.as_bytes());
                if ok {
                    state.remember_sha2(&user.name, password);
                }
                return Ok(ok);
            }
            let keys = match state.rsa().await {
                Ok(k) => k,
                Err(e) => {
                    tracing::error!("caching_sha2_password full authentication unavailable: {e}");
                    return Ok(false);
                }
            };
            // A client that already has the public key (from an earlier login on this
            // connection, or configured with it) sends the encrypted password straight away;
            // the others ask for the key first. Anything else (a cleartext password, which
            // is only acceptable over TLS, handled above) fails to decrypt and is refused.
            let block = if reply == [REQUEST_PUBLIC_KEY] {
                let mut key_packet = vec![0x01];
                key_packet.extend_from_slice(keys.public_pem().as_bytes());
                io.send(&key_packet).await?;
                io.recv().await?
            } else {
                reply
            };
            let ok = keys
                .decrypt(&block)
                .map(|plain| {
                    let mut clear = auth::xor_with_nonce(&plain, nonce);
                    if clear.last() == Some(&0) {
                        clear.pop();
                    }
                    auth::secrets_equal(&clear, password.as_bytes())
                })
                .unwrap_or(false);
            if ok {
                state.remember_sha2(&user.name, password);
            }
            Ok(ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips_through_mysql_common() {
        let info = ServerInfo {
            version: "5.5.5-10.11.19-MariaDB".into(),
            capabilities: SERVER_CAPABILITIES | CapabilityFlags::CLIENT_DEPRECATE_EOF,
            mariadb_capabilities: MariadbCapabilities::empty(),
            collation: 45,
            auth_plugin: MysqlAuthPlugin::MysqlNativePassword,
        };
        let nonce = auth::new_nonce();
        let bytes = greeting(&info, 42, &nonce);
        let hs: HandshakePacket<'_> = ParseBuf(&bytes).parse(()).unwrap();
        assert_eq!(hs.connection_id(), 42);
        assert_eq!(hs.nonce(), nonce.to_vec());
        assert_eq!(hs.auth_plugin_name_ref(), Some(NATIVE));
        assert_eq!(hs.capabilities(), info.capabilities);
        assert_eq!(hs.default_collation(), 45);
    }

    #[test]
    fn recognises_the_ssl_request() {
        let mut request = vec![0u8; 32];
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SSL;
        request[..4].copy_from_slice(&caps.bits().to_le_bytes());
        assert!(is_ssl_request(&request));
        request[..4].copy_from_slice(&CapabilityFlags::CLIENT_PROTOCOL_41.bits().to_le_bytes());
        assert!(!is_ssl_request(&request));
        assert!(!is_ssl_request(&[0u8; 40]));
    }

    #[test]
    fn rejects_garbage_as_handshake_response() {
        assert!(parse_hello(b"GET / HTTP/1.1\r\n").is_none());
    }
}

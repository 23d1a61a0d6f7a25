//! The connection phase of a client connection: greeting, optional TLS, authentication,
//! and the session that comes out of it.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_common::constants::CapabilityFlags;
use tracing::debug;

use super::auth;
use super::err::{code, MysqlError};
use super::frontend::{packet_error_reply, ClientConn};
use super::handshake::{self, AuthIo};
use super::packet::{read_packet_unbuffered, Packet, PacketError, PacketReader, PacketWriter};
use crate::admin::metrics::{ConnectionMetrics, RouteKind};
use crate::config::UserConfig;
use crate::error::Error;
use crate::server::Runtime;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::wire::stream::Stream;

impl ClientConn {
    pub(super) async fn handshake(
        rt: Arc<Runtime>,
        connection_id: u32,
        peer: String,
        mut stream: Stream,
        (shutdown, metrics): (Shutdown, ConnectionMetrics),
    ) -> Option<ClientConn> {
        let nonce = auth::new_nonce();
        let mut info = rt.mysql.clone();
        let config = rt.config();
        let tls = config.server.tls.as_ref();
        if tls.is_some() {
            info.capabilities |= CapabilityFlags::CLIENT_SSL;
        }
        let max = rt.config().server.max_packet_size as usize;
        let mut seq = 0u8;
        let mut greeting = PacketWriter::new(&mut stream);
        greeting.write_packet(&mut seq, &handshake::greeting(&info, connection_id, &nonce));
        greeting.flush().await.ok()?;

        // Until TLS is settled the connection is read packet by packet, unbuffered.
        let mut first = read_in_sequence(&mut stream, max, seq).await;
        if let (Some(tls), Ok(pkt)) = (tls, &first) {
            if handshake::is_ssl_request(&pkt.payload) {
                seq = pkt.seq.wrapping_add(1);
                stream = match stream.accept_tls(&tls.acceptor()).await {
                    Ok(s) => s,
                    Err(e) => {
                        debug!("TLS handshake failed: {e}");
                        return None;
                    }
                };
                first = read_in_sequence(&mut stream, max, seq).await;
            }
        }
        let over_tls = stream.is_tls();
        let (r, w) = stream.into_split();
        let mut reader = PacketReader::new(r, max);
        let mut writer = PacketWriter::new(w);
        let hello = match first {
            Ok(pkt) => handshake::parse_hello(&pkt.payload),
            Err(e) => {
                debug!("handshake failed: {e}");
                let err = packet_error_reply(&e);
                if let Some(err) = err {
                    writer.write_packet(&mut seq, &err.payload());
                    let _ = writer.flush().await;
                }
                return None;
            }
        };
        seq = seq.wrapping_add(1);
        let Some(hello) =
            hello.filter(|h| h.capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41))
        else {
            let err = MysqlError::new(code::ER_HANDSHAKE_ERROR, "08S01", "Bad handshake");
            writer.write_packet(&mut seq, &err.payload());
            let _ = writer.flush().await;
            return None;
        };
        let capabilities = hello.capabilities & info.capabilities;
        let user = rt
            .config()
            .users
            .iter()
            .find(|u| u.name == hello.user)
            .cloned();
        let mut io = AuthIo {
            reader: &mut reader,
            writer: &mut writer,
            seq: &mut seq,
        };
        let ok = match &user {
            Some(u) => handshake::authenticate(
                &mut io,
                &rt.auth,
                u,
                info.auth_plugin,
                &nonce,
                &hello.plugin,
                hello.auth_data.clone(),
                over_tls,
            )
            .await
            .ok()?,
            None => false,
        };
        let generation = rt.generation();
        let mut conn = ClientConn {
            cluster: rt.cluster(),
            generation,
            info: None,
            rt: rt.clone(),
            reader,
            writer,
            connection_id,
            nonce,
            capabilities,
            mariadb_capabilities: hello.mariadb_capabilities & info.mariadb_capabilities,
            collation: hello.collation,
            session: Session::new(
                Arc::new(
                    user.clone()
                        .unwrap_or_else(|| placeholder_user(&hello.user)),
                ),
                None,
                peer.clone(),
            ),
            backends: Vec::new(),
            statements: HashMap::new(),
            next_statement_id: 1,
            seq,
            over_tls,
            killed: Arc::new(tokio::sync::Notify::new()),
            kill_thread: None,
            txn: None,
            last_insert_id: 0,
            multi_statements: capabilities.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
            more_results: false,
            shutdown,
            metrics,
            route: RouteKind::Single,
            statement_failed: false,
            read_write: Default::default(),
            pins: Default::default(),
            keep_for_next: false,
        };
        if !ok {
            conn.send_error(&Error::AccessDenied {
                user: hello.user.clone(),
                host: peer,
                using_password: !hello.auth_data.is_empty(),
            });
            let _ = conn.writer.flush().await;
            return None;
        }
        if conn.session.user.require_tls && !over_tls {
            conn.send_error(&Error::TlsRequired {
                user: hello.user.clone(),
                host: peer,
            });
            let _ = conn.writer.flush().await;
            return None;
        }
        if let Some(db) = &hello.database {
            if let Err(e) = conn.check_database(db) {
                conn.send_error(&e);
                let _ = conn.writer.flush().await;
                return None;
            }
            conn.session.database = Some(db.clone());
        }
        conn.killed = rt.mysql_kill.register(connection_id, &hello.user);
        conn.info = Some(rt.sessions.register(
            connection_id,
            &hello.user,
            "mysql",
            &conn.session.host,
            hello.database.as_deref(),
        ));
        conn.send_ok();
        conn.writer.flush().await.ok()?;
        tracing::debug!(user = %hello.user, db = ?hello.database, "authenticated");
        Some(conn)
    }
}

/// The next connection-phase packet, which must carry sequence id `expected`.
async fn read_in_sequence(
    stream: &mut Stream,
    max: usize,
    expected: u8,
) -> Result<Packet, PacketError> {
    let pkt = read_packet_unbuffered(stream, max).await?;
    if pkt.seq != expected {
        return Err(PacketError::Sequence {
            got: pkt.seq,
            expected,
        });
    }
    Ok(pkt)
}

fn placeholder_user(name: &str) -> UserConfig {
    UserConfig {
        name: name.to_string(),
        password: String::new(),
        databases: Vec::new(),
        mysql_auth_plugin: None,
        postgres_auth: Default::default(),
        admin: false,
        require_tls: false,
    }
}

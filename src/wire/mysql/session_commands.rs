//! Commands that act on the session rather than run SQL: COM_RESET_CONNECTION,
//! COM_CHANGE_USER, and `KILL` with dbmesh's connection ids.

use std::sync::Arc;

use mysql_common::constants::CapabilityFlags;
use tracing::warn;

use super::auth;
use super::backend::{BackendConn, ConnectOptions};
use super::err::{code, MysqlError};
use super::frontend::{ClientConn, Fatal};
use super::handshake::{self, AuthIo};
use super::kill::KillRefused;
use crate::error::Error;

impl ClientConn {
    /// `KILL [QUERY | CONNECTION] id` with dbmesh's connection ids: carried out on the
    /// backend thread serving that connection.
    pub(crate) async fn kill(&mut self, query_only: bool, id: u64) -> Result<(), Fatal> {
        let user = self.session.user.clone();
        let found = u32::try_from(id)
            .map_err(|_| KillRefused::Unknown)
            .and_then(|id| self.rt.mysql_kill.lookup(id, &user.name, user.admin));
        let (targets, close) = match found {
            Ok(t) => t,
            Err(KillRefused::Unknown) => {
                let e = MysqlError::new(
                    code::ER_NO_SUCH_THREAD,
                    "HY000",
                    format!("Unknown thread id: {id}"),
                );
                self.writer.write_packet(&mut self.seq, &e.payload());
                return Ok(());
            }
            Err(KillRefused::NotOwner) => {
                let e = MysqlError::new(
                    code::ER_KILL_DENIED_ERROR,
                    "HY000",
                    format!("You are not owner of thread {id}"),
                );
                self.writer.write_packet(&mut self.seq, &e.payload());
                return Ok(());
            }
        };
        for t in targets {
            let sql = if query_only { "KILL QUERY " } else { "KILL " };
            let config = self.rt.config();
            let server = &config.server;
            let conn = BackendConn::connect(ConnectOptions {
                url: &t.url,
                profile: self.profile(),
                connect_timeout: server.connect_timeout,
                max_packet: server.max_packet_size,
            })
            .await;
            match conn {
                Ok(mut c) => match c.query_internal(&format!("{sql}{}", t.thread_id)).await {
                    // The thread may have finished meanwhile; that is not the client's error.
                    Ok(_) => {}
                    Err(e) => warn!("KILL on the backend failed: {e}"),
                },
                Err(e) => {
                    self.send_error(&Error::DataSourceUnavailable {
                        database: String::new(),
                        data_source: t.url.to_string(),
                        cause: e.to_string(),
                    });
                    return Ok(());
                }
            }
        }
        if !query_only {
            if id == u64::from(self.connection_id) {
                // Killing yourself: the answer is the error, then the connection closes.
                let e =
                    MysqlError::new(code::ER_CONNECTION_KILLED, "70100", "Connection was killed");
                self.writer.write_packet(&mut self.seq, &e.payload());
                let _ = self.writer.flush().await;
                return Err(Fatal);
            }
            close.notify_one();
        }
        self.send_ok();
        Ok(())
    }

    // ---- session commands ----

    /// COM_RESET_CONNECTION: a clean session on the same connection (database kept).
    pub(crate) async fn reset_connection(&mut self) -> Result<(), Fatal> {
        self.reset_backends().await;
        self.statements.clear();
        self.session.reset();
        self.send_ok();
        Ok(())
    }

    pub(crate) async fn reset_backends(&mut self) {
        // A reset rolls back whatever each connection had open, and forgets the last id.
        self.txn = None;
        self.last_insert_id = 0;
        self.pins.clear();
        self.keep_for_next = false;
        for held in &mut self.backends {
            held.joined = false;
        }
        let mut i = 0;
        while i < self.backends.len() {
            if self.backends[i].conn.reset().await.is_ok() {
                i += 1;
            } else {
                self.drop_backend(i);
            }
        }
    }

    /// COM_CHANGE_USER: authenticates again as another (or the same) user; on success the
    /// session starts afresh, on failure the previous user stays logged in.
    pub(crate) async fn change_user(&mut self, payload: &[u8]) -> Result<(), Fatal> {
        let Some(req) = parse_change_user(payload, self.capabilities) else {
            self.send_error(&Error::Malformed("COM_CHANGE_USER".into()));
            return Ok(());
        };
        let user = self
            .rt
            .config()
            .users
            .iter()
            .find(|u| u.name == req.user)
            .cloned();
        let ok = match &user {
            Some(u) => {
                let mut io = AuthIo {
                    reader: &mut self.reader,
                    writer: &mut self.writer,
                    seq: &mut self.seq,
                };
                handshake::authenticate(
                    &mut io,
                    &self.rt.auth,
                    u,
                    self.rt.mysql.auth_plugin,
                    &self.nonce,
                    &req.plugin,
                    req.auth_data.clone(),
                    self.over_tls,
                )
                .await
                .map_err(|_| Fatal)?
            }
            None => false,
        };
        let Some(user) = user.filter(|_| ok) else {
            // As MariaDB does: the previous user stays logged in, but the session is reset.
            self.reset_backends().await;
            self.statements.clear();
            self.session.reset();
            self.send_error(&Error::AccessDenied {
                user: req.user,
                host: self.session.host.clone(),
                using_password: !req.auth_data.is_empty(),
            });
            return Ok(());
        };
        if user.require_tls && !self.over_tls {
            self.reset_backends().await;
            self.statements.clear();
            self.session.reset();
            self.send_error(&Error::TlsRequired {
                user: req.user,
                host: self.session.host.clone(),
            });
            return Ok(());
        }
        let previous = std::mem::replace(&mut self.session.user, Arc::new(user));
        if let Some(db) = &req.database {
            if let Err(e) = self.check_database(db) {
                self.session.user = previous;
                self.send_error(&e);
                return Ok(());
            }
        }
        self.reset_backends().await;
        self.statements.clear();
        self.session.reset();
        self.session.database = req.database;
        if let Some(c) = req.collation {
            self.collation = c;
        }
        if let Some(info) = &self.info {
            info.set_user(&self.session.user.name);
        }
        self.send_ok();
        Ok(())
    }
}

/// The fields of COM_CHANGE_USER.
struct ChangeUser {
    user: String,
    auth_data: Vec<u8>,
    database: Option<String>,
    collation: Option<u8>,
    plugin: Vec<u8>,
}

fn parse_change_user(p: &[u8], caps: CapabilityFlags) -> Option<ChangeUser> {
    let mut rest = p.get(1..)?;
    let cstr = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let end = rest.iter().position(|b| *b == 0)?;
        let s = rest[..end].to_vec();
        *rest = &rest[end + 1..];
        Some(s)
    };
    let user = String::from_utf8_lossy(&cstr(&mut rest)?).into_owned();
    let auth_data = if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let len = *rest.first()? as usize;
        let d = rest.get(1..1 + len)?.to_vec();
        rest = &rest[1 + len..];
        d
    } else {
        cstr(&mut rest)?
    };
    let db = cstr(&mut rest).unwrap_or_default();
    let mut collation = None;
    let mut plugin = auth::NATIVE.to_vec();
    if rest.len() >= 2 {
        collation = Some(rest[0]);
        rest = &rest[2..];
        if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
            if let Some(name) = cstr(&mut rest) {
                plugin = name;
            }
        }
    }
    Some(ChangeUser {
        user,
        auth_data,
        database: (!db.is_empty()).then(|| String::from_utf8_lossy(&db).into_owned()),
        collation,
        plugin,
    })
}

//! Start-up of a PostgreSQL client connection: TLS negotiation, cancel requests, the startup
//! packet, authentication, the database check, and the first backend connection.

use super::*;

impl PgClient {
    /// Start-up: TLS negotiation (GSS encryption declined), cancel requests, the startup
    /// packet, authentication, the backend connection, and the parameters the client sees.
    pub(super) async fn start(
        rt: Arc<Runtime>,
        id: i32,
        peer: String,
        mut stream: Stream,
        (shutdown, metrics): (Shutdown, ConnectionMetrics),
    ) -> Option<PgClient> {
        // Until TLS is settled the connection is read message by message, unbuffered.
        let mut startup = loop {
            let mut msg = match read_startup_unbuffered(&mut stream, MAX_STARTUP).await {
                Ok(m) => m,
                Err(e) => {
                    debug!("start-up failed: {e}");
                    fatal(
                        &mut MessageWriter::new(&mut stream),
                        "08P01",
                        "invalid startup packet",
                    )
                    .await;
                    return None;
                }
            };
            let code = i32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
            match code {
                SSL_REQUEST if stream.is_tls() => {
                    let mut writer = MessageWriter::new(&mut stream);
                    fatal(&mut writer, "08P01", "SSLRequest over a TLS connection").await;
                    return None;
                }
                SSL_REQUEST if rt.config().server.tls.is_some() => {
                    let config = rt.config();
                    let tls = config.server.tls.as_ref().expect("checked");
                    stream.write_all(b"S").await.ok()?;
                    stream = match stream.accept_tls(&tls.acceptor()).await {
                        Ok(s) => s,
                        Err(e) => {
                            debug!("TLS handshake failed: {e}");
                            return None;
                        }
                    };
                }
                SSL_REQUEST | GSSENC_REQUEST => {
                    // Not offered: 'N', and the client continues in plain text (or gives up).
                    stream.write_all(b"N").await.ok()?;
                }
                CANCEL_REQUEST if msg.len() == 16 => {
                    let pid = i32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
                    let secret = i32::from_be_bytes([msg[12], msg[13], msg[14], msg[15]]);
                    rt.pg_cancel.cancel(pid, secret).await;
                    return None;
                }
                _ => {
                    let mut writer = MessageWriter::new(&mut stream);
                    if code >> 16 != 3 {
                        fatal(
                            &mut writer,
                            "0A000",
                            &format!(
                                "unsupported frontend protocol {}.{}: dbmesh supports 3.0",
                                code >> 16,
                                code & 0xFFFF
                            ),
                        )
                        .await;
                        return None;
                    }
                    let ctx = DecodeContext::default();
                    match Startup::decode(&mut msg, &ctx) {
                        Ok(Some(s)) => break s,
                        _ => {
                            fatal(&mut writer, "08P01", "invalid startup packet").await;
                            return None;
                        }
                    }
                }
            }
        };
        let over_tls = stream.is_tls();
        let (r, w) = stream.into_split();
        let max = rt.config().server.max_packet_size as usize;
        let mut reader = MessageReader::new(r, max);
        let mut writer = MessageWriter::new(w);
        if startup.protocol_number_minor > 0 {
            negotiate_protocol_version(&mut writer, &startup);
        }
        let user_name = startup.parameters.get("user").cloned().unwrap_or_default();
        let database = startup
            .parameters
            .get("database")
            .filter(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| user_name.clone());
        startup.parameters.retain(|k, _| !k.starts_with("_pq_."));

        // Unknown users go through the same exchange with a password nobody knows, so the
        // answer does not tell which user names exist.
        let user = rt
            .config()
            .users
            .iter()
            .find(|u| u.name == user_name)
            .cloned();
        if user.as_ref().is_some_and(|u| u.require_tls) && !over_tls {
            // Refused before the password, as pg_hba.conf's `hostssl` lines do.
            let e = Error::TlsRequired {
                user: user_name,
                host: peer,
            };
            send_fatal(&mut writer, &e).await;
            return None;
        }
        let auth_user = user.clone().unwrap_or_else(|| unknown_user(&user_name));
        match auth::authenticate(&mut reader, &mut writer, &auth_user, &rt.pg_scram).await {
            Ok(()) if user.is_some() => {}
            Ok(()) | Err(AuthFailure::Denied) => {
                let e = Error::AccessDenied {
                    user: user_name,
                    host: peer,
                    using_password: true,
                };
                send_fatal(&mut writer, &e).await;
                return None;
            }
            Err(AuthFailure::Io(e)) => {
                debug!("authentication aborted: {e}");
                return None;
            }
        }
        let user = Arc::new(user.expect("checked above"));
        let mut session = Session::new(user, Some(database.clone()), peer);
        let rt_generation = rt.generation();
        let data_source = match check_database(&rt, &session, &database) {
            Ok(ds) => ds,
            Err(e) => {
                send_fatal(&mut writer, &e).await;
                return None;
            }
        };
        session.database = Some(database);
        let mut client = PgClient {
            rt,
            reader,
            writer,
            key: (id, rand::random()),
            session,
            params: StartupParams::from_client(&startup.parameters),
            data_source,
            backend: None,
            statements: Statements::default(),
            pending_syncs: 0,
            unsynced: false,
            skip_until_sync: false,
            tx_status: b'I',
            shutdown,
            metrics,
            requests: VecDeque::new(),
            batch: Batch::default(),
            info: None,
            generation: rt_generation,
            maybe_pinned: false,
            unnamed_statement_waiting: false,
            admin: Default::default(),
            read_write: Default::default(),
            resend: Default::default(),
        };
        if let Err(e) = client.connect_at_start().await {
            send_fatal(&mut client.writer, &e).await;
            return None;
        }
        let conn = &client.backend.as_ref().expect("just connected").conn;
        client.writer.write(&Authentication::Ok);
        for (name, value) in &conn.parameters {
            client
                .writer
                .write(&ParameterStatus::new(name.clone(), value.clone()));
        }
        client.writer.write(&BackendKeyData::new(
            client.key.0,
            SecretKey::I32(client.key.1),
        ));
        client.tx_status = conn.tx_status;
        client.info = Some(client.rt.sessions.register(
            id as u32,
            &client.session.user.name,
            "postgres",
            &client.session.host,
            client.session.database.as_deref(),
        ));
        client.write_ready();
        client.writer.flush().await.ok()?;
        Some(client)
    }
}

/// May the session's user use `database`, and is it a PostgreSQL one? Returns where its
/// statements go.
fn check_database(
    rt: &Runtime,
    session: &Session,
    database: &str,
) -> Result<Arc<DataSource>, Error> {
    let Some(logical) = rt.cluster().databases.get(database).cloned() else {
        return Err(Error::UnknownDatabase(database.to_string()));
    };
    if !session.user.may_use(database) {
        return Err(Error::DatabaseAccessDenied {
            user: session.user.name.clone(),
            host: session.host.clone(),
            database: database.to_string(),
        });
    }
    if logical.config.backend != BackendKind::Postgres {
        return Err(Error::WrongProtocol {
            database: database.to_string(),
            backend: "MySQL".into(),
        });
    }
    let route = crate::route::plan(session, &rt.cluster(), BackendKind::Postgres)?;
    Ok(route.data_source)
}

fn unknown_user(name: &str) -> UserConfig {
    UserConfig {
        name: name.to_string(),
        password: format!("{:032x}", rand::random::<u128>()),
        databases: Vec::new(),
        mysql_auth_plugin: None,
        postgres_auth: PostgresAuthMethod::ScramSha256,
        admin: false,
        require_tls: false,
    }
}

/// NegotiateProtocolVersion: dbmesh speaks 3.0 and none of the `_pq_` options.
fn negotiate_protocol_version<W: AsyncWrite + Unpin>(
    writer: &mut MessageWriter<W>,
    startup: &Startup,
) {
    let options: Vec<&String> = startup
        .parameters
        .keys()
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    let mut body = BytesMut::new();
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&(options.len() as i32).to_be_bytes());
    for o in options {
        body.extend_from_slice(o.as_bytes());
        body.extend_from_slice(&[0]);
    }
    writer.write_raw(b"v");
    writer.write_raw(&((body.len() + 4) as i32).to_be_bytes());
    writer.write_raw(&body);
}

//! TLS for the control plane's PostgreSQL client (tokio-postgres: replica health checks,
//! the XA log table and recovery), with the very rustls client the data path builds for
//! the same data source URL ([`BackendTls`]): same CA, same `sslmode` semantics, same
//! server name. Nothing is checked differently because a connection is a control one.
//!
//! tokio-postgres does the SSLRequest itself; `sslmode` maps onto its modes: `prefer`
//! goes on in plain text when the server answers `N`, `require` / `verify-ca` /
//! `verify-full` refuse such a server, and the certificate checks of the last two are
//! rustls's (the verifier inside [`BackendTls::config`]). Channel binding is not offered
//! (SCRAM without `-PLUS`), as the data path does not offer it either.
//!
//! The MySQL control connections over TLS use dbmesh's own backend connection
//! (`wire::mysql::backend`), see `txn/control.rs`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::config::DataSourceUrl;
use crate::tls::{BackendTls, BackendTlsMode};

/// Opens a tokio-postgres connection to `url` as its user, over TLS when the URL asks for
/// it, and drives it on a task of its own; `application_name` names it in
/// `pg_stat_activity`.
pub async fn connect_postgres(
    url: &DataSourceUrl,
    application_name: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&url.host)
        .port(url.port)
        .user(&url.user)
        .password(&url.password)
        .dbname(&url.database)
        .application_name(application_name);
    match &url.tls {
        None => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(client)
        }
        Some(tls) => {
            config.ssl_mode(ssl_mode(tls.mode));
            let (client, connection) = config.connect(PostgresTls(tls.clone())).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(client)
        }
    }
}

/// tokio-postgres's mode for ours: whether a server without TLS is acceptable.
fn ssl_mode(mode: BackendTlsMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode;
    match mode {
        BackendTlsMode::Disable => SslMode::Disable,
        BackendTlsMode::Prefer => SslMode::Prefer,
        BackendTlsMode::Require | BackendTlsMode::VerifyCa | BackendTlsMode::VerifyFull => {
            SslMode::Require
        }
    }
}

/// tokio-postgres's TLS connector over a data source's [`BackendTls`]. The server name is
/// the one the URL's TLS settings were built for, not tokio-postgres's host string (the
/// same host, already checked to be a valid TLS name when the config was loaded).
#[derive(Clone)]
pub struct PostgresTls(pub BackendTls);

impl<S> MakeTlsConnect<S> for PostgresTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PostgresTlsStream<S>;
    type TlsConnect = PostgresTls;
    type Error = io::Error;

    fn make_tls_connect(&mut self, _domain: &str) -> Result<PostgresTls, io::Error> {
        Ok(self.clone())
    }
}

impl<S> TlsConnect<S> for PostgresTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PostgresTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PostgresTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let host = self.0.server_name.to_str().into_owned();
            self.0
                .connector()
                .connect(self.0.server_name.clone(), stream)
                .await
                .map(|s| PostgresTlsStream(Box::new(s)))
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {host}: {e}")))
        })
    }
}

/// A TLS session to PostgreSQL, as tokio-postgres reads and writes it.
pub struct PostgresTlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PostgresTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PostgresTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PostgresTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::SslMode;

    #[test]
    fn only_prefer_accepts_a_server_without_tls() {
        assert!(matches!(ssl_mode(BackendTlsMode::Prefer), SslMode::Prefer));
        for mode in [
            BackendTlsMode::Require,
            BackendTlsMode::VerifyCa,
            BackendTlsMode::VerifyFull,
        ] {
            assert!(matches!(ssl_mode(mode), SslMode::Require), "{mode:?}");
        }
    }
}

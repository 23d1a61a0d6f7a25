//! A connection that is plain TCP or TLS, and its two halves.
//!
//! Both protocols start in plain text and may switch to TLS after a few bytes (MySQL's
//! SSL request, PostgreSQL's SSLRequest), so the connection is read unbuffered until then
//! and split only afterwards. Plain TCP keeps tokio's lock-free owned halves, so the
//! passthrough hot path costs one enum match more than before; a TLS stream is split
//! with `tokio::io::split`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

type Tls = tokio_rustls::TlsStream<TcpStream>;

/// A whole connection, before it is split.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

impl Stream {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Runs the server side of a TLS handshake over the plain connection.
    pub async fn accept_tls(self, acceptor: &tokio_rustls::TlsAcceptor) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let tls = acceptor.accept(tcp).await?;
                Ok(Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls))))
            }
            Stream::Tls(_) => Err(io::Error::other("TLS requested twice")),
        }
    }

    /// Runs the client side of a TLS handshake over the plain connection.
    pub async fn connect_tls(self, tls: &crate::tls::BackendTls) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let s = tls
                    .connector()
                    .connect(tls.server_name.clone(), tcp)
                    .await?;
                Ok(Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(s))))
            }
            Stream::Tls(_) => Err(io::Error::other("TLS requested twice")),
        }
    }

    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::Tls(tls) => {
                let (r, w) = tokio::io::split(*tls);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

/// The reading half of a [`Stream`].
pub enum ReadHalf {
    Plain(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<Tls>),
}

/// The writing half of a [`Stream`].
pub enum WriteHalf {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<Tls>),
}

impl ReadHalf {
    /// Without waiting: reads whatever the peer has sent already into `buf`. `Ok(0)` means
    /// the peer closed; `WouldBlock` that nothing is there.
    pub fn try_read_buf(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(r) => r.try_read_buf(buf),
            ReadHalf::Tls(r) => {
                // Only asked now and then (before reusing a pooled connection), so a copy
                // through a small buffer is fine.
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut chunk = [0u8; 4096];
                let mut rb = ReadBuf::new(&mut chunk);
                match Pin::new(r).poll_read(&mut cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        buf.extend_from_slice(rb.filled());
                        Ok(rb.filled().len())
                    }
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            WriteHalf::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Plain(w) => w.is_write_vectored(),
            WriteHalf::Tls(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{BackendTls, BackendTlsMode, ServerTls, TlsVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn server_tls(dir: &std::path::Path, min: TlsVersion) -> ServerTls {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        ServerTls::load(&dir.join("cert.pem"), &dir.join("key.pem"), min).unwrap()
    }

    async fn pair() -> (Stream, Stream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            Stream::Plain(accepted.unwrap().0),
            Stream::Plain(client.unwrap()),
        )
    }

    #[tokio::test]
    async fn upgrades_both_ends_and_splits_into_working_halves() {
        let dir = std::env::temp_dir().join(format!("dbmesh-stream-{}", std::process::id()));
        let tls = server_tls(&dir, TlsVersion::Tls12);
        let client_tls = BackendTls::new(BackendTlsMode::Require, "localhost", None).unwrap();
        let (server, client) = pair().await;
        let acceptor = tls.acceptor();
        let (server, client) = tokio::join!(
            server.accept_tls(&acceptor),
            client.connect_tls(&client_tls)
        );
        let (server, client) = (server.unwrap(), client.unwrap());
        assert!(server.is_tls() && client.is_tls());
        let (mut sr, mut sw) = server.into_split();
        let (mut cr, mut cw) = client.into_split();

        let mut buf = bytes::BytesMut::new();
        let nothing = sr.try_read_buf(&mut buf).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock);

        cw.write_all(b"ping").await.unwrap();
        cw.flush().await.unwrap();
        let mut got = [0u8; 4];
        sr.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        sw.write_all(b"pong").await.unwrap();
        sw.flush().await.unwrap();
        cr.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");

        // The peer closing is seen without waiting.
        drop(cw);
        drop(cr);
        let mut closed = false;
        for _ in 0..500 {
            match sr.try_read_buf(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await
                }
                Ok(n) => {
                    assert_eq!(n, 0, "unexpected bytes");
                    closed = true;
                    break;
                }
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed, "a closed TLS peer was not noticed");
    }
}

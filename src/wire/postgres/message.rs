//! PostgreSQL message framing: a type byte, a big-endian i32 length that counts itself, then
//! the body. Startup-phase messages have no type byte. Readers expose complete messages in
//! place so the pump can forward bytes untouched and look only at the few it must.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const READ_CHUNK: usize = 64 * 1024;

/// Flush a write buffer once it holds this much, even mid-response.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;

/// What can go wrong while reading messages.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("connection closed by peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("invalid message length {0}")]
    BadLength(i32),
}

/// A complete typed message at some offset of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub tag: u8,
    /// Bytes of the whole message, type byte and length included.
    pub total_len: usize,
}

impl Frame {
    /// The body (after type byte and length) within `buf[at..]`.
    pub fn body<'a>(&self, buf: &'a [u8], at: usize) -> &'a [u8] {
        &buf[at + 5..at + self.total_len]
    }
}

/// The typed message at `buf[at..]`: `Ok(None)` when incomplete, an error when the length
/// is impossible or over `max`.
pub fn frame_at(buf: &[u8], at: usize, max: usize) -> Result<Option<Frame>, MessageError> {
    let Some(hdr) = buf.get(at..at + 5) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
    if len < 4 {
        return Err(MessageError::BadLength(len));
    }
    let total = 1 + len as usize;
    if total > max {
        return Err(MessageError::TooLarge { size: total, max });
    }
    if buf.len() - at < total {
        return Ok(None);
    }
    Ok(Some(Frame {
        tag: hdr[0],
        total_len: total,
    }))
}

/// Buffered reader over one half of a socket.
pub struct MessageReader<R> {
    inner: R,
    pub buf: BytesMut,
    pub max: usize,
    /// Bytes read from the socket so far (for the byte metrics).
    received: u64,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        MessageReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max,
            received: 0,
        }
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Reads more bytes into the buffer; `Closed` at end of stream. Cancel-safe.
    pub async fn fill(&mut self) -> Result<(), MessageError> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(MessageError::Closed);
        }
        self.received += n as u64;
        Ok(())
    }

    /// Waits for one complete typed message and removes it from the buffer.
    pub async fn read_message(&mut self) -> Result<(u8, BytesMut), MessageError> {
        loop {
            if let Some(f) = frame_at(&self.buf, 0, self.max)? {
                let msg = self.buf.split_to(f.total_len);
                return Ok((f.tag, msg));
            }
            self.fill().await?;
        }
    }

    /// Waits for one complete untyped (startup-phase) message and removes it.
    pub async fn read_startup(&mut self, max: usize) -> Result<BytesMut, MessageError> {
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if !(8..=max as i32).contains(&len) {
                    return Err(MessageError::BadLength(len));
                }
                if self.buf.len() >= len as usize {
                    return Ok(self.buf.split_to(len as usize));
                }
            }
            self.fill().await?;
        }
    }
}

/// Reads one start-up message (length included) and not a byte more: after an SSLRequest
/// the next bytes belong to the TLS handshake.
pub async fn read_startup_unbuffered<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<BytesMut, MessageError> {
    let mut len = [0u8; 4];
    read_exact_or_closed(r, &mut len).await?;
    let n = i32::from_be_bytes(len);
    if !(8..=max as i32).contains(&n) {
        return Err(MessageError::BadLength(n));
    }
    let mut msg = BytesMut::zeroed(n as usize);
    msg[..4].copy_from_slice(&len);
    read_exact_or_closed(r, &mut msg[4..]).await?;
    Ok(msg)
}

async fn read_exact_or_closed<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> Result<(), MessageError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(MessageError::Closed),
        Err(e) => Err(e.into()),
    }
}

/// Buffered writer over the other half of a socket.
pub struct MessageWriter<W> {
    inner: W,
    pub buf: BytesMut,
    /// Bytes written to the socket so far (for the byte metrics).
    sent: u64,
}

impl<W: AsyncWrite + Unpin> MessageWriter<W> {
    pub fn new(inner: W) -> Self {
        MessageWriter {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            sent: 0,
        }
    }

    /// Bytes written to the socket so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Encodes a pgwire message into the buffer.
    pub fn write<M: pgwire::messages::Message>(&mut self, m: &M) {
        // Encoding only fails for messages over pgwire's size limits, which dbmesh's own
        // messages never reach.
        let _ = m.encode(&mut self.buf);
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf).await?;
            self.sent += self.buf.len() as u64;
            self.buf.clear();
        }
        self.inner.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.inner.shutdown().await;
    }
}

/// Reads a NUL-terminated string at the front of `b`, returning it and the rest.
pub fn cstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = b.iter().position(|c| *c == 0)?;
    Some((&b[..end], &b[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_typed_messages_and_rejects_bad_lengths() {
        // Query "SEL": length 4 + 4 body bytes, then a Sync.
        let mut b = vec![b'Q', 0, 0, 0, 8, b'S', b'E', b'L', 0];
        b.extend_from_slice(&[b'S', 0, 0, 0, 4]);
        let f = frame_at(&b, 0, 1024).unwrap().unwrap();
        assert_eq!((f.tag, f.total_len), (b'Q', 9));
        let g = frame_at(&b, 9, 1024).unwrap().unwrap();
        assert_eq!((g.tag, g.total_len), (b'S', 5));
        assert!(frame_at(&b[..7], 0, 1024).unwrap().is_none());
        assert!(matches!(
            frame_at(&[b'Q', 0, 0, 0, 2], 0, 1024),
            Err(MessageError::BadLength(2))
        ));
        assert!(matches!(
            frame_at(&[b'Q', 0, 1, 0, 0], 0, 1024),
            Err(MessageError::TooLarge { .. })
        ));
    }
}

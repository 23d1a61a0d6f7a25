//! MySQL packet framing: a 3-byte little-endian length, a 1-byte sequence id, then the payload.
//!
//! Payloads of 16 MiB - 1 or more are split into several frames; a frame of exactly
//! `MAX_FRAME` bytes says "more follows". Readers here reassemble logical packets for the
//! commands dbmesh must look into, and expose raw frames for the relay, which forwards the
//! backend's bytes without copying them into per-row allocations.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest payload one frame can carry; a frame this long continues in the next one.
pub const MAX_FRAME: usize = 0xFF_FFFF;

/// How much a reader asks the socket for at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Flush the write buffer once it holds this much, even mid-response.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;

/// What can go wrong while reading packets.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("connection closed by peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("packet of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("packet sequence id {got} where {expected} was expected")]
    Sequence { got: u8, expected: u8 },
}

/// One logical packet: the sequence id of its last frame and the reassembled payload.
#[derive(Debug)]
pub struct Packet {
    pub seq: u8,
    pub payload: BytesMut,
}

/// A complete frame sitting at the front of a reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub seq: u8,
    pub payload_len: usize,
}

impl Frame {
    /// Bytes the frame occupies in the buffer, header included.
    pub fn total_len(&self) -> usize {
        4 + self.payload_len
    }

    /// True when the logical packet continues in the next frame.
    pub fn continues(&self) -> bool {
        self.payload_len == MAX_FRAME
    }
}

/// Decodes the frame header at `buf[at..]` if the whole frame is buffered.
pub fn frame_at(buf: &[u8], at: usize) -> Option<Frame> {
    let hdr = buf.get(at..at + 4)?;
    let payload_len = usize::from(hdr[0]) | usize::from(hdr[1]) << 8 | usize::from(hdr[2]) << 16;
    if buf.len() - at - 4 < payload_len {
        return None;
    }
    Some(Frame {
        seq: hdr[3],
        payload_len,
    })
}

/// Buffered packet reader over one half of a socket.
pub struct PacketReader<R> {
    inner: R,
    buf: BytesMut,
    max_packet: usize,
    /// Bytes read from the socket so far (for the byte metrics).
    received: u64,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    pub fn new(inner: R, max_packet: usize) -> Self {
        PacketReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max_packet,
            received: 0,
        }
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The bytes read from the socket and not yet consumed.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Reads more bytes from the socket into the buffer; `Closed` at end of stream.
    pub async fn fill(&mut self) -> Result<(), PacketError> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(PacketError::Closed);
        }
        self.received += n as u64;
        Ok(())
    }

    /// Waits until a complete frame is at the front of the buffer and describes it.
    pub async fn next_frame(&mut self) -> Result<Frame, PacketError> {
        loop {
            if self.buf.len() >= 4 {
                let len = frame_len_prefix(&self.buf);
                if len > self.max_packet {
                    return Err(PacketError::TooLarge {
                        size: len,
                        max: self.max_packet,
                    });
                }
                if let Some(frame) = frame_at(&self.buf, 0) {
                    return Ok(frame);
                }
                self.buf.reserve(4 + len - self.buf.len());
            }
            self.fill().await?;
        }
    }

    /// Reads one logical packet, reassembling continuation frames.
    pub async fn read_packet(&mut self) -> Result<Packet, PacketError> {
        let first = self.next_frame().await?;
        let mut payload = self.buf.split_to(first.total_len());
        payload.advance(4);
        let mut seq = first.seq;
        let mut more = first.continues();
        while more {
            let frame = self.next_frame().await?;
            if payload.len() + frame.payload_len > self.max_packet {
                return Err(PacketError::TooLarge {
                    size: payload.len() + frame.payload_len,
                    max: self.max_packet,
                });
            }
            seq = frame.seq;
            more = frame.continues();
            payload.extend_from_slice(&self.buf[4..frame.total_len()]);
            self.buf.advance(frame.total_len());
        }
        Ok(Packet { seq, payload })
    }

    /// Reads one packet and checks that its sequence id is `expected`.
    pub async fn read_packet_seq(&mut self, expected: u8) -> Result<Packet, PacketError> {
        let first = self.next_frame().await?;
        if first.seq != expected {
            return Err(PacketError::Sequence {
                got: first.seq,
                expected,
            });
        }
        self.read_packet().await
    }
}

impl PacketReader<crate::wire::stream::ReadHalf> {
    /// Without waiting: has the peer sent something unasked, or closed the connection? A
    /// server that drops an idle connection (wait_timeout, shutdown) sends an ERR and/or FIN
    /// that sits unread until the next command would stumble over it.
    pub fn peer_gone(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        match self.inner.try_read_buf(&mut self.buf) {
            Ok(n) => {
                self.received += n as u64;
                true
            }
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

/// Reads exactly one packet and not a byte more, for the connection phase: after the
/// SSL request the next bytes belong to the TLS handshake, which a buffering reader would
/// swallow.
pub async fn read_packet_unbuffered<R: AsyncRead + Unpin>(
    r: &mut R,
    max_packet: usize,
) -> Result<Packet, PacketError> {
    let mut payload = BytesMut::new();
    loop {
        let mut header = [0u8; 4];
        read_exact_or_closed(r, &mut header).await?;
        let len = frame_len_prefix(&header);
        if payload.len() + len > max_packet {
            return Err(PacketError::TooLarge {
                size: payload.len() + len,
                max: max_packet,
            });
        }
        let start = payload.len();
        payload.resize(start + len, 0);
        read_exact_or_closed(r, &mut payload[start..]).await?;
        if len < MAX_FRAME {
            return Ok(Packet {
                seq: header[3],
                payload,
            });
        }
    }
}

async fn read_exact_or_closed<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> Result<(), PacketError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(PacketError::Closed),
        Err(e) => Err(e.into()),
    }
}

fn frame_len_prefix(buf: &[u8]) -> usize {
    usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16
}

/// Buffered packet writer over the other half of a socket. Nothing reaches the socket until
/// `flush`, so a whole small response goes out in one write.
pub struct PacketWriter<W> {
    inner: W,
    buf: Vec<u8>,
    /// Whether to remember the first payload byte of the last frame written (see
    /// [`PacketWriter::last_was_error`]); off on the relay's hot path.
    track_last: bool,
    last_first_byte: Option<u8>,
    /// Bytes written to the socket so far (for the byte metrics).
    sent: u64,
}

impl<W: AsyncWrite + Unpin> PacketWriter<W> {
    pub fn new(inner: W) -> Self {
        PacketWriter {
            inner,
            buf: Vec::with_capacity(READ_CHUNK),
            track_last: false,
            last_first_byte: None,
            sent: 0,
        }
    }

    /// Bytes written to the socket so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Frames `payload` (splitting it when large) with sequence ids starting at `*seq`,
    /// leaving `*seq` at the next id to use.
    pub fn write_packet(&mut self, seq: &mut u8, payload: &[u8]) {
        if self.track_last {
            self.last_first_byte = payload.first().copied();
        }
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_FRAME);
            self.buf
                .extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, *seq]);
            self.buf.extend_from_slice(&rest[..n]);
            *seq = seq.wrapping_add(1);
            rest = &rest[n..];
            if n < MAX_FRAME {
                break;
            }
        }
    }

    /// Appends bytes that are already framed (the relay's path).
    pub fn write_raw(&mut self, frames: &[u8]) {
        if self.track_last {
            let mut at = 0;
            while let Some(header) = frames.get(at..at + 4) {
                let len = usize::from(header[0])
                    | usize::from(header[1]) << 8
                    | usize::from(header[2]) << 16;
                self.last_first_byte = frames.get(at + 4).copied().filter(|_| len > 0);
                at += 4 + len;
            }
        }
        self.buf.extend_from_slice(frames);
    }

    /// Starts (or stops) remembering what the last packet written was.
    pub fn track_last_packet(&mut self, on: bool) {
        self.track_last = on;
        self.last_first_byte = None;
    }

    /// Was the last packet written (while tracking) an ERR packet? A response ends with
    /// its OK, EOF or ERR packet, so this tells whether the last response failed.
    pub fn last_was_error(&self) -> bool {
        self.last_first_byte == Some(0xFF)
    }

    /// How many bytes wait to be flushed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf).await?;
            self.sent += self.buf.len() as u64;
            self.buf.clear();
            if self.buf.capacity() > 4 * READ_CHUNK {
                self.buf.shrink_to(READ_CHUNK);
            }
        }
        self.inner.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.inner.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_and_reassembles_packets_larger_than_one_frame() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let payload: Vec<u8> = (0..MAX_FRAME + 10).map(|i| i as u8).collect();
        let p2 = payload.clone();
        let writer = tokio::spawn(async move {
            let mut w = PacketWriter::new(a);
            let mut seq = 3;
            w.write_packet(&mut seq, &p2);
            assert_eq!(seq, 5);
            w.flush().await.unwrap();
        });
        let mut r = PacketReader::new(b, 64 << 20);
        let pkt = r.read_packet().await.unwrap();
        writer.await.unwrap();
        assert_eq!(pkt.seq, 4);
        assert_eq!(&pkt.payload[..], &payload[..]);
    }

    #[tokio::test]
    async fn refuses_a_packet_over_the_maximum() {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut w = PacketWriter::new(a);
            let mut seq = 0;
            w.write_packet(&mut seq, &[0u8; 5000]);
            w.flush().await.unwrap();
        });
        let mut r = PacketReader::new(b, 1024);
        assert!(matches!(
            r.read_packet().await,
            Err(PacketError::TooLarge { size: 5000, .. })
        ));
    }

    #[tokio::test]
    async fn unbuffered_read_leaves_the_next_bytes_alone() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let mut w = PacketWriter::new(&mut a);
        let mut seq = 1;
        w.write_packet(&mut seq, b"hello");
        w.write_raw(b"TLS!");
        w.flush().await.unwrap();
        let pkt = read_packet_unbuffered(&mut b, 1024).await.unwrap();
        assert_eq!((pkt.seq, &pkt.payload[..]), (1, &b"hello"[..]));
        let mut rest = [0u8; 4];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"TLS!");
    }

    #[tokio::test]
    async fn checks_sequence_ids() {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut w = PacketWriter::new(a);
            let mut seq = 7;
            w.write_packet(&mut seq, b"x");
            w.flush().await.unwrap();
        });
        let mut r = PacketReader::new(b, 1024);
        assert!(matches!(
            r.read_packet_seq(0).await,
            Err(PacketError::Sequence {
                got: 7,
                expected: 0
            })
        ));
    }
}

//! A MySQL client speaking the protocol by hand, for bad input and byte-level checks.

/// A hand-driven MySQL client over a raw socket, for what real drivers never send: garbage,
/// oversized packets, wrong sequence ids, COM_STMT_SEND_LONG_DATA.
pub struct RawClient {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// Client capabilities `RawClient::login` asks for: protocol 4.1, secure connection, plugin
/// auth, connect with db, transactions, multi results (no DEPRECATE_EOF: classic EOFs).
const RAW_CAPABILITIES: u32 =
    0x0000_0001 | 0x0000_0008 | 0x0000_0200 | 0x0000_2000 | 0x0000_8000 | 0x0002_0000 | 0x0008_0000;

impl RawClient {
    /// Opens a TCP connection (nothing is read or sent yet).
    pub async fn connect(port: u16) -> RawClient {
        RawClient {
            stream: tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Connects and logs in with `mysql_native_password`; panics unless the server says OK.
    pub async fn login(port: u16, user: &str, password: &str, db: &str) -> RawClient {
        let mut c = RawClient::connect(port).await;
        let (seq, greeting) = c.read_packet().await.expect("greeting");
        let nonce = greeting_nonce(&greeting);
        let scramble = dbmesh::wire::mysql::auth::native_response(&nonce, password);
        let mut p = Vec::new();
        p.extend_from_slice(&RAW_CAPABILITIES.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(scramble.len() as u8);
        p.extend_from_slice(&scramble);
        p.extend_from_slice(db.as_bytes());
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        c.write_packet(seq + 1, &p).await;
        let (_, reply) = c.read_packet().await.expect("login reply");
        assert_eq!(reply.first(), Some(&0x00), "login failed: {reply:?}");
        c
    }

    /// Writes one frame with the given sequence id (payloads under 16 MiB).
    pub async fn write_packet(&mut self, seq: u8, payload: &[u8]) {
        let n = payload.len();
        assert!(n < 0xFF_FFFF);
        let mut frame = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        frame.extend_from_slice(payload);
        self.write_raw(&frame).await;
    }

    /// Writes bytes as they are (no framing).
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Half-closes the connection: the server sees end of stream.
    pub async fn shutdown_write(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.stream.shutdown().await;
    }

    /// Reads one frame: `(sequence id, payload)`, or `None` at end of stream (or a reset).
    pub async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 4 {
                let n = self.buf[0] as usize
                    | (self.buf[1] as usize) << 8
                    | (self.buf[2] as usize) << 16;
                if self.buf.len() >= 4 + n {
                    let seq = self.buf[3];
                    let payload = self.buf[4..4 + n].to_vec();
                    self.buf.drain(..4 + n);
                    return Some((seq, payload));
                }
            }
            let mut chunk = [0u8; 8192];
            // A server that neither answers nor closes must fail the test, not hang it.
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                self.stream.read(&mut chunk),
            );
            match read.await.expect("no packet from the server within 60 s") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads packets until the server closes the connection, and returns them. Guarded by a
    /// generous timeout so a server that never closes fails the test instead of hanging it.
    pub async fn read_until_closed(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut packets = Vec::new();
        let read_all = async {
            while let Some(p) = self.read_packet().await {
                packets.push(p);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read_all)
            .await
            .expect("the server closes the connection");
        packets
    }

    /// Sends a command (sequence id 0) and reads its whole response: OK, ERR, or result sets
    /// (classic EOFs), following SERVER_MORE_RESULTS_EXISTS across statements. Returns every
    /// frame as `(sequence id, payload)`.
    pub async fn command(&mut self, payload: &[u8]) -> Vec<(u8, Vec<u8>)> {
        const MORE_RESULTS: u16 = 0x0008;
        self.write_packet(0, payload).await;
        let mut packets = Vec::new();
        loop {
            let first = self.read_packet().await.expect("response");
            let p = first.1.clone();
            packets.push(first);
            let status = match p.first() {
                // ERR, or the lone EOF answering COM_SET_OPTION.
                Some(0xFF) => return packets,
                Some(0xFE) if is_eof(&p) => return packets,
                Some(0x00) => ok_status(&p),
                _ => {
                    // Column definitions up to an EOF, then rows up to an EOF.
                    for _ in 0..2 {
                        loop {
                            let pkt = self.read_packet().await.expect("result set");
                            let (end, err) = (is_eof(&pkt.1), pkt.1.first() == Some(&0xFF));
                            packets.push(pkt);
                            if err {
                                return packets;
                            }
                            if end {
                                break;
                            }
                        }
                    }
                    let eof = &packets.last().unwrap().1;
                    u16::from_le_bytes([eof[3], eof[4]])
                }
            };
            if status & MORE_RESULTS == 0 {
                return packets;
            }
        }
    }
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

/// Status flags of an OK packet.
fn ok_status(p: &[u8]) -> u16 {
    let mut at = 1;
    for _ in 0..2 {
        at += match p[at] {
            0xFC => 3,
            0xFD => 4,
            0xFE => 9,
            _ => 1,
        };
    }
    u16::from_le_bytes([p[at], p[at + 1]])
}

/// The 20-byte nonce of a HandshakeV10 greeting.
fn greeting_nonce(g: &[u8]) -> Vec<u8> {
    let version_end = 1 + g[1..].iter().position(|b| *b == 0).expect("version string");
    let part1 = version_end + 1 + 4;
    let mut nonce = g[part1..part1 + 8].to_vec();
    // filler, capabilities (2), charset, status (2), capabilities (2), auth data length,
    // reserved (10), then the rest of the nonce.
    let part2 = part1 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    nonce.extend_from_slice(&g[part2..part2 + 12]);
    nonce
}

//! A PostgreSQL client speaking the protocol by hand, for bad input and byte-level checks.

/// One backend message as a raw client sees it: type byte and body.
#[derive(Debug, Clone)]
pub struct PgMsg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl PgMsg {
    /// The fields of an ErrorResponse / NoticeResponse, by field type (`C` SQLSTATE, `M`
    /// message, `S` severity).
    pub fn field(&self, kind: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&k, tail)) = rest.split_first() {
            if k == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if k == kind {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    /// "E:<SQLSTATE>" for errors, "Z:<status>" for ReadyForQuery, the tag otherwise: a
    /// comparable summary of a response.
    pub fn summary(&self) -> String {
        match self.tag {
            b'E' => format!("E:{}", self.field(b'C').unwrap_or_default()),
            b'Z' => format!("Z:{}", self.body[0] as char),
            t => (t as char).to_string(),
        }
    }
}

/// A hand-driven PostgreSQL client over a raw socket, for what drivers never send (garbage,
/// oversized or unknown messages, protocol 3.2) and for exact response sequences. Knows trust
/// and cleartext authentication only.
pub struct PgRaw {
    pub stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// Frontend message encoders for [`PgRaw`].
pub mod pg_frontend {
    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A startup packet for protocol `major.minor` with the given parameters.
    pub fn startup(major: u16, minor: u16, params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&major.to_be_bytes());
        body.extend_from_slice(&minor.to_be_bytes());
        for (k, v) in params {
            cstr(&mut body, k);
            cstr(&mut body, v);
        }
        body.push(0);
        let mut m = (body.len() as i32 + 4).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m
    }

    /// SSLRequest (or GSSENCRequest with code 80877104).
    pub fn request_code(code: i32) -> Vec<u8> {
        let mut m = 8i32.to_be_bytes().to_vec();
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    pub fn query(sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        message(b'Q', &b)
    }

    /// Parse without parameter types.
    pub fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend_from_slice(&0i16.to_be_bytes());
        message(b'P', &b)
    }

    /// Bind without parameters, all results in text.
    pub fn bind(portal: &str, statement: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        cstr(&mut b, statement);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        message(b'B', &b)
    }

    pub fn execute(portal: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        b.extend_from_slice(&0i32.to_be_bytes());
        message(b'E', &b)
    }

    /// Describe of a statement (`S`) or portal (`P`).
    pub fn describe(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        cstr(&mut b, name);
        message(b'D', &b)
    }

    pub fn sync() -> Vec<u8> {
        message(b'S', &[])
    }

    /// Any typed message (e.g. an unknown type byte).
    pub fn raw(tag: u8, body: &[u8]) -> Vec<u8> {
        message(tag, body)
    }
}

impl PgRaw {
    /// Opens a TCP connection (nothing is sent yet).
    pub async fn connect(port: u16) -> PgRaw {
        PgRaw {
            stream: tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Connects with protocol 3.0 and logs in (trust or cleartext); panics unless the server
    /// reaches ReadyForQuery.
    pub async fn login(port: u16, user: &str, password: &str, db: &str) -> PgRaw {
        let mut c = PgRaw::connect(port).await;
        c.send(&pg_frontend::startup(
            3,
            0,
            &[("user", user), ("database", db)],
        ))
        .await;
        c.finish_login(password).await;
        c
    }

    /// After a startup packet: answers a cleartext password request and reads up to
    /// ReadyForQuery. Returns every message the server sent.
    pub async fn finish_login(&mut self, password: &str) -> Vec<PgMsg> {
        let mut seen = Vec::new();
        loop {
            let m = self.read().await.expect("server answers the login");
            match (m.tag, m.body.get(..4)) {
                (b'R', Some([0, 0, 0, 3])) => {
                    let mut b = password.as_bytes().to_vec();
                    b.push(0);
                    self.send(&pg_frontend::raw(b'p', &b)).await;
                }
                (b'R', Some([0, 0, 0, 0])) => {}
                (b'R', _) => panic!("unsupported authentication request {:?}", m.body),
                (b'E', _) => panic!("login failed: {:?}", m.field(b'M')),
                _ => {}
            }
            let done = m.tag == b'Z';
            seen.push(m);
            if done {
                return seen;
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one byte outside message framing (the answer to SSLRequest).
    pub async fn read_byte(&mut self) -> Option<u8> {
        use tokio::io::AsyncReadExt;
        if !self.buf.is_empty() {
            return Some(self.buf.remove(0));
        }
        let mut b = [0u8; 1];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(60), self.stream.read(&mut b));
        match read.await.expect("no byte from the server within 60 s") {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    /// Reads one typed message; `None` at end of stream (or a reset).
    pub async fn read(&mut self) -> Option<PgMsg> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                let total = 1 + len as usize;
                if self.buf.len() >= total {
                    let m = PgMsg {
                        tag: self.buf[0],
                        body: self.buf[5..total].to_vec(),
                    };
                    self.buf.drain(..total);
                    return Some(m);
                }
            }
            let mut chunk = [0u8; 16384];
            // A server that neither answers nor closes must fail the test, not hang it.
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                self.stream.read(&mut chunk),
            );
            match read.await.expect("no message from the server within 60 s") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads messages up to and including `count` ReadyForQuery messages (30 s at most).
    pub async fn read_until_ready(&mut self, count: usize) -> Vec<PgMsg> {
        let mut out = Vec::new();
        let read = async {
            let mut ready = 0;
            while ready < count {
                let m = self
                    .read()
                    .await
                    .expect("connection open until ReadyForQuery");
                ready += usize::from(m.tag == b'Z');
                out.push(m);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("ReadyForQuery within 30 s");
        out
    }

    /// Reads messages until the server closes the connection (30 s at most).
    pub async fn read_until_closed(&mut self) -> Vec<PgMsg> {
        let mut out = Vec::new();
        let read = async {
            while let Some(m) = self.read().await {
                out.push(m);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("the server closes the connection");
        out
    }

    /// Sends messages and returns the responses up to the ReadyForQuery of every Sync or
    /// Query among them, as [`PgMsg::summary`] strings.
    pub async fn exchange(&mut self, messages: &[Vec<u8>]) -> Vec<String> {
        let syncs = messages
            .iter()
            .filter(|m| m[0] == b'S' || m[0] == b'Q')
            .count();
        self.send(&messages.concat()).await;
        self.read_until_ready(syncs)
            .await
            .iter()
            .map(PgMsg::summary)
            .collect()
    }
}

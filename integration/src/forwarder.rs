//! A TCP forwarder in front of a server that a test can cut and resume.

use crate::free_port;

/// A test-local TCP forwarder in front of a real server: the "network path" to a backend,
/// which a test can cut (every open connection is closed) and restore on the same port.
pub struct TcpForwarder {
    pub port: u16,
    target: u16,
    accept: Option<tokio::task::JoinHandle<()>>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl TcpForwarder {
    /// Forwards a free local port to `127.0.0.1:target`.
    pub async fn start(target: u16) -> TcpForwarder {
        let mut f = TcpForwarder {
            port: free_port(),
            target,
            accept: None,
            conns: Default::default(),
        };
        f.resume().await;
        f
    }

    /// Listens again on the same port (after `cut`).
    pub async fn resume(&mut self) {
        assert!(self.accept.is_none(), "forwarder already running");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("forwarder port is free");
        let target = self.target;
        let conns = self.conns.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(task);
            }
        }));
    }

    /// Stops listening and closes every forwarded connection.
    pub async fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let tasks: Vec<_> = self.conns.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for TcpForwarder {
    fn drop(&mut self) {
        if let Some(a) = &self.accept {
            a.abort();
        }
        for t in self.conns.lock().unwrap().iter() {
            t.abort();
        }
    }
}

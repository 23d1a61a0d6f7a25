//! Single-route passthrough: the backend's response goes to the client as the backend sent
//! it. Frames are scanned in the backend's read buffer, their sequence ids renumbered in
//! place, and whole runs of frames copied into the client's write buffer: no row is decoded
//! and nothing is allocated per row. Memory stays bounded by one read chunk plus the largest
//! single frame (16 MiB), whatever the size of the result.

use bytes::Buf;
use tokio::io::AsyncWrite;

use super::backend::BackendConn;
use super::ok::set_more_results;
use super::packet::{frame_at, PacketError, PacketWriter, FLUSH_THRESHOLD};
use super::response::{ResponseKind, ResponseTracker, Step};

/// How a relay stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The response is complete.
    Done,
    /// The backend asked for a LOCAL INFILE; the caller streams the client's file, then
    /// calls `relay` again to forward the final OK/ERR.
    LocalInfile,
}

/// Which side failed.
#[derive(Debug)]
pub enum RelayError {
    /// The backend connection broke; the client has received whole frames only.
    Backend(PacketError),
    /// The client went away.
    Client(std::io::Error),
}

/// Forwards backend frames to the client until `tracker` says the response is over.
/// `client_seq` is the next sequence id towards the client. `prepare_id`, for COM_STMT_PREPARE,
/// is the statement id the client will see in place of the backend's. `more_results`: the
/// response is one of several the client gets for its statement, so its final OK / EOF
/// says `SERVER_MORE_RESULTS_EXISTS` (the only byte that is changed).
pub async fn relay<W: AsyncWrite + Unpin>(
    backend: &mut BackendConn,
    client: &mut PacketWriter<W>,
    client_seq: &mut u8,
    tracker: &mut ResponseTracker,
    prepare_id: Option<u32>,
    more_results: bool,
) -> Result<RelayEnd, RelayError> {
    let mut continuing = false;
    let mut first = true;
    loop {
        let buf = backend.reader.buffer();
        let mut at = 0;
        let mut end = None;
        while let Some(frame) = frame_at(buf, at) {
            buf[at + 3] = *client_seq;
            *client_seq = client_seq.wrapping_add(1);
            backend.next_seq = frame.seq.wrapping_add(1);
            if !continuing {
                let payload = &mut buf[at + 4..at + frame.total_len()];
                let step = tracker.on_packet(payload);
                if first && tracker.kind() == ResponseKind::Prepare && tracker.prepare.is_some() {
                    if let Some(id) = prepare_id {
                        payload[1..5].copy_from_slice(&id.to_le_bytes());
                    }
                }
                first = false;
                match step {
                    Step::More => {}
                    Step::Done => {
                        if more_results && !tracker.error {
                            set_more_results(payload);
                        }
                        end = Some(RelayEnd::Done);
                    }
                    Step::LocalInfile => end = Some(RelayEnd::LocalInfile),
                }
            }
            continuing = frame.continues();
            at += frame.total_len();
            if end.is_some() && !continuing {
                break;
            }
        }
        client.write_raw(&buf[..at]);
        buf.advance(at);
        if let Some(end) = end.filter(|_| !continuing) {
            if let Some(s) = tracker.status {
                backend.status = s;
            }
            return Ok(end);
        }
        if client.pending() >= FLUSH_THRESHOLD
            || (client.pending() > 0 && backend.reader.buffer().is_empty())
        {
            client.flush().await.map_err(RelayError::Client)?;
        }
        if let Err(e) = backend.reader.fill().await {
            backend.healthy = false;
            return Err(RelayError::Backend(e));
        }
    }
}

//! Write-ahead log positions for read-your-writes on PostgreSQL standbys, shared by the
//! single-data-source pump (`frontend/read_write.rs`) and sharded sessions
//! (`shard_reads.rs`): the position a primary has written up to, and waiting until a
//! standby has replayed a position.

use std::time::{Duration, Instant};

use postgres_protocol::message::{backend, frontend};

use super::backend::PgBackendConn;

/// Longest pause between two polls of a standby's replay position.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(20);

/// The primary's current WAL insert position (`pg_current_wal_insert_lsn()`), on an idle
/// connection; `None` when it could not be had (the query failed, the connection broke).
pub async fn write_position(conn: &mut PgBackendConn) -> Option<String> {
    match query_value(conn, "SELECT pg_current_wal_insert_lsn()").await {
        Some(Some(lsn)) if is_lsn(&lsn) => Some(lsn),
        _ => None,
    }
}

/// Whether the standby `conn` is connected to has replayed WAL up to `lsn`, polling
/// `pg_last_wal_replay_lsn()` for up to `timeout` (an empty `lsn`, unknown, never is).
pub async fn wait_replayed(conn: &mut PgBackendConn, lsn: &str, timeout: Duration) -> bool {
    if !is_lsn(lsn) {
        return false;
    }
    let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match query_value(conn, &sql).await {
            Some(Some(v)) if v == "t" => return true,
            Some(_) => {}
            None => return false,
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_POLL_PAUSE);
    }
}

/// Runs `sql` on an idle connection and returns its first value (`None` for NULL or no
/// row); `None` when the query failed or the connection broke.
async fn query_value(conn: &mut PgBackendConn, sql: &str) -> Option<Option<String>> {
    frontend::query(sql, &mut conn.writer.buf).ok()?;
    if conn.writer.flush().await.is_err() {
        conn.healthy = false;
        return None;
    }
    let mut value = None;
    let mut failed = false;
    loop {
        let Ok((tag, mut msg)) = conn.reader.read_message().await else {
            conn.healthy = false;
            return None;
        };
        match tag {
            b'D' if value.is_none() => {
                if let Ok(Some(backend::Message::DataRow(row))) = backend::Message::parse(&mut msg)
                {
                    let buf = row.buffer();
                    let mut ranges = row.ranges();
                    if let Ok(Some(range)) = fallible_iterator::FallibleIterator::next(&mut ranges)
                    {
                        value = Some(range.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                    }
                }
            }
            b'E' => failed = true,
            b'Z' => {
                conn.tx_status = msg[5];
                return (!failed).then(|| value.flatten());
            }
            _ => {}
        }
    }
}

/// A WAL position as PostgreSQL prints it (`16/B374D848`): spliced into SQL, so checked.
fn is_lsn(s: &str) -> bool {
    let mut parts = s.split('/');
    let hex = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    hex(parts.next()) && hex(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::is_lsn;

    #[test]
    fn only_wal_positions_are_spliced_into_sql() {
        assert!(is_lsn("0/3000148"));
        assert!(is_lsn("16/B374D848"));
        for bad in ["", "0/", "/1", "0/1/2", "0/1'; DROP TABLE t; --", "g/1"] {
            assert!(!is_lsn(bad), "{bad}");
        }
    }
}

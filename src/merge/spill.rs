//! A FIFO of byte packets that keeps a bounded amount in memory and the rest in an
//! anonymous temporary file: the rest of a shard's result that must be read off a shared
//! connection before the merge asks for it (MySQL, inside a transaction; see
//! `wire/mysql/merged.rs`).
//!
//! The packets are kept as the backend sent them (raw payload bytes) and decoded only when
//! taken, so a spilled row costs its wire size on disk plus a 4-byte length prefix, and
//! nothing in memory. The first `memory_limit` bytes stay in memory (most results that
//! must be buffered are small, and never touch the disk); the rest goes to a file created
//! with a unique name in the spill directory and unlinked at once, so it disappears with
//! its last descriptor: when the spill is dropped, or when the process dies.
//!
//! A spill is filled once, then read: every [`Spill::push`] comes before the first
//! [`Spill::pop`] that reaches the file (the executor reads a unit to its end into the
//! spill, then the merge takes its rows).
//!
//! File IO goes through `tokio::fs` (each buffered read or write of 64 KiB runs on the
//! blocking pool), so a runtime worker never waits on a slow or full disk while other
//! sessions need it.

use std::collections::VecDeque;
use std::io;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};

/// Bytes of packets a spill keeps in memory before it writes to its file (per spill, so
/// per unit being buffered).
pub const MEMORY_LIMIT: usize = 4 * 1024 * 1024;

/// Buffer of the file's writer and reader.
const FILE_BUFFER: usize = 64 * 1024;

/// Tells the files of one process apart.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// The file part of a spill.
#[derive(Debug)]
enum Disk {
    /// Nothing written to a file yet.
    None,
    Writing(BufWriter<File>),
    Reading(BufReader<File>),
}

/// Packets in, the same packets out in order; see the module docs.
#[derive(Debug)]
pub struct Spill {
    /// Where the file is created.
    dir: PathBuf,
    memory_limit: usize,
    /// The first packets.
    memory: VecDeque<Vec<u8>>,
    memory_bytes: usize,
    disk: Disk,
    /// Packets in the file not read yet.
    on_disk: u64,
    /// Bytes written to the file (length prefixes included).
    disk_bytes: u64,
}

impl Spill {
    /// An empty spill keeping up to `memory_limit` bytes of packets in memory and the rest
    /// in a file in `dir` (created on the first packet past the limit).
    pub fn new(dir: PathBuf, memory_limit: usize) -> Spill {
        Spill {
            dir,
            memory_limit,
            memory: VecDeque::new(),
            memory_bytes: 0,
            disk: Disk::None,
            on_disk: 0,
            disk_bytes: 0,
        }
    }

    /// Appends `packet`. An error (the file cannot be created, the disk is full) leaves the
    /// spill unusable: the caller ends the statement.
    pub async fn push(&mut self, packet: Vec<u8>) -> io::Result<()> {
        if self.on_disk == 0 && self.memory_bytes + packet.len() <= self.memory_limit {
            self.memory_bytes += packet.len();
            self.memory.push_back(packet);
            return Ok(());
        }
        let len = u32::try_from(packet.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "a packet of 4 GiB or more")
        })?;
        if matches!(self.disk, Disk::None) {
            self.disk = Disk::Writing(BufWriter::with_capacity(
                FILE_BUFFER,
                self.create_file().await?,
            ));
        }
        let Disk::Writing(w) = &mut self.disk else {
            return Err(io::Error::other("a spill written to after it was read"));
        };
        w.write_all(&len.to_le_bytes()).await?;
        w.write_all(&packet).await?;
        self.on_disk += 1;
        self.disk_bytes += 4 + u64::from(len);
        Ok(())
    }

    /// Takes the first packet, `None` when every packet was taken.
    pub async fn pop(&mut self) -> io::Result<Option<Vec<u8>>> {
        if let Some(p) = self.memory.pop_front() {
            self.memory_bytes -= p.len();
            return Ok(Some(p));
        }
        if self.on_disk == 0 {
            return Ok(None);
        }
        if let Disk::Writing(w) = &mut self.disk {
            w.flush().await?;
            let Disk::Writing(w) = std::mem::replace(&mut self.disk, Disk::None) else {
                unreachable!("matched above");
            };
            let mut file = w.into_inner();
            file.seek(SeekFrom::Start(0)).await?;
            self.disk = Disk::Reading(BufReader::with_capacity(FILE_BUFFER, file));
        }
        let Disk::Reading(r) = &mut self.disk else {
            unreachable!("packets on disk are being written or read");
        };
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await?;
        let mut packet = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut packet).await?;
        self.on_disk -= 1;
        Ok(Some(packet))
    }

    /// Nothing left to take.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.on_disk == 0
    }

    /// Bytes written to the file so far (0 while everything fit in memory).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// A new file in `dir`, open for reading and writing, already unlinked.
    async fn create_file(&self) -> io::Result<File> {
        let name = format!(
            "dbmesh-spill-{}-{}",
            std::process::id(),
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        tokio::fs::remove_file(&path)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own, so a test can see what is left in it.
    fn test_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dbmesh-spill-test-{}-{name}", std::process::id()));
        drop(std::fs::remove_dir_all(&dir));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn packet(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|k| (i * 31 + k) as u8).collect()
    }

    async fn round_trip(dir: &str, limit: usize, packets: &[Vec<u8>]) -> Spill {
        let dir = test_dir(dir);
        let mut spill = Spill::new(dir.clone(), limit);
        for p in packets {
            spill.push(p.clone()).await.unwrap();
        }
        // The file, if any, is unlinked at once.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        for (i, p) in packets.iter().enumerate() {
            assert!(!spill.is_empty());
            assert_eq!(spill.pop().await.unwrap().as_ref(), Some(p), "packet {i}");
        }
        assert!(spill.is_empty());
        assert_eq!(spill.pop().await.unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
        spill
    }

    #[tokio::test]
    async fn empty_spill_has_nothing() {
        let spill = round_trip("empty", 100, &[]).await;
        assert_eq!(spill.disk_bytes(), 0);
    }

    #[tokio::test]
    async fn packets_within_the_limit_stay_in_memory() {
        let packets: Vec<_> = (0..10).map(|i| packet(i, 10)).collect();
        let spill = round_trip("memory", 100, &packets).await;
        assert_eq!(spill.disk_bytes(), 0);
    }

    #[tokio::test]
    async fn packets_past_the_limit_go_to_the_file_in_order() {
        // 25 bytes each: 4 fit in memory, the other 9996 go to the file.
        let packets: Vec<_> = (0..10_000).map(|i| packet(i, 25)).collect();
        let spill = round_trip("boundary", 100, &packets).await;
        assert_eq!(spill.disk_bytes(), 9996 * 29);
    }

    #[tokio::test]
    async fn empty_and_large_packets_cross_the_file_buffer() {
        let packets = vec![
            packet(0, 0),
            packet(1, 3 * FILE_BUFFER + 7),
            packet(2, 0),
            packet(3, 1),
            packet(4, 17 * 1024 * 1024),
            packet(5, 5),
        ];
        let spill = round_trip("large", 4, &packets).await;
        assert!(spill.disk_bytes() > 17 * 1024 * 1024);
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!(
            "dbmesh-spill-test-{}-missing/nope",
            std::process::id()
        ));
        let mut spill = Spill::new(dir.clone(), 0);
        let err = spill.push(packet(0, 1)).await.unwrap_err();
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
    }
}

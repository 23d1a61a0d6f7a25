//! The transaction log as a local file: one line per event, appended and fsynced before
//! the decision counts.
//!
//! ```text
//! commit dbmesh-pod_7-18c2f00d123-2a ds_0,ds_1
//! done dbmesh-pod_7-18c2f00d123-2a
//! ```
//!
//! The file is emptied whenever no decision is outstanding, and rewritten with only the
//! outstanding ones when it has grown past [`COMPACT_AFTER`] lines, so it stays small.
//! It belongs to one instance: another machine cannot read it, which is why instances
//! that may move or share backends use the table log instead.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::super::xid::GlobalId;
use super::super::TxnError;

/// Lines after which the file is rewritten with only what is outstanding.
const COMPACT_AFTER: usize = 10_000;

pub struct FileLog {
    path: PathBuf,
    state: Arc<Mutex<Option<State>>>,
}

struct State {
    file: std::fs::File,
    /// Outstanding decisions: gtrid -> participants.
    outstanding: HashMap<String, String>,
    lines: usize,
}

impl FileLog {
    pub fn new(path: PathBuf) -> FileLog {
        FileLog {
            path,
            state: Arc::new(Mutex::new(None)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the opened state, off the async threads (file I/O and fsync block).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, TxnError> {
        let state = self.state.clone();
        let path = self.path.clone();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(State::open(&path)?);
            }
            let result = f(guard.as_mut().expect("opened"));
            if result.is_err() {
                // Reopen (and re-read) next time rather than trust a half-written file.
                *guard = None;
            }
            result
        })
        .await
        .map_err(|e| TxnError::Log {
            log: shown.clone(),
            cause: e.to_string(),
        })?
        .map_err(|e| TxnError::Log {
            log: shown,
            cause: e.to_string(),
        })
    }

    pub async fn record_commit(
        &self,
        gtrid: &GlobalId,
        participants: &[String],
    ) -> Result<(), TxnError> {
        let gtrid = gtrid.to_string();
        let participants = participants.join(",");
        self.with(move |s| {
            s.append(&format!("commit {gtrid} {participants}\n"))?;
            s.outstanding.insert(gtrid, participants);
            Ok(())
        })
        .await
    }

    pub async fn forget(&self, gtrids: &[String]) -> Result<(), TxnError> {
        let gtrids = gtrids.to_vec();
        let path = self.path.clone();
        self.with(move |s| {
            let mut lines = String::new();
            for g in gtrids {
                if s.outstanding.remove(&g).is_some() {
                    lines.push_str(&format!("done {g}\n"));
                }
            }
            if s.outstanding.is_empty() {
                s.file.set_len(0)?;
                s.file.sync_data()?;
                s.lines = 0;
            } else if s.lines > COMPACT_AFTER {
                s.compact(&path)?;
            } else if !lines.is_empty() {
                // No fsync: losing a `done` line only makes recovery look again.
                s.file.write_all(lines.as_bytes())?;
                s.lines += 1;
            }
            Ok(())
        })
        .await
    }

    pub async fn decisions(&self) -> Result<HashSet<String>, TxnError> {
        let unopened = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none();
        if unopened && !self.path.exists() {
            // Nothing decided yet: leave the file uncreated until the first decision.
            return Ok(HashSet::new());
        }
        self.with(|s| Ok(s.outstanding.keys().cloned().collect()))
            .await
    }
}

impl State {
    fn open(path: &Path) -> std::io::Result<State> {
        let mut outstanding = HashMap::new();
        let mut lines = 0;
        let mut torn = false;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                torn = !text.is_empty() && !text.ends_with('\n');
                for line in text.lines() {
                    lines += 1;
                    let mut words = line.split(' ');
                    match (words.next(), words.next()) {
                        (Some("commit"), Some(g)) => {
                            outstanding.insert(g.to_string(), words.next().unwrap_or("").into());
                        }
                        (Some("done"), Some(g)) => {
                            outstanding.remove(g);
                        }
                        // A torn last line (a crash mid-append) was never a decision.
                        _ => {}
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
            }
            Err(e) => return Err(e),
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut state = State {
            file,
            outstanding,
            lines,
        };
        if torn {
            // End the torn line so the next decision starts a line of its own.
            state.append("\n")?;
        }
        Ok(state)
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.lines += 1;
        Ok(())
    }

    /// Rewrites the file with only the outstanding decisions (write, fsync, rename).
    fn compact(&mut self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("compact");
        let mut text = String::new();
        for (g, p) in &self.outstanding {
            text.push_str(&format!("commit {g} {p}\n"));
        }
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        self.file = std::fs::OpenOptions::new().append(true).open(path)?;
        self.lines = self.outstanding.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gtrid(seq: u64) -> GlobalId {
        GlobalId {
            instance: "t".into(),
            boot: 1,
            seq,
        }
    }

    fn temp_path(test: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dbmesh-filelog-{}-{test}.log", std::process::id()))
    }

    #[tokio::test]
    async fn decisions_survive_a_reopen_until_forgotten() {
        let path = temp_path("reopen");
        let _ = std::fs::remove_file(&path);
        let log = FileLog::new(path.clone());
        log.record_commit(&gtrid(1), &["ds_0".into(), "ds_1".into()])
            .await
            .unwrap();
        log.record_commit(&gtrid(2), &["ds_0".into()])
            .await
            .unwrap();
        log.forget(&[gtrid(2).to_string()]).await.unwrap();
        drop(log);
        let reopened = FileLog::new(path.clone());
        let decided = reopened.decisions().await.unwrap();
        assert_eq!(decided, HashSet::from([gtrid(1).to_string()]));
        reopened.forget(&[gtrid(1).to_string()]).await.unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "trimmed when empty"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_no_decision() {
        let path = temp_path("torn");
        std::fs::write(&path, format!("commit {} ds_0\ncommi", gtrid(1))).unwrap();
        let log = FileLog::new(path.clone());
        assert_eq!(
            log.decisions().await.unwrap(),
            HashSet::from([gtrid(1).to_string()])
        );
        log.record_commit(&gtrid(2), &["ds_1".into()])
            .await
            .unwrap();
        drop(log);
        let reopened = FileLog::new(path.clone());
        assert_eq!(reopened.decisions().await.unwrap().len(), 2);
        let _ = std::fs::remove_file(&path);
    }
}

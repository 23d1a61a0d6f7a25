//! The transaction log as a local file: one line per event, appended and fsynced before
//! the decision counts.
//!
//! ```text
//! commit dbmesh-pod_7-18c2f00d123-2a ds_0,ds_1
//! done dbmesh-pod_7-18c2f00d123-2a
//! saga dbmesh-pod_7-18c2f00d123-2b <database hex> <data source hex> <undo SQL hex>
//! done dbmesh-pod_7-18c2f00d123-2b
//! ```
//!
//! A `saga` line is one compensating statement of a SAGA transaction (in the order they
//! were recorded); `done` forgets a saga as it forgets a decision. Names and SQL are
//! hex-encoded so a line never holds a space or a newline of its own.
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
use super::UndoStep;

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
    /// Outstanding sagas: gtrid -> compensating statements, in recorded order.
    sagas: HashMap<String, Vec<UndoStep>>,
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
                let decided = s.outstanding.remove(&g).is_some();
                if s.sagas.remove(&g).is_some() || decided {
                    lines.push_str(&format!("done {g}\n"));
                }
            }
            if s.outstanding.is_empty() && s.sagas.is_empty() {
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

    /// Appends the compensating statements `steps` to the saga `gtrid` (fsynced).
    pub async fn record_saga(&self, gtrid: &GlobalId, steps: &[UndoStep]) -> Result<(), TxnError> {
        let gtrid = gtrid.to_string();
        let steps = steps.to_vec();
        self.with(move |s| {
            let mut text = String::new();
            for step in &steps {
                text.push_str(&format!(
                    "saga {gtrid} {} {} {}\n",
                    hex(&step.database),
                    hex(&step.data_source),
                    hex(&step.sql)
                ));
            }
            s.append_lines(&text, steps.len())?;
            s.sagas.entry(gtrid).or_default().extend(steps);
            Ok(())
        })
        .await
    }

    /// Every outstanding saga: gtrid and its compensating statements, in recorded order.
    pub async fn sagas(&self) -> Result<Vec<(String, Vec<UndoStep>)>, TxnError> {
        let unopened = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none();
        if unopened && !self.path.exists() {
            return Ok(Vec::new());
        }
        self.with(|s| {
            Ok(s.sagas
                .iter()
                .map(|(g, v)| (g.clone(), v.clone()))
                .collect())
        })
        .await
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A `saga` line's step, `None` when it is not whole.
fn saga_step<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<UndoStep> {
    Some(UndoStep {
        database: unhex(words.next()?)?,
        data_source: unhex(words.next()?)?,
        sql: unhex(words.next()?)?,
    })
}

impl State {
    fn open(path: &Path) -> std::io::Result<State> {
        let mut outstanding = HashMap::new();
        let mut sagas: HashMap<String, Vec<UndoStep>> = HashMap::new();
        let mut lines = 0;
        let mut torn = None;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let cut = !text.is_empty() && !text.ends_with('\n');
                if cut {
                    torn = Some(text.rfind('\n').map_or(0, |i| i as u64 + 1));
                }
                let whole = text.lines().count() - usize::from(cut);
                for line in text.lines().take(whole) {
                    lines += 1;
                    let mut words = line.split(' ');
                    match (words.next(), words.next()) {
                        (Some("commit"), Some(g)) => {
                            outstanding.insert(g.to_string(), words.next().unwrap_or("").into());
                        }
                        (Some("done"), Some(g)) => {
                            outstanding.remove(g);
                            sagas.remove(g);
                        }
                        (Some("saga"), Some(g)) => {
                            if let Some(step) = saga_step(words) {
                                sagas.entry(g.to_string()).or_default().push(step);
                            }
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
        let state = State {
            file,
            outstanding,
            sagas,
            lines,
        };
        if let Some(whole) = torn {
            // Cut the torn line off, so it never becomes whole (a saga step cut short
            // could otherwise read as a shorter, valid one).
            state.file.set_len(whole)?;
            state.file.sync_data()?;
        }
        Ok(state)
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        self.append_lines(line, 1)
    }

    /// Appends `text` (`count` whole lines) and fsyncs.
    fn append_lines(&mut self, text: &str, count: usize) -> std::io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.lines += count;
        Ok(())
    }

    /// Rewrites the file with only the outstanding decisions (write, fsync, rename).
    fn compact(&mut self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("compact");
        let mut text = String::new();
        for (g, p) in &self.outstanding {
            text.push_str(&format!("commit {g} {p}\n"));
        }
        let mut lines = self.outstanding.len();
        for (g, steps) in &self.sagas {
            for step in steps {
                text.push_str(&format!(
                    "saga {g} {} {} {}\n",
                    hex(&step.database),
                    hex(&step.data_source),
                    hex(&step.sql)
                ));
                lines += 1;
            }
        }
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        self.file = std::fs::OpenOptions::new().append(true).open(path)?;
        self.lines = lines;
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

    #[tokio::test]
    async fn sagas_survive_a_reopen_in_order_until_forgotten() {
        let path = temp_path("saga");
        let _ = std::fs::remove_file(&path);
        let log = FileLog::new(path.clone());
        let step = |n: u32| UndoStep {
            database: "shop".into(),
            data_source: "ds_0".into(),
            sql: format!("UPDATE t SET v = 'a b\n' WHERE id = {n}"),
        };
        log.record_saga(&gtrid(1), &[step(1), step(2)])
            .await
            .unwrap();
        log.record_saga(&gtrid(1), &[step(3)]).await.unwrap();
        log.record_saga(&gtrid(2), &[step(9)]).await.unwrap();
        log.forget(&[gtrid(2).to_string()]).await.unwrap();
        drop(log);
        // A torn step (a crash mid-append) is no step.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("saga {} 73686f70 64735f30 5550", gtrid(1)));
        std::fs::write(&path, text).unwrap();
        let reopened = FileLog::new(path.clone());
        let sagas = reopened.sagas().await.unwrap();
        assert_eq!(
            sagas,
            vec![(gtrid(1).to_string(), vec![step(1), step(2), step(3)])]
        );
        reopened.forget(&[gtrid(1).to_string()]).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let _ = std::fs::remove_file(&path);
    }
}

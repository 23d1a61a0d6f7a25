//! `KILL [QUERY | CONNECTION] id` with dbmesh's connection ids.
//!
//! Clients learn their connection id from dbmesh's handshake, and tools use it to cancel
//! (the `mysql`/`mariadb` CLI sends `KILL QUERY <id>` on Ctrl-C). Forwarded verbatim, that id
//! would name some unrelated thread on the backend. So dbmesh keeps, per client connection,
//! the backend thread serving it, and turns the KILL into one on that thread (on each of
//! them while a sharded statement runs on several data sources at once).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::config::DataSourceUrl;

/// Where a client connection's statements currently run.
#[derive(Debug, Clone)]
pub struct KillTarget {
    pub url: DataSourceUrl,
    pub thread_id: u32,
}

struct Entry {
    user: String,
    targets: Vec<KillTarget>,
    /// Woken by `KILL CONNECTION` so the connection's task closes it.
    close: std::sync::Arc<Notify>,
}

/// Every connected MySQL client, by dbmesh connection id.
#[derive(Default)]
pub struct KillRegistry(Mutex<HashMap<u32, Entry>>);

impl KillRegistry {
    pub fn register(&self, id: u32, user: &str) -> std::sync::Arc<Notify> {
        let close = std::sync::Arc::new(Notify::new());
        self.0.lock().unwrap().insert(
            id,
            Entry {
                user: user.to_string(),
                targets: Vec::new(),
                close: close.clone(),
            },
        );
        close
    }

    pub fn set_target(&self, id: u32, target: KillTarget) {
        self.set_targets(id, vec![target]);
    }

    /// Several backend threads serve the connection's statement (a fan-out).
    pub fn set_targets(&self, id: u32, targets: Vec<KillTarget>) {
        if let Some(e) = self.0.lock().unwrap().get_mut(&id) {
            e.targets = targets;
        }
    }

    pub fn unregister(&self, id: u32) {
        self.0.lock().unwrap().remove(&id);
    }

    /// The targets of connection `id` if `user` may kill it (its own user's connections;
    /// admins may kill any).
    pub fn lookup(
        &self,
        id: u32,
        user: &str,
        admin: bool,
    ) -> Result<(Vec<KillTarget>, std::sync::Arc<Notify>), KillRefused> {
        let map = self.0.lock().unwrap();
        let e = map.get(&id).ok_or(KillRefused::Unknown)?;
        if e.user != user && !admin {
            return Err(KillRefused::NotOwner);
        }
        Ok((e.targets.clone(), e.close.clone()))
    }
}

/// Why a KILL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum KillRefused {
    /// ER_NO_SUCH_THREAD (1094)
    Unknown,
    /// ER_KILL_DENIED_ERROR (1095)
    NotOwner,
}

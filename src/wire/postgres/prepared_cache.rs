//! The named statements that exist on one backend connection.
//!
//! With transaction pooling a connection serves many sessions in turn, and the statements
//! they prepared stay on it (under backend names, see `statements.rs`), so the next session
//! with the same SQL finds them prepared. The set must be bounded, or a long-lived
//! connection would collect every statement any client ever prepared: the single-source
//! pump closes the least recently used ones past [`MAX_PREPARED`] (`evict_over`).
//!
//! The sharded session keeps its passthrough statements here under the client's names and
//! never evicts; its connections are reset (`DISCARD ALL`) before they go back to the pool.

use std::collections::HashMap;

/// How many named statements one backend connection keeps before the least recently used
/// is closed (pgbouncer's `max_prepared_statements` default is 200).
pub const MAX_PREPARED: usize = 200;

/// Statement names on a backend connection, with when each was last used.
#[derive(Debug, Default)]
pub struct PreparedCache {
    used: HashMap<String, u64>,
    clock: u64,
}

impl PreparedCache {
    pub fn contains(&self, name: &str) -> bool {
        self.used.contains_key(name)
    }

    /// Records that `name` exists (or was used just now).
    pub fn insert(&mut self, name: String) {
        self.clock += 1;
        self.used.insert(name, self.clock);
    }

    /// Marks `name` as used just now, if it exists.
    pub fn touch(&mut self, name: &str) {
        self.clock += 1;
        if let Some(t) = self.used.get_mut(name) {
            *t = self.clock;
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.used.remove(name);
    }

    pub fn clear(&mut self) {
        self.used.clear();
    }

    pub fn len(&self) -> usize {
        self.used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }

    /// Forgets the least recently used statements until at most `max` remain, and returns
    /// their names: the caller closes them on the backend.
    pub fn evict_over(&mut self, max: usize) -> Vec<String> {
        let mut evicted = Vec::new();
        while self.used.len() > max {
            let oldest = self
                .used
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(n, _)| n.clone())
                .expect("not empty");
            self.used.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_first() {
        let mut c = PreparedCache::default();
        c.insert("a".into());
        c.insert("b".into());
        c.insert("c".into());
        c.touch("a");
        assert_eq!(c.evict_over(2), vec!["b".to_string()]);
        assert!(c.contains("a") && c.contains("c"));
        assert_eq!(c.evict_over(0), vec!["c".to_string(), "a".to_string()]);
        assert!(c.is_empty());
    }
}

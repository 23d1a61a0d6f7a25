//! The prepared statements of one backend connection, by SQL text.
//!
//! With multiplexing a backend connection serves many sessions in turn, and a session many
//! connections; keyed by the client's statement id the backend statements would be prepared
//! again at every checkout. Keyed by SQL, a statement is prepared once per backend
//! connection and reused by every session that prepares the same text. The cache is
//! bounded: the least recently used statement is closed when a new one would pass
//! [`CAPACITY`], so a client preparing ever new SQL cannot exhaust the server's
//! `max_prepared_stmt_count`.
//!
//! A backend statement also remembers the parameter types bound to it last: an EXECUTE
//! that relies on earlier-bound types must carry them again when the statement last ran
//! with another session's types (or never ran).

use std::collections::HashMap;

/// Most statements kept prepared per backend connection.
pub const CAPACITY: usize = 256;

struct Entry {
    id: u32,
    /// Parameter types of the last EXECUTE on this statement (2 bytes per parameter).
    types: Option<Vec<u8>>,
    used: u64,
}

/// SQL → backend statement id, least recently used evicted first.
#[derive(Default)]
pub struct StatementCache {
    entries: HashMap<Vec<u8>, Entry>,
    tick: u64,
}

impl StatementCache {
    /// The backend id of `sql`, marking it used.
    pub fn get(&mut self, sql: &[u8]) -> Option<u32> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(sql).map(|e| {
            e.used = tick;
            e.id
        })
    }

    /// Records `sql` as prepared with `id`; returns the backend ids to close: one it
    /// replaces, and the least recently used one when the cache was full.
    pub fn insert(&mut self, sql: &[u8], id: u32) -> Vec<u32> {
        self.tick += 1;
        let mut close = Vec::new();
        let entry = Entry {
            id,
            types: None,
            used: self.tick,
        };
        if let Some(old) = self.entries.insert(sql.to_vec(), entry) {
            if old.id != id {
                close.push(old.id);
            }
            return close;
        }
        if self.entries.len() > CAPACITY {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(sql, _)| sql.clone());
            if let Some(e) = oldest.and_then(|sql| self.entries.remove(&sql)) {
                close.push(e.id);
            }
        }
        close
    }

    /// Forgets `sql`, returning its backend id to close.
    pub fn remove(&mut self, sql: &[u8]) -> Option<u32> {
        self.entries.remove(sql).map(|e| e.id)
    }

    /// The parameter types bound to `sql`'s backend statement last.
    pub fn types(&self, sql: &[u8]) -> Option<&[u8]> {
        self.entries.get(sql).and_then(|e| e.types.as_deref())
    }

    /// Notes the types an EXECUTE bound (copied only when they changed).
    pub fn set_types(&mut self, sql: &[u8], types: &[u8]) {
        if let Some(e) = self.entries.get_mut(sql) {
            if e.types.as_deref() != Some(types) {
                e.types = Some(types.to_vec());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The connection was reset: the server closed every statement.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_found_by_its_sql() {
        let mut c = StatementCache::default();
        assert!(c.insert(b"SELECT ?", 7).is_empty());
        assert_eq!(c.get(b"SELECT ?"), Some(7));
        assert_eq!(c.get(b"SELECT 1"), None);
    }

    #[test]
    fn preparing_the_same_sql_again_closes_the_older_statement() {
        let mut c = StatementCache::default();
        c.insert(b"SELECT ?", 7);
        assert_eq!(c.insert(b"SELECT ?", 8), vec![7]);
        assert_eq!(c.get(b"SELECT ?"), Some(8));
    }

    #[test]
    fn the_least_recently_used_statement_is_closed_when_full() {
        let mut c = StatementCache::default();
        for i in 0..CAPACITY as u32 {
            assert!(c.insert(format!("SELECT {i}").as_bytes(), i).is_empty());
        }
        // Statement 0 is used again, so 1 is the least recently used.
        c.get(b"SELECT 0");
        assert_eq!(c.insert(b"SELECT new", 999), vec![1]);
        assert_eq!(c.len(), CAPACITY);
        assert_eq!(c.get(b"SELECT 0"), Some(0));
        assert_eq!(c.get(b"SELECT 1"), None);
    }

    #[test]
    fn bound_types_follow_the_statement() {
        let mut c = StatementCache::default();
        c.insert(b"SELECT ?", 7);
        assert_eq!(c.types(b"SELECT ?"), None);
        c.set_types(b"SELECT ?", &[8, 0]);
        assert_eq!(c.types(b"SELECT ?"), Some(&[8u8, 0][..]));
        c.insert(b"SELECT ?", 9);
        assert_eq!(c.types(b"SELECT ?"), None);
    }
}

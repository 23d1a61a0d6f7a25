//! Classifying a statement by its leading keywords, without a full parse.

/// What dbmesh needs to know about a statement before it forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// `USE db`: switches the logical database; answered by dbmesh.
    Use(String),
    /// `SHOW DATABASES` / `SHOW SCHEMAS` (no LIKE/WHERE): answered with the logical databases.
    ShowDatabases,
    /// `SET ...` that changes the session (not `SET GLOBAL`, not a one-shot `SET TRANSACTION`).
    SessionSet,
    /// `SET LOCAL ...`: the session in MySQL, the current transaction only in PostgreSQL; each
    /// wire layer decides.
    SetLocal,
    /// `KILL [QUERY | CONNECTION] id`: ids are dbmesh's, so dbmesh carries it out.
    Kill { query_only: bool, id: u64 },
    /// `PREVIEW <sql>`: dbmesh answers with the (data source, actual SQL) pairs `<sql>`
    /// would run, without running it. Holds the statement after the keyword.
    Preview(String),
    /// `SHOW DBMESH ...` / `RELOAD DBMESH ...`: an admin statement, answered by dbmesh
    /// (`admin::answer` parses the rest), never forwarded.
    Admin,
    /// Anything else: forwarded as is.
    Other,
}

/// Classifies `sql`. Leading whitespace and comments are skipped; anything dbmesh does not
/// recognise with certainty is `Other`, which is always safe (it goes to the backend).
pub fn classify(sql: &str) -> StatementKind {
    let mut lx = Lexer::new(sql);
    let Some(first) = lx.word() else {
        return StatementKind::Other;
    };
    if first.eq_ignore_ascii_case("use") {
        if let Some(name) = lx.identifier() {
            if lx.at_end() {
                return StatementKind::Use(name);
            }
        }
        return StatementKind::Other;
    }
    if first.eq_ignore_ascii_case("reload") {
        return match lx.word() {
            Some(w) if w.eq_ignore_ascii_case("dbmesh") => StatementKind::Admin,
            _ => StatementKind::Other,
        };
    }
    if first.eq_ignore_ascii_case("show") {
        if let Some(w) = lx.word() {
            if w.eq_ignore_ascii_case("dbmesh") {
                return StatementKind::Admin;
            }
            if (w.eq_ignore_ascii_case("databases") || w.eq_ignore_ascii_case("schemas"))
                && lx.at_end()
            {
                return StatementKind::ShowDatabases;
            }
        }
        return StatementKind::Other;
    }
    if first.eq_ignore_ascii_case("kill") {
        let mut query_only = false;
        let mut word = lx.word();
        if word.is_some_and(|w| w.eq_ignore_ascii_case("hard") || w.eq_ignore_ascii_case("soft")) {
            word = lx.word();
        }
        if let Some(w) = word {
            if w.eq_ignore_ascii_case("query") {
                query_only = true;
                word = lx.word();
            } else if w.eq_ignore_ascii_case("connection") {
                word = lx.word();
            }
        }
        if let Some(id) = word.and_then(|w| w.parse().ok()) {
            if lx.at_end() {
                return StatementKind::Kill { query_only, id };
            }
        }
        return StatementKind::Other;
    }
    if first.eq_ignore_ascii_case("preview") {
        lx.skip_trivia();
        let rest = lx.s[lx.pos..].trim_end().trim_end_matches(';').trim_end();
        if !rest.is_empty() {
            return StatementKind::Preview(rest.to_string());
        }
        return StatementKind::Other;
    }
    if first.eq_ignore_ascii_case("set") {
        return match lx.word() {
            Some(w) if w.eq_ignore_ascii_case("global") => StatementKind::Other,
            Some(w) if w.eq_ignore_ascii_case("transaction") => StatementKind::Other,
            Some(w) if w.eq_ignore_ascii_case("local") => StatementKind::SetLocal,
            _ => StatementKind::SessionSet,
        };
    }
    StatementKind::Other
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer { s, pos: 0 }
    }

    /// Skips whitespace and comments (`-- `, `#`, `/* */`; not `/*! */`, which MySQL runs).
    fn skip_trivia(&mut self) {
        let b = self.s.as_bytes();
        loop {
            while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            let rest = &b[self.pos..];
            if rest.starts_with(b"/*") && !rest.starts_with(b"/*!") && !rest.starts_with(b"/*M!") {
                match self.s[self.pos + 2..].find("*/") {
                    Some(end) => self.pos += 2 + end + 2,
                    None => self.pos = b.len(),
                }
            } else if rest.starts_with(b"#")
                || rest.starts_with(b"-- ")
                || rest == b"--"
                || rest.starts_with(b"--\t")
                || rest.starts_with(b"--\n")
            {
                match self.s[self.pos..].find('\n') {
                    Some(end) => self.pos += end + 1,
                    None => self.pos = b.len(),
                }
            } else {
                return;
            }
        }
    }

    /// The next bare word (letters, digits, `_`).
    fn word(&mut self) -> Option<&'a str> {
        self.skip_trivia();
        let b = self.s.as_bytes();
        let start = self.pos;
        while self.pos < b.len() && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'_') {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// A bare or backquoted identifier.
    fn identifier(&mut self) -> Option<String> {
        self.skip_trivia();
        let b = self.s.as_bytes();
        if b.get(self.pos) == Some(&b'`') {
            let mut out = String::new();
            let mut i = self.pos + 1;
            while i < b.len() {
                if b[i] == b'`' {
                    if b.get(i + 1) == Some(&b'`') {
                        out.push('`');
                        i += 2;
                        continue;
                    }
                    self.pos = i + 1;
                    return Some(out);
                }
                let ch = self.s[i..].chars().next()?;
                out.push(ch);
                i += ch.len_utf8();
            }
            return None;
        }
        let start = self.pos;
        while self.pos < b.len()
            && (b[self.pos].is_ascii_alphanumeric()
                || b[self.pos] == b'_'
                || b[self.pos] == b'$'
                || b[self.pos] >= 0x80)
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.s[start..self.pos].to_string())
    }

    /// Only trivia and semicolons remain.
    fn at_end(&mut self) -> bool {
        loop {
            self.skip_trivia();
            if self.s.as_bytes().get(self.pos) == Some(&b';') {
                self.pos += 1;
            } else {
                return self.pos >= self.s.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_use_with_quotes_comments_and_semicolon() {
        assert_eq!(classify("USE shop"), StatementKind::Use("shop".into()));
        assert_eq!(
            classify("  use `my``db` ;"),
            StatementKind::Use("my`db".into())
        );
        assert_eq!(
            classify("/* hi */ USE shop -- x"),
            StatementKind::Use("shop".into())
        );
        assert_eq!(classify("USE shop; SELECT 1"), StatementKind::Other);
        assert_eq!(classify("user_table_stuff"), StatementKind::Other);
    }

    #[test]
    fn recognises_preview_and_keeps_the_statement() {
        assert_eq!(
            classify("PREVIEW SELECT * FROM t_order WHERE user_id = 7;"),
            StatementKind::Preview("SELECT * FROM t_order WHERE user_id = 7".into())
        );
        assert_eq!(
            classify("/* x */ preview\n  DELETE FROM t"),
            StatementKind::Preview("DELETE FROM t".into())
        );
        assert_eq!(classify("PREVIEW"), StatementKind::Other);
        assert_eq!(classify("previews"), StatementKind::Other);
    }

    #[test]
    fn recognises_kill_forms() {
        assert_eq!(
            classify("KILL QUERY 12"),
            StatementKind::Kill {
                query_only: true,
                id: 12
            }
        );
        assert_eq!(
            classify("kill 7;"),
            StatementKind::Kill {
                query_only: false,
                id: 7
            }
        );
        assert_eq!(
            classify("KILL CONNECTION 3"),
            StatementKind::Kill {
                query_only: false,
                id: 3
            }
        );
        assert_eq!(
            classify("KILL HARD QUERY 5"),
            StatementKind::Kill {
                query_only: true,
                id: 5
            }
        );
        assert_eq!(classify("KILL QUERY ID 5"), StatementKind::Other);
        assert_eq!(classify("KILL USER bob"), StatementKind::Other);
    }

    #[test]
    fn recognises_admin_statements_by_their_first_two_words() {
        assert_eq!(classify("SHOW DBMESH RULES"), StatementKind::Admin);
        assert_eq!(
            classify("/* x */ show dbmesh nonsense"),
            StatementKind::Admin
        );
        assert_eq!(classify("reload DBMESH config;"), StatementKind::Admin);
        assert_eq!(classify("RELOAD PLUGINS"), StatementKind::Other);
        assert_eq!(classify("SHOW DBMESHES"), StatementKind::Other);
    }

    #[test]
    fn recognises_show_databases_only_without_filters() {
        assert_eq!(classify("show databases"), StatementKind::ShowDatabases);
        assert_eq!(classify("SHOW SCHEMAS;"), StatementKind::ShowDatabases);
        assert_eq!(classify("SHOW DATABASES LIKE 'x'"), StatementKind::Other);
        assert_eq!(classify("SHOW TABLES"), StatementKind::Other);
    }

    #[test]
    fn records_session_sets_but_not_global_or_one_shot_transaction_sets() {
        assert_eq!(classify("SET NAMES utf8mb4"), StatementKind::SessionSet);
        assert_eq!(
            classify("set @@session.sql_mode=''"),
            StatementKind::SessionSet
        );
        assert_eq!(classify("SET autocommit=0"), StatementKind::SessionSet);
        assert_eq!(
            classify("SET GLOBAL max_connections=10"),
            StatementKind::Other
        );
        assert_eq!(
            classify("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            StatementKind::Other
        );
        assert_eq!(classify("/*!40101 SET NAMES utf8 */"), StatementKind::Other);
        assert_eq!(classify("SELECT 1"), StatementKind::Other);
        assert_eq!(
            classify("SET LOCAL search_path = x"),
            StatementKind::SetLocal
        );
    }
}

//! The admin SQL grammar (case-insensitive keywords, an optional trailing `;`):
//!
//! ```text
//! SHOW DBMESH DATA SOURCES [FROM <database>] [LIKE '<pattern>']
//! SHOW DBMESH RULES        [FROM <database>] [LIKE '<pattern>']
//! SHOW DBMESH TABLES       [FROM <database>] [LIKE '<pattern>']
//! SHOW DBMESH SESSIONS                       [LIKE '<pattern>']
//! SHOW DBMESH VARIABLES                      [LIKE '<pattern>']
//! RELOAD DBMESH CONFIG
//! ```
//!
//! `FROM` keeps one logical database; `LIKE` keeps the rows whose name column (data
//! source, rule name, table, user, variable) matches a SQL pattern (`%`, `_`,
//! case-insensitive). `PREVIEW <sql>` is recognised by `sql::classify` and answered by the
//! wire layers, which plan statements.

use crate::error::Error;

/// A parsed admin statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminStatement {
    Show(Show),
    Reload,
}

/// `SHOW DBMESH <what> [FROM db] [LIKE 'pattern']`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    pub what: ShowWhat,
    pub from: Option<String>,
    pub like: Option<String>,
}

/// What a `SHOW DBMESH` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    DataSources,
    Rules,
    Tables,
    Sessions,
    Variables,
}

impl ShowWhat {
    /// The statement's name, for messages.
    pub fn statement(self) -> &'static str {
        match self {
            ShowWhat::DataSources => "SHOW DBMESH DATA SOURCES",
            ShowWhat::Rules => "SHOW DBMESH RULES",
            ShowWhat::Tables => "SHOW DBMESH TABLES",
            ShowWhat::Sessions => "SHOW DBMESH SESSIONS",
            ShowWhat::Variables => "SHOW DBMESH VARIABLES",
        }
    }

    /// Whether `FROM <database>` applies.
    fn per_database(self) -> bool {
        matches!(
            self,
            ShowWhat::DataSources | ShowWhat::Rules | ShowWhat::Tables
        )
    }
}

impl AdminStatement {
    /// The statement's name, for messages (`SHOW DBMESH SESSIONS`).
    pub fn name(&self) -> &'static str {
        match self {
            AdminStatement::Show(s) => s.what.statement(),
            AdminStatement::Reload => "RELOAD DBMESH CONFIG",
        }
    }
}

/// Whether `sql` is an admin statement (`SHOW DBMESH ...` or `RELOAD DBMESH ...`), judged
/// by its first two words: such a statement is answered by dbmesh, never forwarded, even
/// when the rest does not parse (the client then gets a syntax error naming the grammar).
pub fn is_admin(sql: &str) -> bool {
    let mut words = Words::new(sql);
    let first = words.word();
    let second = words.word();
    matches!((first, second), (Some(f), Some(s))
        if (f.eq_ignore_ascii_case("show") || f.eq_ignore_ascii_case("reload"))
            && s.eq_ignore_ascii_case("dbmesh"))
}

/// Parses an admin statement. The error names what was expected.
pub fn parse(sql: &str) -> Result<AdminStatement, Error> {
    let mut w = Words::new(sql);
    let first = w.word().unwrap_or_default();
    if !w.keyword("dbmesh") {
        return Err(syntax(sql, "SHOW DBMESH or RELOAD DBMESH"));
    }
    if first.eq_ignore_ascii_case("reload") {
        if !w.keyword("config") {
            return Err(syntax(sql, "RELOAD DBMESH CONFIG"));
        }
        w.end()
            .map_err(|_| syntax(sql, "the end of RELOAD DBMESH CONFIG"))?;
        return Ok(AdminStatement::Reload);
    }
    let what = match w.word() {
        Some(x) if x.eq_ignore_ascii_case("data") => {
            if !w.keyword("sources") {
                return Err(syntax(sql, "SHOW DBMESH DATA SOURCES"));
            }
            ShowWhat::DataSources
        }
        Some(x) if x.eq_ignore_ascii_case("rules") => ShowWhat::Rules,
        Some(x) if x.eq_ignore_ascii_case("tables") => ShowWhat::Tables,
        Some(x) if x.eq_ignore_ascii_case("sessions") => ShowWhat::Sessions,
        Some(x) if x.eq_ignore_ascii_case("variables") => ShowWhat::Variables,
        _ => {
            return Err(syntax(
                sql,
                "SHOW DBMESH DATA SOURCES | RULES | TABLES | SESSIONS | VARIABLES",
            ))
        }
    };
    let mut show = Show {
        what,
        from: None,
        like: None,
    };
    if what.per_database() && w.keyword("from") {
        show.from = Some(
            w.identifier()
                .ok_or_else(|| syntax(sql, "a database name after FROM"))?,
        );
    }
    if w.keyword("like") {
        show.like = Some(
            w.string()
                .ok_or_else(|| syntax(sql, "a quoted pattern after LIKE"))?,
        );
    }
    let rest = if what.per_database() {
        "[FROM <database>] [LIKE '<pattern>']"
    } else {
        "[LIKE '<pattern>']"
    };
    w.end()
        .map_err(|_| syntax(sql, &format!("{} {rest}", what.statement())))?;
    Ok(AdminStatement::Show(show))
}

fn syntax(sql: &str, expected: &str) -> Error {
    Error::AdminSyntax(format!(
        "admin statement not understood: expected {expected}, got `{}`",
        sql.trim()
    ))
}

/// Whether `name` matches the SQL `LIKE` pattern (`%` any run, `_` one character,
/// `\` escapes), ignoring case.
pub fn like(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    fn at(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%', rest)) => (0..=n.len()).any(|i| at(rest, &n[i..])),
            Some(('_', rest)) => !n.is_empty() && at(rest, &n[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                n.first() == Some(&rest[0]) && at(&rest[1..], &n[1..])
            }
            Some((c, rest)) => n.first() == Some(c) && at(rest, &n[1..]),
        }
    }
    at(&p, &n)
}

/// A tiny tokenizer over the admin grammar: words, identifiers, quoted strings.
struct Words<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Words<'a> {
    fn new(s: &'a str) -> Self {
        Words { s, pos: 0 }
    }

    fn skip_space(&mut self) {
        let b = self.s.as_bytes();
        loop {
            while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            let rest = &self.s[self.pos..];
            if rest.starts_with("/*") {
                self.pos = match rest.find("*/") {
                    Some(end) => self.pos + end + 2,
                    None => b.len(),
                };
            } else if rest.starts_with("-- ") || rest.starts_with('#') {
                self.pos = match rest.find('\n') {
                    Some(end) => self.pos + end + 1,
                    None => b.len(),
                };
            } else {
                return;
            }
        }
    }

    fn word(&mut self) -> Option<&'a str> {
        self.skip_space();
        let b = self.s.as_bytes();
        let start = self.pos;
        while self.pos < b.len() && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'_') {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// Consumes the next word if it is `keyword` (any case).
    fn keyword(&mut self, keyword: &str) -> bool {
        let save = self.pos;
        if self.word().is_some_and(|w| w.eq_ignore_ascii_case(keyword)) {
            return true;
        }
        self.pos = save;
        false
    }

    /// A bare, `backquoted` or "double-quoted" name.
    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        match self.s[self.pos..].chars().next()? {
            q @ ('`' | '"') => self.quoted(q),
            _ => {
                let b = self.s.as_bytes();
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
        }
    }

    /// A 'single-quoted' (or "double-quoted") string; a doubled quote stands for itself.
    fn string(&mut self) -> Option<String> {
        self.skip_space();
        match self.s[self.pos..].chars().next()? {
            q @ ('\'' | '"') => self.quoted(q),
            _ => None,
        }
    }

    fn quoted(&mut self, quote: char) -> Option<String> {
        let mut out = String::new();
        let mut chars = self.s[self.pos + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                if self.s[self.pos + 1 + i + 1..].starts_with(quote) {
                    out.push(quote);
                    chars.next();
                    continue;
                }
                self.pos += 1 + i + 1;
                return Some(out);
            }
            out.push(c);
        }
        None
    }

    /// Only spaces, comments and `;` remain.
    fn end(&mut self) -> Result<(), ()> {
        loop {
            self.skip_space();
            if self.s[self.pos..].starts_with(';') {
                self.pos += 1;
                continue;
            }
            return if self.pos == self.s.len() {
                Ok(())
            } else {
                Err(())
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(what: ShowWhat, from: Option<&str>, like: Option<&str>) -> AdminStatement {
        AdminStatement::Show(Show {
            what,
            from: from.map(str::to_string),
            like: like.map(str::to_string),
        })
    }

    #[test]
    fn parses_every_statement_in_any_case_with_an_optional_semicolon() {
        assert_eq!(
            parse("show dbmesh data sources").unwrap(),
            show(ShowWhat::DataSources, None, None)
        );
        assert_eq!(
            parse("SHOW DBMESH  Rules ;").unwrap(),
            show(ShowWhat::Rules, None, None)
        );
        assert_eq!(
            parse("SHOW DBMESH TABLES FROM `shop` LIKE 't\\_order%';").unwrap(),
            show(ShowWhat::Tables, Some("shop"), Some("t\\_order%"))
        );
        assert_eq!(
            parse("/* admin */ SHOW DBMESH SESSIONS").unwrap(),
            show(ShowWhat::Sessions, None, None)
        );
        assert_eq!(
            parse("SHOW DBMESH VARIABLES LIKE '%timeout%'").unwrap(),
            show(ShowWhat::Variables, None, Some("%timeout%"))
        );
        assert_eq!(
            parse("reload dbmesh config;").unwrap(),
            AdminStatement::Reload
        );
    }

    #[test]
    fn recognises_admin_statements_by_their_first_two_words() {
        assert!(is_admin("SHOW DBMESH nonsense"));
        assert!(is_admin("  reload   DBMESH CONFIG"));
        assert!(!is_admin("SHOW DATABASES"));
        assert!(!is_admin("SELECT 'SHOW DBMESH RULES'"));
        assert!(!is_admin("RELOAD"));
    }

    #[test]
    fn syntax_errors_say_what_was_expected() {
        let e = parse("SHOW DBMESH USERS").unwrap_err().to_string();
        assert!(e.contains("DATA SOURCES | RULES | TABLES"), "{e}");
        let e = parse("SHOW DBMESH SESSIONS FROM shop")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHOW DBMESH SESSIONS [LIKE"), "{e}");
        let e = parse("RELOAD DBMESH CONFIG now").unwrap_err().to_string();
        assert!(e.contains("RELOAD DBMESH CONFIG"), "{e}");
        let e = parse("SHOW DBMESH TABLES LIKE unquoted")
            .unwrap_err()
            .to_string();
        assert!(e.contains("quoted pattern"), "{e}");
    }

    #[test]
    fn like_patterns_match_as_in_sql() {
        assert!(like("t_order%", "T_ORDER_ITEM"));
        assert!(like("%timeout%", "connect_timeout_ms"));
        assert!(like("ds__", "ds_1"));
        assert!(!like("ds\\_", "dsx"));
        assert!(like("ds\\_%", "ds_0"));
        assert!(!like("order", "t_order"));
    }
}

//! Splitting a query string into its statements at top-level semicolons.
//!
//! A PostgreSQL simple Query (and a MySQL multi-statement COM_QUERY) may carry several
//! statements. On a sharded database each must be routed on its own, so the string is cut
//! where the server itself would end a statement: at a `;` that is not inside a string,
//! a quoted identifier, a dollar-quoted body or a comment. The scanner is a small hand
//! lexer rather than a full parse, so a statement dbmesh cannot parse is still split
//! correctly and reaches the server, which reports its error as usual.
//!
//! Not handled: SQL-standard function bodies (`CREATE FUNCTION ... BEGIN ATOMIC ...; END`),
//! whose inner semicolons do not end the statement; send such a definition on its own.

use super::analyze::Dialect;

/// The statements of `sql`, in order, each without its terminating `;` and trimmed of
/// surrounding whitespace. Pieces holding only whitespace and comments (`;;`, a trailing
/// comment) are left out, as the server skips them; an empty result is an empty query.
/// Comments before or inside a statement (routing hints) are kept with it.
pub fn split_statements(sql: &str, dialect: Dialect) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    // Whether the current piece has anything besides whitespace and comments.
    let mut content = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b';' => {
                if content {
                    out.push(sql[start..i].trim());
                }
                start = i + 1;
                content = false;
                i += 1;
                continue;
            }
            b'-' if next == Some(b'-') && line_comment_dashes(b, i, dialect) => {
                i = skip_line(b, i);
                continue;
            }
            b'#' if dialect == Dialect::MySql => {
                i = skip_line(b, i);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(b, i, dialect == Dialect::Postgres);
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        content = true;
        i = match c {
            b'\'' => {
                let backslashes = dialect == Dialect::MySql || escape_string_prefix(b, i);
                skip_quoted(b, i, b'\'', backslashes)
            }
            b'"' => skip_quoted(b, i, b'"', dialect == Dialect::MySql),
            b'`' if dialect == Dialect::MySql => skip_quoted(b, i, b'`', false),
            b'$' if dialect == Dialect::Postgres => skip_dollar_quote(b, i),
            _ => i + 1,
        };
    }
    if content {
        out.push(sql[start..].trim());
    }
    out
}

/// `--` starts a comment in PostgreSQL always, in MySQL only before whitespace or the end.
fn line_comment_dashes(b: &[u8], i: usize, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Postgres => true,
        Dialect::MySql => b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()),
    }
}

/// Past the end of the line comment starting at `i`.
fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

/// Past the block comment starting at `i` (`/*`); PostgreSQL's nest, MySQL's do not. An
/// unterminated comment runs to the end.
fn skip_block_comment(b: &[u8], i: usize, nested: bool) -> usize {
    let mut depth = 1;
    let mut j = i + 2;
    while j < b.len() {
        if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else if nested && b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
            depth += 1;
            j += 2;
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Whether the `'` at `i` opens a PostgreSQL escape string (`E'...'`), where a backslash
/// escapes the next character.
fn escape_string_prefix(b: &[u8], i: usize) -> bool {
    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident_byte(b[i - 2]))
}

/// Past the quoted text opening at `i` with `quote`; a doubled quote stays inside, and so
/// does a backslash-escaped character when `backslashes`. Unterminated text runs to the end.
fn skip_quoted(b: &[u8], i: usize, quote: u8, backslashes: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if backslashes && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Past the dollar-quoted body opening at `i` (`$$...$$`, `$tag$...$tag$`); just past the
/// `$` when it opens none (a `$1` parameter, or `$` inside an identifier such as `a$b`).
fn skip_dollar_quote(b: &[u8], i: usize) -> usize {
    if i > 0 && is_ident_byte(b[i - 1]) {
        return i + 1;
    }
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return i + 1;
    }
    while j < b.len() && is_ident_byte(b[j]) && b[j] != b'$' {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return i + 1;
    }
    let delimiter = &b[i..=j];
    let body = j + 1;
    match b[body..]
        .windows(delimiter.len())
        .position(|w| w == delimiter)
    {
        Some(p) => body + p + delimiter.len(),
        None => b.len(),
    }
}

/// Letters, digits, `_`, `$` and non-ASCII bytes continue an identifier.
fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> Vec<&str> {
        split_statements(sql, Dialect::Postgres)
    }

    fn my(sql: &str) -> Vec<&str> {
        split_statements(sql, Dialect::MySql)
    }

    #[test]
    fn splits_at_top_level_semicolons_and_trims() {
        assert_eq!(
            pg("BEGIN; INSERT INTO t VALUES (1);\n COMMIT"),
            vec!["BEGIN", "INSERT INTO t VALUES (1)", "COMMIT"]
        );
        assert_eq!(pg("SELECT 1;"), vec!["SELECT 1"]);
    }

    #[test]
    fn skips_empty_and_comment_only_pieces() {
        assert_eq!(pg(";; SELECT 1 ;; -- done\n"), vec!["SELECT 1"]);
        assert!(pg("").is_empty());
        assert!(pg("  ;  /* nothing */ ; ").is_empty());
    }

    #[test]
    fn keeps_comments_inside_a_statement_for_hints() {
        assert_eq!(
            pg("/* dbmesh: data_source=ds_1 */ SELECT 1; SELECT 2"),
            vec!["/* dbmesh: data_source=ds_1 */ SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn ignores_semicolons_in_strings_identifiers_and_comments() {
        assert_eq!(
            pg("SELECT 'a;b', \"c;d\" -- e;f\n FROM t /* g; /* h; */ i; */; SELECT 2"),
            vec![
                "SELECT 'a;b', \"c;d\" -- e;f\n FROM t /* g; /* h; */ i; */",
                "SELECT 2"
            ]
        );
        assert_eq!(
            pg("SELECT 'it''s;'; SELECT 2"),
            vec!["SELECT 'it''s;'", "SELECT 2"]
        );
    }

    #[test]
    fn honours_backslash_escapes_only_in_postgres_escape_strings() {
        assert_eq!(
            pg(r"SELECT E'a\';b'; SELECT 2"),
            vec![r"SELECT E'a\';b'", "SELECT 2"]
        );
        // A standard string: the backslash is a plain character and the quote ends it.
        assert_eq!(
            pg(r"SELECT 'a\'; SELECT 2"),
            vec![r"SELECT 'a\'", "SELECT 2"]
        );
        assert_eq!(pg(r"SELECT name'x;'"), vec![r"SELECT name'x;'"]);
    }

    #[test]
    fn keeps_dollar_quoted_bodies_whole() {
        let f = "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $$ $body$ LANGUAGE sql";
        assert_eq!(pg(&format!("{f}; SELECT 2")), vec![f, "SELECT 2"]);
        assert_eq!(
            pg("DO $$ BEGIN; END $$; SELECT 2"),
            vec!["DO $$ BEGIN; END $$", "SELECT 2"]
        );
        // Parameters and `$` inside identifiers open nothing.
        assert_eq!(
            pg("SELECT $1; SELECT a$b; SELECT 3"),
            vec!["SELECT $1", "SELECT a$b", "SELECT 3"]
        );
    }

    #[test]
    fn unterminated_quotes_run_to_the_end() {
        assert_eq!(pg("SELECT 'a; SELECT 2"), vec!["SELECT 'a; SELECT 2"]);
        assert_eq!(pg("SELECT $$a; SELECT 2"), vec!["SELECT $$a; SELECT 2"]);
    }

    #[test]
    fn follows_mysql_quoting_and_comment_rules() {
        assert_eq!(
            my("SELECT 'a\\';b', `c;d`, \"e;\\\"f\"; # x;y\nSELECT 2"),
            vec!["SELECT 'a\\';b', `c;d`, \"e;\\\"f\"", "# x;y\nSELECT 2"]
        );
        // `--` without a following space is an operator sequence, not a comment.
        assert_eq!(my("SELECT 1--1; SELECT 2"), vec!["SELECT 1--1", "SELECT 2"]);
        assert_eq!(
            my("SELECT 1 -- x; y\n; SELECT 2"),
            vec!["SELECT 1 -- x; y", "SELECT 2"]
        );
        // `$` is an identifier character in MySQL, never a quote.
        assert_eq!(my("SELECT $$; SELECT 2"), vec!["SELECT $$", "SELECT 2"]);
    }
}

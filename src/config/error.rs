//! Configuration problems, each pinned to a file, a line and a key path.
//!
//! Loading never stops at the first mistake: every stage pushes into a
//! [`Report`], and the caller gets all problems at once in a [`ConfigError`],
//! sorted by position, so a DBA can fix a config file in one edit.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file the problem is in (as given to [`load`](super::load) / [`parse`](super::parse)).
    pub file: PathBuf,
    /// 1-based line, when the problem can be tied to a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the line is known.
    pub column: Option<usize>,
    /// Key path, e.g. `databases.shop.data_sources.ds_0.url` or `users[1].password`.
    pub key: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// Why a configuration could not be loaded: every problem found, one per line
/// when displayed (`{file}:{line}:{col}: {key.path}: {message}`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct ConfigError {
    /// All problems, sorted by position in the file (problems without a position first).
    pub problems: Vec<ConfigProblem>,
}

fn render(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ConfigProblem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects problems while a config file is read, turning byte offsets into
/// line and column numbers.
pub(super) struct Report<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
    problems: Vec<ConfigProblem>,
    /// Problems in other files this one names (sharding rule files), listed after its own.
    other_files: Vec<ConfigProblem>,
}

impl<'a> Report<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Report {
            file,
            text,
            line_starts,
            problems: Vec::new(),
            other_files: Vec::new(),
        }
    }

    /// Records a problem at `span` (byte offsets into the file), or at no
    /// particular place when `span` is `None`.
    pub(super) fn at(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = self.locate(span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        self.problems.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Adds the problems of another file this one names (a sharding rule file); they are
    /// listed after this file's own problems, in the order absorbed.
    pub(super) fn absorb(&mut self, error: ConfigError) {
        self.other_files.extend(error.problems);
    }

    /// Ends the report: `Ok` when nothing was recorded.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() && self.other_files.is_empty() {
            return Ok(());
        }
        let mut problems = self.problems;
        problems.sort_by_key(|p| (p.line.unwrap_or(0), p.column.unwrap_or(0)));
        // A rule file named by several databases is read for each: say each problem once.
        for p in self.other_files {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        Err(ConfigError { problems })
    }

    /// 1-based (line, column) of a byte offset; columns count characters.
    fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let column = match self.text.get(start..offset) {
            Some(prefix) => prefix.chars().count(),
            None => offset - start,
        };
        (line, column + 1)
    }
}

/// Appends `key` to a key path, quoting it the way TOML would need it quoted.
pub(super) fn child_key(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Appends an array index to a key path: `users` → `users[2]`.
pub(super) fn index_key(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_offsets_as_one_based_line_and_character_column() {
        let text = "a = 1\nbé = 2\n\nc = 3";
        let report = Report::new(Path::new("x.toml"), text);
        assert_eq!(report.locate(0), (1, 1));
        assert_eq!(report.locate(4), (1, 5));
        assert_eq!(report.locate(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(report.locate(6 + 6), (2, 6));
        assert_eq!(report.locate(text.len()), (4, 6));
    }

    #[test]
    fn displays_one_problem_per_line_sorted_by_position() {
        let mut report = Report::new(Path::new("dbmesh.toml"), "a = 1\nb = 2\n");
        report.at(Some(6..7), "b", "second");
        report.at(Some(0..1), "a", "first");
        report.at(None, "server", "missing");
        let err = report.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "dbmesh.toml: server: missing\n\
             dbmesh.toml:1:1: a: first\n\
             dbmesh.toml:2:1: b: second"
        );
    }

    #[test]
    fn quotes_keys_that_are_not_bare() {
        assert_eq!(child_key("databases", "shop"), "databases.shop");
        assert_eq!(child_key("databases", "my.db"), "databases.\"my.db\"");
        assert_eq!(child_key("", "server"), "server");
        assert_eq!(index_key("users", 2), "users[2]");
    }
}

//! Administration: the admin SQL statements dbmesh answers itself on its MySQL and
//! PostgreSQL listeners (`SHOW DBMESH ...`, `RELOAD DBMESH CONFIG`), and reloading the
//! configuration. See docs/admin.md.
//!
//! Protocol-neutral: [`statement`] parses the grammar, [`answer`] checks the privilege and
//! produces an [`answer::AdminResult`] (column names and rows of text or NULL, or a plain
//! OK), [`show`] builds the SHOW results, [`reload`] validates and installs a new
//! configuration. The wire layers only encode the result.

pub mod answer;
pub mod reload;
pub mod show;
pub mod statement;

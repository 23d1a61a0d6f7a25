//! SQL analysis. Passthrough statements are not parsed at all: a cheap look at the leading
//! keywords decides whether dbmesh must act on a statement itself (`USE`, `SHOW DATABASES`)
//! or record it as session state (`SET`).

pub mod kind;

pub use kind::{classify, StatementKind};

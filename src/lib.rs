//! dbmesh: a database-mesh proxy. Applications connect with ordinary MySQL (and, later,
//! PostgreSQL) drivers as if to one database; dbmesh routes each statement to real servers.
//!
//! The pipeline, one module per stage (see docs/architecture.md):
//! `wire` (protocol bytes) → `session` (per-client state) → `sql` (classify / analyse) →
//! `route` (which data source) → `execute` (pools, backend connections) → back through `wire`.

pub mod admin;
pub mod config;
pub mod control_tls;
pub mod error;
pub mod execute;
pub mod merge;
pub mod rewrite;
pub mod route;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod sql;
pub mod tls;
pub mod txn;
pub mod wire;

pub use server::Server;

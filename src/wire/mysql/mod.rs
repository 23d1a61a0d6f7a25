//! Our own MySQL wire layer, built on `mysql_common`'s codecs: the server side that clients
//! connect to (`frontend`), and the client side that talks to backend servers (`backend`).
//! Results of single-route statements are relayed frame by frame without decoding rows.

mod admin;
pub mod auth;
pub mod backend;
pub mod backends;
pub mod concat;
pub mod err;
pub mod execute_packet;
pub mod fanout;
pub mod forward;
pub mod frontend;
pub mod handshake;
pub mod kill;
pub mod last_insert_id;
mod login;
pub mod merged;
pub mod multi_statement;
pub mod multiplex;
pub mod ok;
pub mod packet;
pub mod pinning;
pub mod prepared;
mod query;
pub mod read_write;
pub mod relay;
pub mod replica_retry;
pub mod response;
pub mod resultset;
pub mod row_codec;
pub mod row_move;
pub mod saga;
pub mod session_commands;
pub mod sharded;
pub mod sharded_prepared;
pub mod sharded_txn;
pub mod sharded_xa;
pub mod statement_cache;
pub mod table_columns;

pub use frontend::serve_client;
pub use handshake::ServerInfo;

/// Whether this wire layer executes merge plans (`route::shard::Plan::merge`): it does
/// (`merged.rs`), so the router plans multi-shard SELECTs for merging; with `false` they
/// would stay as they are and their results be concatenated.
pub const MERGES_RESULTS: bool = true;

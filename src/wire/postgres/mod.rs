//! Our own PostgreSQL wire layer, on pgwire's message codec (no server API) and
//! postgres-protocol (client-side SCRAM, message encoders): the server side clients connect
//! to (`frontend`) and the client side that talks to backend servers (`backend`).

pub(crate) mod admin;
pub mod auth;
pub mod backend;
pub mod bind_params;
pub mod cancel;
pub mod checkout;
pub mod command_tag;
pub mod error;
pub mod extended_messages;
mod fanout;
pub mod frontend;
pub mod merged;
pub mod message;
mod passthrough;
pub mod pinning;
pub mod prepared_cache;
pub mod preview;
pub mod row_codec;
mod row_move;
mod saga;
pub mod shard_backends;
pub mod sharded;
mod sharded_extended;
mod sharded_simple;
mod sharded_txn;
mod sharded_xa;
pub mod statements;
mod table_columns;

pub use frontend::serve_client;

/// Whether this wire layer executes merge plans (`route::shard::Plan::merge`): it does
/// (`merged.rs`), so the router plans multi-shard SELECTs for merging.
pub const MERGES_RESULTS: bool = true;

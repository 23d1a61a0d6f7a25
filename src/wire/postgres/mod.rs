//! Our own PostgreSQL wire layer, on pgwire's message codec (no server API) and
//! postgres-protocol (client-side SCRAM, message encoders): the server side clients connect
//! to (`frontend`) and the client side that talks to backend servers (`backend`).

pub mod auth;
pub mod backend;
pub mod cancel;
pub mod error;
pub mod frontend;
pub mod message;
pub mod statements;

pub use frontend::serve_client;

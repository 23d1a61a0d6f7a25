//! Wire protocols: the only place where protocol bytes are read and written.

pub mod mysql;
pub mod postgres;
pub mod stream;

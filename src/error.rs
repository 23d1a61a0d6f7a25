//! The protocol-neutral errors dbmesh itself raises (as opposed to errors a backend sent,
//! which are forwarded verbatim). Each wire layer maps these to its own error codes in exactly
//! one place: `wire::mysql::err` for MySQL errno + SQLSTATE.

/// An error dbmesh reports to a client on its own behalf.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Unknown user or wrong password.
    #[error("Access denied for user '{user}'@'{host}' (using password: {})", if *.using_password { "YES" } else { "NO" })]
    AccessDenied {
        user: String,
        host: String,
        using_password: bool,
    },
    /// The user has `require_tls = true` and connected over plain TCP. MySQL answers a
    /// `REQUIRE SSL` account the same way: access denied, after the password was checked.
    #[error("Access denied for user '{user}'@'{host}' (using password: YES): this user must connect with TLS (require_tls)")]
    TlsRequired { user: String, host: String },
    /// The logical database is not defined in the configuration.
    #[error("Unknown database '{0}'")]
    UnknownDatabase(String),
    /// The user is not granted this logical database in `[[users]].databases`.
    #[error("Access denied for user '{user}'@'{host}' to database '{database}'")]
    DatabaseAccessDenied {
        user: String,
        host: String,
        database: String,
    },
    /// The logical database is served by another protocol's listener.
    #[error(
        "database '{database}' is a {backend} database; connect to dbmesh's {backend} listener"
    )]
    WrongProtocol { database: String, backend: String },
    /// A statement needs a database and the session has none.
    #[error("No database selected")]
    NoDatabaseSelected,
    /// A backend data source could not be reached.
    #[error("data source '{data_source}' of database '{database}' is unavailable: {cause}")]
    DataSourceUnavailable {
        database: String,
        data_source: String,
        cause: String,
    },
    /// No backend connection became free in time.
    #[error("timed out after {waited_ms} ms waiting for a connection to data source '{data_source}' (max_connections = {max})")]
    PoolTimeout {
        data_source: String,
        waited_ms: u64,
        max: u32,
    },
    /// The backend connection broke while a statement was running.
    #[error("lost connection to data source '{data_source}' during the statement: {cause}")]
    BackendLost { data_source: String, cause: String },
    /// A prepared statement id the client never prepared (or already closed).
    #[error("Unknown prepared statement handler ({id}) given to {command}")]
    UnknownStatement { id: u32, command: &'static str },
    /// The client sent a command dbmesh does not support.
    #[error("Unknown command")]
    UnknownCommand(u8),
    /// A packet or message that does not follow the protocol.
    #[error("malformed packet: {0}")]
    Malformed(String),
    /// Something that is not supported yet, named.
    #[error("{0} is not supported by dbmesh")]
    NotSupported(String),
    /// A statement on a sharded database that dbmesh could not parse; the message names
    /// the position and the table that made parsing necessary.
    #[error("{0}")]
    SqlParse(String),
    /// A statement dbmesh parsed but cannot route over the sharding rules (a construct it
    /// cannot split, a join across tables sharded differently, ...); the message names the
    /// construct and the table.
    #[error("{0}")]
    Unroutable(String),
    /// A multi-shard SELECT whose results dbmesh cannot merge into the answer one database
    /// would give (a window function, an aggregate inside an expression, a subquery that
    /// spans shards, ...); the message names the construct. Reported as "not supported
    /// yet" (MySQL 1235 with SQLSTATE `0A000`, PostgreSQL `0A000`) rather than a wrong
    /// answer.
    #[error("{0}")]
    MergeUnsupported(String),
    /// The rest of a shard's result could not be kept in the spill file (the disk is full,
    /// the directory is missing); the message names the file and the cause.
    #[error("buffering a shard's rows to a temporary file failed: {0}")]
    Spill(String),
    /// An UPDATE that would move a row to another shard by changing a sharding column, in a
    /// session whose transaction type (LOCAL) cannot make the move atomic.
    #[error("cannot update sharding column `{column}` of sharded table `{table}` to a different value: the row would move to another shard, which dbmesh does only with transaction type XA (transaction = \"XA\" in the database's config, or SET dbmesh_transaction_type = 'XA'); LOCAL transactions refuse it, see docs/transactions.md")]
    ShardingKeyChange { table: String, column: String },
    /// A sharding value no node takes (outside every range, a hint naming no node, ...).
    #[error("{0}")]
    Routing(String),
    /// An XA transaction was rolled back on every data source before its commit decision
    /// (a branch failed to prepare, the transaction log could not be written, ...).
    #[error("{0}")]
    XaRolledBack(String),
    /// A statement that must run outside a transaction ran inside one.
    #[error("{0}")]
    InTransaction(String),
    /// The application's own XA statement on a database with several data sources.
    #[error("{0}")]
    RawXa(String),
    /// A key generator failed (the clock stepped back too far).
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// An admin statement (`SHOW DBMESH ...`, `RELOAD DBMESH CONFIG`) from a user without
    /// `admin = true`.
    #[error("Access denied for user '{user}': {statement} needs a user with admin = true")]
    AdminDenied { user: String, statement: String },
    /// An admin statement dbmesh does not understand; the message says what it expected.
    #[error("{0}")]
    AdminSyntax(String),
    /// `RELOAD DBMESH CONFIG` found the new configuration invalid (every problem, with
    /// file:line:column) or not applicable without a restart; the old one keeps serving.
    #[error("configuration not reloaded, the running one is kept: {0}")]
    ConfigReload(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Every metric dbmesh exports: the names (listed in docs/metrics.md), and one recording
//! function per event, so the wire layer's call sites stay one line each.
//!
//! Recording goes through the `metrics` facade. Without a recorder (no `admin_listen`)
//! every call is a cheap no-op; with one, counters are atomics behind a registry lookup.
//! Labels are low-cardinality by design: protocol, logical database, data source, statement
//! type, route kind, error code; never SQL text or client addresses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Unit,
};

use crate::execute::Cluster;
use crate::route::shard::{Plan, PlanKind};

/// Client connections open now (gauge), by protocol.
pub const CLIENT_CONNECTIONS: &str = "dbmesh_client_connections";
/// Client connections accepted since start (counter), by protocol.
pub const CLIENT_CONNECTIONS_TOTAL: &str = "dbmesh_client_connections_total";
/// Bytes read from clients (counter), by protocol.
pub const CLIENT_RECEIVED_BYTES: &str = "dbmesh_client_received_bytes_total";
/// Bytes written to clients (counter), by protocol.
pub const CLIENT_SENT_BYTES: &str = "dbmesh_client_sent_bytes_total";
/// Statements run (counter), by protocol, database, type and route.
pub const STATEMENTS: &str = "dbmesh_statements_total";
/// Statement latency as the client sees it (histogram), by protocol and database.
pub const STATEMENT_DURATION: &str = "dbmesh_statement_duration_seconds";
/// Latency of one backend round trip (histogram), by database and data source.
pub const BACKEND_DURATION: &str = "dbmesh_backend_duration_seconds";
/// Errors sent to clients (counter), by protocol and code (MySQL errno, PostgreSQL SQLSTATE).
pub const ERRORS: &str = "dbmesh_errors_total";
/// Transactions ended (counter), by protocol, type and outcome.
pub const TRANSACTIONS: &str = "dbmesh_transactions_total";
/// Prepared XA branches recovery resolved (counter), by outcome (commit, rollback).
pub const XA_RECOVERED: &str = "dbmesh_xa_recovered_branches_total";
/// Pooled backend connections (gauge), by database, data source and state (in_use, idle).
pub const POOL_CONNECTIONS: &str = "dbmesh_pool_connections";
/// Pool size limit (gauge), by database and data source.
pub const POOL_MAX_CONNECTIONS: &str = "dbmesh_pool_max_connections";
const POOL_CONNECTIONS_HELP: &str =
    "Pooled backend connections, by logical database, data source and state (in_use, idle).";
const POOL_MAX_CONNECTIONS_HELP: &str = "Pool size limit, by logical database and data source.";

/// Whether a recorder is installed (an admin endpoint started). Until then the recording
/// functions return before building their labels, so a proxy without `admin_listen`
/// allocates nothing for metrics.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once the Prometheus recorder is installed: describes every metric (the
/// exporter's `# HELP` lines, the same words as docs/metrics.md) and turns recording on.
pub(super) fn enable() {
    describe();
    ENABLED.store(true, Ordering::Relaxed);
}

/// The `# HELP` text and unit of each metric.
fn describe() {
    describe_gauge!(
        CLIENT_CONNECTIONS,
        "Client connections open now, by protocol."
    );
    describe_counter!(
        CLIENT_CONNECTIONS_TOTAL,
        "Client connections accepted since start, by protocol."
    );
    describe_counter!(
        CLIENT_RECEIVED_BYTES,
        Unit::Bytes,
        "Bytes read from clients, by protocol."
    );
    describe_counter!(
        CLIENT_SENT_BYTES,
        Unit::Bytes,
        "Bytes written to clients, by protocol."
    );
    describe_counter!(
        STATEMENTS,
        "Statements run, by protocol, logical database, statement type and route."
    );
    describe_histogram!(
        STATEMENT_DURATION,
        Unit::Seconds,
        "Statement latency as the client sees it, by protocol and logical database."
    );
    describe_histogram!(
        BACKEND_DURATION,
        Unit::Seconds,
        "Latency of one backend round trip, by logical database and data source."
    );
    describe_counter!(
        ERRORS,
        "Errors sent to clients, by protocol and code (MySQL errno or PostgreSQL SQLSTATE)."
    );
    describe_counter!(
        TRANSACTIONS,
        "Transactions ended, by protocol, transaction type and outcome."
    );
    describe_counter!(
        XA_RECOVERED,
        "Prepared XA branches resolved by recovery, by outcome (commit, rollback)."
    );
    // The pool gauges are written at scrape time (`render_pools`), with their own
    // HELP lines.
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Histogram buckets for the `*_duration_seconds` metrics: 100 µs to 10 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// The client protocol, as the `protocol` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Mysql,
    Postgres,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Mysql => "mysql",
            Protocol::Postgres => "postgres",
        }
    }
}

/// How a statement was routed, as the `route` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteKind {
    /// One data source ran it: every statement of a database without sharding rules, and
    /// a sharded database's statements that the rules send to one actual table.
    #[default]
    Single,
    /// Several units, picked by the sharding conditions or scanning every actual table.
    Multi,
    /// The same statement on every data source (broadcast tables), or DDL fanned out to
    /// every actual table.
    Broadcast,
}

impl RouteKind {
    pub fn label(self) -> &'static str {
        match self {
            RouteKind::Single => "single",
            RouteKind::Multi => "multi",
            RouteKind::Broadcast => "broadcast",
        }
    }

    /// The route kind of a sharded database's plan.
    pub fn of(plan: &Plan) -> RouteKind {
        if plan.units.len() <= 1 {
            return RouteKind::Single;
        }
        if plan.kind == PlanKind::Ddl {
            return RouteKind::Broadcast;
        }
        let first = &plan.units[0];
        let same_sql = plan.units.iter().all(|u| u.sql == first.sql);
        let mut sources: Vec<&str> = plan.units.iter().map(|u| u.data_source.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        if same_sql && sources.len() == plan.units.len() {
            RouteKind::Broadcast
        } else {
            RouteKind::Multi
        }
    }
}

/// The `type` label of a statement, from its first keyword (no parse: this runs for
/// every statement, also on the passthrough path).
pub fn statement_type(sql: &[u8]) -> &'static str {
    let word = first_keyword(sql);
    let is = |k: &str| word.eq_ignore_ascii_case(k.as_bytes());
    if is("select") || is("with") || is("values") || is("table") {
        "select"
    } else if is("insert") || is("replace") || is("copy") {
        "insert"
    } else if is("update") {
        "update"
    } else if is("delete") {
        "delete"
    } else if is("create") || is("alter") || is("drop") || is("truncate") || is("rename") {
        "ddl"
    } else if is("begin") || is("start") {
        "begin"
    } else if is("commit") || is("end") {
        "commit"
    } else if is("rollback") || is("abort") {
        "rollback"
    } else if is("set") {
        "set"
    } else if is("show") {
        "show"
    } else {
        "other"
    }
}

/// The first word of `sql`, after white space, parentheses and comments.
fn first_keyword(mut sql: &[u8]) -> &[u8] {
    loop {
        let trimmed = sql.trim_ascii_start();
        if let Some(rest) = trimmed.strip_prefix(b"(") {
            sql = rest;
        } else if let Some(rest) = trimmed.strip_prefix(b"/*") {
            let end = rest
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(rest.len(), |p| p + 2);
            sql = &rest[end..];
        } else if trimmed.starts_with(b"--") || trimmed.starts_with(b"#") {
            let end = trimmed
                .iter()
                .position(|b| *b == b'\n')
                .unwrap_or(trimmed.len());
            sql = &trimmed[end..];
        } else {
            let end = trimmed
                .iter()
                .position(|b| !b.is_ascii_alphabetic())
                .unwrap_or(trimmed.len());
            return &trimmed[..end];
        }
    }
}

/// One client connection's metrics: counted open while this lives, bytes reported as the
/// connection's readers and writers count them.
pub struct ConnectionMetrics {
    protocol: Protocol,
    open: Gauge,
    received: Counter,
    sent: Counter,
    reported_received: u64,
    reported_sent: u64,
}

impl ConnectionMetrics {
    /// A client connected.
    pub fn open(protocol: Protocol) -> ConnectionMetrics {
        let p = protocol.label();
        counter!(CLIENT_CONNECTIONS_TOTAL, "protocol" => p).increment(1);
        let open = gauge!(CLIENT_CONNECTIONS, "protocol" => p);
        open.increment(1.0);
        ConnectionMetrics {
            protocol,
            open,
            received: counter!(CLIENT_RECEIVED_BYTES, "protocol" => p),
            sent: counter!(CLIENT_SENT_BYTES, "protocol" => p),
            reported_received: 0,
            reported_sent: 0,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The connection's byte totals so far (what its reader read, its writer wrote).
    pub fn bytes(&mut self, received: u64, sent: u64) {
        self.received
            .increment(received.saturating_sub(self.reported_received));
        self.sent.increment(sent.saturating_sub(self.reported_sent));
        self.reported_received = self.reported_received.max(received);
        self.reported_sent = self.reported_sent.max(sent);
    }
}

impl Drop for ConnectionMetrics {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

/// A statement about to run, timed from here to [`StatementTimer::finish`].
#[derive(Debug, Clone, Copy)]
pub struct StatementTimer {
    started: Instant,
    kind: &'static str,
}

impl StatementTimer {
    /// Starts timing a statement whose SQL begins with `sql` (see [`statement_type`]).
    pub fn start(sql: &[u8]) -> StatementTimer {
        StatementTimer {
            started: Instant::now(),
            kind: statement_type(sql),
        }
    }

    /// A statement of type `kind` that started at `started` (an extended-protocol batch
    /// is timed from its first message).
    pub fn started_at(started: Instant, kind: &'static str) -> StatementTimer {
        StatementTimer { started, kind }
    }

    /// Time since the statement started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The statement's `type` label.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The statement ended: counts it, records its latency, and logs it at WARN when it
    /// took at least `slow` (`[server] slow_statement_ms`).
    pub fn finish(
        self,
        protocol: Protocol,
        database: &str,
        route: RouteKind,
        slow: Option<Duration>,
    ) {
        let elapsed = self.started.elapsed();
        if slow.is_some_and(|s| elapsed >= s) {
            tracing::warn!(
                target: "dbmesh::slow_statement",
                database,
                r#type = self.kind,
                route = route.label(),
                elapsed_ms = elapsed.as_millis() as u64,
                "slow statement"
            );
        }
        if !enabled() {
            return;
        }
        let p = protocol.label();
        counter!(STATEMENTS, "protocol" => p, "database" => database.to_string(),
            "type" => self.kind, "route" => route.label())
        .increment(1);
        histogram!(STATEMENT_DURATION, "protocol" => p, "database" => database.to_string())
            .record(elapsed.as_secs_f64());
    }
}

/// One round trip to a backend (a statement sent, its whole response read) took `elapsed`.
pub fn backend_round_trip(database: &str, data_source: &str, elapsed: Duration) {
    if !enabled() {
        return;
    }
    histogram!(BACKEND_DURATION, "database" => database.to_string(),
        "data_source" => data_source.to_string())
    .record(elapsed.as_secs_f64());
}

/// An error went to a client: a MySQL errno or a PostgreSQL SQLSTATE, dbmesh's own or a
/// backend's.
pub fn error(protocol: Protocol, code: &str) {
    if !enabled() {
        return;
    }
    counter!(ERRORS, "protocol" => protocol.label(), "code" => code.to_string()).increment(1);
}

/// A MySQL error by errno.
pub fn mysql_error(errno: u16) {
    if !enabled() {
        return;
    }
    error(Protocol::Mysql, &errno.to_string());
}

/// How a transaction ended, as the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    Commit,
    Rollback,
}

impl TxnOutcome {
    /// How a transaction that ended with a statement of `kind` (see [`statement_type`])
    /// ended: ROLLBACK, or an error that ended it, roll back; anything else committed
    /// (COMMIT, or an implicit commit such as DDL on MySQL).
    pub fn of(kind: &str, failed: bool) -> TxnOutcome {
        if failed || kind == "rollback" {
            TxnOutcome::Rollback
        } else {
            TxnOutcome::Commit
        }
    }

    fn label(self) -> &'static str {
        match self {
            TxnOutcome::Commit => "commit",
            TxnOutcome::Rollback => "rollback",
        }
    }
}

/// A transaction ended. `kind`: `single` (one data source, the backend's own) or the
/// sharded database's transaction type in lower case (`local`, `xa`, `saga`).
pub fn transaction(protocol: Protocol, kind: &'static str, outcome: TxnOutcome) {
    counter!(TRANSACTIONS, "protocol" => protocol.label(), "type" => kind,
        "outcome" => outcome.label())
    .increment(1);
}

/// XA recovery committed (`commit`) or rolled back a prepared branch a crash left.
pub fn xa_branch_recovered(commit: bool) {
    let outcome = if commit { "commit" } else { "rollback" };
    counter!(XA_RECOVERED, "outcome" => outcome).increment(1);
}

/// Appends the pool gauges, read from the pools of `cluster` now, to a rendered scrape.
///
/// They are written here rather than recorded through the `metrics` registry because the
/// registry never forgets a series: after a reload removed a data source (or a database),
/// its last values would be exported forever. Written from the running cluster, a scrape
/// shows exactly its pools (and only this server's, when tests run several in a process).
pub fn render_pools(cluster: &Cluster, out: &mut String) {
    use metrics_exporter_prometheus::formatting::{
        write_help_line, write_metric_line, write_type_line,
    };
    use metrics_exporter_prometheus::LabelSet;

    let mut connections = String::new();
    let mut max_connections = String::new();
    for (db_name, db) in &cluster.databases {
        let mysql = db.config.backend == crate::config::BackendKind::Mysql;
        for (ds_name, ds) in &db.data_sources {
            let (in_use, idle, max) = if mysql {
                (ds.mysql.in_use(), ds.mysql.idle_count(), ds.mysql.max())
            } else {
                (
                    ds.postgres.in_use(),
                    ds.postgres.idle_count(),
                    ds.postgres.max(),
                )
            };
            let labels = [
                ("database", db_name.clone()),
                ("data_source", ds_name.clone()),
            ];
            let key = metrics::Key::from_parts(POOL_CONNECTIONS, &labels);
            let labels = LabelSet::from_key_and_global(&key, &Default::default());
            for (state, n) in [("in_use", in_use), ("idle", idle)] {
                write_metric_line(
                    &mut connections,
                    POOL_CONNECTIONS,
                    None,
                    &labels,
                    Some(("state", state)),
                    n,
                    None,
                );
            }
            write_metric_line::<&str, _>(
                &mut max_connections,
                POOL_MAX_CONNECTIONS,
                None,
                &labels,
                None,
                max,
                None,
            );
        }
    }
    for (name, help, lines) in [
        (POOL_CONNECTIONS, POOL_CONNECTIONS_HELP, connections),
        (
            POOL_MAX_CONNECTIONS,
            POOL_MAX_CONNECTIONS_HELP,
            max_connections,
        ),
    ] {
        if lines.is_empty() {
            continue;
        }
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        write_help_line(out, name, None, None, help);
        write_type_line(out, name, None, None, "gauge");
        out.push_str(&lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::shard::{ParamMode, Unit};

    #[test]
    fn statement_type_reads_the_first_keyword() {
        assert_eq!(statement_type(b"SELECT 1"), "select");
        assert_eq!(statement_type(b"  (select 1) union (select 2)"), "select");
        assert_eq!(
            statement_type(b"/* hint */ insert into t values (1)"),
            "insert"
        );
        assert_eq!(statement_type(b"-- c\nUPDATE t SET a = 1"), "update");
        assert_eq!(statement_type(b"delete from t"), "delete");
        assert_eq!(statement_type(b"CREATE TABLE t (id int)"), "ddl");
        assert_eq!(statement_type(b"START TRANSACTION"), "begin");
        assert_eq!(statement_type(b"commit"), "commit");
        assert_eq!(statement_type(b"ROLLBACK"), "rollback");
        assert_eq!(statement_type(b"SET NAMES utf8mb4"), "set");
        assert_eq!(statement_type(b"CALL p()"), "other");
        assert_eq!(statement_type(b""), "other");
        assert_eq!(statement_type(b"/* unterminated"), "other");
    }

    fn plan(kind: PlanKind, units: &[(&str, Option<&str>)]) -> Plan {
        Plan {
            kind,
            units: units
                .iter()
                .map(|(ds, sql)| Unit {
                    data_source: ds.to_string(),
                    sql: sql.map(str::to_string),
                })
                .collect(),
            params: ParamMode::Inline,
            generated_keys: Vec::new(),
            merge: None,
        }
    }

    #[test]
    fn route_kind_tells_single_multi_and_broadcast_apart() {
        let single = plan(PlanKind::Query, &[("ds_0", Some("SELECT * FROM t_0"))]);
        assert_eq!(RouteKind::of(&single), RouteKind::Single);
        let scan = plan(
            PlanKind::Query,
            &[
                ("ds_0", Some("SELECT * FROM t_0")),
                ("ds_1", Some("SELECT * FROM t_1")),
            ],
        );
        assert_eq!(RouteKind::of(&scan), RouteKind::Multi);
        let broadcast_write = plan(
            PlanKind::Write,
            &[
                ("ds_0", Some("DELETE FROM dict")),
                ("ds_1", Some("DELETE FROM dict")),
            ],
        );
        assert_eq!(RouteKind::of(&broadcast_write), RouteKind::Broadcast);
        let same_source_twice = plan(
            PlanKind::Query,
            &[("ds_0", Some("SELECT 1")), ("ds_0", Some("SELECT 1"))],
        );
        assert_eq!(RouteKind::of(&same_source_twice), RouteKind::Multi);
        let ddl = plan(
            PlanKind::Ddl,
            &[
                ("ds_0", Some("CREATE TABLE t_0 (id int)")),
                ("ds_0", Some("CREATE TABLE t_1 (id int)")),
            ],
        );
        assert_eq!(RouteKind::of(&ddl), RouteKind::Broadcast);
    }

    #[test]
    fn transaction_outcome_follows_the_ending_statement() {
        assert_eq!(TxnOutcome::of("commit", false), TxnOutcome::Commit);
        assert_eq!(TxnOutcome::of("ddl", false), TxnOutcome::Commit);
        assert_eq!(TxnOutcome::of("rollback", false), TxnOutcome::Rollback);
        assert_eq!(TxnOutcome::of("commit", true), TxnOutcome::Rollback);
    }
}

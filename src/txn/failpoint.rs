//! Failure injection for the XA tests: compiled in only with the `failpoints` feature.
//!
//! `DBMESH_FAILPOINTS` lists the points (comma-separated) at which the process aborts, as
//! a crash would stop it, the first time it passes them:
//!
//! - `xa_after_first_prepare`: one branch prepared, the others maybe not;
//! - `xa_after_prepare`: every branch prepared, no decision logged;
//! - `xa_after_decision`: the commit decision logged, nothing committed;
//! - `xa_after_first_commit`: one branch committed, the others prepared.
//!
//! Without the feature [`hit`] is an empty inline function.

/// Aborts the process if `name` is armed (feature `failpoints` only).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    static ARMED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("DBMESH_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    if armed.iter().any(|a| a == name) {
        tracing::error!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Aborts the process if `name` is armed (feature `failpoints` only).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

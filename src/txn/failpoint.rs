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
//! Without the feature [`hit`] and [`armed`] are empty inline functions.

/// Whether `name` is armed: the caller then runs the first branch alone and hits it, so
/// the other branches have not heard of the step when the process dies.
#[cfg(feature = "failpoints")]
pub fn armed(name: &str) -> bool {
    static ARMED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| {
            std::env::var("DBMESH_FAILPOINTS")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|a| a == name)
}

/// Aborts the process if `name` is armed (feature `failpoints` only).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if armed(name) {
        tracing::error!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Whether `name` is armed (never, without the `failpoints` feature).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn armed(_name: &str) -> bool {
    false
}

/// Aborts the process if `name` is armed (feature `failpoints` only).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

//! Running an admin statement for a session: the privilege check, then the answer as a
//! protocol-neutral result that the wire layer encodes (a text result set, or OK).

use std::sync::Arc;

use super::statement::{parse, AdminStatement};
use crate::config::UserConfig;
use crate::error::Error;
use crate::server::Runtime;

/// What an admin statement answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminResult {
    /// A result set: column names, then rows of text values (`None` = NULL).
    Rows {
        columns: Vec<&'static str>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// A statement without rows; `tag` is PostgreSQL's command tag, `message` what
    /// happened (MySQL's OK info).
    Done { tag: &'static str, message: String },
}

/// The columns admin statement `sql` answers with (`None`: no rows, e.g. RELOAD), after
/// the same syntax and privilege checks as [`answer`]: what a client preparing it (the
/// PostgreSQL extended protocol) is told at Parse and Describe.
pub fn describe(
    rt: &Arc<Runtime>,
    user: &UserConfig,
    sql: &str,
) -> Result<Option<Vec<&'static str>>, Error> {
    let statement = parse(sql)?;
    if !user.admin {
        return Err(Error::AdminDenied {
            user: user.name.clone(),
            statement: statement.name().to_string(),
        });
    }
    Ok(match statement {
        // The columns do not depend on the rows; filtering everything out is cheapest.
        AdminStatement::Show(mut show) => {
            show.like = Some(String::new());
            match super::show::show(rt, &show) {
                AdminResult::Rows { columns, .. } => Some(columns),
                AdminResult::Done { .. } => None,
            }
        }
        AdminStatement::Reload => None,
    })
}

/// Parses and runs admin statement `sql` for `user`. Only users with `admin = true` may
/// run them (the privilege is the one the session logged in with); others get
/// [`Error::AdminDenied`] naming the statement. SHOW reads the running configuration
/// (not the session's snapshot); `RELOAD DBMESH CONFIG` reloads it.
pub async fn answer(rt: &Arc<Runtime>, user: &UserConfig, sql: &str) -> Result<AdminResult, Error> {
    let statement = parse(sql)?;
    if !user.admin {
        return Err(Error::AdminDenied {
            user: user.name.clone(),
            statement: statement.name().to_string(),
        });
    }
    match statement {
        AdminStatement::Show(show) => {
            // A misspelt database would otherwise look like one without data sources.
            if let Some(db) = &show.from {
                if !rt.cluster().databases.contains_key(db) {
                    return Err(Error::UnknownDatabase(db.clone()));
                }
            }
            Ok(super::show::show(rt, &show))
        }
        AdminStatement::Reload => {
            let reloaded = super::reload::reload(rt).await?;
            Ok(AdminResult::Done {
                tag: "RELOAD",
                message: reloaded.summary(),
            })
        }
    }
}

//! Admin statements on the MySQL listener (`SHOW DBMESH ...`, `RELOAD DBMESH CONFIG`,
//! see `admin/`): answered by dbmesh as text result sets or OK, in any session, sharded or
//! not, with or without a current database; the transaction status flags the client sees
//! are the session's own, so an admin statement inside a transaction leaves it alone.

use super::frontend::ClientConn;
use super::resultset::{write_text_resultset, ColumnDef};
use crate::admin::answer::{answer, AdminResult};
use crate::error::Error;

impl ClientConn {
    /// Answers admin statement `sql` (COM_QUERY).
    pub(crate) async fn admin(&mut self, sql: &str) {
        let rt = self.rt.clone();
        let user = self.session.user.clone();
        match answer(&rt, &user, sql).await {
            Ok(AdminResult::Rows { columns, rows }) => {
                let columns: Vec<ColumnDef> =
                    columns.iter().map(|c| ColumnDef::text(c, 1024)).collect();
                let status = self.status_flags();
                let format = self.result_format();
                write_text_resultset(
                    &mut self.writer,
                    &mut self.seq,
                    format,
                    status,
                    &columns,
                    &rows,
                );
            }
            Ok(AdminResult::Done { .. }) => self.send_ok(),
            Err(e) => self.send_error(&e),
        }
    }

    /// COM_STMT_PREPARE of an admin statement: refused with a clear error rather than
    /// sent to a backend that does not know it.
    pub(crate) fn refuse_prepared_admin(&mut self) {
        self.send_error(&Error::NotSupported(
            "preparing an admin statement (SHOW DBMESH ..., RELOAD DBMESH CONFIG); send it as a plain query".into(),
        ));
    }
}

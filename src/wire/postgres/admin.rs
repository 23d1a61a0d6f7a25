//! Admin statements on the PostgreSQL listener (`SHOW DBMESH ...`, `RELOAD DBMESH CONFIG`,
//! see `admin/`): answered by dbmesh in unsharded sessions (the pump,
//! `frontend/admin_pump.rs`) and sharded ones alike, in a simple Query or with the
//! extended protocol (Parse checks syntax and privilege, Describe gives the columns,
//! Execute the rows). The rows are `text` columns (whose text and binary forms are the
//! same bytes); NULL is a NULL.

use bytes::BytesMut;
use pgwire::messages::data::{FieldDescription, NoData, RowDescription};
use pgwire::messages::response::CommandComplete;
use tokio::io::AsyncWrite;

use super::error::{from_error, Severity};
use super::message::MessageWriter;
use crate::admin::answer::{answer, AdminResult};
use crate::config::UserConfig;
use crate::server::Runtime;

/// PostgreSQL's `text` type.
const TEXT_OID: u32 = 25;

/// The RowDescription of an admin result with `columns`, or NoData for none.
pub fn write_description<W: AsyncWrite + Unpin>(
    columns: &Option<Vec<&'static str>>,
    writer: &mut MessageWriter<W>,
) {
    match columns {
        Some(columns) => writer.write(&row_description(columns)),
        None => writer.write(&NoData::new()),
    }
}

fn row_description(columns: &[&str]) -> RowDescription {
    let fields = columns
        .iter()
        .map(|c| FieldDescription::new(c.to_string(), 0, 0, TEXT_OID, -1, -1, 0))
        .collect();
    RowDescription::new(fields)
}

/// Answers admin statement `sql` for `user`: the rows (after their RowDescription when
/// `describe`: a simple Query), or the error, written to `writer` (no ReadyForQuery).
/// Returns whether it succeeded.
pub async fn write_admin<W: AsyncWrite + Unpin>(
    rt: &std::sync::Arc<Runtime>,
    user: &UserConfig,
    sql: &str,
    describe: bool,
    writer: &mut MessageWriter<W>,
) -> bool {
    match answer(rt, user, sql).await {
        Ok(AdminResult::Rows { columns, rows }) => {
            if describe {
                writer.write(&row_description(&columns));
            }
            for row in &rows {
                write_data_row(&mut writer.buf, row);
            }
            writer.write(&CommandComplete::new(format!("SELECT {}", rows.len())));
            true
        }
        Ok(AdminResult::Done { tag, .. }) => {
            writer.write(&CommandComplete::new(tag.to_string()));
            true
        }
        Err(e) => {
            writer.write(&from_error(Severity::Error, &e));
            false
        }
    }
}

/// Appends one DataRow of text values or NULLs.
fn write_data_row(buf: &mut BytesMut, values: &[Option<String>]) {
    let len: usize = 4
        + 2
        + values
            .iter()
            .map(|v| 4 + v.as_ref().map_or(0, String::len))
            .sum::<usize>();
    buf.extend_from_slice(b"D");
    buf.extend_from_slice(&(len as i32).to_be_bytes());
    buf.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for v in values {
        match v {
            Some(v) => {
                buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
                buf.extend_from_slice(v.as_bytes());
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_written_as_minus_one_lengths() {
        let mut b = BytesMut::new();
        write_data_row(&mut b, &[Some("ds_0".into()), None]);
        let len = i32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(len + 1, b.len());
        assert_eq!(&b[5..7], &2i16.to_be_bytes());
        assert_eq!(&b[7..11], &4i32.to_be_bytes());
        assert_eq!(&b[11..15], b"ds_0");
        assert_eq!(&b[15..19], &(-1i32).to_be_bytes());
    }
}

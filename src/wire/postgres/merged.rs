//! Running a plan whose units' rows must be merged ([`Plan::merge`]): ORDER BY, GROUP BY,
//! aggregates, DISTINCT, LIMIT / OFFSET and UNION across shards.
//!
//! Several units may share a data source, and so the session's one connection there; to
//! read their rows interleaved, as a k-way merge must, each unit runs as a named portal of
//! one extended-protocol batch per connection (no Sync until the end: the portals live in
//! the implicit transaction, or in the client's):
//!
//! ```text
//! per unit i:  Close portal/statement dbmesh_merge_i, Parse, Bind (the client's result
//!              formats), Describe portal, Execute (BATCH rows); then Flush
//! on demand:   Execute dbmesh_merge_i (BATCH rows) + Flush, when the merge needs the next
//!              row of unit i and its last batch was read
//! at the end:  Close every portal and statement, Sync; read up to ReadyForQuery
//! ```
//!
//! The merge operators (`crate::merge`) pull; a [`Pull::NeedInput`] reads messages of that
//! unit's connection until one of its rows or its end arrives (rows of other units on the
//! same connection read meanwhile wait in their queues). So memory is bounded by
//! [`BATCH`] rows per unit plus what the operators hold. When the merge ends early (LIMIT),
//! the suspended portals are closed: nothing is running on the servers, so no
//! CancelRequest is needed and the connections are clean after the Sync.
//!
//! The client gets the first unit's RowDescription cut to the visible columns, the AVG
//! columns typed as PostgreSQL types avg() (`numeric` for integer and numeric sums, `float8`
//! for float sums), the merged rows in its result formats, and `SELECT n`.
//!
//! Text compares by the database's collation (`datcollate`, asked once per connection):
//! "C" / "POSIX" / "C.UTF-8" compare bytes as the merge does; under any other collation a
//! merge that orders or streams groups by a text column is refused (0A000) rather than
//! ordered differently from the database.

use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;

use super::fanout::UnitProtocol;
use super::row_codec::{
    collation_from_datcollate, decode_data_row, encode_data_row, ColumnMeta, FLOAT4, FLOAT8, INT2,
    INT4, INT8, NUMERIC,
};
use super::sharded::{next_message, send, Broken, Outcome, ShardedSession};
use crate::error::Error;
use crate::merge::sql_plan::SelectMerge;
use crate::merge::{AggregateFunction, Available, Collation, Inputs, MergePlan, Pull};
use crate::route::shard::Unit;

/// Rows asked of a unit per Execute.
pub const BATCH: i32 = 256;

const DATCOLLATE_SQL: &str =
    "SELECT datcollate FROM pg_database WHERE datname = current_database()";

/// One column of a RowDescription, as sent.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    pub format: i16,
}

/// The fields of a RowDescription message (type byte and length included).
pub fn parse_row_description(msg: &[u8]) -> Result<Vec<Field>, Error> {
    let bad = || Error::Malformed("short RowDescription".into());
    let body = msg.get(5..).ok_or_else(bad)?;
    let count = i16::from_be_bytes(
        body.get(..2)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let mut at = 2;
    let mut fields = Vec::new();
    for _ in 0..count.max(0) {
        let end = body[at..].iter().position(|b| *b == 0).ok_or_else(bad)? + at;
        let name = String::from_utf8_lossy(&body[at..end]).into_owned();
        at = end + 1;
        let rest = body.get(at..at + 18).ok_or_else(bad)?;
        let u32_at =
            |i: usize| u32::from_be_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let i16_at = |i: usize| i16::from_be_bytes([rest[i], rest[i + 1]]);
        fields.push(Field {
            name,
            table_oid: u32_at(0),
            column: i16_at(4),
            type_oid: u32_at(6),
            type_size: i16_at(10),
            type_modifier: u32_at(12) as i32,
            format: i16_at(16),
        });
        at += 18;
    }
    Ok(fields)
}

/// A RowDescription message of `fields`.
pub fn write_row_description(fields: &[Field], out: &mut BytesMut) {
    out.put_u8(b'T');
    let at = out.len();
    out.put_i32(0);
    out.put_i16(fields.len() as i16);
    for f in fields {
        out.put_slice(f.name.as_bytes());
        out.put_u8(0);
        out.put_u32(f.table_oid);
        out.put_i16(f.column);
        out.put_u32(f.type_oid);
        out.put_i16(f.type_size);
        out.put_i32(f.type_modifier);
        out.put_i16(f.format);
    }
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// The fields the client sees of a merged result whose shard fields are `fields`: the
/// visible ones, AVG columns typed as avg() is (`numeric` for integer and numeric sums,
/// `float8` for float sums), COUNT(DISTINCT x) as `bigint`, SUM(DISTINCT x) as sum()
/// types x and AVG(DISTINCT x) as avg() does (the shards returned x itself for these).
pub fn merged_fields(plan: &MergePlan, fields: &[Field]) -> Vec<Field> {
    let mut out = fields.to_vec();
    for a in &plan.aggregates {
        let Some(f) = out.get_mut(a.column) else {
            continue;
        };
        let typed = match (&a.function, f.type_oid) {
            (AggregateFunction::Avg { .. }, INT2 | INT4 | INT8 | NUMERIC) => Some((NUMERIC, -1)),
            (AggregateFunction::Avg { .. }, FLOAT4 | FLOAT8) => Some((FLOAT8, 8)),
            // The shards returned the distinct values themselves.
            (AggregateFunction::CountDistinct, _) => Some((INT8, 8)),
            (AggregateFunction::SumDistinct, INT2 | INT4) => Some((INT8, 8)),
            (AggregateFunction::SumDistinct, INT8 | NUMERIC) => Some((NUMERIC, -1)),
            (AggregateFunction::AvgDistinct, INT2 | INT4 | INT8 | NUMERIC) => Some((NUMERIC, -1)),
            (AggregateFunction::AvgDistinct, FLOAT4 | FLOAT8) => Some((FLOAT8, 8)),
            _ => None,
        };
        if let Some((oid, size)) = typed {
            f.type_oid = oid;
            f.type_size = size;
            f.type_modifier = -1;
            f.table_oid = 0;
            f.column = 0;
        }
    }
    out.truncate(plan.visible_columns.min(out.len()));
    out
}

/// A RowDescription of a merged statement's first unit (derived columns included)
/// rewritten to what the client sees; other messages unchanged.
pub fn rewrite_description(merge: &SelectMerge, messages: &[u8]) -> Result<BytesMut, Error> {
    let mut out = BytesMut::new();
    let mut at = 0;
    while at + 5 <= messages.len() {
        let len =
            u32::from_be_bytes(messages[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        let msg = &messages[at..(at + 1 + len).min(messages.len())];
        if msg[0] == b'T' {
            let fields = parse_row_description(msg)?;
            let plan = merge.resolve(fields.len());
            write_row_description(&merged_fields(&plan, &fields), &mut out);
        } else {
            out.extend_from_slice(msg);
        }
        at += 1 + len;
    }
    Ok(out)
}

/// What a connection's pending answers are, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The RowDescription (or NoData) of unit `i`.
    Describe(usize),
    /// Rows of unit `i`, then PortalSuspended or CommandComplete.
    Rows(usize),
}

/// The state of one merge's units.
struct Units<'a> {
    units: &'a [Unit],
    /// Per data source (in `data_sources` order), the answers still to read.
    expect: Vec<VecDeque<Expect>>,
    data_sources: Vec<String>,
    /// Per unit: its data source's index.
    ds_of: Vec<usize>,
    /// Per unit: its RowDescription.
    described: Vec<Option<Vec<Field>>>,
    /// Per unit: an Execute sent and not yet answered to its end.
    executing: Vec<bool>,
    complete: Vec<bool>,
    /// The first error a backend sent (relayed to the client at the end).
    error: Option<BytesMut>,
}

fn portal(i: usize) -> String {
    format!("dbmesh_merge_{i}")
}

impl ShardedSession {
    /// Runs a merged plan's `units` and answers the client with the merged result.
    pub(super) async fn run_merge(
        &mut self,
        merge: &SelectMerge,
        units: &[Unit],
        protocol: &UnitProtocol<'_>,
    ) -> Result<Outcome, Broken> {
        let (result_formats, describe): (&[i16], bool) = match protocol {
            UnitProtocol::Simple => (&[], true),
            UnitProtocol::Extended {
                result_formats,
                describe,
                ..
            } => (result_formats, *describe),
        };
        let mut data_sources: Vec<String> = Vec::new();
        for u in units {
            if !data_sources.contains(&u.data_source) {
                data_sources.push(u.data_source.clone());
            }
        }
        for ds in &data_sources {
            if let Err(e) = self.backends.open(ds, &self.session).await {
                return Ok(self.fail(&e));
            }
        }
        if self.join(&data_sources).await? == Outcome::Failed {
            return Ok(Outcome::Failed);
        }
        let mut collation = Collation::Binary;
        let mut linguistic = None;
        for ds in &data_sources {
            match self.datcollate(ds).await? {
                Some(c) => match collation_from_datcollate(&c) {
                    Some(c) => collation = c,
                    None => linguistic = Some(c),
                },
                None => return Ok(Outcome::Failed),
            }
        }
        let mut st = Units {
            units,
            expect: vec![VecDeque::new(); data_sources.len()],
            ds_of: units
                .iter()
                .map(|u| {
                    data_sources
                        .iter()
                        .position(|d| *d == u.data_source)
                        .unwrap_or(0)
                })
                .collect(),
            data_sources,
            described: vec![None; units.len()],
            executing: vec![false; units.len()],
            complete: vec![false; units.len()],
            error: None,
        };
        let outcome = self
            .merge_units(
                &mut st,
                merge,
                result_formats,
                describe,
                collation,
                linguistic,
            )
            .await;
        let cleaned = self.finish_units(&mut st).await;
        let outcome = outcome?;
        cleaned?;
        if let Some(e) = st.error.take() {
            self.relay_error(&e);
            return Ok(Outcome::Failed);
        }
        Ok(outcome)
    }

    async fn merge_units(
        &mut self,
        st: &mut Units<'_>,
        merge: &SelectMerge,
        result_formats: &[i16],
        describe: bool,
        collation: Collation,
        linguistic: Option<String>,
    ) -> Result<Outcome, Broken> {
        // Every unit: prepared, bound and described.
        for (i, unit) in st.units.iter().enumerate() {
            let ds = st.ds_of[i];
            let sql = unit.sql.as_deref().unwrap_or_default();
            let conn = self.backends.get(&unit.data_source).expect("opened");
            let buf = &mut conn.writer.buf;
            let name = portal(i);
            let io = |e: std::io::Error| e.to_string();
            let written = frontend::close(b'P', &name, buf)
                .and_then(|()| frontend::close(b'S', &name, buf))
                .and_then(|()| frontend::parse(&name, sql, std::iter::empty(), buf))
                .map_err(io)
                .and_then(|()| {
                    frontend::bind(
                        &name,
                        &name,
                        std::iter::empty(),
                        std::iter::empty::<Option<&[u8]>>(),
                        |_: Option<&[u8]>, _: &mut BytesMut| Ok(postgres_protocol::IsNull::Yes),
                        result_formats.iter().copied(),
                        buf,
                    )
                    .map_err(|_| "bind".to_string())
                })
                .and_then(|()| frontend::describe(b'P', &name, buf).map_err(io));
            if let Err(cause) = written {
                return Err(Broken::Backend {
                    data_source: unit.data_source.clone(),
                    cause,
                });
            }
            st.expect[ds].push_back(Expect::Describe(i));
        }
        // Then the first batches, so that every description comes before any row.
        for (i, unit) in st.units.iter().enumerate() {
            let conn = self.backends.get(&unit.data_source).expect("opened");
            if let Err(e) = frontend::execute(&portal(i), BATCH, &mut conn.writer.buf) {
                return Err(Broken::Backend {
                    data_source: unit.data_source.clone(),
                    cause: e.to_string(),
                });
            }
            st.expect[st.ds_of[i]].push_back(Expect::Rows(i));
            st.executing[i] = true;
        }
        for ds in st.data_sources.clone() {
            if ds == self.backends.default_name() {
                self.pass.unsynced = false;
            }
            let conn = self.backends.get(&ds).expect("opened");
            frontend::flush(&mut conn.writer.buf);
            send(conn, &ds).await?;
        }
        // The descriptions, which come before any row on each connection.
        let mut inputs = Inputs::new(st.units.len());
        for i in 0..st.units.len() {
            while st.described[i].is_none() && st.error.is_none() {
                self.read_one(st, st.ds_of[i], None, &mut inputs).await?;
            }
        }
        if st.error.is_some() {
            return Ok(Outcome::Failed);
        }
        let fields = st.described[0].clone().unwrap_or_default();
        if fields.is_empty() {
            return Ok(self.fail(&Error::MergeUnsupported(
                "a merged statement that returns no columns".into(),
            )));
        }
        let plan = merge.resolve(fields.len());
        let metas: Result<Vec<ColumnMeta>, Error> = fields
            .iter()
            .map(|f| ColumnMeta::new(&f.name, f.type_oid, f.type_modifier, f.format, collation))
            .collect();
        let metas = match metas {
            Ok(m) => m,
            Err(e) => return Ok(self.fail(&e)),
        };
        if let Some(datcollate) = &linguistic {
            let keys = plan.order_by.iter().chain(&plan.group_by_order);
            let text = keys
                .map(|k| k.column)
                .chain(
                    plan.distinct
                        .then_some(0..plan.visible_columns)
                        .into_iter()
                        .flatten(),
                )
                .find(|&c| metas.get(c).is_some_and(|m| m.collation() == collation));
            if let Some(c) = text {
                return Ok(self.fail(&Error::MergeUnsupported(format!(
                    "ordering text column `{}` across shards under collation \"{datcollate}\" \
                     (dbmesh merges text in byte order: use a \"C\" collation)",
                    metas[c].name
                ))));
            }
        }
        let infos: Vec<_> = metas.iter().map(ColumnMeta::column_info).collect();
        let mut op = match plan.build(st.units.len(), &infos) {
            Ok(op) => op,
            Err(e) => return Ok(self.fail(&Error::MergeUnsupported(e.0))),
        };
        let decode: Vec<usize> = plan
            .decoded_columns(metas.len())
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.then_some(i))
            .collect();
        let visible = merged_fields(&plan, &fields);
        let out_metas: Vec<ColumnMeta> = visible
            .iter()
            .zip(&metas)
            .map(|(f, m)| ColumnMeta {
                type_oid: f.type_oid,
                type_modifier: f.type_modifier,
                ..m.clone()
            })
            .collect();
        if describe {
            write_row_description(&visible, &mut self.writer.buf);
        }
        let ctx = Decoding {
            metas: &metas,
            decode: &decode,
        };
        let mut count: u64 = 0;
        loop {
            match op.pull(&mut inputs) {
                Ok(Pull::Row(row)) => {
                    let buf = &mut self.writer.buf;
                    buf.put_u8(b'D');
                    let at = buf.len();
                    buf.put_i32(0);
                    if let Err(e) = encode_data_row(&row, &out_metas, buf) {
                        buf.truncate(at - 1);
                        return Ok(self.fail(&e));
                    }
                    let len = (buf.len() - at) as i32;
                    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                    count += 1;
                    if self.writer.pending() >= super::message::FLUSH_THRESHOLD {
                        self.writer.flush().await.map_err(|_| Broken::Client)?;
                    }
                }
                Ok(Pull::NeedInput(i)) => {
                    self.fetch(st, i, &ctx, &mut inputs).await?;
                    if st.error.is_some() {
                        return Ok(Outcome::Failed);
                    }
                }
                Ok(Pull::End) => break,
                Err(e) => return Ok(self.fail(&Error::MergeUnsupported(e.0))),
            }
        }
        self.writer
            .write(&pgwire::messages::response::CommandComplete::new(format!(
                "SELECT {count}"
            )));
        Ok(Outcome::Done)
    }

    /// Reads until unit `i` has a row in `inputs` or has ended (or a backend failed).
    async fn fetch(
        &mut self,
        st: &mut Units<'_>,
        i: usize,
        ctx: &Decoding<'_>,
        inputs: &mut Inputs,
    ) -> Result<(), Broken> {
        loop {
            if st.error.is_some() || !matches!(inputs.peek(i), Available::Unknown) {
                return Ok(());
            }
            if st.complete[i] {
                inputs.end(i);
                return Ok(());
            }
            if !st.executing[i] {
                let ds = st.data_sources[st.ds_of[i]].clone();
                let conn = self.backends.get(&ds).expect("opened");
                let name = portal(i);
                let _ = frontend::execute(&name, BATCH, &mut conn.writer.buf);
                frontend::flush(&mut conn.writer.buf);
                send(conn, &ds).await?;
                st.expect[st.ds_of[i]].push_back(Expect::Rows(i));
                st.executing[i] = true;
            }
            self.read_one(st, st.ds_of[i], Some(ctx), inputs).await?;
        }
    }

    /// Reads one message of data source `ds` (index) and files it.
    async fn read_one(
        &mut self,
        st: &mut Units<'_>,
        ds: usize,
        ctx: Option<&Decoding<'_>>,
        inputs: &mut Inputs,
    ) -> Result<(), Broken> {
        let name = st.data_sources[ds].clone();
        let conn = self.backends.get(&name).expect("opened");
        let (tag, msg) = next_message(conn, &name, &mut self.writer).await?;
        let front = st.expect[ds].front().copied();
        match (tag, front) {
            (b'1' | b'2' | b'3', _) | (b'N' | b'S', _) => {}
            (b'T', Some(Expect::Describe(u))) => {
                st.expect[ds].pop_front();
                match parse_row_description(&msg) {
                    Ok(f) => st.described[u] = Some(f),
                    Err(e) => {
                        st.error = Some(error_message(&e));
                    }
                }
            }
            (b'n', Some(Expect::Describe(u))) => {
                st.expect[ds].pop_front();
                st.described[u] = Some(Vec::new());
            }
            (b'D', Some(Expect::Rows(u))) => {
                let Some(ctx) = ctx else {
                    // Descriptions are all asked before any batch: cannot happen.
                    st.error = Some(error_message(&Error::Malformed(
                        "a DataRow before the RowDescription of a merged unit".into(),
                    )));
                    return Ok(());
                };
                let body = msg.freeze().slice(5..);
                match decode_data_row(&body, ctx.metas, ctx.decode) {
                    Ok(row) => inputs.push(u, row),
                    Err(e) => st.error = Some(error_message(&e)),
                }
            }
            (b's', Some(Expect::Rows(u))) => {
                st.expect[ds].pop_front();
                st.executing[u] = false;
            }
            (b'C', Some(Expect::Rows(u))) => {
                st.expect[ds].pop_front();
                st.executing[u] = false;
                st.complete[u] = true;
                inputs.end(u);
            }
            (b'E', _) => {
                // The server skips everything up to our Sync.
                st.expect[ds].clear();
                if st.error.is_none() {
                    st.error = Some(msg);
                }
            }
            (other, _) => {
                return Err(Broken::Backend {
                    data_source: name,
                    cause: format!("unexpected message 0x{other:02x} in a merged result"),
                })
            }
        }
        Ok(())
    }

    /// Closes every portal and statement of the merge and syncs each connection, reading
    /// (and dropping) whatever is still to come, up to ReadyForQuery.
    async fn finish_units(&mut self, st: &mut Units<'_>) -> Result<(), Broken> {
        for (d, ds) in st.data_sources.iter().enumerate() {
            let conn = self.backends.get(ds).expect("opened");
            for i in (0..st.units.len()).filter(|i| st.ds_of[*i] == d) {
                let _ = frontend::close(b'P', &portal(i), &mut conn.writer.buf);
                let _ = frontend::close(b'S', &portal(i), &mut conn.writer.buf);
            }
            frontend::sync(&mut conn.writer.buf);
            send(conn, ds).await?;
        }
        for ds in &st.data_sources {
            let conn = self.backends.get(ds).expect("opened");
            loop {
                // Rows of batches asked before the merge ended, errors of units it no
                // longer needed: dropped.
                let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
                if tag == b'Z' {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The `datcollate` of data source `ds`, asked once per connection. `None` when the
    /// query failed (the client has the error).
    async fn datcollate(&mut self, ds: &str) -> Result<Option<String>, Broken> {
        let conn = self.backends.get(ds).expect("opened");
        if let Some(c) = &conn.datcollate {
            return Ok(Some(c.clone()));
        }
        if ds == self.backends.default_name() {
            self.pass.unsynced = false;
        }
        let conn = self.backends.get(ds).expect("opened");
        let _ = frontend::query(DATCOLLATE_SQL, &mut conn.writer.buf);
        send(conn, ds).await?;
        let mut value = None;
        let mut error = None;
        loop {
            let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
            match tag {
                b'Z' => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    break;
                }
                b'D' => {
                    // One text field: count (2), length (4), bytes.
                    let text = msg.get(11..).unwrap_or_default();
                    value = Some(String::from_utf8_lossy(text).into_owned());
                }
                b'E' if error.is_none() => error = Some(msg),
                _ => {}
            }
        }
        if let Some(e) = error {
            self.relay_error(&e);
            return Ok(None);
        }
        let value = value.unwrap_or_default();
        conn.datcollate = Some(value.clone());
        Ok(Some(value))
    }
}

/// How the rows of a merge are decoded.
struct Decoding<'a> {
    metas: &'a [ColumnMeta],
    decode: &'a [usize],
}

fn error_message(e: &Error) -> BytesMut {
    let mut out = BytesMut::new();
    let msg = super::error::from_error(super::error::Severity::Error, e);
    pgwire::messages::Message::encode(&msg, &mut out).expect("encodes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_description_round_trips_and_avg_is_numeric() {
        let fields = vec![
            Field {
                name: "user_id".into(),
                table_oid: 1,
                column: 2,
                type_oid: INT4,
                type_size: 4,
                type_modifier: -1,
                format: 0,
            },
            Field {
                name: "avg".into(),
                table_oid: 0,
                column: 0,
                type_oid: INT8,
                type_size: 8,
                type_modifier: -1,
                format: 1,
            },
            Field {
                name: "dbmesh_avg_count_1".into(),
                table_oid: 0,
                column: 0,
                type_oid: INT8,
                type_size: 8,
                type_modifier: -1,
                format: 1,
            },
        ];
        let mut buf = BytesMut::new();
        write_row_description(&fields, &mut buf);
        let parsed = parse_row_description(&buf).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].name, "avg");
        assert_eq!(parsed[1].format, 1);
        let plan = MergePlan {
            visible_columns: 2,
            aggregates: vec![crate::merge::Aggregate {
                column: 1,
                function: AggregateFunction::Avg { count_column: 2 },
            }],
            ..MergePlan::default()
        };
        let merged = merged_fields(&plan, &parsed);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[1].type_oid, NUMERIC);
        assert_eq!(merged[0].type_oid, INT4);
    }
}

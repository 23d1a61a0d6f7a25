//! Running a plan's units on their data sources and answering with one result.
//!
//! The first unit of every data source is sent before any answer is read, so the data
//! sources work at the same time; answers are then read in unit order, and a data source's
//! next unit is sent once its previous one has answered (units on one data source run one
//! after the other on the session's one connection there). Nothing is buffered beyond a
//! message: rows are relayed as they are read.
//!
//! One unit: its answer is relayed untouched (but for the ReadyForQuery, which the session
//! sends itself). Several: the RowDescription (and ParameterStatus) of the first unit, the
//! DataRows of all, one CommandComplete with the counts summed (see `command_tag.rs`);
//! likewise one CopyOutResponse, the CopyData of all and one CopyDone for `COPY ... TO
//! STDOUT`, while `COPY ... FROM STDIN` needs a single unit. On
//! an error the client gets that one ErrorResponse; units not sent yet are not sent, and
//! the answers of those in flight are read and dropped so every connection stays in step.

use postgres_protocol::message::frontend;

use super::command_tag::TagSum;
use super::extended_messages::{write_unit, RawParams};
use super::sharded::{command_tag, copy_in, next_message, send, Broken, Outcome, ShardedSession};
use crate::admin::metrics as m;
use crate::error::Error;
use crate::route::shard::{PlanKind, Unit};

/// How units are sent to the backends.
pub enum UnitProtocol<'a> {
    /// A Query message each.
    Simple,
    /// Parse / Bind / [Describe portal] / Execute / Sync each (`extended_messages::write_unit`).
    Extended {
        /// The client's result column formats, asked of every unit.
        result_formats: &'a [i16],
        /// The client described the portal: the first unit is asked to describe too.
        describe: bool,
        /// The client's parameters, for units that keep placeholders.
        params: Option<RawParams<'a>>,
    },
}

/// What the units have answered so far.
#[derive(Default)]
struct Answer {
    errored: bool,
    tags: TagSum,
    /// The units answer `COPY ... TO STDOUT`: one CopyOutResponse (the first unit's) and
    /// one CopyDone (dbmesh's, at the end) frame the CopyData of all.
    copy_out: bool,
}

impl ShardedSession {
    /// Runs `units` (of a plan of `kind`; `original` is the client's statement, run where a
    /// unit has no SQL of its own) and answers the client.
    pub(super) async fn run_units(
        &mut self,
        kind: PlanKind,
        units: &[Unit],
        original: &str,
        protocol: &UnitProtocol<'_>,
    ) -> Result<Outcome, Broken> {
        if units.is_empty() {
            return Ok(self.fail(&Error::Routing(
                "the statement routes to no data node".into(),
            )));
        }
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
        // For each unit, the next unit on the same data source.
        let next_on_ds: Vec<Option<usize>> = (0..units.len())
            .map(|i| (i + 1..units.len()).find(|j| units[*j].data_source == units[i].data_source))
            .collect();
        let mut sent = vec![false; units.len()];
        // When each unit was sent, for the backend latency metric.
        let mut sent_at = vec![std::time::Instant::now(); units.len()];
        for ds in &data_sources {
            let first = units
                .iter()
                .position(|u| &u.data_source == ds)
                .expect("listed from the units");
            sent_at[first] = std::time::Instant::now();
            self.send_unit(&units[first], first, original, protocol)
                .await?;
            sent[first] = true;
        }
        let single = units.len() == 1;
        let mut answer = Answer::default();
        for i in 0..units.len() {
            if !sent[i] {
                continue;
            }
            self.read_unit(&units[i].data_source, i, single, &mut answer)
                .await?;
            let database = &self.backends.database().config.name;
            m::backend_round_trip(database, &units[i].data_source, sent_at[i].elapsed());
            if let (false, Some(j)) = (answer.errored, next_on_ds[i]) {
                sent_at[j] = std::time::Instant::now();
                self.send_unit(&units[j], j, original, protocol).await?;
                sent[j] = true;
            }
        }
        if answer.errored {
            self.mark_failed();
            return Ok(Outcome::Failed);
        }
        if !single {
            if answer.copy_out {
                self.writer.write_raw(&[b'c', 0, 0, 0, 4]);
            }
            let fallback = if kind == PlanKind::Query {
                "SELECT 0"
            } else {
                ""
            };
            let tag = answer.tags.tag(fallback);
            self.writer
                .write(&pgwire::messages::response::CommandComplete::new(tag));
        }
        Ok(Outcome::Done)
    }

    async fn send_unit(
        &mut self,
        unit: &Unit,
        index: usize,
        original: &str,
        protocol: &UnitProtocol<'_>,
    ) -> Result<(), Broken> {
        let ds = unit.data_source.as_str();
        let sql = unit.sql.as_deref().unwrap_or(original);
        if ds == self.backends.default_name() {
            // A Query or Sync of ours ends whatever extended batch the client had open there.
            self.pass.unsynced = false;
        }
        let conn = self.backends.get(ds).expect("opened before sending");
        let buf = &mut conn.writer.buf;
        let encoded = match protocol {
            UnitProtocol::Simple => frontend::query(sql, buf).map_err(|e| e.to_string()),
            UnitProtocol::Extended {
                result_formats,
                describe,
                params,
            } => write_unit(
                buf,
                sql,
                params.as_ref(),
                result_formats,
                *describe && index == 0,
                true,
            )
            .map(|()| frontend::sync(buf))
            .map_err(|e| e.to_string()),
        };
        if let Err(cause) = encoded {
            // Only a NUL inside the SQL can fail to encode; the server would refuse it too.
            return Err(Broken::Backend {
                data_source: ds.to_string(),
                cause,
            });
        }
        send(conn, ds).await
    }

    /// Reads one unit's answer up to its ReadyForQuery, relaying what the client gets.
    async fn read_unit(
        &mut self,
        ds: &str,
        index: usize,
        single: bool,
        answer: &mut Answer,
    ) -> Result<(), Broken> {
        let conn = self.backends.get(ds).expect("sent before reading");
        loop {
            let (tag, msg) = next_message(conn, ds, &mut self.writer).await?;
            let forward = match tag {
                b'Z' => {
                    conn.tx_status = msg[5];
                    conn.healthy = true;
                    return Ok(());
                }
                b'E' => {
                    let first = !answer.errored;
                    answer.errored = true;
                    if first {
                        super::error::count_backend_error(&msg);
                    }
                    first
                }
                _ if answer.errored => false,
                // Completions of dbmesh's own Close / Parse / Bind.
                b'1' | b'2' | b'3' | b't' => false,
                b'T' | b'n' => index == 0,
                b'S' => single || index == 0,
                b'C' if !single => {
                    answer.tags.add(command_tag(&msg));
                    false
                }
                b'I' => single,
                b'H' if !single => {
                    answer.copy_out = true;
                    index == 0
                }
                b'c' => single,
                b'G' if single => {
                    self.writer.write_raw(&msg);
                    copy_in(&mut self.reader, &mut self.writer, conn, ds).await?;
                    false
                }
                b'G' => {
                    let _ = frontend::copy_fail(
                        "COPY FROM STDIN through several data sources is not supported by dbmesh",
                        &mut conn.writer.buf,
                    );
                    send(conn, ds).await?;
                    false
                }
                _ => true,
            };
            if forward {
                self.writer.write_raw(&msg);
            }
        }
    }
}

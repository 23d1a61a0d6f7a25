//! Micro-benchmarks of dbmesh's per-statement work, to see what a change costs on the hot
//! path (`cargo bench`). Whole-system throughput against a direct connection is measured by
//! `bench/run.sh`; see docs/benchmarks.md.
//!
//! - `plan/*`: what every statement pays today before it is forwarded (classification and
//!   routing), and a full sqlparser parse of a point select per dialect, which sharded
//!   statements will pay (target: under 10 µs).
//! - `shard/*`: the sharding planner on a 2 × 2 layout: a point select planned from text
//!   (parse, analyse, route, rewrite, print), and a prepared one re-planned from bound
//!   parameters (route and rename only).
//! - `relay/*`: the CPU part of single-route passthrough, scanning a backend response frame
//!   by frame to find where it ends, for 1-row and 1,000-row results on both protocols.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dbmesh::config::BackendKind;
use dbmesh::execute::Cluster;
use dbmesh::session::Session;
use dbmesh::wire::mysql::ok::{end_of_rows_payload, put_lenenc_int, put_lenenc_str};
use dbmesh::wire::mysql::packet::frame_at;
use dbmesh::wire::mysql::response::{ResponseKind, ResponseTracker, Step};
use dbmesh::wire::mysql::resultset::ColumnDef;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

const POINT_SELECT: &str = "SELECT c FROM sbtest1 WHERE id = 4711";

fn plan(c: &mut Criterion) {
    let config = dbmesh::config::parse(
        r#"
[server]
mysql_listen = "127.0.0.1:0"
[[users]]
name = "app"
password = "x"
databases = ["shop"]
[databases.shop]
backend = "mysql"
[databases.shop.data_sources.ds_0]
url = "mysql://root@127.0.0.1:3306/shop_ds_0"
"#,
        Path::new("bench.toml"),
    )
    .unwrap();
    let cluster = Cluster::new(&config);
    let session = Session::new(
        Arc::new(config.users[0].clone()),
        Some("shop".into()),
        "127.0.0.1".into(),
    );
    let mut g = c.benchmark_group("plan");
    g.bench_function("classify_and_route_point_select", |b| {
        b.iter(|| {
            let kind = dbmesh::sql::classify(black_box(POINT_SELECT));
            let route = dbmesh::route::plan(&session, &cluster, BackendKind::Mysql).unwrap();
            black_box((kind, route.data_source.name.len()))
        })
    });
    g.bench_function("sqlparser_point_select_mysql", |b| {
        b.iter(|| Parser::parse_sql(&MySqlDialect {}, black_box(POINT_SELECT)).unwrap())
    });
    g.bench_function("sqlparser_point_select_postgres", |b| {
        b.iter(|| {
            Parser::parse_sql(
                &PostgreSqlDialect {},
                black_box("SELECT c FROM sbtest1 WHERE id = $1"),
            )
            .unwrap()
        })
    });
    g.finish();
}

const ORDER_RULES: &str = r#"
[tables.t_order]
nodes             = "ds_${0..1}.t_order_${0..1}"
database_strategy = { column = "user_id",  algorithm = "db_inline" }
table_strategy    = { column = "order_id", algorithm = "order_mod" }
[algorithms.db_inline]
type       = "INLINE"
expression = "ds_${user_id % 2}"
[algorithms.order_mod]
type           = "MOD"
sharding_count = 2
"#;

fn shard(c: &mut Criterion) {
    use dbmesh::route::shard::{ParamMode, ParamValue, ShardRouter};
    use dbmesh::sql::analyze::Dialect;
    let rules = dbmesh::config::rules::parse_rules(
        ORDER_RULES,
        Path::new("orders.toml"),
        "shop",
        &["ds_0", "ds_1"],
    )
    .unwrap();
    let router = ShardRouter::build(
        "shop",
        Dialect::MySql,
        "ds_0",
        vec!["ds_0".into(), "ds_1".into()],
        Arc::new(rules),
    );
    let mut g = c.benchmark_group("shard");
    g.bench_function("plan_point_select_text", |b| {
        b.iter(|| {
            router
                .route_text(black_box(
                    "SELECT amount FROM t_order WHERE user_id = 7 AND order_id = 12",
                ))
                .unwrap()
        })
    });
    let prepared = router
        .prepare("SELECT amount FROM t_order WHERE user_id = ? AND order_id = ?")
        .unwrap();
    let params = [ParamValue::Int(7), ParamValue::Int(12)];
    g.bench_function("plan_point_select_prepared", |b| {
        b.iter(|| {
            router
                .plan(&prepared, Some(black_box(&params)), ParamMode::Keep)
                .unwrap()
        })
    });
    g.finish();
}

/// A MySQL text result set (DEPRECATE_EOF) of `rows` rows with two columns, framed.
fn mysql_result(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    let mut push = |payload: &[u8], out: &mut Vec<u8>| {
        let n = payload.len();
        out.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
        out.extend_from_slice(payload);
        seq = seq.wrapping_add(1);
    };
    let mut count = Vec::new();
    put_lenenc_int(&mut count, 2);
    push(&count, &mut out);
    push(&ColumnDef::bigint("id").payload(), &mut out);
    push(&ColumnDef::text("c", 120).payload(), &mut out);
    let mut row = Vec::new();
    for i in 0..rows {
        row.clear();
        put_lenenc_str(&mut row, i.to_string().as_bytes());
        put_lenenc_str(&mut row, &[b'x'; 100]);
        push(&row, &mut out);
    }
    push(&end_of_rows_payload(true, 2), &mut out);
    out
}

/// What the MySQL relay does per response: find each frame, renumber it, feed the tracker.
fn scan_mysql(buf: &mut [u8]) -> usize {
    let mut tracker = ResponseTracker::new(ResponseKind::Query, true);
    let mut at = 0;
    let mut seq = 1u8;
    while let Some(f) = frame_at(buf, at) {
        buf[at + 3] = seq;
        seq = seq.wrapping_add(1);
        let step = tracker.on_packet(&buf[at + 4..at + f.total_len()]);
        at += f.total_len();
        if step == Step::Done {
            break;
        }
    }
    at
}

/// A PostgreSQL RowDescription + `rows` DataRows + CommandComplete + ReadyForQuery.
fn postgres_result(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let msg = |tag: u8, body: &[u8], out: &mut Vec<u8>| {
        out.push(tag);
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
    };
    msg(
        b'T',
        &[
            0, 1, b'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 255, 255, 255, 255, 0, 0,
        ],
        &mut out,
    );
    let mut body = vec![0, 1, 0, 0, 0, 100];
    body.extend_from_slice(&[b'x'; 100]);
    for _ in 0..rows {
        msg(b'D', &body, &mut out);
    }
    msg(b'C', b"SELECT 1\0", &mut out);
    msg(b'Z', b"I", &mut out);
    out
}

/// What the PostgreSQL pump does per response: find each message, look at its tag.
fn scan_postgres(buf: &[u8]) -> usize {
    let mut at = 0;
    let mut ready = 0;
    while let Ok(Some(f)) = dbmesh::wire::postgres::message::frame_at(buf, at, 1 << 30) {
        if f.tag == b'Z' {
            ready += 1;
        }
        at += f.total_len;
    }
    at + ready
}

fn relay(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay");
    for rows in [1usize, 1000] {
        let template = mysql_result(rows);
        let mut buf = template.clone();
        g.throughput(Throughput::Elements(rows as u64));
        g.bench_function(format!("mysql_text_{rows}_rows"), |b| {
            b.iter(|| black_box(scan_mysql(black_box(&mut buf))))
        });
        let pg = postgres_result(rows);
        g.bench_function(format!("postgres_{rows}_rows"), |b| {
            b.iter(|| black_box(scan_postgres(black_box(&pg))))
        });
    }
    g.finish();
}

criterion_group!(benches, plan, shard, relay);
criterion_main!(benches);

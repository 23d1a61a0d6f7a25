//! Whole merge plans over in-memory shards: the tree [`MergePlan::build`] composes gives
//! what one database holding every row would, and reads no more than it must.

use std::collections::BTreeMap;

use bigdecimal::{BigDecimal, RoundingMode};

use crate::merge::test_support::{asc, dec, desc, int, run, run_first, shards, text, Run};
use crate::merge::{
    Aggregate, AggregateFunction, Collation, ColumnInfo, CompareOp, Having, MergePlan, NullOrder,
    Row, SortKey, Value,
};

const CI: ColumnInfo = ColumnInfo {
    collation: Collation::CaseInsensitive,
    avg_scale: crate::merge::AvgScale::Fixed(4),
    sum_is_decimal: false,
};
const PLAIN: ColumnInfo = ColumnInfo {
    collation: Collation::Binary,
    avg_scale: crate::merge::AvgScale::Fixed(4),
    sum_is_decimal: false,
};

fn aggregate(column: usize, function: AggregateFunction) -> Aggregate {
    Aggregate { column, function }
}

fn execute(plan: &MergePlan, columns: &[ColumnInfo], input: Vec<Vec<Row>>) -> Run {
    let mut op = plan.build(input.len(), columns).expect("a valid plan");
    run(&mut *op, input)
}

#[test]
fn order_by_with_offset_and_limit_reads_only_what_it_needs_and_hides_derived_columns() {
    // SELECT name FROM t ORDER BY id DESC LIMIT 2 OFFSET 1; the shards ran
    // SELECT name, id ... ORDER BY id DESC LIMIT 3.
    let plan = MergePlan {
        visible_columns: 1,
        order_by: vec![desc(1)],
        offset: 1,
        limit: Some(2),
        ..MergePlan::default()
    };
    let shard = |ids: [i64; 3]| {
        ids.map(|id| vec![text(&format!("n{id}")), int(id)])
            .to_vec()
    };
    let input = shards(vec![shard([9, 6, 3]), shard([8, 5, 2]), shard([7, 4, 1])]);
    let out = execute(&plan, &[PLAIN, PLAIN], input);
    assert_eq!(out.values(), vec![vec![text("n8")], vec![text("n7")]]);
    assert_eq!(out.rows[0].raw.len(), 1);
    assert!(
        out.reads.iter().sum::<usize>() <= 3 + 3,
        "read {:?}",
        out.reads
    );
}

#[test]
fn streamed_group_by_merges_in_the_shards_null_order() {
    // PostgreSQL: GROUP BY g ORDER BY g puts the NULL group last.
    let key = SortKey {
        column: 0,
        descending: false,
        nulls: NullOrder::Last,
    };
    let plan = MergePlan {
        visible_columns: 2,
        group_by: vec![0],
        group_by_streamed: true,
        group_by_order: vec![key],
        aggregates: vec![aggregate(1, AggregateFunction::Count)],
        order_by: vec![key],
        ..MergePlan::default()
    };
    let input = || {
        shards(vec![
            vec![
                vec![int(1), int(2)],
                vec![int(3), int(1)],
                vec![Value::Null, int(4)],
            ],
            vec![vec![int(2), int(5)], vec![Value::Null, int(1)]],
        ])
    };
    let out = execute(&plan, &[PLAIN, PLAIN], input());
    assert_eq!(
        out.values(),
        vec![
            vec![int(1), int(2)],
            vec![int(2), int(5)],
            vec![int(3), int(1)],
            vec![Value::Null, int(5)],
        ]
    );
    // Streamed: the first group goes out before the shards are read to the end.
    let mut op = plan.build(2, &[PLAIN, PLAIN]).unwrap();
    let first = run_first(&mut *op, input(), 1);
    assert!(
        first.reads.iter().sum::<usize>() < 5,
        "read {:?}",
        first.reads
    );
}

/// `SELECT g, count(*) FROM t GROUP BY g ORDER BY count(*) DESC, g LIMIT 2`.
fn top_groups(streamed: bool) -> MergePlan {
    MergePlan {
        visible_columns: 2,
        group_by: vec![0],
        group_by_streamed: streamed,
        group_by_order: if streamed { vec![asc(0)] } else { vec![] },
        aggregates: vec![aggregate(1, AggregateFunction::Count)],
        order_by: vec![desc(1), asc(0)],
        limit: Some(2),
        ..MergePlan::default()
    }
}

#[test]
fn ordering_by_an_aggregate_sorts_the_merged_groups_streamed_or_hashed() {
    let sorted = || {
        shards(vec![
            vec![
                vec![text("a"), int(1)],
                vec![text("b"), int(3)],
                vec![text("c"), int(2)],
            ],
            vec![
                vec![text("A"), int(3)],
                vec![text("c"), int(1)],
                vec![text("d"), int(2)],
            ],
        ])
    };
    let expected = vec![vec![text("a"), int(4)], vec![text("b"), int(3)]];
    assert_eq!(
        execute(&top_groups(true), &[CI, PLAIN], sorted()).values(),
        expected
    );
    let mut unsorted = sorted();
    unsorted.iter_mut().for_each(|shard| shard.reverse());
    let hashed = execute(&top_groups(false), &[CI, PLAIN], unsorted);
    assert_eq!(hashed.values(), expected);
}

#[test]
fn avg_merges_sums_and_counts_and_hides_the_count() {
    // SELECT g, AVG(x) ... GROUP BY g; the shards ran SELECT g, SUM(x), COUNT(x).
    let plan = MergePlan {
        visible_columns: 2,
        group_by: vec![0],
        group_by_streamed: true,
        aggregates: vec![aggregate(1, AggregateFunction::Avg { count_column: 2 })],
        order_by: vec![asc(0)],
        ..MergePlan::default()
    };
    let input = shards(vec![
        vec![
            vec![int(1), dec("10"), int(3)],
            vec![int(2), Value::Null, int(0)],
        ],
        vec![
            vec![int(1), dec("1"), int(1)],
            vec![int(2), Value::Null, int(0)],
        ],
    ]);
    let mysql = [
        PLAIN,
        ColumnInfo {
            avg_scale: crate::merge::AvgScale::mysql(0),
            ..PLAIN
        },
        PLAIN,
    ];
    let out = execute(&plan, &mysql, input);
    assert_eq!(
        out.values(),
        vec![vec![int(1), dec("2.7500")], vec![int(2), Value::Null]]
    );
    assert_eq!(
        out.rows[0].raw[1], None,
        "the AVG is encoded from its value"
    );
}

#[test]
fn count_distinct_counts_values_seen_on_several_shards_once() {
    // SELECT count(DISTINCT x) FROM t; the shards ran SELECT x ... GROUP BY x.
    let plan = MergePlan {
        visible_columns: 1,
        aggregates: vec![aggregate(0, AggregateFunction::CountDistinct)],
        ..MergePlan::default()
    };
    let input = shards(vec![
        vec![vec![text("a")], vec![text("b")], vec![Value::Null]],
        vec![vec![text("B")], vec![text("c")]],
    ]);
    assert_eq!(execute(&plan, &[CI], input).values(), vec![vec![int(3)]]);
    let empty = execute(&plan, &[CI], vec![vec![], vec![]]);
    assert_eq!(empty.values(), vec![vec![int(0)]]);
}

#[test]
fn having_sees_merged_groups() {
    // HAVING count(*) > 2: no shard alone has more than 2 rows of a group.
    let plan = MergePlan {
        visible_columns: 2,
        group_by: vec![0],
        aggregates: vec![aggregate(1, AggregateFunction::Count)],
        having: Some(Having::Compare {
            column: 1,
            op: CompareOp::Gt,
            value: int(2),
        }),
        ..MergePlan::default()
    };
    let input = shards(vec![
        vec![vec![text("x"), int(2)], vec![text("y"), int(2)]],
        vec![vec![text("x"), int(1)]],
    ]);
    assert_eq!(
        execute(&plan, &[CI, PLAIN], input).values(),
        vec![vec![text("x"), int(3)]]
    );
}

#[test]
fn distinct_is_streamed_over_a_matching_order_and_hashed_otherwise() {
    let input = || {
        shards(vec![
            vec![vec![text("a"), int(1)], vec![text("b"), int(9)]],
            vec![vec![text("A"), int(2)], vec![text("b"), int(8)]],
        ])
    };
    // SELECT DISTINCT name FROM t ORDER BY name (id is a derived column, not compared).
    let ordered = MergePlan {
        visible_columns: 1,
        distinct: true,
        order_by: vec![asc(0)],
        ..MergePlan::default()
    };
    let expected = vec![vec![text("a")], vec![text("b")]];
    assert_eq!(execute(&ordered, &[CI, PLAIN], input()).values(), expected);
    let unordered = MergePlan {
        order_by: vec![],
        ..ordered
    };
    assert_eq!(
        execute(&unordered, &[CI, PLAIN], input()).values(),
        expected
    );
}

#[test]
fn a_streamed_plan_without_a_usable_shard_order_falls_back_to_hashing() {
    let plan = MergePlan {
        group_by_order: vec![],
        order_by: vec![desc(1)],
        limit: None,
        ..top_groups(true)
    };
    let input = shards(vec![
        vec![vec![text("b"), int(1)], vec![text("a"), int(1)]],
        vec![vec![text("a"), int(1)]],
    ]);
    let out = execute(&plan, &[CI, PLAIN], input);
    assert_eq!(
        out.values(),
        vec![vec![text("a"), int(2)], vec![text("b"), int(1)]]
    );
}

#[test]
fn plans_naming_missing_columns_are_refused() {
    let plan = MergePlan {
        visible_columns: 1,
        order_by: vec![asc(3)],
        ..MergePlan::default()
    };
    let error = plan.build(2, &[PLAIN, PLAIN]).unwrap_err();
    assert!(error.0.contains("column 4"), "{error}");
}

#[test]
fn decoded_columns_are_the_ones_the_operators_read() {
    let plan = MergePlan {
        visible_columns: 3,
        group_by: vec![0],
        aggregates: vec![aggregate(2, AggregateFunction::Avg { count_column: 4 })],
        order_by: vec![asc(3)],
        ..MergePlan::default()
    };
    assert_eq!(plan.decoded_columns(5), vec![true, false, true, true, true]);
    let distinct = MergePlan {
        distinct: true,
        ..plan
    };
    assert_eq!(distinct.decoded_columns(5), vec![true; 5]);
}

/// A deterministic dataset with NULLs, duplicates, mixed case and negative numbers: rows
/// of (g, x), spread over `shards` shards.
fn dataset(shards: usize) -> Vec<Vec<(Option<&'static str>, Option<i64>)>> {
    const GROUPS: [Option<&str>; 7] = [
        Some("a"),
        Some("A"),
        Some("b"),
        Some("B "),
        Some("c"),
        None,
        Some("d"),
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = vec![Vec::new(); shards];
    for _ in 0..600 {
        let g = GROUPS[(next() % 7) as usize];
        let x = (next() % 10 != 0).then(|| (next() % 101) as i64 - 50);
        out[(next() % shards as u64) as usize].push((g, x));
    }
    out
}

/// `SELECT g, count(*), sum(x), min(x), max(x), avg(x) FROM t GROUP BY g ORDER BY g` as
/// MySQL computes it over `rows`, with AVG's SUM and COUNT after the visible columns.
fn group(rows: &[(Option<&str>, Option<i64>)]) -> Vec<Vec<Value>> {
    let mut groups: BTreeMap<Option<String>, (Value, i64, Vec<i64>)> = BTreeMap::new();
    for (g, x) in rows {
        let key = g.map(|g| g.trim_end().to_lowercase());
        let entry = groups
            .entry(key)
            .or_insert_with(|| (g.map_or(Value::Null, text), 0, Vec::new()));
        entry.1 += 1;
        entry.2.extend(x);
    }
    let number = |v: Option<i64>| v.map_or(Value::Null, int);
    let decimal = |v: Option<i64>| v.map_or(Value::Null, |v| Value::Decimal(v.into()));
    groups
        .into_values()
        .map(|(g, count, xs)| {
            let sum = (!xs.is_empty()).then(|| xs.iter().sum::<i64>());
            let avg = sum.map_or(Value::Null, |s| {
                let exact = BigDecimal::from(s) / BigDecimal::from(xs.len() as i64);
                Value::Decimal(exact.with_scale_round(4, RoundingMode::HalfUp))
            });
            let (min, max) = (xs.iter().min().copied(), xs.iter().max().copied());
            let n = xs.len() as i64;
            vec![
                g,
                int(count),
                decimal(sum),
                number(min),
                number(max),
                avg,
                decimal(sum),
                int(n),
            ]
        })
        .collect()
}

#[test]
fn grouped_aggregates_over_shards_equal_one_databases_streamed_or_hashed() {
    let data = dataset(4);
    let all: Vec<_> = data.iter().flatten().copied().collect();
    let expected: Vec<Vec<Value>> = group(&all).into_iter().map(|r| r[..6].to_vec()).collect();
    for streamed in [true, false] {
        let plan = MergePlan {
            visible_columns: 6,
            group_by: vec![0],
            group_by_streamed: streamed,
            aggregates: vec![
                aggregate(1, AggregateFunction::Count),
                aggregate(2, AggregateFunction::Sum),
                aggregate(3, AggregateFunction::Min),
                aggregate(4, AggregateFunction::Max),
                aggregate(5, AggregateFunction::Avg { count_column: 7 }),
            ],
            order_by: vec![asc(0)],
            ..MergePlan::default()
        };
        // Each shard's GROUP BY result, in its ORDER BY g; AVG's SUM is in column 5 too.
        let input: Vec<Vec<Row>> = data
            .iter()
            .map(|shard| {
                let mut rows = group(shard);
                rows.iter_mut().for_each(|r| r[5] = r[6].clone());
                if !streamed {
                    rows.reverse();
                }
                rows.into_iter()
                    .map(crate::merge::test_support::row)
                    .collect()
            })
            .collect();
        let columns = [CI, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN];
        let out = execute(&plan, &columns, input);
        let got = out.values();
        assert_eq!(got.len(), expected.len());
        for (got, want) in got.iter().zip(&expected) {
            assert!(
                got[0].same_key(&want[0], Collation::CaseInsensitive),
                "{got:?} {want:?}"
            );
            assert_eq!(got[1..], want[1..], "streamed: {streamed}");
        }
    }
}

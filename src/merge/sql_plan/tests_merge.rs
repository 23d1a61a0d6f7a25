//! Plans from SQL, run through the merge operators over rows as the shard statements would
//! return them: the answer must be the single database's.

use super::tests::{my, pg};
use crate::merge::test_support::{int, run, shards};
use crate::merge::{ColumnInfo, Value};

/// Runs `sql`'s merge over `rows` (per shard, in the shard statement's columns).
fn merged(m: &super::SelectMerge, rows: Vec<Vec<Vec<Value>>>) -> Vec<Vec<Value>> {
    let width = rows.iter().flatten().next().map_or(0, |r| r.len());
    let plan = m.resolve(width);
    let columns = vec![ColumnInfo::default(); width];
    let mut tree = plan
        .build(rows.len(), &columns)
        .unwrap_or_else(|e| panic!("{plan:?}: {e}"));
    run(tree.as_mut(), shards(rows)).values()
}

#[test]
fn groups_split_over_shards_are_counted_filtered_sorted_and_limited() {
    let m = my("SELECT user_id, count(*) AS n FROM t_order GROUP BY user_id HAVING count(*) > 1 ORDER BY n DESC, user_id LIMIT 2");
    // Each shard's groups, ordered by user_id as the shard statement asks.
    let rows = vec![
        vec![
            vec![int(1), int(1)],
            vec![int(2), int(3)],
            vec![int(4), int(1)],
        ],
        vec![
            vec![int(1), int(1)],
            vec![int(3), int(2)],
            vec![int(4), int(1)],
            vec![int(5), int(1)],
        ],
    ];
    assert_eq!(
        merged(&m, rows),
        vec![vec![int(2), int(3)], vec![int(1), int(2)]]
    );
}

#[test]
fn select_star_sorted_by_a_derived_column_returns_only_the_star_columns() {
    let m = my("SELECT * FROM t_order ORDER BY user_id DESC LIMIT 3");
    // order_id, user_id from `*`, then the derived user_id; NULLs last (MySQL DESC).
    let rows = vec![
        vec![
            vec![int(1), int(9), int(9)],
            vec![int(2), Value::Null, Value::Null],
        ],
        vec![vec![int(3), int(7), int(7)], vec![int(4), int(5), int(5)]],
    ];
    assert_eq!(
        merged(&m, rows),
        vec![
            vec![int(1), int(9)],
            vec![int(3), int(7)],
            vec![int(4), int(5)]
        ]
    );
}

#[test]
fn count_distinct_counts_values_seen_on_several_shards_once() {
    let m = pg("SELECT count(DISTINCT user_id) FROM t_order");
    let rows = vec![
        vec![vec![int(1)], vec![int(2)], vec![Value::Null]],
        vec![vec![int(2)], vec![int(3)]],
    ];
    assert_eq!(merged(&m, rows), vec![vec![int(3)]]);
}

#[test]
fn union_removes_rows_repeated_on_other_shards_and_applies_the_offset() {
    let m = pg("SELECT user_id FROM t_order UNION SELECT user_id FROM t_order_item ORDER BY 1 LIMIT 2 OFFSET 1");
    let rows = vec![
        vec![vec![int(1)], vec![int(3)], vec![Value::Null]],
        vec![vec![int(1)], vec![int(2)]],
    ];
    assert_eq!(merged(&m, rows), vec![vec![int(2)], vec![int(3)]]);
}

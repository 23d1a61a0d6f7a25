//! Sharding conditions in disjunctive normal form, as ShardingSphere keeps them.
//!
//! A WHERE clause becomes a list of [`ConditionGroup`]s, one per OR branch; a group maps
//! (logical table, sharding column) to what the branch says about that column. A row can
//! only match if it matches some group, so the router routes each group and unions the
//! nodes. Within a group, a column with no entry is unconstrained: that branch needs every
//! node on that axis.
//!
//! What becomes a condition: `col = v`, `col IN (v, ...)`, `col < v` (and `<=`, `>`, `>=`,
//! with the operands either way round) and `col BETWEEN v AND w`, where `v` is a literal or
//! a parameter. Everything else is left out, which widens the route but never narrows it
//! wrongly: conditions under NOT, `<>`, on expressions (`user_id + 1 = 3`), against another
//! column (those only propagate values, see the join rules in `scope.rs`), `IS NULL`,
//! `LIKE`, functions. Several conditions on one column in a group are intersected when the
//! values are comparable, otherwise the narrower one is kept (either alone is correct).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::value::{compare, same, ValueRef};

/// Most OR branches kept; beyond that (a long AND of ORs multiplies out) the statement is
/// treated as having no sharding conditions, which routes it everywhere.
const MAX_GROUPS: usize = 256;

/// What one OR branch says about one sharding column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnCondition {
    /// The column equals one of these (`=`, `IN`). Empty when the branch contradicts itself
    /// (`user_id = 1 AND user_id = 2`): no row matches, and the router may send the
    /// statement to any one node for the result's shape.
    Values(Vec<ValueRef>),
    /// The column lies in this range (`<`, `<=`, `>`, `>=`, `BETWEEN`).
    Range {
        lower: Bound<ValueRef>,
        upper: Bound<ValueRef>,
    },
}

/// One OR branch of the conditions: (logical table, sharding column) → condition. Names are
/// lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionGroup {
    columns: BTreeMap<(String, String), ColumnCondition>,
}

impl ConditionGroup {
    /// The condition on `table`.`column` (both any case); `None`: unconstrained.
    pub fn get(&self, table: &str, column: &str) -> Option<&ColumnCondition> {
        self.columns
            .get(&(table.to_lowercase(), column.to_lowercase()))
    }

    /// (table, column, condition) triples, ordered by table then column.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &ColumnCondition)> {
        self.columns
            .iter()
            .map(|((table, column), condition)| (table.as_str(), column.as_str(), condition))
    }

    /// Whether the branch constrains nothing.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// A branch that constrains `table`.`column` (any case) to `condition`, replacing what
    /// it said before; for callers that route a single value (INSERT rows, IN-list items).
    pub fn with(mut self, table: &str, column: &str, condition: ColumnCondition) -> Self {
        self.columns
            .insert((table.to_lowercase(), column.to_lowercase()), condition);
        self
    }

    /// Number of constrained columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub(super) fn single(key: ColumnKey, condition: ColumnCondition) -> Self {
        let mut group = ConditionGroup::default();
        group.columns.insert(key, condition);
        group
    }

    pub(super) fn condition(&self, key: &ColumnKey) -> Option<&ColumnCondition> {
        self.columns.get(key)
    }

    pub(super) fn set(&mut self, key: ColumnKey, condition: ColumnCondition) {
        self.columns.insert(key, condition);
    }

    /// This branch AND `other`.
    fn and(&self, other: &ConditionGroup) -> ConditionGroup {
        let mut merged = self.clone();
        for (key, condition) in &other.columns {
            let next = match merged.columns.remove(key) {
                Some(mine) => intersect(mine, condition.clone()),
                None => condition.clone(),
            };
            merged.columns.insert(key.clone(), next);
        }
        merged
    }
}

/// (logical table, sharding column), lower case.
pub(super) type ColumnKey = (String, String);

/// The conditions of an expression: one group per OR branch; never empty.
pub(super) type Dnf = Vec<ConditionGroup>;

/// A condition that constrains nothing: one empty branch.
pub(super) fn unconstrained() -> Dnf {
    vec![ConditionGroup::default()]
}

/// `a AND b`: every branch of `a` with every branch of `b`.
pub(super) fn and(a: Dnf, b: Dnf) -> Dnf {
    if a.len() * b.len() > MAX_GROUPS {
        return unconstrained();
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for left in &a {
        for right in &b {
            out.push(left.and(right));
        }
    }
    out
}

/// `a OR b`. An unconstrained branch covers every other, so it absorbs them.
pub(super) fn or(mut a: Dnf, b: Dnf) -> Dnf {
    if a.iter().chain(&b).any(ConditionGroup::is_empty) || a.len() + b.len() > MAX_GROUPS {
        return unconstrained();
    }
    a.extend(b);
    a
}

/// Both conditions at once. Exact for comparable literals; otherwise one of the two is
/// kept, which is still correct (the truth lies within each).
fn intersect(a: ColumnCondition, b: ColumnCondition) -> ColumnCondition {
    use ColumnCondition::{Range, Values};
    match (a, b) {
        (Values(a), Values(b)) => {
            let known =
                |values: &[ValueRef]| values.iter().all(|v| matches!(v, ValueRef::Literal(_)));
            if known(&a) && known(&b) {
                Values(
                    a.into_iter()
                        .filter(|x| b.iter().any(|y| same(x, y) == Some(true)))
                        .collect(),
                )
            } else if known(&a) || (!known(&b) && a.len() <= b.len()) {
                Values(a)
            } else {
                Values(b)
            }
        }
        (Values(values), Range { lower, upper }) | (Range { lower, upper }, Values(values)) => {
            Values(
                values
                    .into_iter()
                    .filter(|v| !outside(v, &lower, &upper))
                    .collect(),
            )
        }
        (
            Range {
                lower: lower_a,
                upper: upper_a,
            },
            Range {
                lower: lower_b,
                upper: upper_b,
            },
        ) => Range {
            lower: tighter(lower_a, lower_b, true),
            upper: tighter(upper_a, upper_b, false),
        },
    }
}

/// Whether `value` certainly lies outside the range.
fn outside(value: &ValueRef, lower: &Bound<ValueRef>, upper: &Bound<ValueRef>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let ValueRef::Literal(value) = value else {
        return false;
    };
    let order = |bound: &ValueRef| match bound {
        ValueRef::Literal(bound) => compare(value, bound),
        _ => None,
    };
    let below = match lower {
        Bound::Included(b) => order(b) == Some(Less),
        Bound::Excluded(b) => matches!(order(b), Some(Less | Equal)),
        Bound::Unbounded => false,
    };
    let above = match upper {
        Bound::Included(b) => order(b) == Some(Greater),
        Bound::Excluded(b) => matches!(order(b), Some(Greater | Equal)),
        Bound::Unbounded => false,
    };
    below || above
}

/// The tighter of two lower (`is_lower`) or upper bounds; the first when they cannot be
/// compared.
fn tighter(a: Bound<ValueRef>, b: Bound<ValueRef>, is_lower: bool) -> Bound<ValueRef> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (value_a, value_b) = match (&a, &b) {
        (Bound::Unbounded, _) => return b,
        (_, Bound::Unbounded) => return a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            (x, y)
        }
    };
    let (ValueRef::Literal(x), ValueRef::Literal(y)) = (value_a, value_b) else {
        return a;
    };
    match (compare(x, y), is_lower) {
        (Some(Greater), true) | (Some(Less), false) => a,
        (Some(Less), true) | (Some(Greater), false) => b,
        (Some(Equal), _) if matches!(b, Bound::Excluded(_)) => b,
        _ => a,
    }
}

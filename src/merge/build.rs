//! From a [`MergePlan`] and the shards' column metadata to the tree of operators that
//! merges one multi-shard result:
//!
//! ```text
//! source        order-by merge when the shards' rows come ordered (ORDER BY, or the
//!               group keys of a streamed GROUP BY), else the iterator
//! → group by    stream or hash, when there are group keys or aggregates
//! → having      on merged groups
//! → distinct    streamed when the stream is sorted by every visible column, else hashed
//! → sort        only when the ORDER BY is not already the stream's order (after a hash
//!               GROUP BY, or an ORDER BY other than the group keys); holds the groups
//! → limit       skips the offset, stops reading at the limit
//! → project     drops derived columns
//! ```

use super::aggregate::Accumulator;
use super::distinct::Distinct;
use super::group_by_hash::HashGroupBy;
use super::group_by_stream::StreamGroupBy;
use super::having::HavingFilter;
use super::iterator::Concat;
use super::limit::Limit;
use super::order_by::{OrderByMerge, RowOrder};
use super::project::Project;
use super::sort::Sort;
use super::{AggregateFunction, ColumnInfo, Having, MergeError, MergePlan, Operator, SortKey};

/// What order the rows passing a point of the tree are in.
enum Order {
    /// At most one row (aggregates without GROUP BY): any order holds.
    One,
    /// Sorted by these keys (none: no order), and unique on `unique` columns when not
    /// empty (merged groups are unique on their keys).
    By {
        keys: Vec<SortKey>,
        unique: Vec<usize>,
    },
}

impl Order {
    /// Whether the rows are already in the order of `wanted`.
    fn satisfies(&self, wanted: &[SortKey]) -> bool {
        let Order::By { keys, unique } = self else {
            return true;
        };
        let common = keys.iter().zip(wanted).take_while(|(a, b)| a == b).count();
        // Past a prefix that is unique, further keys never break ties.
        common == wanted.len()
            || (!unique.is_empty() && unique.iter().all(|c| covers(&wanted[..common], *c)))
    }

    /// Whether rows equal on columns `0..visible` are consecutive.
    fn groups_visible(&self, visible: usize) -> bool {
        let Order::By { keys, .. } = self else {
            return true;
        };
        let prefix: Vec<SortKey> = keys
            .iter()
            .take_while(|k| k.column < visible)
            .copied()
            .collect();
        (0..visible).all(|c| covers(&prefix, c))
    }
}

fn covers(keys: &[SortKey], column: usize) -> bool {
    keys.iter().any(|k| k.column == column)
}

impl MergePlan {
    /// The operator tree merging `inputs` shard results whose columns (in the shard
    /// query's order, derived columns included) are `columns`. Fails when the plan names a
    /// column the shards did not return.
    pub fn build(
        &self,
        inputs: usize,
        columns: &[ColumnInfo],
    ) -> Result<Box<dyn Operator>, MergeError> {
        self.check(columns.len())?;
        let with_collation = |c: usize| (c, columns[c].collation);
        let grouped = !self.group_by.is_empty() || !self.aggregates.is_empty();
        let group_order = if grouped {
            self.streamed_group_order()
        } else {
            None
        };
        let source_order = match &group_order {
            Some(order) => order.clone(),
            None if grouped => Vec::new(),
            None => self.order_by.clone(),
        };
        let mut op: Box<dyn Operator> = if source_order.is_empty() {
            Box::new(Concat::new(inputs))
        } else {
            Box::new(OrderByMerge::new(
                inputs,
                RowOrder::new(&source_order, columns),
            ))
        };
        let mut order = Order::By {
            keys: source_order,
            unique: Vec::new(),
        };

        if grouped {
            let keys = self.group_by.iter().map(|&c| with_collation(c)).collect();
            let prototypes = self
                .aggregates
                .iter()
                .map(|a| Accumulator::new(a, columns))
                .collect();
            if self.group_by.is_empty() {
                op = Box::new(StreamGroupBy::new(op, keys, prototypes, columns.len()));
                order = Order::One;
            } else if let Some(keys_order) = group_order {
                op = Box::new(StreamGroupBy::new(op, keys, prototypes, columns.len()));
                order = Order::By {
                    keys: keys_order,
                    unique: self.group_by.clone(),
                };
            } else {
                op = Box::new(HashGroupBy::new(op, keys, prototypes, columns.len()));
                order = Order::By {
                    keys: Vec::new(),
                    unique: self.group_by.clone(),
                };
            }
        }
        if let Some(having) = &self.having {
            let collations = columns.iter().map(|c| c.collation).collect();
            op = Box::new(HavingFilter::new(op, having.clone(), collations));
        }
        if self.distinct {
            let visible = (0..self.visible_columns).map(with_collation).collect();
            op = if order.groups_visible(self.visible_columns) {
                Box::new(Distinct::streamed(op, visible))
            } else {
                Box::new(Distinct::hashed(op, visible))
            };
        }
        if !self.order_by.is_empty() && !order.satisfies(&self.order_by) {
            let keep = self.limit.map(|limit| {
                usize::try_from(limit.saturating_add(self.offset)).unwrap_or(usize::MAX)
            });
            op = Box::new(Sort::new(op, RowOrder::new(&self.order_by, columns), keep));
        }
        if self.offset > 0 || self.limit.is_some() {
            op = Box::new(Limit::new(op, self.offset, self.limit));
        }
        if self.visible_columns < columns.len() {
            op = Box::new(Project::new(op, self.visible_columns));
        }
        Ok(op)
    }

    /// Which columns the operators read from [`super::Row::values`]: the wire layer must
    /// decode these (and may leave the others [`super::Value::Null`]). Group keys, sort
    /// keys, aggregate inputs, HAVING's columns, and every visible column under DISTINCT.
    pub fn decoded_columns(&self, columns: usize) -> Vec<bool> {
        let mut decoded = vec![false; columns];
        let mut mark = |c: usize| {
            if let Some(d) = decoded.get_mut(c) {
                *d = true;
            }
        };
        self.referenced_columns().into_iter().for_each(&mut mark);
        if self.distinct {
            (0..self.visible_columns).for_each(mark);
        }
        decoded
    }

    /// Every column index the plan names.
    fn referenced_columns(&self) -> Vec<usize> {
        let mut columns = self.group_by.clone();
        let keys = self.order_by.iter().chain(&self.group_by_order);
        columns.extend(keys.map(|k| k.column));
        for aggregate in &self.aggregates {
            columns.push(aggregate.column);
            if let AggregateFunction::Avg { count_column } = aggregate.function {
                columns.push(count_column);
            }
        }
        if let Some(having) = &self.having {
            having_columns(having, &mut columns);
        }
        columns
    }

    fn check(&self, columns: usize) -> Result<(), MergeError> {
        let out_of_range = (self.visible_columns > columns).then_some(self.visible_columns);
        match out_of_range.or(self
            .referenced_columns()
            .into_iter()
            .find(|&c| c >= columns))
        {
            Some(c) => Err(MergeError(format!(
                "merge plan names column {} but the shards returned {columns}",
                c + 1
            ))),
            None => Ok(()),
        }
    }

    /// The order a streamed GROUP BY's source merges by: the shards' order cut to the
    /// group keys, when its leading keys are exactly the group columns.
    fn streamed_group_order(&self) -> Option<Vec<SortKey>> {
        if !self.group_by_streamed || self.group_by.is_empty() {
            return None;
        }
        let shard_order = if self.group_by_order.is_empty() {
            &self.order_by
        } else {
            &self.group_by_order
        };
        let prefix = shard_order.get(..self.group_by.len())?;
        let exact = self.group_by.iter().all(|&c| covers(prefix, c))
            && prefix.iter().all(|k| self.group_by.contains(&k.column));
        exact.then(|| prefix.to_vec())
    }
}

fn having_columns(having: &Having, columns: &mut Vec<usize>) {
    match having {
        Having::Compare { column, .. } => columns.push(*column),
        Having::And(a, b) | Having::Or(a, b) => {
            having_columns(a, columns);
            having_columns(b, columns);
        }
        Having::Not(a) => having_columns(a, columns),
    }
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

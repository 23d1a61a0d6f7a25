//! UNION and UNION ALL of results that came from several shards: UNION ALL is every row
//! of every input ([`Concat`]); UNION also removes duplicates across all inputs
//! ([`Distinct`] over the visible columns, under their collations).
//!
//! Whether the inputs are the shards of one SELECT or the parts of a UNION, the merge is
//! the same; the plan says which (`MergePlan::distinct` over an unordered source).

use super::distinct::Distinct;
use super::iterator::Concat;
use super::{Collation, Operator};

/// The union of `inputs` results, each with columns compared under `collations`.
pub fn union(inputs: usize, all: bool, collations: &[Collation]) -> Box<dyn Operator> {
    let concat = Box::new(Concat::new(inputs));
    if all {
        return concat;
    }
    let columns = collations.iter().copied().enumerate().collect();
    Box::new(Distinct::hashed(concat, columns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_support::{int, run, shards, text};

    fn input() -> Vec<Vec<crate::merge::Row>> {
        shards(vec![
            vec![vec![text("a"), int(1)], vec![text("a"), int(1)]],
            vec![vec![text("A"), int(1)], vec![text("b"), int(2)]],
        ])
    }

    #[test]
    fn union_all_keeps_every_row_and_union_removes_duplicates_across_inputs() {
        let collations = [Collation::CaseInsensitive, Collation::Binary];
        assert_eq!(
            run(&mut *union(2, true, &collations), input()).rows.len(),
            4
        );
        let distinct = run(&mut *union(2, false, &collations), input());
        assert_eq!(
            distinct.values(),
            vec![vec![text("a"), int(1)], vec![text("b"), int(2)]]
        );
    }
}

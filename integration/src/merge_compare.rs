//! How the differential merge suites compare dbmesh's rows with the reference database's:
//! in order, as multisets, or in order between tie groups only.
//!
//! An ORDER BY whose keys do not make every row unique fixes the order of the tie groups
//! but not the order inside one: both databases may return a group's rows in any order,
//! and so may dbmesh. [`RowOrder::Ties`] compares such results group by group.

/// What order the SQL fixes for a query's rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowOrder {
    /// None: compare as multisets.
    Any,
    /// A total order (the ORDER BY keys make each row unique, or ties are whole-row
    /// duplicates): compare row by row.
    Fixed,
    /// Ordered by the result columns at these indexes, with ties: the sequence of tie groups
    /// (runs of rows equal in these columns) must agree, each group as a multiset.
    Ties(&'static [usize]),
}

/// Whether `got` is an answer to a query whose rows the reference returned as `want`,
/// given the order the SQL fixes. Rows are compared by value, so normalise first what is
/// not defined (which spelling of a case-insensitive group is returned, say).
pub fn same_rows<T: Ord + Clone>(order: RowOrder, got: &[Vec<T>], want: &[Vec<T>]) -> bool {
    match order {
        RowOrder::Fixed => got == want,
        RowOrder::Any => sorted(got) == sorted(want),
        RowOrder::Ties(keys) => {
            let (a, b) = (tie_groups(got, keys), tie_groups(want, keys));
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| sorted(x) == sorted(y))
        }
    }
}

fn sorted<T: Ord + Clone>(rows: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut rows = rows.to_vec();
    rows.sort();
    rows
}

/// The runs of consecutive rows that agree in the `keys` columns.
fn tie_groups<'a, T: PartialEq>(rows: &'a [Vec<T>], keys: &[usize]) -> Vec<&'a [Vec<T>]> {
    let same = |a: &Vec<T>, b: &Vec<T>| keys.iter().all(|&k| a.get(k) == b.get(k));
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len() || !same(&rows[start], &rows[i]) {
            if i > start {
                groups.push(&rows[start..i]);
            }
            start = i;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_may_come_in_any_order_but_groups_may_not() {
        let want = vec![vec![1, 10], vec![1, 11], vec![2, 12]];
        let swapped = vec![vec![1, 11], vec![1, 10], vec![2, 12]];
        let misordered = vec![vec![2, 12], vec![1, 10], vec![1, 11]];
        let split = vec![vec![1, 10], vec![2, 12], vec![1, 11]];
        assert!(same_rows(RowOrder::Ties(&[0]), &swapped, &want));
        assert!(!same_rows(RowOrder::Ties(&[0]), &misordered, &want));
        assert!(!same_rows(RowOrder::Ties(&[0]), &split, &want));
        assert!(!same_rows(RowOrder::Fixed, &swapped, &want));
        assert!(same_rows(RowOrder::Any, &misordered, &want));
        assert!(!same_rows(RowOrder::Any, &want[..2], &want));
    }
}

//! The last operator of a plan with derived columns: drops the columns the rewrite added
//! to the shard query (ORDER BY / GROUP BY expressions missing from the select list, AVG's
//! COUNT half), so the client sees its own select list.

use super::{Inputs, MergeError, Operator, Pull};

/// Keeps the first `visible` columns of every row.
#[derive(Debug)]
pub struct Project {
    input: Box<dyn Operator>,
    visible: usize,
}

impl Project {
    pub fn new(input: Box<dyn Operator>, visible: usize) -> Project {
        Project { input, visible }
    }
}

impl Operator for Project {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        Ok(match self.input.pull(inputs)? {
            Pull::Row(mut row) => {
                row.raw.truncate(self.visible);
                row.values.truncate(self.visible);
                Pull::Row(row)
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::iterator::Concat;
    use crate::merge::test_support::{int, run, shards, text};

    #[test]
    fn drops_derived_columns() {
        let input = shards(vec![vec![vec![text("x"), int(1), int(2)]]]);
        let out = run(&mut Project::new(Box::new(Concat::new(1)), 1), input);
        assert_eq!(out.values(), vec![vec![text("x")]]);
        assert_eq!(out.rows[0].raw.len(), 1);
    }
}

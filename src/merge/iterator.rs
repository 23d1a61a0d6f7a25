//! The iterator merge: every row of input 0, then of input 1, ... — for results whose
//! order SQL does not fix (no ORDER BY, or one a later sort or hash GROUP BY decides).
//!
//! Holds no rows; reads one input at a time, so the other shards wait with their bounded
//! buffers full until their turn.

use super::{Available, Inputs, MergeError, Operator, Pull};

/// Concatenates the inputs in order.
#[derive(Debug)]
pub struct Concat {
    current: usize,
    count: usize,
}

impl Concat {
    /// Over inputs `0..count`.
    pub fn new(count: usize) -> Concat {
        Concat { current: 0, count }
    }
}

impl Operator for Concat {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        while self.current < self.count {
            match inputs.peek(self.current) {
                Available::Row(_) => {
                    let row = inputs.take(self.current).expect("peeked a row");
                    return Ok(Pull::Row(row));
                }
                Available::Unknown => return Ok(Pull::NeedInput(self.current)),
                Available::Ended => self.current += 1,
            }
        }
        Ok(Pull::End)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_support::{int, run, run_prefilled, shards};

    #[test]
    fn concatenates_inputs_in_order_including_empty_ones() {
        let input = || {
            shards(vec![
                vec![vec![int(3)], vec![int(1)]],
                vec![],
                vec![vec![int(2)]],
            ])
        };
        let out = run(&mut Concat::new(3), input());
        assert_eq!(out.values(), vec![vec![int(3)], vec![int(1)], vec![int(2)]]);
        assert_eq!(out.reads, vec![2, 0, 1]);
        let prefilled = run_prefilled(&mut Concat::new(3), input());
        assert_eq!(prefilled, out.rows);
    }

    #[test]
    fn no_inputs_is_an_empty_result() {
        assert!(run(&mut Concat::new(0), vec![]).rows.is_empty());
    }
}

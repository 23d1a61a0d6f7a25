//! What an expression can evaluate to without knowing column values, for validation.

use std::collections::BTreeSet;

use super::{apply, long_hash_code, string_hash_code, Expr, Op};
use crate::route::algorithms::ShardingValue;

/// What a sub-expression can evaluate to, as far as known without column values.
pub(super) enum Possible {
    Any,
    Ints(BTreeSet<i128>),
    Text(String),
}

impl Possible {
    fn into_ints(self) -> Option<BTreeSet<i128>> {
        match self {
            Possible::Ints(ints) => Some(ints),
            Possible::Text(text) => match ShardingValue::from_number_literal(&text) {
                Some(ShardingValue::Int(value)) => Some(BTreeSet::from([value])),
                _ => None,
            },
            Possible::Any => None,
        }
    }
}

pub(super) fn possible(expr: &Expr, limit: usize) -> Possible {
    let map =
        |inner: &Expr, f: &dyn Fn(i128) -> Option<i128>| match possible(inner, limit).into_ints() {
            Some(ints) => ints
                .into_iter()
                .map(f)
                .collect::<Option<BTreeSet<_>>>()
                .map_or(Possible::Any, Possible::Ints),
            None => Possible::Any,
        };
    match expr {
        Expr::Int(value) => Possible::Ints(BTreeSet::from([*value])),
        Expr::Text(text) => Possible::Text(text.clone()),
        Expr::Column(_) => Possible::Any,
        Expr::Neg(inner) => map(inner, &|v| v.checked_neg()),
        Expr::Abs(inner) => map(inner, &|v| v.checked_abs()),
        Expr::HashCode(inner) => match possible(inner, limit) {
            Possible::Text(text) => {
                Possible::Ints(BTreeSet::from([string_hash_code(&text).into()]))
            }
            Possible::Ints(ints) => ints
                .into_iter()
                .map(|v| long_hash_code(v).ok().map(i128::from))
                .collect::<Option<BTreeSet<_>>>()
                .map_or(Possible::Any, Possible::Ints),
            Possible::Any => Possible::Any,
        },
        Expr::Binary(op, left, right) => {
            let right = possible(right, limit).into_ints();
            let left = possible(left, limit).into_ints();
            match (left, right) {
                (Some(left), Some(right)) if left.len() * right.len() <= limit => left
                    .iter()
                    .flat_map(|l| right.iter().map(move |r| apply(*op, *l, *r)))
                    .collect::<Result<BTreeSet<_>, _>>()
                    .map_or(Possible::Any, Possible::Ints),
                (None, Some(right)) if *op == Op::Rem && right.len() == 1 => {
                    let divisor = right.iter().next().map_or(0, |d| d.unsigned_abs());
                    if divisor == 0 || divisor > limit as u128 {
                        Possible::Any
                    } else {
                        Possible::Ints((0..divisor as i128).collect())
                    }
                }
                _ => Possible::Any,
            }
        }
    }
}

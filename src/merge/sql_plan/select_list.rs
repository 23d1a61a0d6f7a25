//! The shard query's select list: the client's items (some rewritten in place), then the
//! derived columns the merge needs, and how ORDER BY / GROUP BY / HAVING expressions find
//! their column in it.
//!
//! Column indexes count every wildcard (`*`, `t.*`) as no column, since its width is known
//! only from the shards' result (see `SelectMerge::resolve`). A client item between two
//! wildcards has no fixed index: it is never referenced, an expression naming it is derived
//! again at the end instead.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions_mut, Expr, Ident, SelectItem};

use super::{unsupported, unsupported_because};
use crate::error::Error;
use crate::sql::analyze::Dialect;

/// One client select item, as the lookups see it.
#[derive(Debug)]
enum Slot {
    Wildcard,
    Column {
        /// Its column index (wildcards counted as none).
        index: usize,
        /// Between two wildcards: `index` is not where it ends up.
        floating: bool,
        /// The expression, normalised for comparison.
        expr: Box<Expr>,
        /// The column name the client sees (alias, or a bare column's name), normalised.
        name: Option<String>,
    },
}

/// The shard's select list under construction.
#[derive(Debug)]
pub(super) struct SelectList {
    dialect: Dialect,
    /// The shard's items: the client's, then the derived ones.
    items: Vec<SelectItem>,
    slots: Vec<Slot>,
    /// Client columns (wildcards counted as none).
    visible: usize,
    /// Column index of the first wildcard, if any.
    wildcard_at: Option<usize>,
    /// Normalised expressions of the derived columns, to reuse one for a second mention;
    /// `None` for the parts of aggregates, which are never shared (the merge rewrites
    /// them).
    derived: Vec<Option<Expr>>,
    /// Next alias number per purpose (`dbmesh_order_0`, `dbmesh_group_0`, ...).
    aliases: HashMap<&'static str, usize>,
}

impl SelectList {
    /// The client's select list. Errors on items the merge cannot place (`expr AS (a, b)`).
    pub fn new(projection: &[SelectItem], dialect: Dialect) -> Result<SelectList, Error> {
        let wildcards = projection.iter().filter(|i| is_wildcard(i)).count();
        let mut seen_wildcards = 0;
        let mut index = 0;
        let mut wildcard_at = None;
        let mut slots = Vec::with_capacity(projection.len());
        for item in projection {
            let (expr, alias) = match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    seen_wildcards += 1;
                    wildcard_at.get_or_insert(index);
                    slots.push(Slot::Wildcard);
                    continue;
                }
                SelectItem::UnnamedExpr(expr) => (expr, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                SelectItem::ExprWithAliases { .. } => {
                    return Err(unsupported(format!("select item `{item}`")))
                }
            };
            let name = match (alias, expr) {
                (Some(alias), _) => Some(normalize_ident(alias, dialect)),
                (None, Expr::Identifier(ident)) => Some(normalize_ident(ident, dialect)),
                (None, Expr::CompoundIdentifier(parts)) => {
                    parts.last().map(|i| normalize_ident(i, dialect))
                }
                (None, _) => None,
            };
            slots.push(Slot::Column {
                index,
                floating: seen_wildcards > 0 && seen_wildcards < wildcards,
                expr: Box::new(normalize(expr, dialect)),
                name,
            });
            index += 1;
        }
        Ok(SelectList {
            dialect,
            items: projection.to_vec(),
            slots,
            visible: index,
            wildcard_at,
            derived: Vec::new(),
            aliases: HashMap::new(),
        })
    }

    /// How many columns the client sees (wildcards counted as none).
    pub fn visible(&self) -> usize {
        self.visible
    }

    /// Every column of the shard query (wildcards counted as none).
    pub fn columns(&self) -> usize {
        self.visible + self.derived.len()
    }

    /// Column index of the first wildcard.
    pub fn wildcard_at(&self) -> Option<usize> {
        self.wildcard_at
    }

    /// The shard's select items.
    pub fn into_items(self) -> Vec<SelectItem> {
        self.items
    }

    /// The column of `ORDER BY n` / `GROUP BY n` (1-based position in the client's list).
    /// A position at or after a wildcard names a column whose place is known only once the
    /// wildcard is expanded: refused.
    pub fn by_position(&self, clause: &str, position: u64) -> Result<usize, Error> {
        let fixed = self.wildcard_at.unwrap_or(self.visible);
        match usize::try_from(position) {
            Ok(n @ 1..) if n <= fixed => Ok(n - 1),
            _ if self.wildcard_at.is_some() => Err(unsupported_because(
                format!("{clause} {position} with `*` in the select list"),
                "name the column instead",
            )),
            _ => Err(unsupported(format!(
                "{clause} {position}, which is not a position in the select list"
            ))),
        }
    }

    /// The column a bare name refers to: an alias or a selected column's name.
    pub fn by_name(&self, ident: &Ident) -> Option<usize> {
        let wanted = normalize_ident(ident, self.dialect);
        self.slots.iter().find_map(|slot| match slot {
            Slot::Column {
                index,
                floating: false,
                name: Some(name),
                ..
            } if *name == wanted => Some(*index),
            _ => None,
        })
    }

    /// The column holding exactly `expr` (a client item, or a column derived before).
    pub fn by_expr(&self, expr: &Expr) -> Option<usize> {
        let wanted = normalize(expr, self.dialect);
        self.slots
            .iter()
            .find_map(|slot| match slot {
                Slot::Column {
                    index,
                    floating: false,
                    expr,
                    ..
                } if **expr == wanted => Some(*index),
                _ => None,
            })
            .or_else(|| {
                self.derived
                    .iter()
                    .position(|d| d.as_ref() == Some(&wanted))
                    .map(|i| self.visible + i)
            })
    }

    /// The column of the client's select item `item` (an index into the select items);
    /// `None` for a wildcard or an item between two wildcards.
    pub fn item_column(&self, item: usize) -> Option<usize> {
        match self.slots.get(item)? {
            Slot::Column {
                index,
                floating: false,
                ..
            } => Some(*index),
            _ => None,
        }
    }

    /// Appends `expr AS dbmesh_<purpose>_<n>` and returns its column. A `reusable`
    /// expression already derived reuses that column.
    pub fn derive(&mut self, expr: Expr, purpose: &'static str, reusable: bool) -> usize {
        let normalized = reusable.then(|| normalize(&expr, self.dialect));
        if let Some(wanted) = &normalized {
            if let Some(i) = self.derived.iter().position(|d| d.as_ref() == Some(wanted)) {
                return self.visible + i;
            }
        }
        let n = self.aliases.entry(purpose).or_insert(0);
        let alias = Ident::new(format!("dbmesh_{purpose}_{n}"));
        *n += 1;
        self.items.push(SelectItem::ExprWithAlias { expr, alias });
        self.derived.push(normalized);
        self.visible + self.derived.len() - 1
    }

    /// Replaces the client item at `item` (an index into the select items) with `expr`,
    /// keeping the column name the client sees.
    pub fn replace(&mut self, item: usize, expr: Expr, name: Ident) {
        self.items[item] = SelectItem::ExprWithAlias { expr, alias: name };
    }
}

fn is_wildcard(item: &SelectItem) -> bool {
    matches!(
        item,
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
    )
}

/// An identifier as the backend resolves it: MySQL column names and aliases ignore case;
/// PostgreSQL folds unquoted names to lower case.
pub(super) fn normalize_ident(ident: &Ident, dialect: Dialect) -> String {
    match (dialect, ident.quote_style) {
        (Dialect::Postgres, Some(_)) => ident.value.clone(),
        _ => ident.value.to_lowercase(),
    }
}

/// `expr` with identifiers and function names normalised, so that two spellings of one
/// expression (`SUM(x)`, `sum(X)`) compare equal. Spans are ignored by the AST's equality.
pub(super) fn normalize(expr: &Expr, dialect: Dialect) -> Expr {
    let mut expr = expr.clone();
    let fold = |ident: &mut Ident| {
        ident.value = normalize_ident(ident, dialect);
        ident.quote_style = None;
    };
    let _ = visit_expressions_mut(&mut expr, |e| {
        match e {
            Expr::Identifier(ident) => fold(ident),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(fold),
            Expr::Function(function) => {
                for part in &mut function.name.0 {
                    if let sqlparser::ast::ObjectNamePart::Identifier(ident) = part {
                        ident.value = ident.value.to_lowercase();
                        ident.quote_style = None;
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    expr
}

//! Table aliases: which names in a statement stand for a table (and so must not be renamed
//! as if they were the logical table), and which logical table each alias names (so an IN
//! list on `o.order_id` is known to be on `t_order`).
//!
//! Aliases are collected over the whole statement, not per scope: a qualifier equal to any
//! alias declared anywhere in it is treated as that alias.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, Statement, TableFactor, TableObject, Visit, Visitor};

/// The table aliases a statement declares (lower case), and which logical table each names.
#[derive(Debug, Default)]
pub(crate) struct Aliases {
    names: HashSet<String>,
    tables: HashMap<String, String>,
}

impl Aliases {
    pub(crate) fn collect(statement: &Statement) -> Self {
        let mut aliases = Aliases::default();
        let _ = statement.visit(&mut aliases);
        if let Statement::Insert(insert) = statement {
            if let (Some(alias), TableObject::TableName(name)) =
                (&insert.table_alias, &insert.table)
            {
                aliases.add(&alias.alias.value, Some(name));
            }
        }
        aliases
    }

    fn add(&mut self, alias: &str, table: Option<&ObjectName>) {
        let alias = alias.to_lowercase();
        if let Some(table) = table.and_then(|t| t.0.last()).and_then(|p| p.as_ident()) {
            self.tables
                .insert(alias.clone(), table.value.to_lowercase());
        }
        self.names.insert(alias);
    }

    /// Whether `name` (any case) is a declared alias.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.contains(&name.to_lowercase())
    }

    /// The table alias `name` (any case) stands for, lower case.
    pub(crate) fn table_of(&self, name: &str) -> Option<&str> {
        self.tables.get(&name.to_lowercase()).map(String::as_str)
    }
}

impl Visitor for Aliases {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                alias: Some(alias),
                ..
            } => self.add(&alias.name.value, Some(name)),
            TableFactor::Derived {
                alias: Some(alias), ..
            } => self.add(&alias.name.value, None),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

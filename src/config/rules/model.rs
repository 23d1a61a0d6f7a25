//! Validated sharding rules of one logical database: plain data the router reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::route::algorithms::{Properties, ShardingAlgorithm};
use crate::route::data_nodes::DataNode;
use crate::route::keygen::KeyGeneratorConfig;

/// The sharding rules of a logical database (all its rule files together).
///
/// Logical table names are stored in lower case and looked up case-insensitively, as
/// MySQL treats table names on most setups (`lower_case_table_names` = 1 or 2) and as
/// PostgreSQL folds unquoted names. Actual table names in data nodes keep their spelling:
/// they are sent to the backends as written. Column names are stored in lower case.
#[derive(Debug, Clone, Default)]
pub struct ShardingRules {
    /// `binding_tables`: groups of tables sharded alike, so joins between them on the
    /// sharding columns stay within one node pair. Every table is in a `tables` entry.
    pub binding_groups: Vec<Vec<String>>,
    /// `broadcast_tables`: small tables copied to every data source (reads go to any one,
    /// writes to all).
    pub broadcast_tables: BTreeSet<String>,
    /// `[tables.<name>]`: sharded tables by logical name.
    pub tables: BTreeMap<String, TableRule>,
    /// `[algorithms.<name>]`: sharding algorithms by name (names are case-sensitive).
    pub algorithms: BTreeMap<String, Arc<dyn ShardingAlgorithm>>,
    /// `[key_generators.<name>]`: key generator settings by name.
    pub key_generators: BTreeMap<String, KeyGeneratorConfig>,
    /// The type and properties of each algorithm as the rule file wrote them, by name: what
    /// `SHOW DBMESH RULES` shows (a built algorithm keeps only what it routes with).
    pub algorithm_definitions: BTreeMap<String, Definition>,
    /// The same for each key generator.
    pub key_generator_definitions: BTreeMap<String, Definition>,
}

/// An algorithm's or key generator's `type` and properties, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// `type`, upper case (`MOD`, `SNOWFLAKE`).
    pub kind: String,
    pub properties: Properties,
}

impl ShardingRules {
    /// Whether the rules say nothing (e.g. an empty rule file).
    pub fn is_empty(&self) -> bool {
        self.binding_groups.is_empty()
            && self.broadcast_tables.is_empty()
            && self.tables.is_empty()
            && self.algorithms.is_empty()
            && self.key_generators.is_empty()
    }

    /// The rule of sharded table `logical` (any case).
    pub fn table(&self, logical: &str) -> Option<&TableRule> {
        self.tables.get(&logical.to_lowercase())
    }

    /// Whether `logical` (any case) is a broadcast table.
    pub fn is_broadcast(&self, logical: &str) -> bool {
        self.broadcast_tables.contains(&logical.to_lowercase())
    }

    /// The binding group `logical` (any case) belongs to, if any.
    pub fn binding_group(&self, logical: &str) -> Option<&[String]> {
        let logical = logical.to_lowercase();
        self.binding_groups
            .iter()
            .find(|group| group.contains(&logical))
            .map(Vec::as_slice)
    }

    /// The algorithm configured as `name`.
    pub fn algorithm(&self, name: &str) -> Option<&Arc<dyn ShardingAlgorithm>> {
        self.algorithms.get(name)
    }
}

/// `[tables.<name>]`: how one logical table is spread over actual tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRule {
    /// The logical table name, lower case.
    pub logical: String,
    /// Its actual data nodes, in the order the `nodes` expression lists them; never empty.
    pub nodes: Vec<DataNode>,
    /// Chooses data sources; `None` means every data source of `nodes`.
    pub database_strategy: Option<Strategy>,
    /// Chooses actual tables within a data source; `None` means every table of that data
    /// source in `nodes`.
    pub table_strategy: Option<Strategy>,
    /// Fills in a key column an INSERT leaves out.
    pub key_generator: Option<KeyGen>,
}

impl TableRule {
    /// The distinct data sources of its nodes, in node order: the targets of the database
    /// strategy.
    pub fn data_sources(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for node in &self.nodes {
            if !names.contains(&node.data_source) {
                names.push(node.data_source.clone());
            }
        }
        names
    }

    /// The actual tables on `data_source`, in node order: the targets of the table strategy
    /// once the data source is chosen.
    pub fn tables_in(&self, data_source: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.data_source == data_source)
            .map(|n| n.table.clone())
            .collect()
    }

    /// The distinct actual table names over all data sources, in node order (what the table
    /// strategy is validated against).
    pub fn actual_tables(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for node in &self.nodes {
            if !names.contains(&node.table) {
                names.push(node.table.clone());
            }
        }
        names
    }
}

/// A `database_strategy` or `table_strategy`: which columns feed which algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    /// The sharding columns, lower case: one for most algorithms, several for
    /// COMPLEX_INLINE, none for HINT.
    pub columns: Vec<String>,
    /// The algorithm's name in [`ShardingRules::algorithms`].
    pub algorithm: String,
}

/// A `key_generator`: which column gets generated keys, from which generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGen {
    /// The key column, lower case.
    pub column: String,
    /// The generator's name in [`ShardingRules::key_generators`].
    pub generator: String,
}

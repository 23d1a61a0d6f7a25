//! The shipped examples (`sharding-rules/*.toml`) and the examples in `docs/sharding.md`
//! are valid, and place rows where their comments say.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use super::*;
use crate::route::algorithms::{ShardingValue, ShardingValues};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Routes one value through a strategy of `table`.
fn route(
    rules: &ShardingRules,
    table: &str,
    database_axis: bool,
    targets: &[String],
    value: ShardingValue,
) -> Vec<String> {
    let rule = rules.table(table).unwrap();
    let strategy = if database_axis {
        &rule.database_strategy
    } else {
        &rule.table_strategy
    };
    let strategy = strategy.as_ref().unwrap();
    let values = ShardingValues::single(&strategy.columns[0], value);
    rules
        .algorithm(&strategy.algorithm)
        .unwrap()
        .exact(targets, &values)
        .unwrap()
}

/// Data sources of the logical database each example is written for.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("mysql-orders.toml", &["ds_0", "ds_1"]),
    ("postgres-orders.toml", &["ds_0", "ds_1", "ds_2", "ds_3"]),
    ("interval-by-month.toml", &["ds_0", "ds_1"]),
];

#[test]
fn every_example_rule_file_is_valid_for_its_data_sources() {
    let mut files: Vec<String> = std::fs::read_dir(repo_file("sharding-rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    files.sort();
    let mut listed: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "list each example with its data sources in EXAMPLES"
    );
    for (name, data_sources) in EXAMPLES {
        let path = repo_file(&format!("sharding-rules/{name}"));
        let rules = load_rules(&path, "example", data_sources).unwrap_or_else(|e| panic!("{e}"));
        assert!(!rules.tables.is_empty(), "{name}");
        // One data source too few must be caught by validation.
        let fewer = &data_sources[..data_sources.len() - 1];
        assert!(
            load_rules(&path, "example", fewer).is_err(),
            "{name} with {fewer:?}"
        );
    }
}

#[test]
fn mysql_example_places_rows_where_its_comments_say() {
    let rules = load_rules(
        &repo_file("sharding-rules/mysql-orders.toml"),
        "shop",
        &["ds_0", "ds_1"],
    )
    .unwrap();
    let order = rules.table("T_Order").unwrap();
    assert_eq!(order.nodes.len(), 4);
    assert_eq!(order.data_sources(), ["ds_0", "ds_1"]);
    assert_eq!(
        route(
            &rules,
            "t_order",
            true,
            &order.data_sources(),
            ShardingValue::Int(7)
        ),
        ["ds_1"]
    );
    assert_eq!(
        route(
            &rules,
            "t_order",
            false,
            &order.tables_in("ds_1"),
            ShardingValue::Int(12)
        ),
        ["t_order_0"]
    );
    let item = rules.table("t_order_item").unwrap();
    assert_eq!(
        route(
            &rules,
            "t_order_item",
            false,
            &item.tables_in("ds_1"),
            ShardingValue::Int(12)
        ),
        ["t_order_item_0"]
    );
    assert_eq!(
        rules.binding_group("t_order_item").unwrap(),
        ["t_order", "t_order_item"]
    );
    assert!(rules.is_broadcast("T_PROVINCE"));
    let key_gen = order.key_generator.as_ref().unwrap();
    assert_eq!(
        (key_gen.column.as_str(), key_gen.generator.as_str()),
        ("order_id", "snowflake")
    );
    assert_eq!(rules.key_generators["snowflake"].kind(), "SNOWFLAKE");
}

#[test]
fn postgres_example_places_rows_where_its_comments_say() {
    let data_sources = ["ds_0", "ds_1", "ds_2", "ds_3"];
    let rules = load_rules(
        &repo_file("sharding-rules/postgres-orders.toml"),
        "shop_pg",
        &data_sources,
    )
    .unwrap();
    let order = rules.table("t_order").unwrap();
    assert_eq!(
        route(
            &rules,
            "t_order",
            true,
            &order.data_sources(),
            "alice".into()
        ),
        ["ds_3"]
    );
    assert_eq!(
        route(
            &rules,
            "t_order",
            false,
            &order.tables_in("ds_3"),
            ShardingValue::Int(1001)
        ),
        ["sales.t_order_1"]
    );
    let audit = rules.table("t_audit").unwrap();
    let hint = rules
        .algorithm(&audit.database_strategy.as_ref().unwrap().algorithm)
        .unwrap();
    assert_eq!(
        hint.hint(&audit.data_sources(), &["ds_2".into()]).unwrap(),
        ["ds_2"]
    );
    assert!(audit.database_strategy.as_ref().unwrap().columns.is_empty());
}

#[test]
fn interval_example_places_rows_where_its_comments_say() {
    let rules = load_rules(
        &repo_file("sharding-rules/interval-by-month.toml"),
        "logs",
        &["ds_0", "ds_1"],
    )
    .unwrap();
    let log = rules.table("t_order_log").unwrap();
    let tables = log.tables_in("ds_0");
    assert_eq!(tables.len(), 24);
    assert_eq!(
        route(
            &rules,
            "t_order_log",
            false,
            &tables,
            "2024-03-15 08:00:00".into()
        ),
        ["t_order_log_202403"]
    );
    let (from, to) = (
        ShardingValue::from("2024-02-10"),
        ShardingValue::from("2024-04-01"),
    );
    let by_month = rules.algorithm("by_month").unwrap();
    let hit = by_month
        .range(
            &tables,
            "created_at",
            Bound::Included(&from),
            Bound::Excluded(&to),
        )
        .unwrap();
    assert_eq!(hit, ["t_order_log_202402", "t_order_log_202403"]);
}

#[test]
fn sharding_doc_examples_are_valid() {
    let doc = std::fs::read_to_string(repo_file("docs/sharding.md")).unwrap();
    let mut checked = 0;
    for block in doc.split("```toml\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        if block.starts_with("# fragment") {
            continue;
        }
        parse_rules(
            block,
            Path::new("docs/sharding.md"),
            "shop",
            &["ds_0", "ds_1", "ds_2", "ds_3"],
        )
        .unwrap_or_else(|e| panic!("{e}\n--- in block:\n{block}"));
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} examples found");
}

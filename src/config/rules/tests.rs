//! Problems in rule files are all reported, each at its line and key.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::ConfigProblem;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn parse(text: &str) -> Result<ShardingRules, ConfigError> {
    parse_rules(
        text,
        Path::new("rules/shop.toml"),
        "shop",
        &["ds_0", "ds_1"],
    )
}

fn problems(text: &str) -> Vec<ConfigProblem> {
    parse(text).expect_err("rules should be rejected").problems
}

fn lines_and_keys(problems: &[ConfigProblem]) -> Vec<(Option<usize>, &str)> {
    problems.iter().map(|p| (p.line, p.key.as_str())).collect()
}

fn show(problems: &[ConfigProblem]) -> String {
    ConfigError {
        problems: problems.to_vec(),
    }
    .to_string()
}

#[test]
fn reports_every_problem_with_its_line_and_key() {
    let text = r#"binding_tables = [["t_order", "t_missing"], ["t_item", "t_order"]]
broadcast_tables = ["t_order", "t_dict", "T_DICT"]

[tables.t_order]
nodes = "ds_${0..2}.t_order_${0..1}"
database_strategy = { column = "user_id", algorithm = "db_inline" }
table_strategy = { column = "order_id", algorithm = "order_mod" }
key_generator = { column = "order_id", generator = "snowflak" }

[tables.t_item]
nodes = "ds_${0..1}.t_item_${0..2}"
database_strategy = { columns = ["user_id", "order_id"], algorithm = "db_inline" }
table_strategy = { column = "item_id", algorithm = "item_mod" }

[tables.t_user]
nodes = "ds_${0..1}.t_user"
database_strategy = { column = "user_id", algorithm = "db_inline" }

[algorithms.db_inline]
type = "INLINE"
expression = "ds_${user_id % 3}"

[algorithms.item_mod]
type = "MOD"
sharding_count = 2
sharding_cuont = 2

[algorithms.weird]
type = "MODULO"

[key_generators.snowflake]
type = "SNOWFLAKE"
worker_id = 5000
"#;
    let problems = problems(text);
    assert_eq!(
        lines_and_keys(&problems),
        [
            (Some(1), "binding_tables[0][1]"),
            (Some(1), "binding_tables[1][1]"),
            (Some(2), "broadcast_tables[0]"),
            (Some(2), "broadcast_tables[2]"),
            (Some(5), "tables.t_order.nodes"),
            (Some(7), "tables.t_order.table_strategy.algorithm"),
            (Some(8), "tables.t_order.key_generator.generator"),
            (Some(12), "tables.t_item.database_strategy"),
            (Some(13), "tables.t_item.table_strategy"),
            (Some(17), "tables.t_user.database_strategy"),
            (Some(26), "algorithms.item_mod.sharding_cuont"),
            (Some(29), "algorithms.weird.type"),
            (Some(33), "key_generators.snowflake.worker_id"),
        ],
        "{}",
        show(&problems)
    );
    let message = |key: &str| {
        problems
            .iter()
            .find(|p| p.key == key)
            .unwrap()
            .message
            .as_str()
    };
    assert!(message("binding_tables[0][1]").contains("`t_missing` has no [tables.t_missing] rule"));
    assert!(message("binding_tables[1][1]").contains("already in binding_tables[0]"));
    assert!(message("broadcast_tables[0]").contains("both a broadcast table and a sharded table"));
    assert_eq!(
        message("tables.t_order.nodes"),
        "data source `ds_2` is not defined in database `shop` (its data sources: ds_0, ds_1)"
    );
    assert!(message("tables.t_order.table_strategy.algorithm").contains("unknown algorithm `order_mod`; algorithms defined in this file: db_inline, item_mod, weird"));
    assert!(message("tables.t_order.key_generator.generator")
        .contains("unknown key generator `snowflak`"));
    assert!(message("tables.t_item.database_strategy")
        .contains("INLINE algorithm `db_inline` reads one column, but 2 are named"));
    assert!(message("tables.t_item.table_strategy").contains("would never route to t_item_2"));
    assert!(message("tables.t_user.database_strategy")
        .contains("can yield ds_2, which is not among the targets (ds_0, ds_1)"));
    assert!(
        message("algorithms.item_mod.sharding_cuont").contains("did you mean `sharding_count`?")
    );
    assert!(message("algorithms.weird.type").starts_with("unknown algorithm type `MODULO`"));
    assert!(message("key_generators.snowflake.worker_id").contains("between 0 and 1023"));
    assert!(
        show(&problems).starts_with("rules/shop.toml:1:31: binding_tables[0][1]: "),
        "{}",
        show(&problems)
    );
}

#[test]
fn reports_unknown_keys_inside_strategies_and_at_the_top() {
    let problems = problems(
        r#"bindings_tables = []
[tables.t_order]
nodes = "ds_0.t_order"
table_strategy = { column = "order_id", algorthm = "m" }
key_generator = { column = "id", generator = "g", step = 2 }
[algorithms.m]
sharding_count = 2
"#,
    );
    assert_eq!(
        lines_and_keys(&problems),
        [
            (Some(1), "bindings_tables"),
            (Some(4), "tables.t_order.table_strategy"),
            (Some(4), "tables.t_order.table_strategy.algorthm"),
            (Some(5), "tables.t_order.key_generator.step"),
            (Some(6), "algorithms.m"),
        ],
        "{}",
        show(&problems)
    );
    assert!(problems[0]
        .message
        .contains("did you mean `binding_tables`?"));
    assert!(problems[1].message.contains("missing field `algorithm`"));
    assert!(problems[2].message.contains("did you mean `algorithm`?"));
    assert!(problems[4].message.contains("missing `type`"));
}

#[test]
fn binding_tables_must_share_layout_and_strategies() {
    let base = r#"binding_tables = [["t_a", "t_b"]]
[tables.t_a]
nodes = "ds_${0..1}.t_a_${0..1}"
table_strategy = { column = "id", algorithm = "m2" }
[algorithms.m2]
type = "MOD"
sharding_count = 2
[algorithms.other]
type = "MOD"
sharding_count = 2
[tables.t_b]
"#;
    let ok = format!("{base}nodes = \"ds_${{0..1}}.t_b_${{0..1}}\"\ntable_strategy = {{ column = \"a_id\", algorithm = \"m2\" }}\n");
    assert_eq!(parse(&ok).unwrap().binding_groups, [["t_a", "t_b"]]);

    let swapped = format!("{base}nodes = \"ds_1.t_b_${{0..1}}, ds_0.t_b_${{0..1}}\"\ntable_strategy = {{ column = \"id\", algorithm = \"m2\" }}\n");
    let found = problems(&swapped);
    assert_eq!(lines_and_keys(&found), [(Some(1), "binding_tables[0][1]")]);
    assert!(
        found[0]
            .message
            .contains("`ds_0.t_a_0` pairs with `ds_1.t_b_0`"),
        "{}",
        found[0].message
    );

    let other = format!("{base}nodes = \"ds_${{0..1}}.t_b_${{0..1}}\"\ntable_strategy = {{ column = \"id\", algorithm = \"other\" }}\n");
    let found = problems(&other);
    assert!(
        found[0].message.contains(
            "`t_a` has table_strategy algorithm `m2` on id and `t_b` has algorithm `other` on id"
        ),
        "{}",
        found[0].message
    );

    let fewer = format!("{base}nodes = \"ds_${{0..1}}.t_b_0\"\n");
    assert!(problems(&fewer)[0].message.contains("they have 4 and 2"));
}

#[test]
fn strategies_must_fit_their_algorithms_columns() {
    let found = problems(
        r#"[tables.t_a]
nodes = "ds_0.t_a_${0..1}"
table_strategy = { columns = ["a", "b"], algorithm = "complex" }
[tables.t_b]
nodes = "ds_${0..1}.t_b"
database_strategy = { column = "x", algorithm = "hint" }
[tables.t_c]
nodes = "ds_${0..1}.t_c"
database_strategy = { algorithm = "mod" }
[tables.t_d]
nodes = "ds_${0..1}.t_d"
database_strategy = { column = "order_id", algorithm = "inline" }
[algorithms.complex]
type = "COMPLEX_INLINE"
expression = "t_a_${(a + c) % 2}"
[algorithms.hint]
type = "HINT"
[algorithms.mod]
type = "MOD"
sharding_count = 2
[algorithms.inline]
type = "INLINE"
expression = "ds_${user_id % 2}"
"#,
    );
    assert_eq!(
        lines_and_keys(&found),
        [
            (Some(3), "tables.t_a.table_strategy"),
            (Some(3), "tables.t_a.table_strategy"),
            (Some(6), "tables.t_b.database_strategy"),
            (Some(9), "tables.t_c.database_strategy"),
            (Some(12), "tables.t_d.database_strategy"),
        ],
        "{}",
        show(&found)
    );
    assert!(found[0]
        .message
        .contains("reads `c`, which is not among this strategy's columns (a, b)"));
    assert!(found[1]
        .message
        .contains("column `b` is not used by COMPLEX_INLINE algorithm `complex`"));
    assert!(found[2]
        .message
        .contains("routes by hints, not by a column"));
    assert!(found[3]
        .message
        .contains("reads one sharding column; set column"));
    assert!(found[4].message.contains("column `order_id` is not the column INLINE algorithm `inline` reads (its expression reads `user_id`)"));
}

#[test]
fn table_names_are_case_insensitive_and_nodes_default_to_every_data_source() {
    let rules = parse("broadcast_tables = [\"T_Dict\"]\n[tables.T_User]\n").unwrap();
    let user = rules.table("t_user").unwrap();
    assert_eq!(user.logical, "t_user");
    assert_eq!(
        user.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        ["ds_0.t_user", "ds_1.t_user"]
    );
    assert!(rules.is_broadcast("t_dict"));
    let found = problems("[tables.t_user]\n[tables.T_USER]\n");
    assert_eq!(lines_and_keys(&found), [(Some(2), "tables.T_USER")]);
    assert!(parse("# nothing yet\n").unwrap().is_empty());
}

#[test]
fn rule_files_are_loaded_and_checked_with_the_main_config() {
    let dir = std::env::temp_dir().join(format!("dbmesh-rules-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let good = std::fs::read_to_string(repo_file("sharding-rules/mysql-orders.toml")).unwrap();
    std::fs::write(dir.join("rules/orders.toml"), &good).unwrap();
    std::fs::write(
        dir.join("rules/more.toml"),
        "[tables.t_order]\nnodes = \"ds_9.t\"\n",
    )
    .unwrap();
    let config = |rules: &str| {
        format!(
            "[server]\nmysql_listen = \"127.0.0.1:3307\"\n[[users]]\nname = \"a\"\npassword = \"x\"\n\
             [databases.shop]\nbackend = \"mysql\"\ndefault_data_source = \"ds_0\"\nrules = {rules}\n\
             [databases.shop.data_sources.ds_0]\nurl = \"mysql://root@127.0.0.1/s0\"\n\
             [databases.shop.data_sources.ds_1]\nurl = \"mysql://root@127.0.0.1/s1\"\n"
        )
    };
    let env = |_: &str| None;
    let path = dir.join("dbmesh.toml");
    let loaded =
        crate::config::parse_with_env(&config("[\"rules/orders.toml\"]"), &path, &env).unwrap();
    let sharding = loaded.databases["shop"].sharding.as_ref().unwrap();
    assert_eq!(sharding.tables.len(), 2);

    let err = crate::config::parse_with_env(
        &config("[\"rules/orders.toml\", \"rules/more.toml\"]"),
        &path,
        &env,
    )
    .unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].file, dir.join("rules/more.toml"));
    assert_eq!(
        (err.problems[0].line, err.problems[0].key.as_str()),
        (Some(2), "tables.t_order.nodes")
    );

    std::fs::write(
        dir.join("rules/more.toml"),
        "[tables.T_ORDER]\nnodes = \"ds_0.t\"\n",
    )
    .unwrap();
    let err = crate::config::parse_with_env(
        &config("[\"rules/orders.toml\", \"rules/more.toml\"]"),
        &path,
        &env,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("more.toml: tables.t_order: already defined in"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

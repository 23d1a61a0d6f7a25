//! Loading and validation of dbmesh.toml: defaults, every key's checks, file:line problems.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// A scratch directory holding a config's neighbour files (rule files, keys).
fn scratch_dir(test: &str, files: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dbmesh-config-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for file in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "# test\n").unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn problems(text: &str, vars: &[(&str, &str)]) -> Vec<ConfigProblem> {
    parse_with_env(text, Path::new("conf/dbmesh.toml"), &env(vars))
        .expect_err("config should be rejected")
        .problems
}

fn problems_of(text: &str) -> Vec<ConfigProblem> {
    problems(text, &[])
}

/// (line, key) of every problem, for exact assertions.
fn lines_and_keys(problems: &[ConfigProblem]) -> Vec<(Option<usize>, &str)> {
    problems.iter().map(|p| (p.line, p.key.as_str())).collect()
}

const FULL: &str = r#"
[server]
mysql_listen = "127.0.0.1:3307"
postgres_listen = "127.0.0.1:6432"
admin_listen = "127.0.0.1:9808"
mysql_server_version = "8.0.36-dbmesh"
mysql_auth_plugin = "caching_sha2_password"
rsa_private_key = "keys/private.pem"
rsa_public_key = "keys/public.pem"
max_packet_size = 16777216
connect_timeout_ms = 3000
checkout_timeout_ms = 20000
worker_threads = 4
snowflake_worker_id = 17
log_level = "debug"

[[users]]
name = "app"
password = "app-secret"
databases = ["shop", "shop_pg"]
mysql_auth_plugin = "mysql_native_password"

[[users]]
name = "ops"
password_env = "OPS_PASSWORD"
databases = ["*"]
admin = true

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"
rules = ["rules/shop.toml"]
transaction = "XA"

[databases.shop.data_sources.ds_0]
url = "mysql://root:@127.0.0.1:3306/shop_ds_0"
max_connections = 8

[databases.shop.data_sources.ds_1]
url = "mariadb://app:p%40ss@10.0.0.2/shop_ds_1?charset=utf8mb4"
password_env = "DS1_PASSWORD"

[databases.shop_pg]
backend = "postgres"
default_data_source = "ds_0"

[databases.shop_pg.data_sources.ds_0]
url = "postgres://postgres@127.0.0.1/shop_ds_0"
"#;

#[test]
fn full_config_loads_into_the_expected_structs() {
    let dir = scratch_dir(
        "full",
        &["keys/private.pem", "keys/public.pem", "rules/shop.toml"],
    );
    let path = dir.join("dbmesh.toml");
    let vars = env(&[("OPS_PASSWORD", "ops-secret"), ("DS1_PASSWORD", "from-env")]);
    let config = parse_with_env(FULL, &path, &vars).unwrap();

    assert_eq!(config.path, path);
    let s = &config.server;
    assert_eq!(
        s.mysql_listen,
        Some("127.0.0.1:3307".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(s.postgres_listen, Some("127.0.0.1:6432".parse().unwrap()));
    assert_eq!(s.admin_listen, Some("127.0.0.1:9808".parse().unwrap()));
    assert_eq!(s.mysql_server_version.as_deref(), Some("8.0.36-dbmesh"));
    assert_eq!(s.mysql_auth_plugin, MysqlAuthPlugin::CachingSha2Password);
    assert_eq!(s.rsa_private_key, Some(dir.join("keys/private.pem")));
    assert_eq!(s.rsa_public_key, Some(dir.join("keys/public.pem")));
    assert_eq!(s.max_packet_size, 16 * 1024 * 1024);
    assert_eq!(s.connect_timeout, Duration::from_millis(3000));
    assert_eq!(s.checkout_timeout, Duration::from_millis(20000));
    assert_eq!(s.worker_threads, Some(4));
    assert_eq!(s.snowflake_worker_id, Some(17));
    assert_eq!(s.log_level.as_deref(), Some("debug"));

    assert_eq!(config.users.len(), 2);
    let app = config.user("app").unwrap();
    assert_eq!(app.password, "app-secret");
    assert_eq!(app.databases, ["shop", "shop_pg"]);
    assert_eq!(
        app.mysql_auth_plugin,
        Some(MysqlAuthPlugin::MysqlNativePassword)
    );
    assert!(!app.admin);
    let ops = config.user("ops").unwrap();
    assert_eq!(ops.password, "ops-secret");
    assert!(ops.admin && ops.may_use("shop_pg"));
    assert_eq!(ops.mysql_auth_plugin, None);

    assert_eq!(
        config.databases.keys().collect::<Vec<_>>(),
        ["shop", "shop_pg"]
    );
    let shop = &config.databases["shop"];
    assert_eq!(shop.name, "shop");
    assert_eq!(shop.backend, BackendKind::Mysql);
    assert_eq!(shop.default_data_source, "ds_0");
    assert_eq!(shop.rules, [dir.join("rules/shop.toml")]);
    assert_eq!(shop.transaction, TransactionType::Xa);
    let ds_0 = &shop.data_sources["ds_0"];
    assert_eq!(ds_0.name, "ds_0");
    assert_eq!(ds_0.max_connections, 8);
    assert_eq!(
        ds_0.url,
        DataSourceUrl {
            kind: BackendKind::Mysql,
            host: "127.0.0.1".into(),
            port: 3306,
            user: "root".into(),
            password: String::new(),
            database: "shop_ds_0".into(),
            params: vec![],
            tls: None,
        }
    );
    let ds_1 = &shop.data_sources["ds_1"];
    assert_eq!(ds_1.max_connections, 32);
    assert_eq!(
        ds_1.url.password, "from-env",
        "password_env overrides the URL's password"
    );
    assert_eq!(ds_1.url.port, 3306);
    assert_eq!(
        ds_1.url.params,
        [("charset".to_string(), "utf8mb4".to_string())]
    );

    let shop_pg = &config.databases["shop_pg"];
    assert_eq!(shop_pg.backend, BackendKind::Postgres);
    assert_eq!(shop_pg.transaction, TransactionType::Local);
    assert!(shop_pg.rules.is_empty());
    assert_eq!(shop_pg.data_sources["ds_0"].url.port, 5432);
    assert_eq!(shop_pg.data_sources["ds_0"].url.user, "postgres");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn minimal_config_gets_defaults() {
    let config = parse_with_env(
        r#"
[server]
postgres_listen = "0.0.0.0:6432"

[[users]]
name = "app"
password = "x"

[databases.shop.data_sources.only]
url = "postgres://pg@db/shop"

[databases.shop]
backend = "postgres"
"#,
        Path::new("dbmesh.toml"),
        &env(&[]),
    )
    .unwrap();
    let s = &config.server;
    assert_eq!(s.mysql_listen, None);
    assert_eq!(s.mysql_auth_plugin, MysqlAuthPlugin::MysqlNativePassword);
    assert_eq!(s.max_packet_size, 64 * 1024 * 1024);
    assert_eq!(s.connect_timeout, Duration::from_millis(5000));
    assert_eq!(s.checkout_timeout, Duration::from_millis(10000));
    assert_eq!((s.worker_threads, s.log_level.as_deref()), (None, None));
    assert_eq!(s.log_format, LogFormat::Text);
    assert_eq!(s.slow_statement, None);
    assert_eq!(s.shutdown_timeout, Duration::from_millis(30_000));
    assert_eq!(s.pool_mode, PoolMode::Transaction);
    assert!(config.users[0].databases.is_empty());
    assert_eq!(config.databases["shop"].default_data_source, "only");
    assert_eq!(
        config.databases["shop"].data_sources["only"].max_connections,
        32
    );
}

#[test]
fn operations_keys_are_read_and_checked() {
    let rest = "[[users]]\nname = \"app\"\npassword = \"x\"\n[databases.shop]\nbackend = \"mysql\"\n[databases.shop.data_sources.ds_0]\nurl = \"mysql://root@mariadb/shop_ds_0\"\n";
    let ok = format!("[server]\nmysql_listen = \"127.0.0.1:0\"\nlog_format = \"json\"\nslow_statement_ms = 250\nshutdown_timeout_ms = 5000\npool_mode = \"session\"\n{rest}");
    let config = parse_with_env(&ok, Path::new("dbmesh.toml"), &env(&[])).unwrap();
    let s = &config.server;
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.slow_statement, Some(Duration::from_millis(250)));
    assert_eq!(s.shutdown_timeout, Duration::from_millis(5000));
    assert_eq!(s.pool_mode, PoolMode::Session);
    // A host name (a compose service) is a valid data source host.
    assert_eq!(
        config.databases["shop"].data_sources["ds_0"].url.host,
        "mariadb"
    );

    let bad = "[server]\nmysql_listen = \"127.0.0.1:0\"\nlog_format = \"xml\"\nshutdown_timeout_ms = 0\npool_mode = \"statement\"\n";
    let problems = problems(bad, &[]);
    let at = |key: &str| problems.iter().find(|p| p.key == key).map(|p| p.line);
    assert_eq!(at("server.log_format"), Some(Some(3)), "{problems:?}");
    assert_eq!(at("server.pool_mode"), Some(Some(5)), "{problems:?}");
    assert_eq!(
        at("server.shutdown_timeout_ms"),
        Some(Some(4)),
        "{problems:?}"
    );
    let format = problems
        .iter()
        .find(|p| p.key == "server.log_format")
        .unwrap();
    assert!(
        format.message.contains("\"text\", \"json\""),
        "{}",
        format.message
    );
}

#[test]
fn snowflake_worker_id_must_fit_ten_bits() {
    let text = "[server]\nmysql_listen = \"127.0.0.1:0\"\nsnowflake_worker_id = 1024\n";
    let problems = problems(text, &[]);
    let problem = problems
        .iter()
        .find(|p| p.key == "server.snowflake_worker_id")
        .expect("snowflake_worker_id is reported");
    assert_eq!(problem.line, Some(3));
    assert!(problem.message.contains("between 0 and 1023, got 1024"));
}

#[test]
fn reports_every_problem_with_its_line() {
    let text = r#"[server]
mysql_listen = "localhost:3307"
mysql_auth_plugin = "sha256_password"
max_packet_size = 100
connect_timeout_ms = 0

[[users]]
name = "app"
password = "a"
password_env = "APP_PASSWORD"
databases = ["shop", "nope"]

[[users]]
name = "app"
databases = ["*"]

[[users]]
name = "env"
password = "${MISSING_PW}"

[databases.shop]
backend = "oracle"
default_data_source = "ds_9"
rules = ["rules/missing.toml"]
transaction = "2PC"

[databases.shop.data_sources.ds_0]
url = "postgres://pg@127.0.0.1/shop_ds_0"
max_connections = 0

[databases.shop.data_sources.ds_1]
url = "mysql://127.0.0.1:3306/shop_ds_1"
password_env = "DS1_PASSWORD"

[databases.empty]
backend = "mysql"
default_data_source = "ds_0"
"#;
    let problems = problems(text, &[]);
    assert_eq!(
        lines_and_keys(&problems),
        [
            (Some(2), "server.mysql_listen"),
            (Some(3), "server.mysql_auth_plugin"),
            (Some(4), "server.max_packet_size"),
            (Some(5), "server.connect_timeout_ms"),
            (Some(10), "users[0].password_env"),
            (Some(11), "users[0].databases[1]"),
            (Some(13), "users[1]"),
            (Some(14), "users[1].name"),
            (Some(19), "users[2].password"),
            (Some(22), "databases.shop.backend"),
            (Some(23), "databases.shop.default_data_source"),
            (Some(24), "databases.shop.rules[0]"),
            (Some(25), "databases.shop.transaction"),
            (Some(29), "databases.shop.data_sources.ds_0.max_connections"),
            (Some(32), "databases.shop.data_sources.ds_1.url"),
            (Some(33), "databases.shop.data_sources.ds_1.password_env"),
            (Some(35), "databases.empty"),
        ],
        "{}",
        ConfigError {
            problems: problems.clone()
        }
    );
    let message = |key: &str| {
        problems
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.message.as_str())
            .unwrap()
    };
    assert!(message("databases.shop.backend").contains(r#"expected one of: "mysql", "postgres""#));
    assert!(message("databases.shop.transaction").contains(r#""LOCAL", "XA", "SAGA""#));
    assert!(message("server.mysql_auth_plugin").contains("caching_sha2_password"));
    assert!(message("users[2].password").contains("`MISSING_PW`"));
    assert!(message("databases.shop.data_sources.ds_1.password_env").contains("`DS1_PASSWORD`"));
    assert!(message("users[1].name").contains("duplicate user `app`"));
    assert!(message("users[0].databases[1]").contains("unknown database `nope`"));
    assert!(message("databases.shop.rules[0]").contains("does not exist"));
    assert!(message("databases.shop.default_data_source").contains("ds_0, ds_1"));
    assert!(message("databases.empty").contains("no data sources"));
    assert!(message("databases.shop.data_sources.ds_1.url").contains("no user name"));
    // The backend is unknown, so ds_0's postgres URL is not also reported as a mismatch.
    assert!(!problems
        .iter()
        .any(|p| p.key == "databases.shop.data_sources.ds_0.url"));

    let first = &problems[0];
    assert_eq!((first.line, first.column), (Some(2), Some(16)));
    assert_eq!(first.file, Path::new("conf/dbmesh.toml"));
    assert!(ConfigError { problems }.to_string().starts_with(
        "conf/dbmesh.toml:2:16: server.mysql_listen: `localhost:3307` is not an IP address"
    ));
}

#[test]
fn reports_backend_and_url_scheme_mismatch() {
    let problems = problems(
        r#"[server]
mysql_listen = "127.0.0.1:3307"
[[users]]
name = "app"
password = "x"
[databases.shop]
backend = "mysql"
[databases.shop.data_sources.ds_0]
url = "postgresql://pg@127.0.0.1/shop"
"#,
        &[],
    );
    assert_eq!(
        lines_and_keys(&problems),
        [(Some(9), "databases.shop.data_sources.ds_0.url")]
    );
    assert!(problems[0]
        .message
        .contains("postgres URL but database `shop` has backend = \"mysql\""));
}

#[test]
fn reports_every_unknown_key_with_its_line() {
    let problems = problems(
        r#"[server]
mysql_listen = "127.0.0.1:3307"
max_conections = 5
admin_port = 9808

[[users]]
name = "app"
password = "x"
role = "admin"

[databases.shop]
backend = "mysql"
shards = 4

[databases.shop.data_sources.ds_0]
url = "mysql://root@127.0.0.1/shop"
max_connection = 3

[cluster]
name = "x"
"#,
        &[],
    );
    assert_eq!(
        lines_and_keys(&problems),
        [
            (Some(3), "server.max_conections"),
            (Some(4), "server.admin_port"),
            (Some(9), "users[0].role"),
            (Some(13), "databases.shop.shards"),
            (Some(17), "databases.shop.data_sources.ds_0.max_connection"),
            (Some(19), "cluster"),
        ]
    );
    assert_eq!(problems[0].column, Some(1));
    assert!(problems[4]
        .message
        .contains("did you mean `max_connections`?"));
    assert!(problems[5]
        .message
        .contains("allowed keys here: server, transaction, users, databases"));
}

#[test]
fn reports_type_errors_in_separate_sections_together() {
    let problems = problems(
        r#"[server]
mysql_listen = 3307

[[users]]
name = "app"
password = "x"
admin = "yes"

[databases.shop]
backend = "mysql"

[databases.shop.data_sources.ds_0]
url = "mysql://root@127.0.0.1/shop"
max_connections = -1

[databases.shop.data_sources.ds_1]
max_connections = 1
"#,
        &[],
    );
    assert_eq!(
        lines_and_keys(&problems),
        [
            (Some(2), "server.mysql_listen"),
            (Some(7), "users[0].admin"),
            (Some(9), "databases.shop.default_data_source"),
            (Some(14), "databases.shop.data_sources.ds_0.max_connections"),
            (Some(16), "databases.shop.data_sources.ds_1"),
        ],
        "{}",
        ConfigError {
            problems: problems.clone()
        }
    );
    assert!(problems[2]
        .message
        .contains("several data sources (ds_0, ds_1)"));
    assert!(problems[4].message.contains("missing field `url`"));
}

#[test]
fn reports_toml_syntax_errors_with_line_and_column() {
    let problems = problems("[server]\nmysql_listen = \"127.0.0.1:3307\nport = 1\n", &[]);
    assert_eq!(problems[0].line, Some(2));
    assert!(
        problems[0].message.starts_with("invalid TOML"),
        "{}",
        problems[0].message
    );
}

#[test]
fn requires_a_listener_a_user_and_a_password() {
    let problems = problems(
        "[server]\nadmin_listen = \"127.0.0.1:9808\"\n[[users]]\nname = \"app\"\n",
        &[],
    );
    assert_eq!(
        lines_and_keys(&problems),
        [(Some(1), "server"), (Some(3), "users[0]")]
    );
    assert!(problems[0]
        .message
        .contains("mysql_listen or postgres_listen"));
    assert!(problems[1].message.contains("no password"));

    let problems = problems_of("");
    assert_eq!(
        lines_and_keys(&problems),
        [(None, "server"), (None, "users")]
    );
}

#[test]
fn resolves_passwords_from_the_environment() {
    let text = r#"[server]
mysql_listen = "127.0.0.1:3307"
[[users]]
name = "app"
password = "${APP_PW}"
[[users]]
name = "literal"
password = "$APP_PW"
[[users]]
name = "by_name"
password_env = "OTHER_PW"
"#;
    let config = parse_with_env(
        text,
        Path::new("d.toml"),
        &env(&[("APP_PW", "s1"), ("OTHER_PW", "s2")]),
    )
    .unwrap();
    assert_eq!(config.user("app").unwrap().password, "s1");
    assert_eq!(config.user("literal").unwrap().password, "$APP_PW");
    assert_eq!(config.user("by_name").unwrap().password, "s2");
}

#[test]
fn parse_reads_the_process_environment() {
    // A name no other test uses, so setting it cannot disturb them.
    std::env::set_var("DBMESH_CONFIG_TEST_PARSE_PW", "from-process-env");
    let config = parse(
        "[server]\nmysql_listen = \"127.0.0.1:3307\"\n[[users]]\nname = \"app\"\npassword_env = \"DBMESH_CONFIG_TEST_PARSE_PW\"\n",
        Path::new("d.toml"),
    )
    .unwrap();
    assert_eq!(config.users[0].password, "from-process-env");
}

#[test]
fn rejects_duplicate_listen_addresses() {
    let problems = problems_of(
        "[server]\nmysql_listen = \"127.0.0.1:3307\"\npostgres_listen = \"127.0.0.1:3307\"\n[[users]]\nname = \"a\"\npassword = \"x\"\n",
    );
    assert_eq!(
        lines_and_keys(&problems),
        [(Some(3), "server.postgres_listen")]
    );
}

#[test]
fn load_reports_an_unreadable_file() {
    let err = load(Path::new("/nonexistent/dbmesh.toml")).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err
        .to_string()
        .starts_with("/nonexistent/dbmesh.toml: cannot read config file"));
}

#[test]
fn configuration_reference_example_is_valid() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let example = doc.rsplit("```toml\n").next().unwrap();
    let example = &example[..example.find("```").unwrap()];
    let dir = scratch_dir(
        "reference",
        &["keys/private.pem", "keys/public.pem", "rules/shop.toml"],
    );
    let vars = env(&[
        ("APP_PASSWORD", "a"),
        ("DBA_PASSWORD", "b"),
        ("SHOP_DS0_PASSWORD", "c"),
        ("SHOP_DS1_PASSWORD", "d"),
    ]);
    let config =
        parse_with_env(example, &dir.join("dbmesh.toml"), &vars).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.databases["shop"].data_sources.len(), 2);
    assert_eq!(
        config.databases["shop"].data_sources["ds_1"].url.password,
        "d"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quickstart_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/quickstart.toml");
    let config = load(&path).unwrap();
    assert_eq!(
        config.server.mysql_listen,
        Some("127.0.0.1:3307".parse().unwrap())
    );
    assert_eq!(
        config.server.postgres_listen,
        Some("127.0.0.1:6432".parse().unwrap())
    );
    assert_eq!(
        config.server.admin_listen,
        Some("127.0.0.1:9808".parse().unwrap())
    );
    let app = config.user("app").unwrap();
    assert_eq!(app.password, "app-secret");
    assert!(app.may_use("shop") && app.may_use("shop_pg"));
    assert_eq!(config.databases["shop"].backend, BackendKind::Mysql);
    assert_eq!(
        config.databases["shop"].data_sources["ds_0"]
            .url
            .to_string(),
        "mysql://root@127.0.0.1:3306/shop_ds_0"
    );
    assert_eq!(config.databases["shop_pg"].backend, BackendKind::Postgres);
    assert_eq!(
        config.databases["shop_pg"].data_sources["ds_0"]
            .url
            .to_string(),
        "postgres://postgres@127.0.0.1:5432/shop_ds_0"
    );
}

#[test]
fn a_rule_file_shared_by_two_databases_reports_its_problem_once() {
    let dir = scratch_dir("shared-rules", &[]);
    std::fs::write(dir.join("rules.toml"), "[algorithms.m]\ntype = 7\n").unwrap();
    let text = r#"
[server]
mysql_listen = "127.0.0.1:3307"

[[users]]
name = "app"
password = "x"
databases = ["*"]

[databases.a]
backend = "mysql"
default_data_source = "ds_0"
rules = ["rules.toml"]
[databases.a.data_sources.ds_0]
url = "mysql://root@127.0.0.1/a"

[databases.b]
backend = "mysql"
default_data_source = "ds_0"
rules = ["rules.toml"]
[databases.b.data_sources.ds_0]
url = "mysql://root@127.0.0.1/b"
"#;
    let problems = parse_with_env(text, &dir.join("dbmesh.toml"), &env(&[]))
        .expect_err("the rule file is invalid")
        .problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].file.ends_with("rules.toml"), "{problems:?}");
}

const XA_BASE: &str = r#"
[server]
mysql_listen = "127.0.0.1:3307"

[[users]]
name = "app"
password = "x"
databases = ["*"]

[databases.shop]
backend = "mysql"
default_data_source = "ds_0"
transaction = "XA"

[databases.shop.data_sources.ds_0]
url = "mysql://root@127.0.0.1:3306/shop_0"
"#;

#[test]
fn transaction_section_names_a_shared_log_table() {
    let text = format!(
        "{XA_BASE}\n[transaction]\ninstance_id = \"pod_1\"\nlog = \"table\"\nlog_data_source = \"shop.ds_0\"\nrecovery_interval_ms = 500\nlease_ms = 3000\n"
    );
    let config = parse_with_env(&text, Path::new("conf/dbmesh.toml"), &env(&[])).unwrap();
    let t = &config.transaction;
    assert_eq!(t.instance_id.as_deref(), Some("pod_1"));
    assert_eq!(
        t.log,
        TxnLogConfig::Table {
            database: "shop".into(),
            data_source: "ds_0".into()
        }
    );
    assert_eq!(t.recovery_interval, Duration::from_millis(500));
    assert_eq!(t.lease, Duration::from_millis(3000));
    assert!(t.configured);
    assert_eq!(config.databases["shop"].transaction, TransactionType::Xa);
}

#[test]
fn file_log_defaults_next_to_the_config() {
    let config = parse_with_env(XA_BASE, Path::new("conf/dbmesh.toml"), &env(&[])).unwrap();
    assert_eq!(config.transaction.log, TxnLogConfig::File(None));
    assert!(!config.transaction.configured);
    let text = format!("{XA_BASE}\n[transaction]\nlog_path = \"xa/log\"\n");
    let config = parse_with_env(&text, Path::new("conf/dbmesh.toml"), &env(&[])).unwrap();
    assert_eq!(
        config.transaction.log,
        TxnLogConfig::File(Some(PathBuf::from("conf/xa/log")))
    );
}

#[test]
fn bad_transaction_settings_are_each_reported() {
    let text = format!(
        "{}\n[transaction]\ninstance_id = \"has-dash\"\nlog = \"table\"\nlog_data_source = \"shop.ds_9\"\nlease_ms = 0\n",
        XA_BASE
            .replace(r#"transaction = "XA""#, r#"transaction = "TWO_PHASE""#)
            .replace(r#"backend = "mysql""#, r#"backend = "postgres""#)
            .replace("mysql://root@127.0.0.1:3306", "postgres://postgres@127.0.0.1:5432")
    );
    let problems = problems_of(&text);
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "databases.shop.transaction",
            "transaction.instance_id",
            "transaction.log_data_source",
            "transaction.lease_ms"
        ],
        "{problems:?}"
    );
    assert!(problems[0].message.contains(r#""LOCAL", "XA", "SAGA""#));
    assert!(problems[2].message.contains("shop.ds_0"));
    assert!(problems.iter().all(|p| p.line.is_some()));
}

#[test]
fn saga_is_accepted_on_mysql_and_postgres_databases() {
    let text = XA_BASE.replace(r#"transaction = "XA""#, r#"transaction = "SAGA""#);
    let config = parse_with_env(&text, Path::new("conf/dbmesh.toml"), &env(&[]))
        .expect("SAGA is accepted on a MySQL database");
    assert_eq!(config.databases["shop"].transaction, TransactionType::Saga);
    let text = text
        .replace(r#"backend = "mysql""#, r#"backend = "postgres""#)
        .replace(
            "mysql://root@127.0.0.1:3306",
            "postgres://postgres@127.0.0.1:5432",
        );
    let config = parse_with_env(&text, Path::new("conf/dbmesh.toml"), &env(&[]))
        .expect("SAGA is accepted on a PostgreSQL database");
    assert_eq!(config.databases["shop"].transaction, TransactionType::Saga);
}

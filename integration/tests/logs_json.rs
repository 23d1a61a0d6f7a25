//! `log_format = "json"` writes one JSON object per line, with the connection's span; and
//! `slow_statement_ms` logs slow statements with their database, type and route. Text logs
//! written to a file carry no terminal colour codes.

use mysql_async::prelude::Queryable;

use dbmesh_integration::{free_port, listen_on, mysql_config, ChildProxy, MysqlDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_connection_span_and_slow_statements_their_route() {
    let db = MysqlDatabase::create("logs");
    let port = free_port();
    // slow_statement_ms = 0: every statement is slow enough to be logged.
    let toml = mysql_config("shop", &db.url(), "").replace(
        "[server]\n",
        "[server]\nlog_format = \"json\"\nslow_statement_ms = 0\nlog_level = \"info\"\n",
    );
    let mut proxy = ChildProxy::start(&listen_on(&toml, port), port).await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(dbmesh_integration::APP_USER))
        .pass(Some(dbmesh_integration::APP_PASSWORD))
        .db_name(Some("shop"))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    conn.query_drop("SELECT 1 /* logged */").await.unwrap();
    conn.disconnect().await.unwrap();
    proxy.signal("TERM");
    assert!(proxy.wait_exit().await.success());

    let log = proxy.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON object: {line}"
        );
    }
    let slow = lines
        .iter()
        .find(|l| l.contains("\"message\":\"slow statement\"") && l.contains("\"type\":\"select\""))
        .unwrap_or_else(|| panic!("no slow-statement line for the SELECT:\n{log}"));
    for field in [
        "\"level\":\"WARN\"",
        "\"target\":\"dbmesh::slow_statement\"",
        "\"database\":\"shop\"",
        "\"route\":\"single\"",
        "\"elapsed_ms\":",
        // The connection's span.
        "\"name\":\"mysql\"",
        "\"conn\":",
    ] {
        assert!(slow.contains(field), "{field} missing in {slow}");
    }
    assert!(!slow.contains("logged"), "SQL text is not logged: {slow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_redirected_to_a_file_have_no_colour_codes() {
    let db = MysqlDatabase::create("logs_text");
    let port = free_port();
    let toml = mysql_config("shop", &db.url(), "").replace(
        "[server]\n",
        "[server]\nslow_statement_ms = 0\nlog_level = \"info\"\n",
    );
    let mut proxy = ChildProxy::start(&listen_on(&toml, port), port).await;
    proxy.signal("TERM");
    assert!(proxy.wait_exit().await.success());

    let log = proxy.log();
    assert!(log.contains("listener ready"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "ANSI escape codes in a log file:\n{log:?}"
    );
}

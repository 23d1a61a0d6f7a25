//! Several statements in one COM_QUERY on a sharded database: a string that names sharded
//! tables is run statement by statement, each routed on its own, the client getting one
//! result per statement as from one server; the first error ends the string. PyMySQL
//! (with `CLIENT.MULTI_STATEMENTS`) reads the results.

use dbmesh_integration::{
    run_program, ShardedDb, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn orders_db() -> ShardedDb {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        conn.query_drop(ddl).await.unwrap();
    }
    db
}

/// Runs `sql` as one COM_QUERY with PyMySQL and returns one line per result (`rows [...]`
/// or `ok <affected rows>`), then `error <errno>` if one ended the string, then what a
/// plain `SELECT 7` on the same connection returns.
async fn results(db: &ShardedDb, sql: &str) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys, pymysql
from pymysql.constants import CLIENT
port, user, password, db, sql = sys.argv[1:]
c = pymysql.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                    database=db, client_flag=CLIENT.MULTI_STATEMENTS, autocommit=True)
cur = c.cursor()
def show():
    if cur.description is None:
        print("ok", cur.rowcount)
    else:
        print("rows", [r[0] for r in cur.fetchall()])
try:
    cur.execute(sql)
    show()
    while cur.nextset():
        show()
except pymysql.err.MySQLError as e:
    print("error", e.args[0])
cur.execute("SELECT 7")
print("after", cur.fetchall()[0][0])
"#;
    let args = [
        "-c".to_string(),
        SCRIPT.to_string(),
        db.proxy.mysql_port().to_string(),
        APP_USER.to_string(),
        APP_PASSWORD.to_string(),
        db.logical.clone(),
        sql.to_string(),
    ];
    let out = run_program("python3", &args, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

async fn orders_on(db: &ShardedDb, i: usize) -> Vec<i64> {
    db.mysql_direct_query(
        i,
        "SELECT order_id FROM t_order_0 UNION ALL SELECT order_id FROM t_order_1 ORDER BY 1",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_statement_of_a_string_runs_where_it_belongs() {
    let db = orders_db().await;
    let lines = results(
        &db,
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 1, 1), (2, 2, 2);
         SELECT order_id FROM t_order WHERE user_id = 1 AND order_id = 1;
         UPDATE t_order SET amount = 5 WHERE order_id IN (1, 2);
         SELECT amount FROM t_order WHERE user_id = 2 AND order_id = 2;
         SELECT 42",
    )
    .await;
    assert_eq!(
        lines,
        [
            "ok 2",
            "rows [1]",
            "ok 2",
            "rows [5]",
            "rows [42]",
            "after 7"
        ]
    );
    assert_eq!(
        (orders_on(&db, 0).await, orders_on(&db, 1).await),
        (vec![2], vec![1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_error_ends_the_string() {
    let db = orders_db().await;
    let lines = results(
        &db,
        "INSERT INTO t_order (order_id, user_id) VALUES (3, 3);
         UPDATE t_order SET user_id = 4 WHERE order_id = 3;
         INSERT INTO t_order (order_id, user_id) VALUES (4, 4)",
    )
    .await;
    assert_eq!(lines, ["ok 1", "error 1235", "after 7"]);
    assert_eq!(
        (orders_on(&db, 0).await, orders_on(&db, 1).await),
        (vec![], vec![3])
    );
    // A backend's error ends it too.
    let lines = results(
        &db,
        "SELECT order_id FROM t_order WHERE user_id = 3 AND order_id = 3;
         INSERT INTO t_order (order_id, user_id) VALUES (3, 3);
         INSERT INTO t_order (order_id, user_id) VALUES (4, 4)",
    )
    .await;
    assert_eq!(lines, ["rows [3]", "error 1062", "after 7"]);
    assert_eq!(orders_on(&db, 0).await, Vec::<i64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_in_one_string_spans_data_sources() {
    let db = orders_db().await;
    let lines = results(
        &db,
        "BEGIN; INSERT INTO t_order (order_id, user_id) VALUES (5, 5);
         INSERT INTO t_order (order_id, user_id) VALUES (6, 6); ROLLBACK",
    )
    .await;
    assert_eq!(lines, ["ok 0", "ok 1", "ok 1", "ok 0", "after 7"]);
    assert_eq!(
        (orders_on(&db, 0).await, orders_on(&db, 1).await),
        (vec![], vec![])
    );
    let lines = results(
        &db,
        "START TRANSACTION; INSERT INTO t_order (order_id, user_id) VALUES (5, 5);
         INSERT INTO t_order (order_id, user_id) VALUES (6, 6); COMMIT;",
    )
    .await;
    assert_eq!(lines.last().map(String::as_str), Some("after 7"));
    assert_eq!(
        (orders_on(&db, 0).await, orders_on(&db, 1).await),
        (vec![6], vec![5])
    );
}

/// Statements dbmesh answers itself and statements on single tables mix in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_dbmesh_answers_itself_mix_in() {
    let db = orders_db().await;
    let lines = results(
        &db,
        "SET @x = 3; INSERT INTO t_order (user_id, amount) VALUES (3, 1);
         SELECT user_id FROM t_order WHERE user_id = 3; PREVIEW SELECT * FROM t_order WHERE user_id = 1 AND order_id = 1;
         CREATE TABLE t_note (id INT PRIMARY KEY); INSERT INTO t_note VALUES (1), (2);
         SELECT id FROM t_note ORDER BY id; SELECT @x",
    )
    .await;
    assert_eq!(
        lines,
        [
            "ok 0",
            "ok 1",
            "rows [3]",
            "rows ['ds_1']",
            "ok 0",
            "ok 2",
            "rows [1, 2]",
            "rows [3]",
            "after 7"
        ]
    );
}

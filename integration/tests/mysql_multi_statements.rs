//! Several statements in one COM_QUERY: every result set reaches the client, in order, as a
//! direct connection returns them; an error in a later statement ends the response cleanly.

use dbmesh_integration::{
    mysql_config, mysql_port, server_error, MysqlDatabase, Proxy, RawClient, APP_PASSWORD, APP_USER,
};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

/// One result set: column names, rows, affected rows (0 for sets with rows).
type Set = (Vec<String>, Vec<Vec<Value>>, u64);

/// Reads every result set of `sql` as mysql_async exposes them; an error ends the list as
/// `Err(code)`. (mysql_async folds a trailing OK-only set into the set before it, so the
/// exact wire sequence is compared with a raw client below.)
async fn all_sets(conn: &mut Conn, sql: &str) -> Vec<Result<Set, u16>> {
    let mut out = Vec::new();
    let mut result = match conn.query_iter(sql).await {
        Ok(r) => r,
        Err(e) => return vec![Err(server_error::<()>(Err(e)).0)],
    };
    loop {
        let names: Vec<String> = result
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        // Only an OK-only set has its own affected-rows count.
        let affected = if names.is_empty() {
            result.affected_rows()
        } else {
            0
        };
        match result.collect::<Row>().await {
            Ok(rows) => out.push(Ok((
                names,
                rows.into_iter().map(Row::unwrap).collect(),
                affected,
            ))),
            Err(e) => {
                out.push(Err(server_error::<()>(Err(e)).0));
                return out;
            }
        }
        if result.is_empty() {
            break;
        }
    }
    // An error in a later statement is pending here; dropping the result reports it.
    if let Err(e) = result.drop_result().await {
        out.push(Err(server_error::<()>(Err(e)).0));
    }
    out
}

async fn setup(prefix: &str) -> (MysqlDatabase, Proxy, Conn, Conn) {
    let db = MysqlDatabase::create(prefix);
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let proxied = Conn::new(proxy.app_opts("shop")).await.unwrap();
    (db, proxy, direct, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_set_of_a_multi_statement_arrives_in_order() {
    let (_db, _proxy, mut direct, mut proxied) = setup("multi").await;
    let sql = "SELECT 1 AS a; SELECT 2 AS b, 'two' AS c; INSERT INTO t VALUES (1), (2); \
               SELECT id FROM t ORDER BY id";
    let via_proxy = all_sets(&mut proxied, sql).await;
    let expected: Vec<Result<Set, u16>> = vec![
        Ok((vec!["a".into()], vec![vec![Value::Bytes(b"1".to_vec())]], 0)),
        Ok((
            vec!["b".into(), "c".into()],
            vec![vec![
                Value::Bytes(b"2".to_vec()),
                Value::Bytes(b"two".to_vec()),
            ]],
            0,
        )),
        Ok((vec![], vec![], 2)),
        Ok((
            vec!["id".into()],
            vec![
                vec![Value::Bytes(b"1".to_vec())],
                vec![Value::Bytes(b"2".to_vec())],
            ],
            0,
        )),
    ];
    assert_eq!(via_proxy, expected);
    direct.query_drop("DELETE FROM t").await.unwrap();
    assert_eq!(all_sets(&mut direct, sql).await, expected);
    // The connection is back at a command boundary.
    let one: Option<i32> = proxied.query_first("SELECT 7").await.unwrap();
    assert_eq!(one, Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_in_the_second_statement_ends_the_multi_statement_like_direct() {
    let (_db, _proxy, mut direct, mut proxied) = setup("multi_err").await;
    let sql = "INSERT INTO t VALUES (1); SELECT * FROM no_such_table; INSERT INTO t VALUES (2)";
    let via_proxy = all_sets(&mut proxied, sql).await;
    assert_eq!(via_proxy, vec![Ok((vec![], vec![], 1)), Err(1146)]);
    // Only the first statement ran.
    let ids: Vec<i32> = direct.query("SELECT id FROM t").await.unwrap();
    assert_eq!(ids, vec![1]);
    direct.query_drop("DELETE FROM t").await.unwrap();
    assert_eq!(all_sets(&mut direct, sql).await, via_proxy);

    // Both connections are usable afterwards.
    let n: Option<i64> = proxied.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_in_the_first_statement_of_a_multi_statement_runs_nothing_else() {
    let (_db, _proxy, mut direct, mut proxied) = setup("multi_err1").await;
    let sql = "SELEC 1; INSERT INTO t VALUES (1)";
    assert_eq!(all_sets(&mut proxied, sql).await, vec![Err(1064)]);
    assert_eq!(all_sets(&mut direct, sql).await, vec![Err(1064)]);
    let n: Option<i64> = proxied.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_response_is_byte_for_byte_the_backends() {
    let (db, proxy, _direct, _proxied) = setup("multi_raw").await;
    let sql = "SELECT 1 AS a, NULL AS n; INSERT INTO t VALUES (1), (2); SELECT id FROM t; \
               DO 1; SELECT * FROM no_such_table; SELECT 'never'";
    let mut query = vec![0x03];
    query.extend_from_slice(sql.as_bytes());
    let mut via_proxy = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    // Multi-statements must be switched on (COM_SET_OPTION), as the raw client did not ask
    // for them at login.
    let on = [0x1B, 0, 0];
    assert_eq!(via_proxy.command(&on).await[0].1[0], 0xFE);
    let proxied = via_proxy.command(&query).await;
    mariadb_delete(&db);
    let mut direct = RawClient::login(mysql_port(), "root", "", &db.name).await;
    assert_eq!(direct.command(&on).await[0].1[0], 0xFE);
    let expected = direct.command(&query).await;
    assert_eq!(proxied, expected);
    // Four result sets (two with rows, two OKs), then the error, nothing of the last SELECT.
    assert_eq!(expected.last().unwrap().1[0], 0xFF);
    assert!(expected.iter().all(|(_, p)| p != b"\x05never"));
}

fn mariadb_delete(db: &MysqlDatabase) {
    dbmesh_integration::mariadb_exec(&format!("DELETE FROM `{}`.t", db.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_procedure_result_sets_arrive_in_both_protocols() {
    let (_db, _proxy, mut direct, mut proxied) = setup("multi_call").await;
    direct
        .query_drop("CREATE PROCEDURE p(IN n INT) BEGIN SELECT n AS a; SELECT n + 1 AS b; END")
        .await
        .unwrap();
    for conn in [&mut proxied, &mut direct] {
        let mut result = conn.exec_iter("CALL p(?)", (5,)).await.unwrap();
        let first: Vec<i64> = result.collect().await.unwrap();
        let second: Vec<i64> = result.collect().await.unwrap();
        drop(result);
        assert_eq!((first, second), (vec![5], vec![6]));
        let sets = all_sets(conn, "CALL p(7)").await;
        assert_eq!(sets.len(), 2, "{sets:?}");
        let after: Option<i64> = conn.query_first("SELECT 9").await.unwrap();
        assert_eq!(after, Some(9));
    }
}

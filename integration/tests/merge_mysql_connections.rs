//! The connections of a merged SELECT on MySQL: outside a transaction each actual table
//! of a data source beyond the first runs on a connection of its own from the pool, in the
//! session's state, given back clean; an exhausted pool fails the statement with the pool's
//! error; inside a transaction the tables share the transaction's connection.

use dbmesh_integration::{ShardedDb, ORDERS_DDL, ORDERS_RULES};
use mysql_async::prelude::*;
use mysql_async::Conn;

/// One row in each of the four actual tables (`ds_{user_id % 2}.t_order_{order_id % 2}`).
async fn orders(db: &ShardedDb) -> Conn {
    let mut conn = Conn::new(db.mysql_opts()).await.unwrap();
    conn.query_drop(ORDERS_DDL[0]).await.unwrap();
    conn.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (1, 0, 10), (2, 0, 20), (3, 1, 30), (4, 1, 40)",
    )
    .await
    .unwrap();
    conn
}

/// dbmesh's connections to data source `ds_<i>`: (all, running a statement).
async fn backend_connections(db: &ShardedDb, i: usize) -> (usize, usize) {
    let commands: Vec<String> = db
        .mysql_direct_query(
            i,
            "SELECT COMMAND FROM information_schema.PROCESSLIST \
             WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
        )
        .await;
    let running = commands.iter().filter(|c| *c == "Query").count();
    (commands.len(), running)
}

#[tokio::test]
async fn extra_connections_carry_the_session_state_and_go_back_clean() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = orders(&db).await;
    let sql = "SELECT order_id, @@session.max_sort_length FROM t_order ORDER BY order_id";
    for (round, length) in [1234u64, 2048, 4321].into_iter().enumerate() {
        conn.query_drop(format!("SET SESSION max_sort_length = {length}"))
            .await
            .unwrap();
        let text: Vec<(i64, u64)> = conn.query(sql).await.unwrap();
        let binary: Vec<(i64, u64)> = conn.exec(sql, ()).await.unwrap();
        let expected: Vec<(i64, u64)> = (1..=4).map(|id| (id, length)).collect();
        assert_eq!(text, expected, "round {round}, text protocol");
        assert_eq!(binary, expected, "round {round}, prepared");
        for i in 0..2 {
            let (all, running) = backend_connections(&db, i).await;
            // The session's own connection and one given back to the pool, reused.
            assert!(
                all <= 2,
                "ds_{i} has {all} dbmesh connections after round {round}"
            );
            assert_eq!(
                running, 0,
                "ds_{i} still runs a statement after round {round}"
            );
        }
    }
}

#[tokio::test]
async fn an_exhausted_pool_fails_the_merge_with_its_error_and_the_session_goes_on() {
    let db = ShardedDb::mysql_with_pools(ORDERS_RULES, 2, 1, 300).await;
    let mut conn = orders(&db).await;
    let sql = "SELECT order_id FROM t_order ORDER BY order_id";
    match conn.query::<i64, _>(sql).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!((e.code, e.state.as_str()), (1040, "08004"), "{e:?}");
            assert!(
                e.message.contains("'ds_0'") && e.message.contains("max_connections = 1"),
                "{}",
                e.message
            );
        }
        other => panic!("a merge needing two connections of a pool of one: {other:?}"),
    }
    let one: Vec<i64> = conn
        .query("SELECT order_id FROM t_order WHERE user_id = 0 AND order_id = 2")
        .await
        .unwrap();
    assert_eq!(one, [2]);
    // Inside a transaction the actual tables share the transaction's connection.
    conn.query_drop("BEGIN").await.unwrap();
    let all: Vec<i64> = conn.query(sql).await.unwrap();
    assert_eq!(all, [1, 2, 3, 4]);
    conn.query_drop("COMMIT").await.unwrap();
}

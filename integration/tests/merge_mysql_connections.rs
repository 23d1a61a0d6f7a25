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

/// dbmesh's connections to the data source `control` is connected to, directly (one
/// control connection for the whole test, so that no closing one is counted): (all,
/// running a statement).
async fn backend_connections(control: &mut Conn) -> (usize, usize) {
    let commands: Vec<String> = control
        .query(
            "SELECT COMMAND FROM information_schema.PROCESSLIST \
             WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
        )
        .await
        .unwrap();
    let running = commands.iter().filter(|c| *c == "Query").count();
    (commands.len(), running)
}

/// A direct connection to each data source.
async fn controls(db: &ShardedDb) -> Vec<Conn> {
    let mut out = Vec::new();
    for i in 0..2 {
        out.push(Conn::new(db.mysql_direct(i)).await.unwrap());
    }
    out
}

#[tokio::test]
async fn extra_connections_carry_the_session_state_and_go_back_clean() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut conn = orders(&db).await;
    let mut controls = controls(&db).await;
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
        for (i, control) in controls.iter_mut().enumerate() {
            let (all, running) = backend_connections(control).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_interrupts_the_shard_queries_on_extra_connections_too() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut victim = orders(&db).await;
    let victim_id = victim.id();
    let mut controls = controls(&db).await;
    // Four actual tables, one row each: two of them run on connections of their own.
    let sleeper = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r: Result<Vec<(i64, i64)>, _> = victim
            .query("SELECT order_id, SLEEP(20) AS slept FROM t_order ORDER BY order_id")
            .await;
        (r, started.elapsed(), victim)
    });
    // Wait until all four shard queries sleep.
    loop {
        let mut sleeping = 0;
        for control in &mut controls {
            sleeping += backend_connections(control).await.1;
        }
        if sleeping == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut killer = Conn::new(db.mysql_opts()).await.unwrap();
    killer
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    let (result, elapsed, mut victim) = sleeper.await.unwrap();
    // MariaDB answers an interrupted SLEEP() with 1 (a finished one with 0), or error 1317.
    match result {
        Ok(rows) => assert_eq!(
            rows,
            [(1, 1), (2, 1), (3, 1), (4, 1)],
            "every shard query was interrupted"
        ),
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e}"),
        Err(e) => panic!("unexpected error {e}"),
    }
    // After an error the merge reads every shard query to its end: one not interrupted
    // would hold the answer back for its whole 20 s (as in sharding_mysql_kill.rs).
    assert!(
        elapsed < std::time::Duration::from_secs(15),
        "a shard query was not interrupted ({elapsed:?})"
    );
    let rows: Vec<i64> = victim
        .query("SELECT order_id FROM t_order ORDER BY order_id")
        .await
        .unwrap();
    assert_eq!(rows, [1, 2, 3, 4], "the connection stays usable");
}

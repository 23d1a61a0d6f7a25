//! `KILL QUERY <dbmesh id>` interrupts a sharded statement on every data source it runs
//! on at once, not only on one of them.

use std::time::{Duration, Instant};

use dbmesh_integration::{ShardedDb, ORDERS_DDL, ORDERS_RULES};
use mysql_async::prelude::*;
use mysql_async::Conn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_interrupts_every_node_of_a_fan_out() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut victim = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        victim.query_drop(ddl).await.unwrap();
    }
    victim
        .query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, 1)")
        .await
        .unwrap();
    let victim_id = victim.id();
    // t_order_0 on ds_0 and on ds_1: two nodes sleeping at the same time.
    let sleeper = tokio::spawn(async move {
        let started = Instant::now();
        let r: Result<Vec<i64>, _> = victim
            .query("SELECT SLEEP(20) FROM t_order WHERE order_id = 12")
            .await;
        (r, started.elapsed(), victim)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killer = Conn::new(db.mysql_opts()).await.unwrap();
    killer
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    let (result, elapsed, mut victim) = sleeper.await.unwrap();
    // MariaDB answers an interrupted SLEEP() with 1 (or error 1317).
    match result {
        Ok(v) => assert_eq!(v, [1, 1], "SLEEP returns 1 when interrupted"),
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e}"),
        Err(e) => panic!("unexpected error {e}"),
    }
    assert!(
        elapsed < Duration::from_secs(15),
        "a node's statement was not interrupted ({elapsed:?})"
    );
    let users: Vec<i32> = victim.query("SELECT user_id FROM t_order").await.unwrap();
    assert_eq!(users.len(), 2, "the connection stays usable");
}

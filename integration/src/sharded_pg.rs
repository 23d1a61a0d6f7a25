//! PostgreSQL helpers for [`ShardedDb`]: clients through dbmesh and straight to each data
//! source, and the tables of [`ORDERS_RULES`](crate::ORDERS_RULES).

use crate::{pg_connect, ShardedDb};

/// The tables of `ORDERS_RULES` for PostgreSQL, created through dbmesh: each CREATE fans
/// out to every actual table of its logical table (`t_province` to every data source).
pub const PG_ORDERS_DDL: [&str; 3] = [
    "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, amount INT, note TEXT)",
    "CREATE TABLE t_order_item (item_id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL, user_id INT NOT NULL, sku VARCHAR(32))",
    "CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32))",
];

impl ShardedDb {
    /// A tokio-postgres client through dbmesh, as the app user.
    pub async fn pg_client(&self) -> tokio_postgres::Client {
        pg_connect(&self.pg_dsn())
            .await
            .expect("connect through dbmesh")
    }

    /// A tokio-postgres client straight to data source `ds_<i>`.
    pub async fn pg_direct_client(&self, i: usize) -> tokio_postgres::Client {
        pg_connect(&self.pg_direct(i))
            .await
            .expect("direct connection to the data source")
    }

    /// Runs `sql` on data source `ds_<i>` directly: what a data node really holds.
    pub async fn pg_direct_query(&self, i: usize, sql: &str) -> Vec<tokio_postgres::Row> {
        let client = self.pg_direct_client(i).await;
        client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("direct query {sql:?} on ds_{i}: {e}"))
    }

    /// A sharded PostgreSQL database with `ORDERS_RULES` and its tables created through
    /// dbmesh.
    pub async fn pg_orders() -> ShardedDb {
        let db = ShardedDb::postgres(crate::ORDERS_RULES, 2).await;
        let client = db.pg_client().await;
        for ddl in PG_ORDERS_DDL {
            client
                .batch_execute(ddl)
                .await
                .unwrap_or_else(|e| panic!("{ddl}: {e}"));
        }
        db
    }
}

//! The bank of the XA tests: accounts spread over two data sources by `id % 2`, transfers
//! between them, and what must hold afterwards (the total never changes, every committed
//! transfer is applied whole, no prepared branch is left behind).

use crate::ShardedDb;

/// `account` over `ds_0` (even ids) and `ds_1` (odd ids).
pub const BANK_RULES: &str = r#"
[tables.account]
nodes             = "ds_${0..1}.account"
database_strategy = { column = "id", algorithm = "by_id" }

[algorithms.by_id]
type           = "MOD"
sharding_count = 2
"#;

/// Accounts in the bank, and each one's opening balance.
pub const ACCOUNTS: i64 = 10;
pub const OPENING: i64 = 1000;

/// An instance id no other test uses (letters, digits and `_`, at most 24).
pub fn unique_instance_id() -> String {
    let name = crate::unique_name("i").replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let keep = name.len().saturating_sub(23);
    format!("t{}", &name[keep..])
}

/// The debit and the credit of a transfer, in account order (rows are locked in one
/// order, so concurrent transfers cannot deadlock across data sources, which neither
/// server would detect).
pub fn transfer_statements(from: i64, to: i64, amount: i64) -> Vec<String> {
    let mut updates = vec![
        (
            from,
            format!("UPDATE account SET balance = balance - {amount} WHERE id = {from}"),
        ),
        (
            to,
            format!("UPDATE account SET balance = balance + {amount} WHERE id = {to}"),
        ),
    ];
    updates.sort_by_key(|(id, _)| *id);
    updates.into_iter().map(|(_, sql)| sql).collect()
}

/// Balances after `transfers` (from, to, amount) applied to the opening balances.
pub fn expected_balances(transfers: &[(i64, i64, i64)]) -> Vec<(i64, i64)> {
    let mut balances: Vec<(i64, i64)> = (0..ACCOUNTS).map(|id| (id, OPENING)).collect();
    for &(from, to, amount) in transfers {
        balances[from as usize].1 -= amount;
        balances[to as usize].1 += amount;
    }
    balances
}

impl ShardedDb {
    /// Balances (id, balance) read from each MySQL data source directly, by id.
    pub async fn mysql_balances(&self) -> Vec<(i64, i64)> {
        let mut all: Vec<(i64, i64)> = Vec::new();
        for i in 0..2 {
            all.extend(
                self.mysql_direct_query::<(i64, i64)>(i, "SELECT id, balance FROM account")
                    .await,
            );
        }
        all.sort();
        all
    }

    /// Balances read from each PostgreSQL data source directly, by id.
    pub async fn pg_balances(&self) -> Vec<(i64, i64)> {
        let mut all: Vec<(i64, i64)> = Vec::new();
        for i in 0..2 {
            for row in self
                .pg_direct_query(i, "SELECT id, balance FROM account")
                .await
            {
                all.push((row.get(0), row.get(1)));
            }
        }
        all.sort();
        all
    }

    /// Prepared XA branches on the MySQL server whose gtrid names `instance`.
    pub async fn mysql_prepared(&self, instance: &str) -> Vec<String> {
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = self.mysql_direct_query(0, "XA RECOVER").await;
        rows.into_iter()
            .map(|(_, _, _, data)| String::from_utf8_lossy(&data).into_owned())
            .filter(|d| d.starts_with(&format!("dbmesh-{instance}-")))
            .collect()
    }

    /// Kills, on the server, every connection dbmesh holds to MySQL data source `ds_<i>`.
    pub async fn mysql_kill_connections_to(&self, i: usize) -> usize {
        let database = match &self.shards {
            crate::Shards::Mysql(dbs) => dbs[i].name.clone(),
            crate::Shards::Postgres(_) => panic!("not a MySQL sharded database"),
        };
        let ids: Vec<u64> = self
            .mysql_direct_query(
                i,
                &format!("SELECT id FROM information_schema.processlist WHERE db = '{database}' AND id <> CONNECTION_ID()"),
            )
            .await;
        use mysql_async::prelude::Queryable;
        let mut conn = mysql_async::Conn::new(self.mysql_direct(i))
            .await
            .expect("direct connection to the data source");
        for id in &ids {
            match conn.query_drop(format!("KILL {id}")).await {
                // The connection ended between the listing and the KILL: nothing to do.
                Err(mysql_async::Error::Server(e)) if e.code == 1094 => {}
                other => other.expect("KILL"),
            }
        }
        let _ = conn.disconnect().await;
        ids.len()
    }

    /// Prepared transactions of `instance` in either PostgreSQL data source's database.
    pub async fn pg_prepared(&self, instance: &str) -> Vec<String> {
        let mut all = Vec::new();
        for i in 0..2 {
            for row in self
                .pg_direct_query(
                    i,
                    "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
                )
                .await
            {
                let gid: String = row.get(0);
                if gid.starts_with(&format!("dbmesh-{instance}-")) {
                    all.push(gid);
                }
            }
        }
        all
    }
}

//! The transaction log as two tables in a data source, so every dbmesh instance that
//! names the same data source shares it:
//!
//! - `dbmesh_xa_log (gtrid, participants, decided_ms)`: one row per commit decision,
//!   deleted once every branch has committed;
//! - `dbmesh_xa_lease (instance_id, boot, expires_ms)`: one row per instance, renewed
//!   while it runs; an instance whose lease expired, or that restarted (another boot), is
//!   dead, and its prepared branches are resolved by whoever runs recovery.
//!
//! - `dbmesh_saga_log (gtrid, step, database_name, data_source, undo_sql)`: the
//!   compensating statements of each SAGA transaction, deleted when it commits or has
//!   been compensated.
//!
//! Times are the log server's clock, so instances need not agree on theirs. Both tables
//! are created on first use (MySQL/MariaDB or PostgreSQL).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use super::super::control::ControlConn;
use super::super::xid::GlobalId;
use super::super::TxnError;
use super::{Lease, UndoStep};
use crate::config::{BackendKind, DataSourceUrl};

/// Idle connections kept for the log.
const MAX_IDLE: usize = 8;

pub struct TableLog {
    /// `database.data_source`, for messages.
    name: String,
    url: DataSourceUrl,
    connect_timeout: Duration,
    idle: Mutex<Vec<ControlConn>>,
    created: std::sync::atomic::AtomicBool,
}

impl TableLog {
    pub fn new(name: String, url: DataSourceUrl, connect_timeout: Duration) -> TableLog {
        TableLog {
            name,
            url,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            created: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, cause: String) -> TxnError {
        TxnError::Log {
            log: format!("table log in data source {}", self.name),
            cause,
        }
    }

    fn now_ms(&self) -> &'static str {
        match self.url.kind {
            BackendKind::Mysql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
            BackendKind::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    async fn conn(&self) -> Result<ControlConn, TxnError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => ControlConn::connect(&self.url, self.connect_timeout)
                .await
                .map_err(|e| self.error(e.to_string()))?,
        };
        if !self.created.load(std::sync::atomic::Ordering::Relaxed) {
            for ddl in [
                "CREATE TABLE IF NOT EXISTS dbmesh_xa_log (gtrid VARCHAR(64) NOT NULL PRIMARY KEY, participants VARCHAR(4000) NOT NULL, decided_ms BIGINT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS dbmesh_xa_lease (instance_id VARCHAR(32) NOT NULL PRIMARY KEY, boot BIGINT NOT NULL, expires_ms BIGINT NOT NULL)",
                match self.url.kind {
                    BackendKind::Mysql => "CREATE TABLE IF NOT EXISTS dbmesh_saga_log (gtrid VARCHAR(64) NOT NULL, step INT NOT NULL, database_name VARCHAR(255) NOT NULL, data_source VARCHAR(255) NOT NULL, undo_sql LONGTEXT NOT NULL, PRIMARY KEY (gtrid, step))",
                    BackendKind::Postgres => "CREATE TABLE IF NOT EXISTS dbmesh_saga_log (gtrid VARCHAR(64) NOT NULL, step INT NOT NULL, database_name VARCHAR(255) NOT NULL, data_source VARCHAR(255) NOT NULL, undo_sql TEXT NOT NULL, PRIMARY KEY (gtrid, step))",
                },
            ] {
                conn.execute(ddl).await.map_err(|e| self.error(e))?;
            }
            self.created
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(conn)
    }

    fn give_back(&self, conn: ControlConn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs `sql`; the connection is kept only when it worked.
    async fn execute(&self, sql: &str) -> Result<(), TxnError> {
        let mut conn = self.conn().await?;
        conn.execute(sql).await.map_err(|e| self.error(e))?;
        self.give_back(conn);
        Ok(())
    }

    async fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>, TxnError> {
        let mut conn = self.conn().await?;
        let rows = conn.rows(sql).await.map_err(|e| self.error(e))?;
        self.give_back(conn);
        Ok(rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned())
                    .collect()
            })
            .collect())
    }

    pub async fn record_commit(
        &self,
        gtrid: &GlobalId,
        participants: &[String],
    ) -> Result<(), TxnError> {
        let participants = participants.join(",").replace('\'', "''");
        self.execute(&format!(
            "INSERT INTO dbmesh_xa_log (gtrid, participants, decided_ms) VALUES ('{gtrid}', '{participants}', {})",
            self.now_ms()
        ))
        .await
    }

    pub async fn forget(&self, gtrids: &[String]) -> Result<(), TxnError> {
        let list: Vec<String> = gtrids.iter().map(|g| format!("'{g}'")).collect();
        self.execute(&format!(
            "DELETE FROM dbmesh_xa_log WHERE gtrid IN ({})",
            list.join(", ")
        ))
        .await?;
        self.execute(&format!(
            "DELETE FROM dbmesh_saga_log WHERE gtrid IN ({})",
            list.join(", ")
        ))
        .await
    }

    /// One INSERT (one statement, so all or none of `steps` are recorded), numbered
    /// after the saga's steps so far.
    pub async fn record_saga(&self, gtrid: &GlobalId, steps: &[UndoStep]) -> Result<(), TxnError> {
        let text = |s: &str| match self.url.kind {
            BackendKind::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
            BackendKind::Postgres => format!("'{}'", s.replace('\'', "''")),
        };
        let first =
            format!("(SELECT COALESCE(MAX(step), 0) FROM dbmesh_saga_log WHERE gtrid = '{gtrid}')");
        let mut conn = self.conn().await?;
        let rows = conn
            .rows(&format!("SELECT {first}"))
            .await
            .map_err(|e| self.error(e))?;
        let base: i64 = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        let values: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "('{gtrid}', {}, {}, {}, {})",
                    base + 1 + i as i64,
                    text(&s.database),
                    text(&s.data_source),
                    text(&s.sql)
                )
            })
            .collect();
        conn.execute(&format!(
            "INSERT INTO dbmesh_saga_log (gtrid, step, database_name, data_source, undo_sql) VALUES {}",
            values.join(", ")
        ))
        .await
        .map_err(|e| self.error(e))?;
        self.give_back(conn);
        Ok(())
    }

    pub async fn sagas(&self) -> Result<Vec<(String, Vec<UndoStep>)>, TxnError> {
        let rows = self
            .rows("SELECT gtrid, database_name, data_source, undo_sql FROM dbmesh_saga_log ORDER BY gtrid, step")
            .await?;
        let mut sagas: Vec<(String, Vec<UndoStep>)> = Vec::new();
        for row in rows {
            let Ok([gtrid, database, data_source, sql]) = <[String; 4]>::try_from(row) else {
                continue;
            };
            let step = UndoStep {
                database,
                data_source,
                sql,
            };
            match sagas.last_mut() {
                Some((g, steps)) if *g == gtrid => steps.push(step),
                _ => sagas.push((gtrid, vec![step])),
            }
        }
        Ok(sagas)
    }

    pub async fn decisions(&self) -> Result<HashSet<String>, TxnError> {
        Ok(self
            .rows("SELECT gtrid FROM dbmesh_xa_log")
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    pub async fn renew_lease(
        &self,
        instance: &str,
        boot: u64,
        lease: Duration,
    ) -> Result<(), TxnError> {
        let expires = format!("{} + {}", self.now_ms(), lease.as_millis());
        let sql = match self.url.kind {
            BackendKind::Mysql => format!(
                "REPLACE INTO dbmesh_xa_lease (instance_id, boot, expires_ms) VALUES ('{instance}', {boot}, {expires})"
            ),
            BackendKind::Postgres => format!(
                "INSERT INTO dbmesh_xa_lease (instance_id, boot, expires_ms) VALUES ('{instance}', {boot}, {expires}) \
                 ON CONFLICT (instance_id) DO UPDATE SET boot = EXCLUDED.boot, expires_ms = EXCLUDED.expires_ms"
            ),
        };
        self.execute(&sql).await
    }

    pub async fn leases(&self) -> Result<Vec<Lease>, TxnError> {
        let rows = self
            .rows(&format!(
                "SELECT instance_id, boot, CASE WHEN expires_ms > {} THEN 1 ELSE 0 END FROM dbmesh_xa_lease",
                self.now_ms()
            ))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [instance, boot, alive] = <[String; 3]>::try_from(r).ok()?;
                Some(Lease {
                    instance,
                    boot: boot.parse().ok()?,
                    alive: alive == "1",
                })
            })
            .collect())
    }
}

//! Global transaction ids and branch ids of dbmesh's XA transactions, as a DBA sees them
//! in `XA RECOVER` or `pg_prepared_xacts`.
//!
//! A global transaction id (gtrid) is `dbmesh-<instance>-<boot>-<seq>`:
//!
//! - `instance`: the instance id (`[transaction] instance_id`, letters, digits, `_`);
//! - `boot`: when the process started, in milliseconds since 1970, hexadecimal, so ids
//!   stay unique across restarts and recovery can tell a dead incarnation from a live one;
//! - `seq`: a counter within the process, hexadecimal.
//!
//! On MySQL each data source's branch is the XID (`gtrid`, `bqual` = data source name,
//! formatID 1). On PostgreSQL, which knows one string per prepared transaction, the GID
//! is `<gtrid>.<data source name>`. Both fit the servers' limits (64 bytes each for
//! MySQL, 200 for PostgreSQL) with instance ids up to 24 characters.

use std::fmt;

/// Every gtrid dbmesh creates starts with this.
pub const PREFIX: &str = "dbmesh-";

/// A global transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GlobalId {
    pub instance: String,
    pub boot: u64,
    pub seq: u64,
}

impl fmt::Display for GlobalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}-{:x}-{:x}",
            self.instance, self.boot, self.seq
        )
    }
}

impl GlobalId {
    /// Reads a gtrid dbmesh wrote; `None` for anything else (another coordinator's XID).
    pub fn parse(text: &str) -> Option<GlobalId> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut parts = rest.rsplitn(3, '-');
        let seq = u64::from_str_radix(parts.next()?, 16).ok()?;
        let boot = u64::from_str_radix(parts.next()?, 16).ok()?;
        let instance = parts.next()?;
        if instance.is_empty()
            || !instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return None;
        }
        Some(GlobalId {
            instance: instance.to_string(),
            boot,
            seq,
        })
    }
}

/// One data source's part of a global transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub gtrid: GlobalId,
    /// The data source's name.
    pub bqual: String,
}

impl Branch {
    /// The MySQL XID literal: `'gtrid','bqual'`.
    pub fn mysql_xid(&self) -> String {
        format!("'{}',{}", self.gtrid, mysql_string(&self.bqual))
    }

    /// The PostgreSQL GID: `gtrid.bqual`.
    pub fn pg_gid(&self) -> String {
        format!("{}.{}", self.gtrid, self.bqual)
    }

    /// The GID as a PostgreSQL string literal.
    pub fn pg_gid_literal(&self) -> String {
        format!("'{}'", self.pg_gid().replace('\'', "''"))
    }

    /// Reads a PostgreSQL GID; `None` when it is not one of dbmesh's.
    pub fn from_pg_gid(gid: &str) -> Option<Branch> {
        let (gtrid, bqual) = gid.split_once('.')?;
        Some(Branch {
            gtrid: GlobalId::parse(gtrid)?,
            bqual: bqual.to_string(),
        })
    }

    /// Reads one `XA RECOVER` row's gtrid and bqual; `None` when not one of dbmesh's.
    pub fn from_mysql(gtrid: &[u8], bqual: &[u8]) -> Option<Branch> {
        Some(Branch {
            gtrid: GlobalId::parse(std::str::from_utf8(gtrid).ok()?)?,
            bqual: String::from_utf8(bqual.to_vec()).ok()?,
        })
    }
}

/// A MySQL string literal that means `s` whatever `sql_mode` says about backslashes.
fn mysql_string(s: &str) -> String {
    if s.contains('\\') {
        let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
        return format!("X'{hex}'");
    }
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> GlobalId {
        GlobalId {
            instance: "pod_7".into(),
            boot: 0x018c_2f00_d123,
            seq: 42,
        }
    }

    #[test]
    fn gtrid_round_trips_and_fits_mysql() {
        let text = id().to_string();
        assert_eq!(text, "dbmesh-pod_7-18c2f00d123-2a");
        assert_eq!(GlobalId::parse(&text), Some(id()));
        let longest = GlobalId {
            instance: "x".repeat(24),
            boot: u64::from(u32::MAX) << 12,
            seq: u64::MAX,
        };
        assert!(longest.to_string().len() <= 64, "{longest}");
    }

    #[test]
    fn foreign_ids_are_not_ours() {
        for other in [
            "",
            "gtrid1",
            "dbmesh-",
            "dbmesh--1-2",
            "dbmesh-a-b-zz",
            "dbmesh-a.b-1-2",
        ] {
            assert_eq!(GlobalId::parse(other), None, "{other}");
        }
    }

    #[test]
    fn branches_name_the_data_source() {
        let b = Branch {
            gtrid: id(),
            bqual: "ds_1".into(),
        };
        assert_eq!(b.mysql_xid(), "'dbmesh-pod_7-18c2f00d123-2a','ds_1'");
        assert_eq!(b.pg_gid(), "dbmesh-pod_7-18c2f00d123-2a.ds_1");
        assert_eq!(Branch::from_pg_gid(&b.pg_gid()), Some(b.clone()));
        assert_eq!(
            Branch::from_mysql(b.gtrid.to_string().as_bytes(), b"ds_1"),
            Some(b)
        );
        assert_eq!(Branch::from_pg_gid("someone-else.ds"), None);
    }

    #[test]
    fn odd_data_source_names_stay_literals() {
        let b = Branch {
            gtrid: id(),
            bqual: r"a'b\c".into(),
        };
        assert!(b.mysql_xid().ends_with(",X'6127625c63'"));
        let b = Branch {
            gtrid: id(),
            bqual: "it's".into(),
        };
        assert!(b.mysql_xid().ends_with(",'it''s'"));
        assert!(b.pg_gid_literal().ends_with(".it''s'"));
    }
}

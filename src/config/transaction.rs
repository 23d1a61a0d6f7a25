//! Validation of `[transaction]`: the XA coordinator's instance id, its transaction log
//! (a local file or a table in a data source) and the recovery timings.

use std::collections::BTreeMap;
use std::time::Duration;

use super::document::Section;
use super::error::{child_key, Report};
use super::model::{DatabaseConfig, TransactionConfig, TxnLogConfig};
use super::raw::RawTransaction;
use super::validate::{positive, Context};

/// The `[transaction]` settings, defaults filled in; problems go to `report`.
pub(super) fn transaction(
    section: Option<&Section<RawTransaction>>,
    databases: &BTreeMap<String, DatabaseConfig>,
    cx: &Context<'_>,
    report: &mut Report,
) -> TransactionConfig {
    let mut config = TransactionConfig {
        instance_id: None,
        log: TxnLogConfig::File(None),
        recovery_interval: TransactionConfig::DEFAULT_RECOVERY_INTERVAL,
        lease: TransactionConfig::DEFAULT_LEASE,
        orphan_timeout: None,
        configured: section.is_some(),
    };
    let Some(raw) = section.and_then(|s| s.raw.as_ref()) else {
        return config;
    };
    let key = |field: &str| child_key("transaction", field);

    if let Some(id) = &raw.instance_id {
        let value = id.get_ref();
        if value.is_empty()
            || value.len() > TransactionConfig::MAX_INSTANCE_ID
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            report.at(
                Some(id.span()),
                key("instance_id"),
                format!(
                    "`{value}` is not a valid instance id: use 1 to {} letters, digits or `_` (it becomes part of every XA transaction id)",
                    TransactionConfig::MAX_INSTANCE_ID
                ),
            );
        }
        config.instance_id = Some(value.clone());
    }

    let kind = raw.log.as_ref().map(|l| l.get_ref().as_str());
    match kind {
        None | Some("file") => {
            if let Some(ds) = &raw.log_data_source {
                report.at(
                    Some(ds.span()),
                    key("log_data_source"),
                    "only for log = \"table\"; a file log is written to log_path",
                );
            }
            config.log =
                TxnLogConfig::File(raw.log_path.as_ref().map(|p| cx.base_dir.join(p.get_ref())));
        }
        Some("table") => {
            if let Some(path) = &raw.log_path {
                report.at(
                    Some(path.span()),
                    key("log_path"),
                    "only for log = \"file\"; a table log lives in log_data_source",
                );
            }
            match &raw.log_data_source {
                None => report.at(
                    raw.log.as_ref().map(|l| l.span()),
                    key("log_data_source"),
                    "missing; log = \"table\" needs log_data_source = \"<database>.<data source>\"",
                ),
                Some(value) => match value.get_ref().split_once('.') {
                    Some((db, ds))
                        if databases
                            .get(db)
                            .is_some_and(|d| d.data_sources.contains_key(ds)) =>
                    {
                        config.log = TxnLogConfig::Table {
                            database: db.to_string(),
                            data_source: ds.to_string(),
                        };
                    }
                    _ => report.at(
                        Some(value.span()),
                        key("log_data_source"),
                        format!(
                            "`{}` names no data source; write \"<database>.<data source>\", one of: {}",
                            value.get_ref(),
                            data_source_list(databases)
                        ),
                    ),
                },
            }
        }
        Some(other) => report.at(
            raw.log.as_ref().map(|l| l.span()),
            key("log"),
            format!("`{other}` is not allowed; expected one of: \"file\", \"table\""),
        ),
    }

    if let Some(ms) = positive(
        raw.recovery_interval_ms.as_ref(),
        &key("recovery_interval_ms"),
        report,
    ) {
        config.recovery_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(raw.lease_ms.as_ref(), &key("lease_ms"), report) {
        config.lease = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(
        raw.orphan_timeout_ms.as_ref(),
        &key("orphan_timeout_ms"),
        report,
    ) {
        config.orphan_timeout = Some(Duration::from_millis(ms));
    }
    config
}

fn data_source_list(databases: &BTreeMap<String, DatabaseConfig>) -> String {
    let all: Vec<String> = databases
        .values()
        .flat_map(|db| {
            db.data_sources
                .keys()
                .map(move |ds| format!("{}.{ds}", db.name))
        })
        .collect();
    if all.is_empty() {
        "(none)".into()
    } else {
        all.join(", ")
    }
}

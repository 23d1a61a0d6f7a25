//! `[[users]]`: names, passwords (inline or from the environment), auth methods, the
//! databases each may use.

use super::server::auth_plugin;
use super::*;

pub(super) fn users(
    sections: &[Section<RawUser>],
    database_names: &BTreeSet<&str>,
    tls_configured: bool,
    cx: &Context<'_>,
    report: &mut Report,
) -> Vec<UserConfig> {
    if sections.is_empty() {
        report.at(
            None,
            "users",
            "no [[users]] defined; clients need at least one user to log in",
        );
    }
    let mut first_by_name: HashMap<&str, &str> = HashMap::new();
    let mut users = Vec::new();
    for section in sections {
        let Some(raw) = &section.raw else { continue };
        let key = |field: &str| child_key(&section.key, field);
        let name = raw.name.get_ref();
        if name.is_empty() {
            report.at(Some(raw.name.span()), key("name"), "must not be empty");
        } else if let Some(first) = first_by_name.get(name.as_str()) {
            report.at(
                Some(raw.name.span()),
                key("name"),
                format!("duplicate user `{name}`, already defined by {first}"),
            );
        } else {
            first_by_name.insert(name, &section.key);
        }

        let password = match (&raw.password, &raw.password_env) {
            (Some(password), None) => inline_password(password, &key("password"), cx, report),
            (None, Some(var)) => env_password(var, &key("password_env"), cx, report),
            (Some(_), Some(var)) => {
                report.at(
                    Some(var.span()),
                    key("password_env"),
                    "set either password or password_env, not both",
                );
                None
            }
            (None, None) => {
                report.at(
                    Some(section.span.clone()),
                    section.key.clone(),
                    format!("user `{name}` has no password; set password or password_env"),
                );
                None
            }
        };

        for (i, database) in raw.databases.iter().enumerate() {
            let database_name = database.get_ref().as_str();
            if database_name != "*" && !database_names.contains(database_name) {
                report.at(
                    Some(database.span()),
                    index_key(&key("databases"), i),
                    format!(
                        "unknown database `{database_name}`; defined databases: {} (or \"*\" for all)",
                        list_or_none(database_names.iter().copied())
                    ),
                );
            }
        }

        if raw.require_tls && !tls_configured {
            report.at(
                Some(section.span.clone()),
                key("require_tls"),
                format!("user `{name}` requires TLS but the server offers none; set server.tls_cert and server.tls_key"),
            );
        }

        users.push(UserConfig {
            name: name.clone(),
            password: password.unwrap_or_default(),
            databases: raw.databases.iter().map(|d| d.get_ref().clone()).collect(),
            mysql_auth_plugin: auth_plugin(
                raw.mysql_auth_plugin.as_ref(),
                &key("mysql_auth_plugin"),
                report,
            ),
            postgres_auth: postgres_auth(raw.postgres_auth.as_ref(), &key("postgres_auth"), report),
            admin: raw.admin,
            require_tls: raw.require_tls,
        });
    }
    users
}

pub(super) fn postgres_auth(
    value: Option<&Spanned<String>>,
    key: &str,
    report: &mut Report,
) -> PostgresAuthMethod {
    let Some(value) = value else {
        return PostgresAuthMethod::default();
    };
    PostgresAuthMethod::from_name(value.get_ref()).unwrap_or_else(|| {
        report.at(
            Some(value.span()),
            key,
            bad_value(value.get_ref(), PostgresAuthMethod::ALL.map(|p| p.name())),
        );
        PostgresAuthMethod::default()
    })
}

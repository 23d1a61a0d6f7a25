//! Data source URLs: `mysql://user:pass@host:port/db?params` and
//! `postgres://…`, parsed once so the pools never handle strings.

use std::fmt;

use url::{form_urlencoded, Host, Url};

use super::model::BackendKind;

/// Where a real backend database is and how to log in to it.
///
/// `Display` prints a URL for logs and admin output; it never contains the
/// password, and query parameters that look like secrets are masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSourceUrl {
    /// Protocol, from the scheme (`mysql`/`mariadb` or `postgres`/`postgresql`).
    pub kind: BackendKind,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port; 3306 / 5432 when the URL names none.
    pub port: u16,
    /// Login name, percent-decoded.
    pub user: String,
    /// Password, percent-decoded from the URL or read from `password_env`.
    pub password: String,
    /// The real database (schema) name.
    pub database: String,
    /// Query parameters in the order written, percent-decoded.
    pub params: Vec<(String, String)>,
    /// TLS towards this backend, from `sslmode` / `ssl-mode` (+ `sslrootcert` /
    /// `ssl-ca`); `None` = plain TCP. Set by validation, which knows where relative CA
    /// paths start.
    pub tls: Option<crate::tls::BackendTls>,
}

impl DataSourceUrl {
    /// Parses a data source URL, returning every problem with it.
    pub(super) fn parse(text: &str) -> Result<DataSourceUrl, Vec<String>> {
        let url = Url::parse(text).map_err(|e| vec![format!("not a valid URL: {e}")])?;
        let mut problems = Vec::new();

        let kind = match url.scheme() {
            "mysql" | "mariadb" => Some(BackendKind::Mysql),
            "postgres" | "postgresql" => Some(BackendKind::Postgres),
            other => {
                problems.push(format!(
                    "unsupported scheme `{other}`; expected one of: mysql, mariadb, postgres, postgresql"
                ));
                None
            }
        };

        let host = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => Some(percent_decode(d)),
            Some(Host::Ipv4(ip)) => Some(ip.to_string()),
            Some(Host::Ipv6(ip)) => Some(ip.to_string()),
            _ => {
                problems.push("URL has no host, e.g. mysql://root@127.0.0.1:3306/shop_ds_0".into());
                None
            }
        };

        let user = percent_decode(url.username());
        if user.is_empty() {
            problems
                .push("URL has no user name, e.g. mysql://root@127.0.0.1:3306/shop_ds_0".into());
        }
        let password = url.password().map(percent_decode).unwrap_or_default();

        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        let database = percent_decode(path);
        if database.is_empty() {
            problems
                .push("URL names no database, e.g. mysql://root@127.0.0.1:3306/shop_ds_0".into());
        } else if path.contains('/') {
            problems.push(format!("URL path `/{path}` must be a single database name"));
        }

        let params = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();

        match (kind, host) {
            (Some(kind), Some(host)) if problems.is_empty() => Ok(DataSourceUrl {
                kind,
                host,
                port: url.port().unwrap_or(kind.default_port()),
                user,
                password,
                database,
                params,
                tls: None,
            }),
            _ => Err(problems),
        }
    }
}

/// URL parameters naming the TLS mode: libpq's, MySQL clients' and mysql_async's.
const TLS_MODE_PARAMS: [&str; 3] = ["sslmode", "ssl-mode", "ssl_mode"];
/// URL parameters naming the CA file that signs the backend's certificate.
const TLS_CA_PARAMS: [&str; 4] = ["sslrootcert", "ssl-ca", "ssl_ca", "sslca"];

/// A URL parameter as written: name and value.
pub type Param<'a> = (&'a str, &'a str);

impl DataSourceUrl {
    /// The TLS mode and CA file the URL's parameters ask for, as written (the last one
    /// wins, as in libpq); each with its parameter name.
    pub fn tls_params(&self) -> (Option<Param<'_>>, Option<Param<'_>>) {
        let find = |names: &[&str]| {
            self.params
                .iter()
                .rev()
                .find(|(k, _)| names.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
        };
        (find(&TLS_MODE_PARAMS), find(&TLS_CA_PARAMS))
    }
}

impl fmt::Display for DataSourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.name())?;
        if !self.user.is_empty() {
            write!(f, "{}@", encode(&self.user))?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        write!(f, ":{}/{}", self.port, encode(&self.database))?;
        for (i, (key, value)) in self.params.iter().enumerate() {
            let separator = if i == 0 { '?' } else { '&' };
            let value = if looks_secret(key) {
                "***".to_string()
            } else {
                encode(value)
            };
            write!(f, "{separator}{}={value}", encode(key))?;
        }
        Ok(())
    }
}

fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "passphrase", "key"]
        .iter()
        .any(|s| key.contains(s))
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mysql_url_with_empty_password() {
        let url = DataSourceUrl::parse("mysql://root:@127.0.0.1:3306/shop_ds_0").unwrap();
        assert_eq!(
            url,
            DataSourceUrl {
                kind: BackendKind::Mysql,
                host: "127.0.0.1".into(),
                port: 3306,
                user: "root".into(),
                password: String::new(),
                database: "shop_ds_0".into(),
                params: vec![],
                tls: None,
            }
        );
    }

    #[test]
    fn ports_default_per_backend() {
        let mysql = DataSourceUrl::parse("mysql://root@db1/shop").unwrap();
        assert_eq!(mysql.port, 3306);
        let mariadb = DataSourceUrl::parse("mariadb://root@db1/shop").unwrap();
        assert_eq!((mariadb.kind, mariadb.port), (BackendKind::Mysql, 3306));
        let pg = DataSourceUrl::parse("postgres://postgres@127.0.0.1/shop_ds_0").unwrap();
        assert_eq!((pg.kind, pg.port), (BackendKind::Postgres, 5432));
        let pg = DataSourceUrl::parse("postgresql://postgres@127.0.0.1:6000/shop").unwrap();
        assert_eq!((pg.kind, pg.port), (BackendKind::Postgres, 6000));
    }

    #[test]
    fn decodes_user_password_and_params() {
        let url = DataSourceUrl::parse(
            "postgres://app%40corp:p%40ss%3Aw0rd@[::1]:5433/shop?sslmode=disable&application_name=dbmesh%20proxy",
        )
        .unwrap();
        assert_eq!(url.user, "app@corp");
        assert_eq!(url.password, "p@ss:w0rd");
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, 5433);
        assert_eq!(
            url.params,
            vec![
                ("sslmode".to_string(), "disable".to_string()),
                ("application_name".to_string(), "dbmesh proxy".to_string()),
            ]
        );
    }

    #[test]
    fn display_never_shows_the_password() {
        let url = DataSourceUrl::parse("mysql://root:s3cret@127.0.0.1:3306/shop_ds_0").unwrap();
        assert_eq!(url.to_string(), "mysql://root@127.0.0.1:3306/shop_ds_0");
        let url =
            DataSourceUrl::parse("postgres://u:s3cret@[::1]/db?sslmode=require&sslpassword=s3cret")
                .unwrap();
        let shown = url.to_string();
        assert_eq!(
            shown,
            "postgres://u@[::1]:5432/db?sslmode=require&sslpassword=***"
        );
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn reports_every_problem_with_a_url() {
        let problems = DataSourceUrl::parse("oracle:///").unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("unsupported scheme `oracle`"));
        assert!(problems[0].contains("mysql, mariadb, postgres, postgresql"));
        assert!(problems[1].contains("no host"));
        assert!(problems[2].contains("no user"));
        assert!(problems[3].contains("no database"));
        assert!(DataSourceUrl::parse("not a url").unwrap_err()[0].contains("not a valid URL"));
    }

    #[test]
    fn finds_tls_parameters_in_either_spelling() {
        let url = DataSourceUrl::parse(
            "mysql://root@db/shop?ssl-mode=VERIFY_CA&ssl-ca=ca.pem&charset=utf8mb4",
        )
        .unwrap();
        assert_eq!(
            url.tls_params(),
            (Some(("ssl-mode", "VERIFY_CA")), Some(("ssl-ca", "ca.pem")))
        );
        let url = DataSourceUrl::parse("postgres://u@db/shop?sslmode=require").unwrap();
        assert_eq!(url.tls_params(), (Some(("sslmode", "require")), None));
        let url = DataSourceUrl::parse("postgres://u@db/shop").unwrap();
        assert_eq!(url.tls_params(), (None, None));
    }
}

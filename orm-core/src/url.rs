//! Database URLs: which backend they name, and how to show them without their password.

use std::fmt;

use crate::error::{Error, Result};
use crate::meta::RedactedUrl;

/// Which database a URL points at.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `postgres://…` or `postgresql://…`, passed to libpq as given.
    Postgres { url: String },
    /// A private in-memory SQLite database (`sqlite::memory:`).
    SqliteMemory,
    /// A SQLite database file (`sqlite://path`, `sqlite:path` or a plain path).
    SqliteFile { path: String },
}

/// A parsed database URL.
#[derive(Clone)]
pub(crate) struct DatabaseUrl {
    pub(crate) target: Target,
    pub(crate) redacted: RedactedUrl,
    /// The passwords the URL holds, kept only to scrub them out of driver messages.
    passwords: Vec<String>,
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.redacted).finish()
    }
}

impl DatabaseUrl {
    /// Parse `url`, checking what can be checked without connecting.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let (redacted, passwords) = redact(url);
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redacted.clone(),
            reason: reason.to_owned(),
        };
        let target = if url.is_empty() {
            return Err(invalid(
                "empty URL; expected `postgres://user@host:5432/db`, `sqlite::memory:` or a SQLite file path",
            ));
        } else if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            check_postgres_authority(rest).map_err(|r| invalid(&r))?;
            Target::Postgres {
                url: url.to_owned(),
            }
        } else if url == "sqlite::memory:" || url == ":memory:" || url == "sqlite://:memory:" {
            Target::SqliteMemory
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(invalid(
                    "no file path after `sqlite:`; expected `sqlite://app.db` or `sqlite::memory:`",
                ));
            }
            Target::SqliteFile {
                path: path.to_owned(),
            }
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(invalid(&format!(
                "unsupported scheme `{scheme}`; expected `postgres://`, `postgresql://` or `sqlite:`"
            )));
        } else if url.starts_with("postgres") {
            return Err(invalid(
                "a PostgreSQL URL starts with `postgres://`: `postgres://user:password@host:5432/db`",
            ));
        } else if url.contains('=') {
            return Err(invalid(
                "this looks like a libpq keyword string (`host=… dbname=…`); give a URL instead: \
                 `postgres://user:password@host:5432/db`",
            ));
        } else {
            Target::SqliteFile {
                path: url.to_owned(),
            }
        };
        Ok(Self {
            target,
            redacted,
            passwords,
        })
    }

    /// `message` with every occurrence of the URL's passwords replaced by `***`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        self.passwords
            .iter()
            .filter(|p| !p.is_empty())
            .fold(message.to_owned(), |m, p| m.replace(p.as_str(), "***"))
    }
}

/// Checks `[user[:password]@]host[:port][/db][?params]` after `postgres://`. The user part
/// ends at the last `@`, so a password with `/`, `?` or `@` in it is never read as a host.
fn check_postgres_authority(rest: &str) -> std::result::Result<(), String> {
    let after_user = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = after_user.split(['/', '?']).next().unwrap_or("");
    // Several hosts may be listed (`h1:5432,h2:5433`); IPv6 hosts are bracketed.
    for host in host_port.split(',') {
        let port = if host.starts_with('[') {
            match host.split_once("]") {
                Some((_, after)) => after.strip_prefix(':'),
                None => return Err(format!("unclosed `[` in host `{host}`")),
            }
        } else {
            host.split_once(':').map(|(_, p)| p)
        };
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => {
                    return Err(format!(
                        "port `{port}` is not a number from 1 to 65535; expected `postgres://user@host:5432/db`"
                    ))
                }
            }
        }
    }
    if after_user.contains(char::is_whitespace) {
        return Err("URL contains whitespace; percent-encode it (`%20`)".to_owned());
    }
    Ok(())
}

/// Returns the URL with every password replaced by `***`, and the passwords.
///
/// In a URL the user part ends at the last `@` (a password may hold `/`, `?` or `@`); a
/// `password` or `sslpassword` parameter in the query is redacted too. In anything else (a
/// keyword string given by mistake, a file path), each `password=…` word is.
fn redact(url: &str) -> (RedactedUrl, Vec<String>) {
    let mut passwords = Vec::new();
    let Some(scheme_end) = url.find("://") else {
        let words: Vec<String> = url
            .split(' ')
            .map(|word| match word.split_once('=') {
                Some((k, v)) if is_password_key(k) => {
                    passwords.push(v.trim_matches('\'').to_owned());
                    format!("{k}=***")
                }
                _ => word.to_owned(),
            })
            .collect();
        let mut out = words.join(" ");
        // A URL missing its `//` (`postgres:/user:secret@host`): hide what sits between the
        // last `:` and the last `@`.
        if let Some(at) = out.rfind('@') {
            if let Some(colon) = out[..at].rfind(':') {
                passwords.push(out[colon + 1..at].to_owned());
                out.replace_range(colon + 1..at, "***");
            }
        }
        return (RedactedUrl::new(out), passwords);
    };
    let after = &url[scheme_end + 3..];
    let (mut out, rest) = match after.rfind('@') {
        Some(at) => {
            let userinfo = &after[..at];
            let user = match userinfo.split_once(':') {
                Some((user, password)) => {
                    passwords.push(password.to_owned());
                    format!("{user}:***")
                }
                None => userinfo.to_owned(),
            };
            (
                format!("{}{user}@", &url[..scheme_end + 3]),
                &after[at + 1..],
            )
        }
        None => (url[..scheme_end + 3].to_owned(), after),
    };
    match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if is_password_key(k) => {
                        passwords.push(v.to_owned());
                        format!("{k}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(path);
            out.push('?');
            out.push_str(&query.join("&"));
        }
        None => out.push_str(rest),
    }
    (RedactedUrl::new(out), passwords)
}

fn is_password_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_userinfo_and_query() {
        let u = DatabaseUrl::parse("postgres://app:s3cr%40t@db:5432/prod?sslmode=require").unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://app:***@db:5432/prod?sslmode=require"
        );
        let u = DatabaseUrl::parse("postgres://app@db/prod?password=hunter2&x=1").unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://app@db/prod?password=***&x=1"
        );
        assert_eq!(u.scrub("auth failed for hunter2"), "auth failed for ***");
    }

    #[test]
    fn passwords_with_url_characters_never_leak() {
        for (url, secret) in [
            ("postgres://app:pa/ss@db:5432/prod", "pa/ss"),
            ("postgres://app:12/34@db/prod", "12/34"),
            ("postgres://app:a?b@db/prod", "a?b"),
            ("postgres://app:p@ss@db/prod", "p@ss"),
            ("postgres://app@db/prod?sslpassword=hunter2", "hunter2"),
            ("host=db user=app password=hunter2 dbname=prod", "hunter2"),
            ("postgres:/app:hunter2@db/prod", "hunter2"),
        ] {
            let shown = match DatabaseUrl::parse(url) {
                Ok(u) => format!(
                    "{} {:?} {}",
                    u.redacted,
                    u,
                    u.scrub(&format!("auth {secret}"))
                ),
                Err(e) => format!("{e} {e:?}"),
            };
            assert!(!shown.contains(secret), "{url}: {shown}");
        }
    }

    #[test]
    fn odd_input_never_panics() {
        for url in [
            "postgres://ü:ö@ä:5432/ß",
            "postgres://@",
            "postgres://:@:/",
            "postgres://a:b@c:d@e/f",
            "postgres://[::1]:5432/db",
            "postgres://[::1/db",
            "postgres://u:p@h/db?password",
            "postgres://u:p@h/db?=&&password=",
            "sqlite://",
            "://",
            "\u{0}",
        ] {
            if let Err(e) = DatabaseUrl::parse(url) {
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn recognises_backends() {
        assert!(matches!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().target,
            Target::SqliteMemory
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite://dev.db").unwrap().target,
            Target::SqliteFile { ref path } if path == "dev.db"
        ));
        assert!(matches!(
            DatabaseUrl::parse("data/app.sqlite").unwrap().target,
            Target::SqliteFile { .. }
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().target,
            Target::Postgres { .. }
        ));
    }

    #[test]
    fn rejects_malformed_urls_without_leaking_the_password() {
        for bad in [
            "postgres://u:pw@host:99999/db",
            "postgres://u:pw@host:abc/db",
            "mysql://u:pw@host/db",
            "",
            "sqlite:",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid database URL"), "{err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }
}

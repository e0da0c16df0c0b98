//! Database URLs: which backend they name, and how to show them without their password.

use std::fmt;

use crate::error::{Error, Result};

/// A database URL with its password replaced by `***`, safe to print and log.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

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
    /// The password, kept only to scrub it out of driver messages.
    password: Option<String>,
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
        let (redacted, password) = redact(url);
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
        } else {
            Target::SqliteFile {
                path: url.to_owned(),
            }
        };
        Ok(Self {
            target,
            redacted,
            password,
        })
    }

    /// `message` with any occurrence of the URL's password replaced by `***`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => message.replace(p.as_str(), "***"),
            _ => message.to_owned(),
        }
    }
}

/// Checks `[user[:password]@]host[:port][/db][?params]` after `postgres://`.
fn check_postgres_authority(rest: &str) -> std::result::Result<(), String> {
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
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
    if rest.contains(char::is_whitespace) {
        return Err("URL contains whitespace; percent-encode it (`%20`)".to_owned());
    }
    Ok(())
}

/// Returns the URL with its password replaced by `***`, and the password.
fn redact(url: &str) -> (RedactedUrl, Option<String>) {
    let mut password = None;
    let mut out = url.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let after = &url[scheme_end + 3..];
        let authority_end = after.find(['/', '?']).unwrap_or(after.len());
        let authority = &after[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                password = Some(userinfo[colon + 1..].to_owned());
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                out.replace_range(start..end, "***");
            }
        }
    }
    // `?password=…` in the query string.
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("password") => {
                    password.get_or_insert_with(|| v.to_owned());
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", redacted.join("&"));
    }
    (RedactedUrl(out), password)
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

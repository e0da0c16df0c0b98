//! Database URLs: which backend they name, and how to show them without their password.
//!
//! A `postgres://` URL is handed to libpq as given, so it is split here the way libpq's own URI
//! parser splits it, and its password is hidden by position: whatever libpq takes for the
//! password is exactly what `***` covers. Where that split differs from a natural reading of the
//! URL (a password with an unencoded `/`, `?`, `#` or `@`), libpq would put pieces of the
//! password into the host, port or database name and echo them in its errors, so such URLs are
//! refused before anything connects. Driver messages go through [`DatabaseUrl::scrub`] as a
//! last line of defence.

use std::fmt;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::meta::RedactedUrl;

/// What replaces a password or a piece of one.
const MASK: &str = "***";

/// Pieces of a password at least this many characters long are scrubbed from driver messages
/// wherever they appear. Shorter pieces would match ordinary words and numbers; a password
/// shorter than this is scrubbed whole.
const MIN_FRAGMENT: usize = 4;

/// The two URI prefixes libpq recognises (case-sensitively).
const POSTGRES_SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];

/// Why an ambiguous URL is refused. It names no part of the URL: the password may be anywhere.
const AMBIGUOUS: &str = "the URL holds a `/`, `?`, `#` or `@` that is not percent-encoded where \
    it makes the URL read two ways (in the user name or password, or an `@` after the host), \
    and a driver could take part of the password for the host, port or database; \
    percent-encode these characters in the password (`/` as `%2F`, `?` as `%3F`, `#` as `%23`, \
    `@` as `%40`): `postgres://user:pa%2Fss@host:5432/db`";

/// The query parameters libpq 18 accepts (plus `ssl`, its JDBC-style alias). Only used to spot a
/// password parameter whose value was cut at an unencoded `&`.
const LIBPQ_KEYS: &[&str] = &[
    "service",
    "user",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "port",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "require_auth",
    "min_protocol_version",
    "max_protocol_version",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "target_session_attrs",
    "load_balance_hosts",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "sslkeylogfile",
    "ssl",
];

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
    /// The passwords and other secrets the URL holds, as written and percent-decoded, kept only
    /// to scrub them out of driver messages.
    secrets: Vec<String>,
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.redacted).finish()
    }
}

impl DatabaseUrl {
    /// Parse `url`, checking what can be checked without connecting.
    ///
    /// A `postgres://` URL that libpq would split differently from its natural reading (an
    /// unencoded `/`, `?`, `#` or `@` in the user name or password, a password parameter cut
    /// short by an unencoded `&`) is refused with [`Error::InvalidUrl`], whose text holds no
    /// part of the password.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(scheme) = POSTGRES_SCHEMES.iter().find(|s| url.starts_with(*s)) {
            let pg = PgUrl::split(url, scheme.len());
            let (redacted, secrets) = pg.redact();
            let redacted = RedactedUrl::new(redacted);
            if let Some(reason) = pg.problem() {
                return Err(Error::InvalidUrl {
                    url: redacted,
                    reason,
                });
            }
            return Ok(Self {
                target: Target::Postgres {
                    url: url.to_owned(),
                },
                redacted,
                secrets,
            });
        }
        let (redacted, secrets) = redact_loosely(url);
        let redacted = RedactedUrl::new(redacted);
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redacted.clone(),
            reason: reason.to_owned(),
        };
        let target = if url.is_empty() {
            return Err(invalid(
                "empty URL; expected `postgres://user@host:5432/db`, `sqlite::memory:` or a SQLite file path",
            ));
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
            // The scheme is named only when it looks like one: text before `://` might be a
            // password (`user:secret@host://…`).
            let named = if is_scheme(scheme) {
                format!("unsupported scheme `{scheme}`")
            } else {
                "unsupported scheme".to_owned()
            };
            return Err(invalid(&format!(
                "{named}; expected `postgres://`, `postgresql://` or `sqlite:`"
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
            secrets,
        })
    }

    /// `message` with the URL's passwords removed: every occurrence of a password (as written
    /// in the URL or percent-decoded), and every piece of one at least four characters long,
    /// becomes `***`. Letter case is ignored, so nothing survives a driver changing it.
    pub(crate) fn scrub(&self, message: &str) -> String {
        scrub_secrets(message, &self.secrets)
    }

    /// The PostgreSQL URL as handed to libpq, with `key=value` added to its query unless it
    /// sets `key` already (what the user wrote wins). The URL of any other backend as is.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn with_libpq_param(&self, key: &str, value: &str) -> String {
        let url = match &self.target {
            Target::Postgres { url } => url,
            Target::SqliteFile { path } => return path.clone(),
            Target::SqliteMemory => return ":memory:".to_owned(),
        };
        let scheme = POSTGRES_SCHEMES
            .iter()
            .find(|s| url.starts_with(*s))
            .map_or(0, |s| s.len());
        let pg = PgUrl::split(url, scheme);
        if pg.params.iter().any(|p| decode(&url[p.key.clone()]) == key) {
            return url.clone();
        }
        let separator = if !url.contains('?') {
            "?"
        } else if url.ends_with(['?', '&']) {
            ""
        } else {
            "&"
        };
        format!("{url}{separator}{key}={value}")
    }
}

impl DatabaseUrl {
    /// The TCP ports a PostgreSQL URL connects to (each host's, or the `port` parameter's, or
    /// 5432); empty for a URL that names only Unix-socket directories, or another backend.
    #[cfg(feature = "postgres")]
    pub(crate) fn tcp_ports(&self) -> Vec<u16> {
        let Target::Postgres { url } = &self.target else {
            return Vec::new();
        };
        let scheme = POSTGRES_SCHEMES
            .iter()
            .find(|s| url.starts_with(*s))
            .map_or(0, |s| s.len());
        let pg = PgUrl::split(url, scheme);
        let param = |key: &str| {
            pg.params
                .iter()
                .rev()
                .find(|p| decode(&url[p.key.clone()]) == key)
                .and_then(|p| p.value.clone())
                .map(|v| decode(&url[v]))
        };
        let port_param: Option<u16> = param("port").and_then(|p| p.parse().ok());
        let host_param = param("host");
        let unix = |host: &str| host.starts_with('/') || host.starts_with('@');
        if host_param.as_deref().is_some_and(unix) {
            return Vec::new();
        }
        let mut ports: Vec<u16> = pg
            .hosts
            .iter()
            .filter(|(host, _)| !url[host.clone()].is_empty() || host_param.is_some())
            .filter(|(host, _)| !unix(&decode(&url[host.clone()])))
            .map(|(_, port)| {
                port.as_ref()
                    .and_then(|p| url[p.clone()].parse().ok())
                    .or(port_param)
                    .unwrap_or(5432)
            })
            .collect();
        if ports.is_empty() && host_param.is_some() {
            ports.push(port_param.unwrap_or(5432));
        }
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// A `postgres://` URL split the way libpq splits it (`conninfo_uri_parse_options` and
/// `conninfo_uri_parse_params` in libpq's `fe-connect.c`), as byte ranges of the URL:
///
/// `postgres://[user[:password]@][host][:port][,host[:port]…][/dbname][?key=value&…]`
///
/// - The user info is there only if an `@` comes before the first `/`; it ends at that first
///   `@` (a `?` does not end it). The user name ends at its first `:`, and the password is the
///   rest, up to that `@`.
/// - A host ends at `:`, `/`, `?` or `,` (an IPv6 host is bracketed); a port at `/`, `?` or `,`.
/// - The database name runs from the `/` after the hosts to the first `?`.
/// - Parameters are split at `&`, then at their first `=`; keys and values are percent-decoded
///   before use. `#` means nothing to libpq.
///
/// Splitting never fails: what libpq would reject is noted in `bracket_problem` and in the
/// parts themselves, and reported by [`PgUrl::problem`].
struct PgUrl<'a> {
    url: &'a str,
    /// Length of `postgres://` or `postgresql://`.
    scheme_len: usize,
    /// Everything before libpq's user-info `@`.
    userinfo: Option<Range<usize>>,
    /// libpq's password: after the user name's `:`, up to the `@`.
    password: Option<Range<usize>>,
    /// Each host, with its port when a `:` follows it.
    hosts: Vec<(Range<usize>, Option<Range<usize>>)>,
    dbname: Option<Range<usize>>,
    params: Vec<Param>,
    /// What is wrong with a bracketed IPv6 host, if anything (libpq's own message would quote
    /// the whole URL, password included).
    bracket_problem: Option<&'static str>,
}

/// One `key=value` piece of the query string.
struct Param {
    /// The whole piece between `&`s.
    whole: Range<usize>,
    key: Range<usize>,
    /// After the first `=`; `None` if the piece has no `=`.
    value: Option<Range<usize>>,
}

impl<'a> PgUrl<'a> {
    fn split(url: &'a str, scheme_len: usize) -> Self {
        let b = url.as_bytes();
        // The first position at or after `from` holding one of `stops`, or the end. Every stop
        // is ASCII, so each range below falls on character boundaries.
        let find = |from: usize, stops: &[u8]| {
            (from..b.len())
                .find(|&i| stops.contains(&b[i]))
                .unwrap_or(b.len())
        };
        let at = |i: usize| b.get(i).copied();

        let mut p = find(scheme_len, b"@/");
        let (userinfo, password) = if at(p) == Some(b'@') {
            let colon = find(scheme_len, b":@");
            let password = (colon < p).then(|| colon + 1..p);
            let userinfo = scheme_len..p;
            p += 1;
            (Some(userinfo), password)
        } else {
            p = scheme_len;
            (None, None)
        };

        let mut hosts = Vec::new();
        let mut bracket_problem = None;
        loop {
            let host = if at(p) == Some(b'[') {
                let close = find(p + 1, b"]");
                if close == b.len() {
                    bracket_problem.get_or_insert("unclosed `[` in an IPv6 host");
                    // Best effort for redaction: the host runs to the database or query.
                    let end = find(p, b"/?");
                    let host = p..end;
                    p = end;
                    hosts.push((host, None));
                    break;
                }
                if close == p + 1 {
                    bracket_problem.get_or_insert("empty IPv6 host `[]`");
                }
                let host = p + 1..close;
                p = close + 1;
                if !matches!(at(p), None | Some(b':' | b'/' | b'?' | b',')) {
                    bracket_problem.get_or_insert(
                        "unexpected character after `]`; expected `:port`, `/db` or `?`",
                    );
                    p = find(p, b":/?,");
                }
                host
            } else {
                let end = find(p, b":/?,");
                let host = p..end;
                p = end;
                host
            };
            let port = (at(p) == Some(b':')).then(|| {
                let end = find(p + 1, b"/?,");
                let port = p + 1..end;
                p = end;
                port
            });
            hosts.push((host, port));
            if at(p) != Some(b',') {
                break;
            }
            p += 1;
        }

        let dbname = (at(p) == Some(b'/')).then(|| {
            let end = find(p + 1, b"?");
            let db = p + 1..end;
            p = end;
            db
        });

        let mut params = Vec::new();
        if at(p) == Some(b'?') {
            let mut start = p + 1;
            // libpq stops at the end of the string, so one trailing `&` adds no parameter.
            while start < b.len() {
                let end = find(start, b"&");
                let eq = find(start, b"=").min(end);
                params.push(Param {
                    whole: start..end,
                    key: start..eq,
                    value: (eq < end).then(|| eq + 1..end),
                });
                start = end + 1;
            }
        }

        Self {
            url,
            scheme_len,
            userinfo,
            password,
            hosts,
            dbname,
            params,
            bracket_problem,
        }
    }

    /// Whether libpq might read the URL differently from the person who wrote it, putting
    /// pieces of the password into the host, port, database name or query, which libpq and the
    /// server quote in their errors.
    ///
    /// libpq's user info ends at the first `@` met before any `/`, while a person reads it to
    /// the last `@` before the host. The two agree only when no `@` is left over:
    /// - a `?` or `#` in the user info is a query or fragment to other readers, and a query
    ///   (`host?password=se@cret`) even puts the password's tail in libpq's host;
    /// - with user info, any later `@` means the password held an `@`;
    /// - without, an `@` outside query values means the password held a `/` (libpq's host,
    ///   port and database name are then pieces of the password), and in the value of a key
    ///   libpq does not know, or in a key, it means the password held a `?`.
    fn is_ambiguous(&self) -> bool {
        let text = |r: &Range<usize>| &self.url[r.clone()];
        if let Some(userinfo) = &self.userinfo {
            return text(userinfo).contains(['?', '#'])
                || self.url[userinfo.end + 1..].contains('@');
        }
        let in_authority_or_dbname = self
            .hosts
            .iter()
            .flat_map(|(h, p)| std::iter::once(h).chain(p))
            .chain(&self.dbname)
            .any(|r| text(r).contains('@'));
        let in_query = self.params.iter().any(|p| {
            text(&p.key).contains('@')
                || (text(&p.whole).contains('@')
                    && !LIBPQ_KEYS.contains(&decode(text(&p.key)).as_str()))
        });
        in_authority_or_dbname || in_query
    }

    /// Whether `param` follows a password parameter and is not a libpq parameter: most likely
    /// the rest of that password, cut at an unencoded `&`.
    fn is_cut_password(&self, index: usize) -> bool {
        let Some(previous) = index.checked_sub(1).map(|i| &self.params[i]) else {
            return false;
        };
        let param = &self.params[index];
        is_secret_key(&decode(&self.url[previous.key.clone()]))
            && (param.value.is_none()
                || !LIBPQ_KEYS.contains(&decode(&self.url[param.key.clone()]).as_str()))
    }

    /// Ports that are not a number from 1 to 65535. They are hidden when shown: one may be a
    /// password whose `@host` was forgotten (`postgres://user:secret/db`).
    fn bad_ports(&self) -> impl Iterator<Item = &Range<usize>> {
        self.hosts
            .iter()
            .filter_map(|(_, port)| port.as_ref())
            .filter(|r| {
                // libpq takes an empty port for the default one.
                let port = &self.url[(*r).clone()];
                !port.is_empty() && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
            })
    }

    /// The URL with every secret replaced by `***`, and the secrets, as written and decoded.
    fn redact(&self) -> (String, Vec<String>) {
        let mut secrets = Vec::new();
        let mut add_secret = |raw: &str| {
            secrets.push(raw.to_owned());
            secrets.push(decode(raw));
        };
        if self.is_ambiguous() {
            // No one reading of the URL can be trusted to find the whole password, so none of
            // the URL is shown. Such a URL is refused, and never reaches a driver.
            return (
                format!("{}{MASK}", &self.url[..self.scheme_len]),
                Vec::new(),
            );
        }
        let mut masks = Vec::new();
        if let Some(p) = &self.password {
            add_secret(&self.url[p.clone()]);
            masks.push(p.clone());
        }
        // From a password cut at an unencoded `&` on, any piece may be the rest of it.
        let cut = (0..self.params.len()).find(|&i| self.is_cut_password(i));
        for (i, param) in self.params.iter().enumerate() {
            let key = decode(&self.url[param.key.clone()]);
            match &param.value {
                _ if cut.is_some_and(|cut| i >= cut) => {
                    add_secret(&self.url[param.whole.clone()]);
                    masks.push(param.whole.clone());
                }
                Some(value) if is_secret_key(&key) => {
                    add_secret(&self.url[value.clone()]);
                    masks.push(value.clone());
                }
                // A piece with no `=` may be the end of a password too.
                None => {
                    add_secret(&self.url[param.whole.clone()]);
                    masks.push(param.whole.clone());
                }
                _ => {}
            }
        }
        masks.extend(self.bad_ports().cloned());
        secrets.retain(|s| !s.is_empty());
        secrets.sort();
        secrets.dedup();
        (apply_masks(self.url, masks), secrets)
    }

    /// Why this URL is refused, if it is. The reason names no part of the password.
    fn problem(&self) -> Option<String> {
        let after_scheme = &self.url[self.scheme_len..];
        if let Some(reason) = bad_percent_escape(after_scheme) {
            return Some(reason.to_owned());
        }
        if self.is_ambiguous() {
            return Some(AMBIGUOUS.to_owned());
        }
        if (0..self.params.len()).any(|i| self.is_cut_password(i)) {
            return Some(
                "a parameter after a password parameter is not a libpq parameter: the password \
                 holds an `&` that is not percent-encoded; percent-encode `&` as `%26` in the \
                 password"
                    .to_owned(),
            );
        }
        if self.params.iter().any(|p| p.value.is_none()) {
            return Some(
                "a query parameter has no `=`; expected `?key=value&key2=value2` (percent-encode \
                 `&` as `%26` inside a value)"
                    .to_owned(),
            );
        }
        if let Some(reason) = self.bracket_problem {
            return Some(format!(
                "{reason}; expected `postgres://user@[::1]:5432/db`"
            ));
        }
        if self.bad_ports().next().is_some() {
            return Some(
                "the port after a host is not a number from 1 to 65535 (it is not shown, in case \
                 it is a password missing its `@host`); expected `postgres://user:password@host:5432/db`"
                    .to_owned(),
            );
        }
        // libpq would take spaces literally and fail later with a less helpful message.
        let userinfo_end = self.userinfo.as_ref().map_or(self.scheme_len, |u| u.end);
        if self.url[userinfo_end..].contains(char::is_whitespace) {
            return Some("URL contains whitespace; percent-encode it (`%20`)".to_owned());
        }
        None
    }
}

/// Why `text`'s percent escapes would make libpq fail (quoting the text, password included),
/// if they would: every `%` must start a `%XX` escape of a byte other than zero.
fn bad_percent_escape(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                if *h == b'0' && *l == b'0' {
                    return Some("the URL holds `%00`, which libpq refuses");
                }
            }
            _ => {
                return Some(
                    "a `%` is not followed by two hex digits; percent-encode `%` itself as `%25`",
                )
            }
        }
    }
    None
}

/// `text` with its `%XX` escapes decoded, as libpq decodes URL parts (bytes that are not UTF-8
/// become U+FFFD, as in a driver message that quotes them). A malformed escape stays as is.
fn decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a (decoded) parameter key holds a secret: `password`, `sslpassword` and anything
/// else naming a password, `oauth_client_secret`, and the SCRAM keys. Letter case is ignored,
/// so a key libpq would reject is hidden too.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret") || key.starts_with("scram_")
}

/// Whether `text` is a URL scheme (`mysql`, `redis+tls`).
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `text` with each of `masks` (byte ranges on character boundaries) replaced by `***`;
/// overlapping and touching ranges become one `***`.
fn apply_masks(text: &str, mut masks: Vec<Range<usize>>) -> String {
    masks.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut shown_to = 0;
    for mask in masks {
        if mask.start > shown_to {
            out.push_str(&text[shown_to..mask.start]);
            out.push_str(MASK);
        } else if mask.end > shown_to && !out.ends_with(MASK) {
            out.push_str(MASK);
        }
        shown_to = shown_to.max(mask.end);
    }
    out.push_str(&text[shown_to.min(text.len())..]);
    out
}

/// Redaction for text that is not a `postgres://` URL: a SQLite path, another scheme's URL, a
/// keyword string, `postgres:/` missing a slash. None of these reaches libpq, so it is enough to
/// hide generously: from the first `:` of the part before the last `@` up to that `@`, and the
/// value of every `key=value` whose key names a secret.
fn redact_loosely(text: &str) -> (String, Vec<String>) {
    let mut masks = Vec::new();
    // Skip a scheme followed by slashes (`mysql://`, `postgres:/`), so its `:` is not taken
    // for the user's; `user:secret@host` has none.
    let body = match text.split_once(':') {
        Some((scheme, rest)) if is_scheme(scheme) && rest.starts_with('/') => {
            text.len() - rest.trim_start_matches('/').len()
        }
        _ => 0,
    };
    if let Some(at) = text[body..].rfind('@').map(|i| body + i) {
        if let Some(colon) = text[body..at].find(':').map(|i| body + i) {
            masks.push(colon + 1..at);
        }
    }
    // `key=value`, in a query string or a keyword string (where spaces may surround `=`).
    for (eq, _) in text.match_indices('=') {
        let key = text[..eq].trim_end();
        let key_start = key
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '%'))
            .map_or(0, |i| i + 1);
        if !is_secret_key(&decode(&key[key_start..])) {
            continue;
        }
        let start = text.len() - text[eq + 1..].trim_start().len();
        masks.push(start..start + value_len(&text[start..]));
    }
    let mut secrets: Vec<String> = masks
        .iter()
        .flat_map(|r| {
            let raw = &text[r.clone()];
            [
                raw.to_owned(),
                raw.trim_matches('\'').to_owned(),
                decode(raw),
            ]
        })
        .filter(|s| !s.is_empty())
        .collect();
    secrets.sort();
    secrets.dedup();
    (apply_masks(text, masks), secrets)
}

/// The length of the keyword-string value at the start of `text`: a quoted value runs to its
/// closing quote (a backslash escapes the next character), any other to whitespace or `&`.
fn value_len(text: &str) -> usize {
    if !text.starts_with('\'') {
        return text
            .find(|c: char| c.is_whitespace() || c == '&')
            .unwrap_or(text.len());
    }
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// `message` with every run of characters it shares with one of `secrets` replaced by `***`,
/// when the run is at least [`MIN_FRAGMENT`] characters long or is a whole secret. ASCII case
/// is ignored.
///
/// For each secret, `run[j]` is the length of the longest common run ending at the current
/// message character and at character `j` of the secret (the longest-common-substring table,
/// one row at a time): time grows with message length times secret length.
fn scrub_secrets(message: &str, secrets: &[String]) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut hidden = vec![false; chars.len()];
    for secret in secrets {
        let secret: Vec<char> = secret.chars().collect();
        if secret.is_empty() {
            continue;
        }
        let min = secret.len().min(MIN_FRAGMENT);
        let mut previous = vec![0usize; secret.len() + 1];
        let mut current = vec![0usize; secret.len() + 1];
        for (i, c) in chars.iter().enumerate() {
            let mut longest = 0;
            for (j, s) in secret.iter().enumerate() {
                current[j + 1] = if c.eq_ignore_ascii_case(s) {
                    previous[j] + 1
                } else {
                    0
                };
                longest = longest.max(current[j + 1]);
            }
            if longest >= min {
                hidden[i + 1 - longest..=i]
                    .iter_mut()
                    .for_each(|h| *h = true);
            }
            std::mem::swap(&mut previous, &mut current);
        }
    }
    let mut out = String::with_capacity(message.len());
    for (i, c) in chars.iter().enumerate() {
        if !hidden[i] {
            out.push(*c);
        } else if i == 0 || !hidden[i - 1] {
            out.push_str(MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first piece of `secret` at least [`MIN_FRAGMENT`] characters long (or all of it, if
    /// shorter) that appears in `text`.
    fn leak(text: &str, secret: &str) -> Option<String> {
        let chars: Vec<char> = secret.chars().collect();
        let n = chars.len().min(MIN_FRAGMENT);
        (0..=chars.len().saturating_sub(n))
            .map(|i| chars[i..i + n].iter().collect::<String>())
            .find(|piece| !piece.is_empty() && text.contains(piece.as_str()))
    }

    /// Everything a parsed URL shows: redacted text, its Debug, the URL's Debug, and a driver
    /// message quoting `echo` after scrubbing; or the error's Display and Debug.
    fn shown(url: &str, echo: &str) -> String {
        match DatabaseUrl::parse(url) {
            Ok(u) => format!(
                "{} {:?} {:?} {}",
                u.redacted,
                u.redacted,
                u,
                u.scrub(&format!("error near \"{echo}\""))
            ),
            Err(e) => format!("{e} {e:?}"),
        }
    }

    /// The reason of the `InvalidUrl` error `url` gives, with the error's Display and Debug.
    fn refusal(url: &str) -> (RedactedUrl, String, String) {
        match DatabaseUrl::parse(url) {
            Err(e @ Error::InvalidUrl { .. }) => {
                let text = format!("{e} {e:?}");
                let Error::InvalidUrl { url, reason } = e else {
                    unreachable!()
                };
                (url, reason, text)
            }
            Err(e) => panic!("{url}: expected InvalidUrl, got {e:?}"),
            Ok(u) => panic!("{url}: expected InvalidUrl, got {u:?}"),
        }
    }

    #[test]
    fn splits_as_libpq_does() {
        let url = "postgres://app:p:w?x@h1:5432,[::1]:5433/db@x?password=a%26b&sslmode=require";
        let pg = PgUrl::split(url, "postgres://".len());
        let text = |r: &Range<usize>| &url[r.clone()];
        assert_eq!(pg.userinfo.as_ref().map(text), Some("app:p:w?x"));
        assert_eq!(pg.password.as_ref().map(text), Some("p:w?x"));
        let hosts: Vec<_> = pg
            .hosts
            .iter()
            .map(|(h, p)| (text(h), p.as_ref().map(text)))
            .collect();
        assert_eq!(hosts, [("h1", Some("5432")), ("::1", Some("5433"))]);
        assert_eq!(pg.dbname.as_ref().map(text), Some("db@x"));
        let params: Vec<_> = pg
            .params
            .iter()
            .map(|p| (text(&p.key), p.value.as_ref().map(text)))
            .collect();
        assert_eq!(
            params,
            [("password", Some("a%26b")), ("sslmode", Some("require"))]
        );

        // libpq looks for the user's `@` only up to the first `/`: here there is none.
        let url = "postgres://app:hunter2xyz/abc@127.0.0.1:5432/db";
        let pg = PgUrl::split(url, "postgres://".len());
        assert!(pg.userinfo.is_none() && pg.password.is_none());
        assert_eq!(text_of(url, &pg.hosts[0].0), "app");
        assert_eq!(
            pg.hosts[0].1.as_ref().map(|r| &url[r.clone()]),
            Some("hunter2xyz")
        );

        // The password ends at the first `@`, so the rest becomes the host.
        let url = "postgres://app:p@ss@127.0.0.1/db";
        let pg = PgUrl::split(url, "postgres://".len());
        assert_eq!(pg.password.as_ref().map(|r| &url[r.clone()]), Some("p"));
        assert_eq!(text_of(url, &pg.hosts[0].0), "ss@127.0.0.1");
    }

    fn text_of<'a>(url: &'a str, r: &Range<usize>) -> &'a str {
        &url[r.clone()]
    }

    #[test]
    fn redacts_password_in_userinfo_and_query() {
        let u = DatabaseUrl::parse("postgres://app:s3cr%40t@db:5432/prod?sslmode=require").unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://app:***@db:5432/prod?sslmode=require"
        );
        let u = DatabaseUrl::parse("postgres://app@db/prod?password=hunter2&connect_timeout=5")
            .unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://app@db/prod?password=***&connect_timeout=5"
        );
        assert_eq!(u.scrub("auth failed for hunter2"), "auth failed for ***");
        // In a query value nothing but `&` ends the password.
        let u = DatabaseUrl::parse("postgres://127.0.0.1/db?password=hun@ter/2?#x").unwrap();
        assert_eq!(u.redacted.as_str(), "postgres://127.0.0.1/db?password=***");
        let u = DatabaseUrl::parse("postgres://app:@db/prod").unwrap();
        assert_eq!(u.redacted.as_str(), "postgres://app:***@db/prod");
    }

    #[test]
    fn unencoded_url_characters_in_the_password_are_refused() {
        for (url, secret) in [
            // libpq: host `app`, port `hunter2xyz`.
            (
                "postgres://app:hunter2xyz/abc@127.0.0.1:5432/db",
                "hunter2xyz/abc",
            ),
            ("postgres://app:hunter2/xyzabc@db/prod", "hunter2/xyzabc"),
            // libpq: password `hunter2`, host `xyzw@127.0.0.1`.
            ("postgres://app:hunter2@xyzw@127.0.0.1/db", "hunter2@xyzw"),
            ("postgres://app:p@ss9876@127.0.0.1/db", "p@ss9876"),
            // libpq: password `J`, host `J=X`, a query from there on.
            ("postgres://app:J@J=X?K=K,W?@h1/prod", "J@J=X?K=K,W?"),
            // (The check skips `host`, which the reason names anyway.)
            ("postgres://app:J@J=X?host=KWYZ@h1/prod", "=KWYZ"),
            // libpq: no user info; a query from the `?` in the password on.
            ("postgres://app:12/c?K=KWYZ@h1/prod", "12/c?K=KWYZ"),
            // libpq takes these whole, other readers stop at `?` or `#`.
            ("postgres://app:hunter2?xyzw@127.0.0.1/db", "hunter2?xyzw"),
            ("postgres://app:hunter2#xyzw@127.0.0.1/db", "hunter2#xyzw"),
            ("postgresql://app:hun/ter@2#x?yz@h/d", "hun/ter@2#x?yz"),
            // libpq: user `127.0.0.1?password=hunter2`, host `xyzw`.
            ("postgres://127.0.0.1?password=hunter2@xyzw", "hunter2@xyzw"),
        ] {
            let (redacted, reason, text) = refusal(url);
            assert!(reason.contains("`/` as `%2F`"), "{url}: {reason}");
            assert!(reason.contains("`@` as `%40`"), "{url}: {reason}");
            assert!(redacted.as_str().ends_with("://***"), "{url}: {redacted}");
            assert_eq!(leak(&text, secret), None, "{url}: {text}");
        }
    }

    #[test]
    fn percent_encoded_passwords_are_hidden_in_both_forms() {
        let url = "postgres://app:hun%2Fter%40%3F%23%25x@db:5432/prod?sslmode=require";
        let u = DatabaseUrl::parse(url).unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://app:***@db:5432/prod?sslmode=require"
        );
        assert_eq!(format!("{}", u.redacted), u.redacted.as_str());
        assert_eq!(
            format!("{u:?}"),
            "DatabaseUrl(\"postgres://app:***@db:5432/prod?sslmode=require\")"
        );
        for message in [
            "password was hun%2Fter%40%3F%23%25x",
            "password was hun/ter@?#%x",
            "password was HUN/TER@?#%X",
        ] {
            assert_eq!(u.scrub(message), "password was ***", "{message}");
        }
        // And in a query parameter.
        let u = DatabaseUrl::parse("postgres://db/prod?password=hun%2Fter%26x&sslmode=require")
            .unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://db/prod?password=***&sslmode=require"
        );
        assert_eq!(u.scrub("hun/ter&x hun%2Fter%26x"), "*** ***");
    }

    #[test]
    fn encoded_and_other_secret_keys_are_recognised() {
        for (url, shown) in [
            (
                "postgres://db/prod?pass%77ord=hunter2",
                "postgres://db/prod?pass%77ord=***",
            ),
            (
                "postgres://db/prod?%73slpassword=hunter2&sslmode=require",
                "postgres://db/prod?%73slpassword=***&sslmode=require",
            ),
            (
                "postgres://db/prod?PASSWORD=hunter2",
                "postgres://db/prod?PASSWORD=***",
            ),
            (
                "postgres://db/prod?oauth_client_secret=hunter2&scram_client_key=hunter2",
                "postgres://db/prod?oauth_client_secret=***&scram_client_key=***",
            ),
        ] {
            let u = DatabaseUrl::parse(url).unwrap();
            assert_eq!(u.redacted.as_str(), shown);
            assert_eq!(u.scrub("x hunter2 y"), "x *** y");
        }
    }

    #[test]
    fn query_password_cut_at_an_ampersand_is_refused() {
        for (url, secret) in [
            ("postgres://db/prod?password=hunt&er2xyz", "er2xyz"),
            (
                "postgres://db/prod?password=hunt&er2=xyzw&sslmode=require",
                "er2=xyzw",
            ),
            (
                "postgres://db/prod?password=hunt&er2=xyzw&x=qwerty",
                "qwerty",
            ),
        ] {
            let (redacted, reason, text) = refusal(url);
            assert!(reason.contains("`%26`"), "{url}: {reason}");
            assert!(redacted
                .as_str()
                .starts_with("postgres://db/prod?password=***&***"));
            assert_eq!(leak(&text, secret), None, "{url}: {text}");
            assert_eq!(leak(&text, "hunt"), None, "{url}: {text}");
        }
        // A known parameter after the password is just that.
        let u = DatabaseUrl::parse("postgres://db/prod?password=hunt&sslmode=require").unwrap();
        assert_eq!(
            u.redacted.as_str(),
            "postgres://db/prod?password=***&sslmode=require"
        );
    }

    #[test]
    fn bad_percent_escapes_are_refused_without_echo() {
        for url in [
            "postgres://app:hunter2%zz@db/prod",
            "postgres://app:hunter2%4@db/prod",
            "postgres://app:hunter2%@db/prod",
            "postgres://app:hunter2%00@db/prod",
            "postgres://db/prod?password=hunter2%g1",
        ] {
            let (redacted, reason, text) = refusal(url);
            assert!(reason.contains('%'), "{reason}");
            assert!(!redacted.as_str().contains("hunter2"), "{redacted}");
            assert_eq!(leak(&text, "hunter2"), None, "{url}: {text}");
        }
    }

    #[test]
    fn a_port_that_is_not_a_number_is_hidden() {
        // `@host` forgotten: libpq reads host `app`, port `hunter2`, and would quote it.
        let (redacted, reason, _) = refusal("postgres://app:hunter2/prod");
        assert_eq!(redacted.as_str(), "postgres://app:***/prod");
        assert!(reason.contains("not a number from 1 to 65535"), "{reason}");
        let (redacted, _, _) = refusal("postgres://u:pw@h:5432,h2:99999/db");
        assert_eq!(redacted.as_str(), "postgres://u:***@h:5432,h2:***/db");
        assert!(
            DatabaseUrl::parse("postgres://u@h:/db").is_ok(),
            "empty port is libpq's default"
        );
    }

    #[test]
    fn scrub_removes_every_piece_libpq_could_echo() {
        let u = DatabaseUrl::parse("postgres://app:hunter2xyz%2Fabcd@127.0.0.1/db").unwrap();
        for (message, expected) in [
            (
                "invalid integer value \"hunter2xyz\" for connection option \"port\"",
                "invalid integer value \"***\" for connection option \"port\"",
            ),
            (
                "could not translate host name \"abcd@127.0.0.1\" to address",
                "could not translate host name \"***@127.0.0.1\" to address",
            ),
            (
                "role \"ter2xyz/ab\" does not exist",
                "role \"***\" does not exist",
            ),
            ("HUNTER2XYZ/ABCD", "***"),
            ("port 5432 failed", "port 5432 failed"),
            ("", ""),
        ] {
            assert_eq!(u.scrub(message), expected);
        }
        // A password shorter than four characters is scrubbed whole.
        let u = DatabaseUrl::parse("postgres://app:x9@db/prod").unwrap();
        assert_eq!(u.scrub("pw x9, 9x"), "pw ***, 9x");
        // Non-ASCII text on both sides.
        let u = DatabaseUrl::parse("postgres://app:p%C3%A4ss%E2%82%ACwörd@db/prod").unwrap();
        assert_eq!(u.scrub("é päss€wörd ü"), "é *** ü");
        assert_eq!(u.scrub("€wör"), "***");
    }

    #[test]
    fn libpq_params_are_added_unless_present() {
        let with = |url: &str| {
            DatabaseUrl::parse(url)
                .unwrap()
                .with_libpq_param("connect_timeout", "5")
        };
        assert_eq!(with("postgres://h/db"), "postgres://h/db?connect_timeout=5");
        assert_eq!(
            with("postgres://h/db?sslmode=disable"),
            "postgres://h/db?sslmode=disable&connect_timeout=5"
        );
        assert_eq!(
            with("postgres://h/db?"),
            "postgres://h/db?connect_timeout=5"
        );
        assert_eq!(
            with("postgres://h/db?a=b&"),
            "postgres://h/db?a=b&connect_timeout=5"
        );
        assert_eq!(
            with("postgres://h/db?connect%5Ftimeout=9"),
            "postgres://h/db?connect%5Ftimeout=9"
        );
        assert_eq!(
            with("postgres://u:p%3Fx@h"),
            "postgres://u:p%3Fx@h?connect_timeout=5"
        );
    }

    #[test]
    fn pool_errors_are_scrubbed() {
        // The pool's message quotes the last connection error, which may quote the password.
        let u = DatabaseUrl::parse("postgres://app:s3cr%2Ft-pw@db/prod").unwrap();
        let err = Error::PoolTimeout {
            url: u.redacted.clone(),
            timeout: std::time::Duration::from_secs(5),
            size: 1,
            max_overflow: 0,
            in_use: 0,
            waiting: 1,
            last_error: Some(u.scrub("bad password s3cr/t-pw (s3cr%2Ft)")),
        };
        let text = format!("{err} {err:?}");
        assert!(text.contains("postgres://app:***@db/prod"), "{text}");
        assert_eq!(leak(&text, "s3cr/t-pw"), None, "{text}");
        assert_eq!(leak(&text, "s3cr%2Ft-pw"), None, "{text}");
    }

    #[test]
    fn other_texts_are_redacted_generously() {
        for (text, secret) in [
            ("host=db user=app password=hunter2 dbname=prod", "hunter2"),
            ("host=db password = 'hun ter\\' 2' dbname=prod", "ter\\' 2"),
            ("postgres:/app:hunter2@db/prod", "hunter2"),
            ("postgres:/app:hun:ter2@db/prod", "hun:ter2"),
            ("mysql://app:hun/ter2@db/prod", "hun/ter2"),
            ("mysql://db/prod?pass%77ord=hunter2", "hunter2"),
            ("app:hunter2@db/prod", "hunter2"),
            ("app:hunter2@y://z", "hunter2"),
        ] {
            let text = shown(text, secret);
            assert_eq!(leak(&text, secret), None, "{text}");
        }
        let (redacted, reason, _) = refusal("mysql://app:hunter2@db/prod");
        assert_eq!(redacted.as_str(), "mysql://app:***@db/prod");
        assert!(reason.contains("unsupported scheme `mysql`"), "{reason}");
    }

    #[test]
    fn odd_input_never_panics() {
        let mut inputs: Vec<String> = [
            "postgres://ü:ö@ä:5432/ß",
            "postgres://@",
            "postgres://:@:/",
            "postgres://a:b@c:d@e/f",
            "postgres://[::1]:5432/db",
            "postgres://[::1/db",
            "postgres://[]/db",
            "postgres://[::1]x/db",
            "postgres://[",
            "postgres://u:p@h/db?password",
            "postgres://u:p@h/db?=&&password=",
            "postgres://u:p@h/db?password=%",
            "postgres://u:p@h/db?&",
            "postgres://u:p@h/db?password='",
            "postgres://%",
            "postgres://%é",
            "postgres://,,,:,/?&=",
            "postgres://u:%E2%82@h",
            "password='",
            "password=",
            "=",
            "sqlite://",
            "://",
            "\u{0}",
            "@:",
        ]
        .map(String::from)
        .to_vec();
        // Every prefix of a URL that has a bit of everything.
        let full = "postgresql://ü:p%2F@ss@[::1]:5432,h:1/d@b?pass%77ord=a&b&c=d#é ";
        inputs.extend(full.char_indices().map(|(i, _)| full[..i].to_owned()));
        for url in &inputs {
            match DatabaseUrl::parse(url) {
                Ok(u) => {
                    let _ = u.scrub(url);
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }

    /// A small deterministic generator (xorshift), so the loop below needs no dependency and
    /// fails the same way every time.
    struct Rng(u64);

    impl Rng {
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            &items[(self.0 % items.len() as u64) as usize]
        }
    }

    /// `text` with every byte that is not a letter or digit percent-encoded.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn generated_passwords_never_show() {
        const LETTERS: &[char] = &['Q', 'Z', 'X', 'J', 'K', 'V', 'W', 'Y'];
        const SPECIALS: &[&str] = &[
            "", "", "/", "?", "#", "@", ":", "&", "=", "%", "%2", "%41", ",", "[", "]", " ", "'",
            "\\", "é", "+",
        ];
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3000 {
            // Capital letters never occur in the rest of the URL, and no two special pieces
            // are adjacent: every four characters of the password hold one of its letters.
            let mut secret = String::new();
            for _ in 0..6 {
                secret.push(*rng.pick(LETTERS));
                let special: &&str = rng.pick(SPECIALS);
                secret.push_str(special);
            }
            let raw_or_encoded = [secret.clone(), encode(&secret)];
            let password = rng.pick(&raw_or_encoded);
            let url = match rng.pick(&[0, 1, 2, 3]) {
                0 => format!("postgres://app:{password}@db.internal:5432/prod"),
                1 => format!("postgresql://app:{password}@h1,h2:5433/prod?sslmode=require"),
                2 => format!("postgres://db.internal/prod?password={password}&sslmode=require"),
                _ => format!("postgres://127.0.0.1?pass%77ord={password}"),
            };
            // What libpq might quote: the whole URL, and each of its parts, as given and decoded.
            let pg = PgUrl::split(&url, url.find("://").unwrap() + 3);
            let mut echo = format!("{url} {}", decode(&url));
            for (host, port) in &pg.hosts {
                for r in std::iter::once(host).chain(port) {
                    echo.push_str(&format!(" {} {}", &url[r.clone()], decode(&url[r.clone()])));
                }
            }
            for r in pg.userinfo.iter().chain(&pg.dbname) {
                echo.push_str(&format!(" {} {}", &url[r.clone()], decode(&url[r.clone()])));
            }
            for p in &pg.params {
                let piece = &url[p.whole.clone()];
                echo.push_str(&format!(" {piece} {}", decode(piece)));
            }
            let text = shown(&url, &echo);
            for form in [&secret, password] {
                assert_eq!(leak(&text, form), None, "{url}:\n{text}");
            }
            match DatabaseUrl::parse(&url) {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
        }
        assert!(
            accepted > 300 && refused > 300,
            "{accepted} accepted, {refused} refused"
        );
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
            "postgres://u:pw@[::1/db",
            "postgres://u:pw@host/my db",
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

//! A password never shows: not in errors (Display or Debug), not in the redacted URL, not in
//! log events, on any path `Database::connect` can fail by, for a password holding every
//! character that means something in a URL.
//!
//! The last connection error quoted by `Error::PoolTimeout` goes through the same scrubbing,
//! tested in `orm-core`'s `url` module.
#![cfg(feature = "postgres")]

use crate::common;

use std::fmt::Write as _;

use orm::{Database, Error};

/// The password under test, decoded: every URL delimiter, and letters that occur nowhere else
/// in the URLs or in PostgreSQL's messages.
const SECRET: &str = "Zq7/Wx@9?Kp#2%Lm&Rt=Vs:Yj,Qh";

/// `text` with every byte that is not a letter or digit percent-encoded.
fn encode(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// Fails if any four consecutive characters of the secret, as written in the URL or decoded,
/// appear in `text`.
fn assert_hidden(what: &str, text: &str) {
    for form in [SECRET.to_owned(), encode(SECRET)] {
        let chars: Vec<char> = form.chars().collect();
        for piece in chars.windows(4) {
            let piece: String = piece.iter().collect();
            assert!(
                !text.contains(&piece),
                "{what} shows `{piece}` of the password:\n{text}"
            );
        }
    }
}

/// `Database::connect(url)`, with the log events it emits on this thread.
fn connect(url: &str) -> (orm::Result<Database>, String) {
    let logs = common::Logs::capture_all();
    let result = Database::connect(url);
    (result, logs.text())
}

/// Connects to `url`, expects it to fail, checks that the secret shows nowhere, and returns
/// the error's text.
fn failure(url: &str) -> (Error, String) {
    let (result, logs) = connect(url);
    let err = match result {
        Ok(db) => panic!("{url} connected: {db:?}"),
        Err(err) => err,
    };
    let text = format!("{err}\n{err:?}");
    assert_hidden("the error", &text);
    assert_hidden("the log", &logs);
    (err, text)
}

/// The `host:port` of the test server, or `None` (after saying so) when there is none.
fn server(test: &str) -> Option<String> {
    let url = common::server_url("ORM_TEST_PG_URL", test)?;
    Some(common::redirect(&url, 0).0)
}

#[test]
fn the_secret_percent_encoded_is_a_valid_url_password() {
    let url = format!("postgres://app:{}@db/prod", encode(SECRET));
    assert!(url.is_ascii() && !encode(SECRET).contains(['/', '?', '#', '@', '&']));
}

#[test]
fn unencoded_delimiters_in_the_password_are_refused_before_connecting() {
    for url in [
        // libpq would take `Zq7` for the host and `Wx@9` for the port.
        "postgres://app:Zq7:Wx/Kp2LmRt@127.0.0.1:5432/orm_test".to_owned(),
        "postgres://app:Zq7WxKp/2LmRt@127.0.0.1:5432/orm_test".to_owned(),
        // libpq would take `LmRtVs@127.0.0.1` for the host.
        "postgres://app:Zq7WxKp@LmRtVs@127.0.0.1:5432/orm_test".to_owned(),
        "postgres://app:Zq7WxKp?LmRtVs@127.0.0.1:5432/orm_test".to_owned(),
        "postgres://app:Zq7WxKp#LmRtVs@127.0.0.1:5432/orm_test".to_owned(),
        format!("postgres://app:{SECRET}@127.0.0.1:5432/orm_test"),
        // libpq would take `127.0.0.1?password=Zq7WxKp` for the user, `LmRtVs` for the host.
        "postgres://127.0.0.1?password=Zq7WxKp@LmRtVs".to_owned(),
        // libpq would cut the password at `&` and quote `LmRtVs`.
        "postgres://127.0.0.1/orm_test?password=Zq7WxKp&LmRtVs".to_owned(),
        "postgres://127.0.0.1/orm_test?password=Zq7WxKp&LmRtVs=Yj".to_owned(),
        // An invalid escape would make libpq quote the whole password.
        "postgres://app:Zq7WxKp%LmRtVs@127.0.0.1:5432/orm_test".to_owned(),
    ] {
        let (err, text) = failure(&url);
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {text}");
        assert!(
            text.contains("percent-encode"),
            "{url}: the reason says what to do: {text}"
        );
        for piece in ["Zq7W", "xKp", "LmRt", "RtVs"] {
            assert!(!text.contains(piece), "{url} shows `{piece}`: {text}");
        }
    }
}

#[test]
fn unknown_host_is_a_connect_error_without_the_password() {
    let (err, text) = failure(&format!(
        "postgres://app:{}@nonexistent.invalid:5432/orm_test?sslmode=disable",
        encode(SECRET)
    ));
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(text.contains("nonexistent.invalid"), "{text}");
    assert!(text.contains("app:***@nonexistent.invalid"), "{text}");
}

#[test]
fn refused_port_is_a_connect_error_without_the_password() {
    // Nothing listens on port 1 of the loopback address.
    for url in [
        format!("postgres://app:{}@127.0.0.1:1/orm_test", encode(SECRET)),
        format!(
            "postgres://app@127.0.0.1:1/orm_test?pass%77ord={}",
            encode(SECRET)
        ),
        format!(
            "postgres://app@127.0.0.1:1/orm_test?sslpassword={}&password={}",
            encode(SECRET),
            encode(SECRET)
        ),
    ] {
        let (err, text) = failure(&url);
        assert!(matches!(err, Error::Connect { .. }), "{url}: {text}");
        assert!(text.contains("127.0.0.1"), "{text}");
    }
}

#[test]
fn unknown_database_is_a_server_error_without_the_password() {
    let Some(server) = server("unknown_database_is_a_server_error") else {
        return;
    };
    for url in [
        format!(
            "postgres://postgres:{}@{server}/orm_no_such_db_redaction",
            encode(SECRET)
        ),
        format!(
            "postgres://postgres@{server}/orm_no_such_db_redaction?password={}",
            encode(SECRET)
        ),
    ] {
        let (err, text) = failure(&url);
        assert!(matches!(err, Error::Connect { .. }), "{text}");
        assert!(text.contains("orm_no_such_db_redaction"), "{text}");
    }
}

#[test]
fn unknown_user_is_a_server_error_without_the_password() {
    let Some(server) = server("unknown_user_is_a_server_error") else {
        return;
    };
    let (err, text) = failure(&format!(
        "postgres://orm_no_such_role_redaction:{}@{server}/orm_test",
        encode(SECRET)
    ));
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(text.contains("orm_no_such_role_redaction"), "{text}");
}

#[test]
fn a_bad_option_is_a_server_error_without_the_password() {
    let Some(server) = server("a_bad_option_is_a_server_error") else {
        return;
    };
    // The server quotes the options it rejects; the password sits right next to them.
    let (err, text) = failure(&format!(
        "postgres://postgres:{}@{server}/orm_test?options=-corm.no_such%3D1%20-cno_such_setting%3D2",
        encode(SECRET)
    ));
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(text.contains("no_such_setting"), "{text}");
}

#[test]
fn a_successful_connection_logs_and_shows_only_the_redacted_url() {
    let Some(server) = server("a_successful_connection_logs") else {
        return;
    };
    // Loopback connections are trusted, so the server never asks for the password.
    let url = format!("postgres://postgres:{}@{server}/orm_test", encode(SECRET));
    let (result, logs) = connect(&url);
    let db = result.expect("connect");
    assert!(
        logs.contains("database opened"),
        "the log was captured: {logs}"
    );
    assert!(logs.contains("postgres:***@"), "{logs}");
    assert_hidden("the log", &logs);
    assert_hidden("the URL", db.url().as_str());
    assert_hidden("the Debug", &format!("{db:?} {:?}", db.url()));
    assert_eq!(
        db.url().as_str(),
        format!("postgres://postgres:***@{server}/orm_test")
    );
}

/// A Redis URL's password shows neither in the cache's errors nor in its warnings, whether the
/// URL cannot be read or the server cannot be reached.
#[test]
fn a_redis_password_shows_in_no_cache_error_or_warning() {
    use orm::cache::{Cache, CacheKey, Redis, RedisConfig};

    let bad = format!("redis://:{}@[no-such-host/0", encode(SECRET));
    let err = Redis::new(&bad, RedisConfig::default()).unwrap_err();
    assert_hidden("the cache's URL error", &format!("{err}\n{err:?}"));

    // Port 1 refuses: the read falls back to its loader, and the breaker warns.
    let url = format!("redis://:{}@127.0.0.1:1/0", encode(SECRET));
    let cache = Cache::new(
        Redis::new(&url, RedisConfig::default()).unwrap(),
        Default::default(),
    );
    let captured = common::Logs::capture_all();
    let value: i64 = cache
        .get_or_load(&CacheKey::for_query::<Probe>(b"x"), None, || {
            Ok::<_, Error>(5)
        })
        .unwrap();
    assert_eq!(value, 5);
    assert_eq!(cache.stats().errors, 1);
    let logs = captured.text();
    drop(captured);
    assert!(logs.contains("query cache backend failed"), "{logs}");
    assert_hidden("the cache's warning", &logs);
    assert_hidden("the cache's Debug", &format!("{cache:?}"));
}

/// A model for the cache key above.
#[derive(Debug, orm::Model)]
#[orm(table = probes)]
pub struct Probe {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
}

//! PostgreSQL write-ahead-log positions (`pg_lsn`), and the one query a session needs after its
//! commit to know which position a replica must have replayed before it may serve its reads.

use std::fmt;
use std::str::FromStr;

use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::sql_types::Text;
use diesel::{QueryResult, RunQueryDsl};

/// A position in PostgreSQL's write-ahead log: the byte offset PostgreSQL prints as `X/Y`
/// (two hexadecimal halves of a 64-bit number). Positions are totally ordered, and the
/// difference of two is a distance in bytes of WAL.
///
/// ```
/// use orm_core::route::Lsn;
/// let lsn: Lsn = "16/B374D848".parse().unwrap();
/// assert_eq!(lsn.as_u64(), 0x16_B374_D848);
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`, which PostgreSQL uses for "no position" (`InvalidXLogRecPtr`); never a real
    /// position, so the router also uses it for "not observed yet".
    pub const INVALID: Lsn = Lsn(0);

    /// The position as one 64-bit number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Bytes of WAL from `earlier` to `self`; 0 when `earlier` is not before `self`.
    pub const fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Text that is not a `pg_lsn` (`X/Y`, each half at most 8 hexadecimal digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a WAL position; expected `X/Y` in hexadecimal, like `16/B374D848`")]
pub struct ParseLsnError(String);

impl FromStr for Lsn {
    type Err = ParseLsnError;

    /// Parses PostgreSQL's text form, as `pg_lsn_in` does: two hexadecimal numbers of one to
    /// eight digits, separated by `/`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseLsnError(text.to_owned());
        let (high, low) = text.trim().split_once('/').ok_or_else(err)?;
        let half = |h: &str| {
            let hex = !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
            hex.then(|| u32::from_str_radix(h, 16).ok()).flatten()
        };
        match (half(high), half(low)) {
            (Some(high), Some(low)) => Ok(Lsn((u64::from(high) << 32) | u64::from(low))),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Lsn {
    /// PostgreSQL's own form: `X/Y`, upper-case hexadecimal without leading zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The primary's WAL insert position, to be taken on the session's connection right after its
/// commit: once a replica has replayed this position, it shows everything the session wrote.
/// One round trip (`SELECT pg_current_wal_insert_lsn()`).
///
/// The insert position rather than `pg_current_wal_lsn()` (the write position): with
/// `synchronous_commit = off` a commit returns before its record is written out, so the write
/// position can still be before it, and a replica that replayed it could miss the session's
/// rows. The insert position is always at or after the commit record; the price is that, when
/// it falls just past a page header, it waits for the next WAL record to be replayed (the
/// session's reads go to the primary meanwhile).
pub fn current_primary_lsn(conn: &mut PgConnection) -> QueryResult<Lsn> {
    let text: String = sql::<Text>("SELECT pg_current_wal_insert_lsn()::text").get_result(conn)?;
    parse_reported(&text)
}

/// An LSN the server sent: a malformed one is a deserialization error, not a panic.
pub(crate) fn parse_reported(text: &str) -> QueryResult<Lsn> {
    text.parse()
        .map_err(|e: ParseLsnError| diesel::result::Error::DeserializationError(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_postgres_text() {
        for (text, value) in [
            ("0/0", 0),
            ("0/16B3748", 0x16B_3748),
            ("16/B374D848", 0x16_B374_D848),
            ("FFFFFFFF/FFFFFFFF", u64::MAX),
        ] {
            let lsn: Lsn = text.parse().unwrap();
            assert_eq!(lsn, Lsn(value), "{text}");
            assert_eq!(lsn.to_string(), text);
        }
        assert_eq!("a/b".parse::<Lsn>().unwrap(), Lsn(0xA_0000_000B));
        assert_eq!(" 0/1\n".parse::<Lsn>().unwrap(), Lsn(1));
        assert_eq!(Lsn(0xA_0000_000B).to_string(), "A/B");
    }

    #[test]
    fn refuses_what_postgres_refuses() {
        for text in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "0/0/0",
            "G/0",
            "0/-1",
            "+1/0",
            "123456789/0",
            "0/1 2",
        ] {
            let err = text.parse::<Lsn>().unwrap_err();
            assert!(err.to_string().contains("X/Y"), "{err}");
        }
    }

    #[test]
    fn orders_and_measures_distance() {
        let a: Lsn = "0/FFFFFFFF".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.bytes_since(a), 1);
        assert_eq!(a.bytes_since(b), 0);
        assert!(Lsn::INVALID < a);
    }
}

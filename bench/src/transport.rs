//! How every client of one run reaches the server: all without TLS (the default), or all on TLS
//! (`--tls`). Each client checks its own connection once, when it is opened, and fails loudly if
//! it is on the other transport.

use orm::prelude::*;
use std::process::Command;

use diesel::prelude::*;

use crate::{BenchResult, SCHEMA};

/// The server used when `ORM_BENCH_PG_URL` is not set.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/orm_test";
/// The psql of the server's major version (`/usr/bin/psql` is a wrapper that may pick another).
pub const PSQL: &str = "/usr/lib/postgresql/15/bin/psql";
/// Whether the connection that runs it is on TLS.
pub const SSL_QUERY: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// The transport every PostgreSQL client of one run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No TLS: libpq `sslmode=disable`, the raw client with `NoTls`.
    Plain,
    /// TLS: libpq `sslmode=require`, the raw client through OpenSSL.
    Tls,
}

impl Transport {
    /// `Tls` if `tls`, else `Plain`.
    pub fn new(tls: bool) -> Self {
        if tls {
            Transport::Tls
        } else {
            Transport::Plain
        }
    }

    /// The name the reports give it: `sslmode=disable` or `tls`.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Plain => "sslmode=disable",
            Transport::Tls => "tls",
        }
    }

    /// The name of `benchmark`'s JSON file on this transport: `load`, or `load_tls` on TLS,
    /// so that a run on one transport keeps the other's figures.
    pub fn json_name(self, benchmark: &str) -> String {
        match self {
            Transport::Plain => benchmark.to_owned(),
            Transport::Tls => format!("{benchmark}_tls"),
        }
    }

    /// The command-line options that select it (for a child process).
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Transport::Plain => &[],
            Transport::Tls => &["--tls"],
        }
    }

    fn sslmode(self) -> &'static str {
        match self {
            Transport::Plain => "disable",
            Transport::Tls => "require",
        }
    }

    /// The server's URL with this transport's `sslmode`, for libpq and the raw client.
    pub fn url(self) -> BenchResult<String> {
        self.url_of(&server_url())
    }

    /// `server` (a URL without `sslmode`) with this transport's `sslmode`.
    pub fn url_of(self, server: &str) -> BenchResult<String> {
        if server.contains("sslmode=") {
            return Err(format!(
                "the server URL sets sslmode ({}): leave it out, the transport is \
                 sslmode=disable by default and TLS with --tls",
                server.split('?').nth(1).unwrap_or_default()
            )
            .into());
        }
        Ok(with_param(server, &format!("sslmode={}", self.sslmode())))
    }

    /// [`Self::url`] with the search path set to [`SCHEMA`], for `orm`, Diesel and psql.
    pub fn schema_url(self) -> BenchResult<String> {
        self.schema_url_in(SCHEMA)
    }

    /// [`Self::url`] with the search path set to `schema`.
    pub fn schema_url_in(self, schema: &str) -> BenchResult<String> {
        Ok(with_search_path(&self.url()?, schema))
    }

    /// Fail unless `ssl` (what `client`'s server process reports) matches this transport.
    pub fn check(self, client: &str, ssl: bool) -> BenchResult<()> {
        if ssl == (self == Transport::Tls) {
            return Ok(());
        }
        let actual = if ssl { "on TLS" } else { "not on TLS" };
        Err(format!("{client} is {actual}, but this run is {}", self.label()).into())
    }

    /// Create [`SCHEMA`] if it is missing, and return the `orm` database whose search path is
    /// it, its transport checked.
    pub fn database(self) -> BenchResult<orm::Database> {
        self.database_in(SCHEMA)
    }

    /// As [`Self::database`], in `schema` (created if missing) rather than [`SCHEMA`].
    pub fn database_in(self, schema: &str) -> BenchResult<orm::Database> {
        orm::Database::connect(&self.url()?)?
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
        let db = orm::Database::connect(&self.schema_url_in(schema)?)?;
        self.check_database("orm", &db)?;
        Ok(db)
    }

    /// Fail unless the connection `db` reads through is on this transport.
    pub fn check_database(self, client: &str, db: &orm::Database) -> BenchResult<()> {
        let ssl: Vec<bool> = db.load(diesel::dsl::sql::<diesel::sql_types::Bool>(SSL_QUERY))?;
        let ssl = *ssl
            .first()
            .ok_or_else(|| format!("pg_stat_ssl has no row for {client}"))?;
        self.check(client, ssl)
    }

    /// A Diesel connection whose search path is [`SCHEMA`], its transport checked.
    pub fn diesel(self) -> BenchResult<PgConnection> {
        self.diesel_in(SCHEMA)
    }

    /// As [`Self::diesel`], with the search path set to `schema`.
    pub fn diesel_in(self, schema: &str) -> BenchResult<PgConnection> {
        let mut conn = PgConnection::establish(&self.schema_url_in(schema)?)?;
        self.check_diesel("Diesel", &mut conn)?;
        Ok(conn)
    }

    /// Fail unless `conn` is on this transport.
    pub fn check_diesel(self, client: &str, conn: &mut PgConnection) -> BenchResult<()> {
        let ssl: bool = diesel::dsl::sql::<diesel::sql_types::Bool>(SSL_QUERY).get_result(conn)?;
        self.check(client, ssl)
    }

    /// A raw `postgres` client whose search path is [`SCHEMA`] (which must exist), its
    /// transport checked.
    pub fn raw_client(self) -> BenchResult<postgres::Client> {
        self.raw_client_in(SCHEMA)
    }

    /// As [`Self::raw_client`], with the search path set to `schema` (which must exist).
    pub fn raw_client_in(self, schema: &str) -> BenchResult<postgres::Client> {
        let url = self.url()?;
        let mut client = match self {
            Transport::Plain => postgres::Client::connect(&url, postgres::NoTls)?,
            Transport::Tls => postgres::Client::connect(&url, tls_connector()?)?,
        };
        client.batch_execute(&format!("SET search_path TO {schema}"))?;
        let ssl: bool = client.query_one(SSL_QUERY, &[])?.try_get(0)?;
        self.check("the raw postgres client", ssl)?;
        Ok(client)
    }

    /// A psql command on [`Self::schema_url`] that stops at the first error, its arguments
    /// still to add.
    pub fn psql(self) -> BenchResult<Command> {
        let mut command = Command::new(PSQL);
        command
            .args(["-X", "-w", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.schema_url()?);
        Ok(command)
    }

    /// Fail unless psql connects on this transport.
    pub fn check_psql(self) -> BenchResult<()> {
        let output = self
            .psql()?
            .args(["-A", "-t", "-c", SSL_QUERY])
            .output()
            .map_err(|e| format!("cannot run {PSQL}: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "psql failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        self.check("psql", stdout.trim() == "t")
    }
}

/// A TLS connector for the raw client that accepts the server's certificate unverified: the
/// local server's is self-signed, and the benchmark measures the transport, not trust.
fn tls_connector() -> BenchResult<postgres_openssl::MakeTlsConnector> {
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())?;
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    Ok(postgres_openssl::MakeTlsConnector::new(builder.build()))
}

/// The server's URL without `sslmode`: `ORM_BENCH_PG_URL`, or [`DEFAULT_PG_URL`].
pub fn server_url() -> String {
    env_url("ORM_BENCH_PG_URL", DEFAULT_PG_URL)
}

/// The URL in the environment variable `var`, or `default` if it is unset or blank.
pub fn env_url(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `url` with the query parameter `param` (`name=value`) appended.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// `url` with the search path set to [`SCHEMA`].
pub fn schema_url(url: &str) -> String {
    with_search_path(url, SCHEMA)
}

/// `url` with the search path set to `schema`.
pub fn with_search_path(url: &str, schema: &str) -> String {
    with_param(url, &format!("options=-csearch_path%3D{schema}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_url_appends_the_search_path() {
        assert_eq!(
            schema_url("postgres://u@h/db"),
            "postgres://u@h/db?options=-csearch_path%3Dorm_bench"
        );
        assert_eq!(
            schema_url("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/db?sslmode=disable&options=-csearch_path%3Dorm_bench"
        );
    }

    #[test]
    fn a_mismatched_transport_is_an_error() {
        assert!(Transport::Plain.check("x", false).is_ok());
        assert!(Transport::Tls.check("x", true).is_ok());
        let e = Transport::Plain.check("psql", true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "psql is on TLS, but this run is sslmode=disable"
        );
        assert!(Transport::Tls.check("x", false).is_err());
    }
}

//! The tour: one model, every operation, on SQLite in memory (no server, no setup) or on the
//! database in `DATABASE_URL` (`postgres://user@host:5432/db` works the same).
//!
//! ```text
//! cargo run --example quickstart
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/orm_test cargo run --example quickstart
//! ```

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::{Database, Model};

/// A user of the article's examples.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = quickstart_users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    pub name: String,
    pub bio: Option<String>,
    pub last_login: Option<DateTime<Utc>>,
    pub score: i32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let db = Database::connect(&url)?;
    println!("connected to {} ({:?})", db.url(), db.backend());

    db.drop_table::<User>()?;
    db.create_table::<User>()?;
    println!("created table `{}` from the model", User::TABLE.name);

    let ada = db.insert::<User>(&NewUser {
        email: "ada@example.com".into(),
        name: "Ada".into(),
        bio: None,
        last_login: Some(Utc::now()),
        score: 42,
    })?;
    let grace = db.insert::<User>(&NewUser {
        email: "grace@example.com".into(),
        name: "Grace".into(),
        bio: Some("COBOL".into()),
        last_login: None,
        score: 7,
    })?;
    println!("inserted {} (id {}) and {} (id {})", ada.name, ada.id, grace.name, grace.id);

    let found = db.find::<User>(ada.id)?;
    println!("found by key: {} <{}>", found.name, found.email);

    // The generated table is plain Diesel: filter, order, select as usual.
    let top: Vec<(String, i32)> = db.load(
        quickstart_users::table
            .filter(quickstart_users::score.gt(5))
            .order(quickstart_users::score.desc())
            .select((quickstart_users::name, quickstart_users::score)),
    )?;
    println!("query with the Diesel DSL: {top:?}");

    let mut changed = found;
    changed.bio = Some("Analytical Engine".into());
    changed.score += 1;
    let changed = db.update(&changed)?;
    println!("updated {}: bio = {:?}, score = {}", changed.name, changed.bio, changed.score);

    db.delete::<User>(grace.id)?;
    let gone = db.find::<User>(grace.id);
    println!("deleted {}; finding it again: {}", grace.name, gone.unwrap_err());

    match db.insert::<User>(&NewUser {
        email: "ada@example.com".into(),
        name: "Ada again".into(),
        bio: None,
        last_login: None,
        score: 0,
    }) {
        Err(orm::Error::UniqueViolation { constraint, .. }) => {
            println!("a second ada@example.com is refused by `{constraint}`")
        }
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    Ok(())
}

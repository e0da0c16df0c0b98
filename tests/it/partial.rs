//! Partial loading: generated partials and `#[derive(Projection)]` select only their columns.

use crate::common;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::prelude::*;
use orm::{Model, Projection};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    table = members,
    partial(MemberCard = [id, name, avatar_url]),
    partial(MemberEmail = [email], derive(Hash, Eq)),
)]
pub struct Member {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    /// Display name.
    #[orm(column = display_name)]
    pub name: String,
    pub avatar_url: Option<String>,
    pub last_login: Option<DateTime<Utc>>,
    /// A wide column the partials leave out.
    pub biography: String,
}

/// A hand-written projection, checked against `Member`.
#[derive(Debug, PartialEq, Projection)]
#[orm(model = Member)]
pub struct Dashboard {
    pub id: i64,
    pub last_login: Option<DateTime<Utc>>,
    #[orm(column = email)]
    pub contact: String,
    /// `Member::name`, stored in the column `display_name`.
    #[orm(column = name)]
    pub display: String,
}

fn seed(db: &orm::Database, n: usize) -> Vec<Member> {
    db.create_table::<Member>().unwrap();
    (0..n)
        .map(|i| {
            db.insert::<Member>(&NewMember {
                email: format!("m{i}@example.com"),
                name: format!("Member {i}"),
                avatar_url: (i % 2 == 0).then(|| format!("https://img/{i}.png")),
                last_login: Some(Utc::now()),
                biography: "x".repeat(1 << 20), // 1 MiB
            })
            .unwrap()
        })
        .collect()
}

fn card(m: &Member) -> MemberCard {
    MemberCard {
        id: m.id,
        name: m.name.clone(),
        avatar_url: m.avatar_url.clone(),
    }
}

#[test]
#[cfg(feature = "sqlite")]
fn partial_sql_names_exactly_the_listed_columns() {
    let query = members::table.select(MemberCard::columns());
    for sql in [
        diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string(),
        diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query)
            .to_string()
            .replace('`', "\""),
    ] {
        let select = sql.split(" FROM ").next().unwrap();
        assert!(select.contains("\"members\".\"id\""), "{sql}");
        assert!(select.contains("\"members\".\"display_name\""), "{sql}");
        assert!(select.contains("\"members\".\"avatar_url\""), "{sql}");
        assert!(
            !select.contains("biography") && !select.contains("email"),
            "{sql}"
        );
        assert_eq!(select.matches("\"members\".").count(), 3, "{sql}");
    }
    let dash =
        diesel::debug_query::<diesel::pg::Pg, _>(&members::table.select(Dashboard::columns()))
            .to_string();
    assert!(
        dash.starts_with(
            "SELECT \"members\".\"id\", \"members\".\"last_login\", \"members\".\"email\", \"members\".\"display_name\" FROM"
        ),
        "{dash}"
    );
    assert_eq!(MemberCard::COLUMNS, ["id", "display_name", "avatar_url"]);
    assert_eq!(
        Dashboard::COLUMNS,
        ["id", "last_login", "email", "display_name"]
    );
}

#[test]
fn partials_load_by_key_by_filter_all_and_streamed() {
    for db in common::backends("partials_load") {
        let members = seed(&db, 5);
        let third = &members[2];

        assert_eq!(db.find_as::<MemberCard>(third.id).unwrap(), card(third));
        assert!(matches!(
            db.find_as::<MemberCard>(9999),
            Err(orm::Error::NotFound { table: "members" })
        ));

        let all: Vec<MemberCard> = db.load_all().unwrap();
        assert_eq!(all, members.iter().map(card).collect::<Vec<_>>());

        let filtered: Vec<MemberCard> = db
            .load(
                members::table
                    .filter(members::avatar_url.is_not_null())
                    .order(members::id.desc())
                    .limit(2)
                    .select(MemberCard::columns()),
            )
            .unwrap();
        assert_eq!(filtered, vec![card(&members[4]), card(&members[2])]);

        // `as_select()` composes with the Diesel DSL too, when the backend is known.
        #[cfg(feature = "sqlite")]
        if db.backend() == orm::Backend::Sqlite {
            let cards = db
                .sqlite()
                .unwrap()
                .load(members::table.select(MemberCard::as_select()))
                .unwrap();
            assert_eq!(cards.len(), 5);
        }

        let streamed: Vec<i64> = db
            .load_iter(
                members::table
                    .order(members::id)
                    .select(MemberCard::columns()),
                |rows| {
                    rows.map(|r: orm::Result<MemberCard>| r.unwrap().id)
                        .collect()
                },
            )
            .unwrap();
        assert_eq!(streamed, members.iter().map(|m| m.id).collect::<Vec<_>>());

        let emails: std::collections::HashSet<MemberEmail> =
            db.load_all().unwrap().into_iter().collect();
        assert_eq!(emails.len(), 5);

        let dash = db.find_as::<Dashboard>(third.id).unwrap();
        assert_eq!(
            dash,
            Dashboard {
                id: third.id,
                last_login: third.last_login,
                contact: third.email.clone(),
                display: third.name.clone(),
            }
        );
    }
}

#[test]
fn partials_leave_wide_columns_on_the_server() {
    // Each row carries a 1 MiB biography. Count the bytes PostgreSQL sends through a relay:
    // the partial's rows must come back without it, the full rows with it.
    let Some(url) = common::postgres_url("partials_leave_wide_columns") else {
        return;
    };
    seed(&orm::Database::connect(&url).unwrap(), 3);
    let (target, _) = common::redirect(&url, 0);
    let proxy = common::ByteCountingProxy::start(&target);
    let (_, proxied) = common::redirect(&url, proxy.port);
    let db = orm::Database::connect(&proxied).unwrap();

    let before = proxy.received();
    let cards: Vec<MemberCard> = db.load_all().unwrap();
    let partial_bytes = proxy.received() - before;
    assert_eq!(cards.len(), 3);

    let before = proxy.received();
    let full: Vec<Member> = db.load(members::table).unwrap();
    let full_bytes = proxy.received() - before;
    assert_eq!(full.len(), 3);

    // The bound leaves room for the pool opening its idle connections through the relay.
    assert!(
        partial_bytes < 64 * 1024,
        "partial load received {partial_bytes} bytes"
    );
    assert!(
        full_bytes > 3 << 20,
        "full load received only {full_bytes} bytes"
    );
}

#[test]
fn partials_serialize_for_caching() {
    let c = MemberCard {
        id: 7,
        name: "Ada".into(),
        avatar_url: None,
    };
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(json, r#"{"id":7,"name":"Ada","avatar_url":null}"#);
    assert_eq!(serde_json::from_str::<MemberCard>(&json).unwrap(), c);
}

/// A second table, joined to `members`.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub author_id: i64,
    pub title: String,
}

diesel::joinable!(posts -> members (author_id));
diesel::allow_tables_to_appear_in_same_query!(members, posts);

#[test]
fn partials_compose_with_joins() {
    for db in common::backends("partials_compose_with_joins") {
        let members = seed(&db, 2);
        db.create_table::<Post>().unwrap();
        for (author, title) in [
            (&members[0], "first"),
            (&members[1], "second"),
            (&members[1], "third"),
        ] {
            db.insert::<Post>(&NewPost {
                author_id: author.id,
                title: title.into(),
            })
            .unwrap();
        }
        let rows: Vec<(MemberCard, String)> = db
            .load(
                members::table
                    .inner_join(posts::table)
                    .filter(members::id.eq(members[1].id))
                    .order(posts::title)
                    .select((MemberCard::columns(), posts::title)),
            )
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (card(&members[1]), "second".to_owned()),
                (card(&members[1]), "third".to_owned())
            ]
        );
    }
}

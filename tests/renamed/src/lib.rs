//! Models of a crate that depends on `orm` under another name and re-exports it: every derive
//! says where `orm` is with `#[orm(crate = path)]`, and nothing generated names `::orm`. Strict
//! lints hold over the generated code too.
#![deny(
    missing_docs,
    unused_qualifications,
    non_upper_case_globals,
    non_camel_case_types
)]

/// `orm`, re-exported under a path of this crate's own.
pub mod reexport {
    /// The re-export the derives below are pointed at.
    pub use my_orm as orm_again;
}

use my_orm::{DbEnum, Model, Projection};

/// A model reaching `orm` by its dependency name.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = renamed_notes, partial(NoteTitle = [id, title]), crate = my_orm)]
pub struct Note {
    /// Its key, given by the database.
    #[orm(primary_key, generated)]
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Its text, if any.
    pub body: Option<String>,
    /// How its writer felt.
    #[orm(db_enum)]
    pub mood: Mood,
}

/// An enum column reaching `orm` through the re-export.
#[derive(Debug, Clone, Copy, PartialEq, DbEnum)]
#[orm(crate = crate::reexport::orm_again)]
pub enum Mood {
    /// At ease.
    Calm,
    /// Short of time.
    Busy,
}

/// A projection reaching `orm` through the re-export.
#[derive(Debug, Clone, PartialEq, Projection)]
#[orm(model = Note, crate = crate::reexport::orm_again)]
pub struct NoteBody {
    /// The note's key.
    pub id: i64,
    /// The note's text.
    pub body: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use my_orm::prelude::*;

    #[test]
    fn every_generated_capability_works_under_another_name() -> my_orm::Result<()> {
        let db = Database::connect("sqlite::memory:")?;
        db.create_table::<Note>()?;
        let note = db.insert::<Note>(&NewNote {
            title: "first".into(),
            body: Some("text".into()),
            mood: Mood::Busy,
        })?;
        assert_eq!(db.find::<Note>(note.id)?, note);
        let patched = db.patch::<Note>(
            note.id,
            &NotePatch {
                title: Some("renamed".into()),
                ..Default::default()
            },
        )?;
        assert_eq!(patched.title, "renamed");
        assert_eq!(patched.mood, Mood::Busy);
        let report = Note::bulk_insert(
            &db,
            (0..3).map(|i| NewNote {
                title: format!("bulk {i}"),
                body: None,
                mood: Mood::Calm,
            }),
            BulkOptions::default(),
        )?;
        assert_eq!(report.rows, 3);
        let titles = db.load_all::<NoteTitle>()?;
        assert_eq!(titles.len(), 4);
        assert_eq!(titles[0].title, "renamed");
        let bodies = db.load_all::<NoteBody>()?;
        assert_eq!(bodies[0].body.as_deref(), Some("text"));
        Ok(())
    }
}

// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "version_action"))]
    pub struct VersionAction;
}

diesel::table! {
    crate_owners (crate_id, owner_id, owner_kind) {
        crate_id -> Int4,
        owner_id -> Int4,
        owner_kind -> Int4,
        created_at -> Timestamptz,
        created_by -> Nullable<Int4>,
        deleted -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    crates (id) {
        id -> Int4,
        name -> Varchar,
        updated_at -> Timestamptz,
        created_at -> Timestamptz,
        downloads -> Int4,
        description -> Nullable<Varchar>,
        homepage -> Nullable<Varchar>,
        repository -> Nullable<Varchar>,
        max_upload_size -> Nullable<Int4>,
        max_features -> Nullable<Int2>,
    }
}

diesel::table! {
    crates_keywords (crate_id, keyword_id) {
        crate_id -> Int4,
        keyword_id -> Int4,
    }
}

diesel::table! {
    keywords (id) {
        id -> Int4,
        #[max_length = 50]
        keyword -> Varchar,
        crates_cnt -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use diesel_full_text_search::Tsvector;

    packages (id) {
        id -> Int4,
        name -> Varchar,
        description -> Nullable<Varchar>,
        keywords -> Array<Text>,
        metadata -> Jsonb,
        created_at -> Timestamptz,
        name_length -> Int4,
        textsearchable_index_col -> Tsvector,
    }
}

diesel::table! {
    users (id) {
        id -> Int4,
        gh_login -> Varchar,
        name -> Nullable<Varchar>,
        gh_avatar -> Nullable<Varchar>,
        gh_id -> Int4,
        account_lock_reason -> Nullable<Varchar>,
        email -> Nullable<Citext>,
        created_at -> Timestamptz,
        is_admin -> Bool,
    }
}

diesel::table! {
    version_downloads (version_id, date) {
        version_id -> Int4,
        downloads -> Int4,
        counted -> Int4,
        date -> Date,
        processed -> Bool,
    }
}

diesel::table! {
    versions (id) {
        id -> Int4,
        crate_id -> Int4,
        num -> Varchar,
        updated_at -> Timestamptz,
        created_at -> Timestamptz,
        downloads -> Int4,
        features -> Jsonb,
        yanked -> Bool,
        license -> Nullable<Varchar>,
        crate_size -> Nullable<Int4>,
        published_by -> Nullable<Int4>,
        bin_names -> Array<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::VersionAction;

    version_owner_actions (id) {
        id -> Int4,
        version_id -> Int4,
        user_id -> Int4,
        action -> VersionAction,
        time -> Timestamptz,
    }
}

diesel::joinable!(crate_owners -> crates (crate_id));
diesel::joinable!(crates_keywords -> crates (crate_id));
diesel::joinable!(crates_keywords -> keywords (keyword_id));
diesel::joinable!(version_downloads -> versions (version_id));
diesel::joinable!(versions -> crates (crate_id));
diesel::joinable!(version_owner_actions -> users (user_id));
diesel::joinable!(version_owner_actions -> versions (version_id));
diesel::joinable!(versions -> users (published_by));

diesel::allow_tables_to_appear_in_same_query!(
    crate_owners,
    crates,
    crates_keywords,
    keywords,
    packages,
    users,
    version_downloads,
    version_owner_actions,
    versions,
);

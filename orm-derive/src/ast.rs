//! The model IR: the struct, its fields and their attributes, each keeping its syn node so
//! errors and generated code can point at the user's tokens.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Ident, Type, Visibility};

use crate::attr::{self, FieldAttrs, ModelAttrs};
use crate::ctxt::Ctxt;
use crate::types;

/// A struct deriving `Model`.
pub struct Model<'a> {
    /// The whole input, for spans.
    pub input: &'a DeriveInput,
    /// Struct-level attributes.
    pub attrs: ModelAttrs,
    /// Named fields in declaration order.
    pub fields: Vec<Field<'a>>,
}

/// One field, which is one column.
pub struct Field<'a> {
    /// The field as written.
    pub original: &'a syn::Field,
    /// Field name.
    pub ident: &'a Ident,
    /// Field attributes.
    pub attrs: FieldAttrs,
    /// SQL column name: `#[orm(column = …)]` or the field name.
    pub column: Ident,
    /// Whether the field is an `Option` (a nullable column).
    pub nullable: bool,
    /// The column's Diesel SQL type (with `Nullable<…>` when nullable), if known.
    pub sql_type: Option<TokenStream>,
    /// Whether writes check the value against what the backend stores exactly: a float, text
    /// or JSON field mapped by `orm` (a field with a user `sql_type` is the user's concern).
    pub value_checked: bool,
}

impl<'a> Model<'a> {
    /// Read `input`; `None` (with an error recorded) if it is not a struct with named fields.
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::model_attrs(cx, &input.attrs);
        let named = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => named,
                _ => {
                    cx.error_spanned_by(
                        &input.ident,
                        "`#[derive(Model)]` needs a struct with named fields, one per column: \
                         `struct User { id: i64, name: String }`",
                    );
                    return None;
                }
            },
            Data::Enum(e) => {
                cx.error_spanned_by(
                    e.enum_token,
                    "`#[derive(Model)]` works on structs only; a model is a table row: \
                     `struct User { id: i64, name: String }`",
                );
                return None;
            }
            Data::Union(u) => {
                cx.error_spanned_by(u.union_token, "`#[derive(Model)]` works on structs only");
                return None;
            }
        };
        let table = attrs.diesel_table.get();
        let fields = named
            .named
            .iter()
            .map(|f| Field::from_ast(cx, f, table))
            .collect();
        Some(Self {
            input,
            attrs,
            fields,
        })
    }

    /// The struct name.
    pub fn ident(&self) -> &Ident {
        &self.input.ident
    }

    /// The struct's visibility, inherited by generated structs.
    pub fn vis(&self) -> &Visibility {
        &self.input.vis
    }

    /// The SQL table name: `table = …`, the last segment of `diesel_table = …`, or the
    /// snake-cased struct name with an `s` (`UserProfile` → `user_profiles`); a view's
    /// `materialized_view = "…"` name.
    pub fn table_name(&self) -> Ident {
        if let Some(t) = self.attrs.table.get() {
            return t.clone();
        }
        if let Some(view) = self.attrs.materialized_view.get() {
            if let Ok(name) = view.parse::<Ident>() {
                return name;
            }
        }
        if let Some(p) = self.attrs.diesel_table.get() {
            if let Some(last) = p.segments.last() {
                return last.ident.clone();
            }
        }
        format_ident!("{}s", snake_case(&self.ident().to_string()))
    }

    /// Path of the Diesel table module (`users` or `crate::schema::users`).
    pub fn table_module(&self) -> TokenStream {
        match self.attrs.diesel_table.get() {
            Some(path) => quote!(#path),
            None => {
                let name = self.table_name();
                quote!(#name)
            }
        }
    }

    /// Whether row operations are generated for `backend`: its cargo feature is on, and the
    /// model is not declared for another backend.
    pub fn supports(&self, backend: Backend) -> bool {
        let declared = match self.attrs.backend.get() {
            None => true,
            Some(crate::attr::BackendAttr::Postgres) => backend == Backend::Postgres,
            Some(crate::attr::BackendAttr::Sqlite) => backend == Backend::Sqlite,
        };
        declared && backend.is_enabled()
    }

    /// Whether SQLite serves the model only if its `table!`'s SQL types allow it: a model
    /// bound with `diesel_table` and declared for no backend, in a build with SQLite.
    pub fn sqlite_decided_by_table(&self) -> bool {
        !self.generates_table()
            && self.attrs.backend.get().is_none()
            && Backend::Sqlite.is_enabled()
    }

    /// Whether the model is a materialized view (read-only: no insert struct, no writes).
    pub fn is_view(&self) -> bool {
        self.attrs.materialized_view.get().is_some()
    }

    /// Whether the `table!` is generated here (not bound to an existing schema.rs table).
    pub fn generates_table(&self) -> bool {
        self.attrs.diesel_table.get().is_none()
    }

    /// Primary-key fields in declaration order.
    pub fn key_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.is_key())
    }

    /// Fields that are not part of the primary key.
    pub fn value_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| !f.is_key())
    }

    /// Fields `update` writes: not part of the key, not filled by the database, not read-only.
    pub fn updated_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.value_fields().filter(|f| !f.is_filled_by_database())
    }

    /// The field whose column or field name is `name`.
    pub fn field_named(&self, name: &Ident) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.ident == name)
            .or_else(|| self.fields.iter().find(|f| f.column == *name))
    }

    /// The name of each field, in declaration order.
    pub fn field_idents(&self) -> impl Iterator<Item = &'a Ident> + '_ {
        self.fields.iter().map(|f| f.ident)
    }
}

impl<'a> Field<'a> {
    /// `table` is the `diesel_table` the model is bound to, whose columns give their SQL types.
    fn from_ast(cx: &Ctxt, original: &'a syn::Field, table: Option<&syn::Path>) -> Self {
        let ident = original.ident.as_ref().expect("named field");
        let attrs = attr::field_attrs(cx, &original.attrs);
        let column = attrs.column.get().cloned().unwrap_or_else(|| {
            // A raw identifier (`r#type`) names the column `type`.
            let s = ident.to_string();
            match s.strip_prefix("r#") {
                Some(plain) => Ident::new(plain, ident.span()),
                None => ident.clone(),
            }
        });
        let inner = types::option_inner(&original.ty);
        let nullable = inner.is_some();
        let base: &Type = inner.unwrap_or(&original.ty);
        let sql_type = match (table, attrs.sql_type.get()) {
            // A `table!` says each column's SQL type (`Nullable` included): the field may be of
            // any Rust type Diesel reads and writes for it.
            (Some(table), _) => Some(quote!(
                <#table::#column as ::orm::__private::diesel::Expression>::SqlType
            )),
            (None, Some(explicit)) if nullable => {
                Some(quote!(::orm::__private::diesel::sql_types::Nullable<#explicit>))
            }
            (None, Some(explicit)) => Some(quote!(#explicit)),
            (None, None) if attrs.db_enum.get().is_some() => {
                types::db_enum_sql_type(base).map(|t| {
                    if nullable {
                        quote!(::orm::__private::diesel::sql_types::Nullable<#t>)
                    } else {
                        t
                    }
                })
            }
            (None, None) => types::sql_type_for(base).map(|t| {
                if nullable {
                    quote!(::orm::__private::diesel::sql_types::Nullable<#t>)
                } else {
                    t
                }
            }),
        };
        let value_checked = attrs.sql_type.get().is_none() && types::needs_value_check(base);
        Self {
            original,
            ident,
            attrs,
            column,
            nullable,
            sql_type,
            value_checked,
        }
    }

    /// The Rust type as written.
    pub fn ty(&self) -> &'a Type {
        &self.original.ty
    }

    /// Whether the field is (part of) the primary key.
    pub fn is_key(&self) -> bool {
        self.attrs.primary_key.get().is_some()
    }

    /// Whether the database generates the key (an identity / rowid key).
    pub fn is_generated(&self) -> bool {
        self.attrs.generated.get().is_some()
    }

    /// Whether the database fills the column (`server_filled`): left out of the insert struct
    /// and of `update`'s changeset.
    pub fn is_server_filled(&self) -> bool {
        self.attrs.server_filled.get().is_some()
    }

    /// Whether the column is loaded and never written (`read_only`): left out of the insert
    /// struct, `update`, the patch struct and bulk inserts.
    pub fn is_read_only(&self) -> bool {
        self.attrs.read_only.get().is_some()
    }

    /// Whether the database fills the value on insert: a generated key, a server-filled or a
    /// read-only column. Such fields are left out of the insert struct and read back by
    /// `RETURNING`.
    pub fn is_filled_by_database(&self) -> bool {
        self.is_generated() || self.is_server_filled() || self.is_read_only()
    }

    /// Whether the column's SQL type names a type of the user's own: a `DbEnum` (directly or
    /// as an array's element).
    pub fn names_user_type(&self) -> bool {
        self.attrs.db_enum.get().is_some()
    }

    /// The column's SQL type; only called after `check` has verified it is known.
    pub fn sql_type(&self) -> TokenStream {
        self.sql_type.clone().unwrap_or_else(|| quote!(()))
    }
}

/// `UserProfile` → `user_profile`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_names() {
        assert_eq!(snake_case("User"), "user");
        assert_eq!(snake_case("UserProfile"), "user_profile");
    }

    #[test]
    fn reads_fields_and_attributes() {
        let input: DeriveInput = syn::parse_quote! {
            #[orm(table = people)]
            struct Person {
                #[orm(primary_key, generated)]
                id: i64,
                #[orm(column = full_name, unique)]
                name: String,
                bio: Option<String>,
            }
        };
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, &input).unwrap();
        cx.check().unwrap();
        assert_eq!(model.table_name(), "people");
        assert_eq!(model.key_fields().count(), 1);
        assert_eq!(model.fields[1].column, "full_name");
        assert!(model.fields[2].nullable);
        assert!(model.fields[0].is_generated());
    }

    #[test]
    fn reads_schema_attributes() {
        let input: DeriveInput = syn::parse_quote! {
            #[orm(table = crates, check(crates_name = "name <> ''"))]
            struct Crate {
                #[orm(primary_key, generated)]
                id: i64,
                #[orm(server_filled, default(postgres = "now()", sqlite = "CURRENT_TIMESTAMP"))]
                created_at: String,
                #[orm(server_filled, default = 0, check = "downloads >= 0")]
                downloads: i64,
                #[orm(references = users(id), on_delete = set_null, fk_name = crates_owner)]
                owner_id: Option<i64>,
            }
        };
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, &input).unwrap();
        cx.check().unwrap();
        let [id, created, downloads, owner] = &model.fields[..] else {
            panic!("four fields");
        };
        assert!(id.is_filled_by_database() && !id.is_server_filled());
        assert!(created.is_filled_by_database());
        let default = created.attrs.default.get().unwrap();
        assert_eq!(default.postgres.as_deref(), Some("now()"));
        assert_eq!(default.sqlite.as_deref(), Some("CURRENT_TIMESTAMP"));
        let default = downloads.attrs.default.get().unwrap();
        assert_eq!(
            (default.postgres.as_deref(), default.sqlite.as_deref()),
            (Some("0"), Some("0"))
        );
        assert_eq!(
            downloads.attrs.check.get().unwrap().value(),
            "downloads >= 0"
        );
        let target = owner.attrs.references.get().unwrap();
        assert_eq!(
            (target.table.to_string(), target.column.to_string()),
            ("users".into(), "id".into())
        );
        assert!(owner.attrs.on_delete.get() == Some(&crate::attr::OnDeleteAttr::SetNull));
        assert_eq!(owner.attrs.fk_name.get().unwrap(), "crates_owner");
        assert_eq!(model.attrs.checks[0].0, "crates_name");
        assert_eq!(
            model.updated_fields().count(),
            1,
            "only owner_id is written by update"
        );
    }
}

/// A backend the derive can generate row operations for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Backend {
    /// Every backend, in a fixed order.
    pub const ALL: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

    /// Whether the derive was built with this backend's cargo feature, forwarded from `orm`'s.
    pub fn is_enabled(self) -> bool {
        match self {
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::Sqlite => cfg!(feature = "sqlite"),
        }
    }
}

//! "Did you mean" suggestions for names the user mistyped, and the error for a column the
//! model does not have. A leaf: it imports nothing of this crate, so every layer may use it.

use syn::Ident;

/// The candidate closest to `name`, if one is close enough to be a likely typo.
pub fn did_you_mean(name: &str, candidates: impl Iterator<Item = String>) -> Option<String> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, &c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The error for `name`, which is no field of the model `model` (whose fields are `fields`),
/// spanned on `name` and suggesting the closest field.
pub fn unknown_column<'a>(
    model: &Ident,
    name: &Ident,
    fields: impl Iterator<Item = &'a Ident>,
) -> syn::Error {
    let candidates = fields.map(Ident::to_string);
    let hint = did_you_mean(&name.to_string(), candidates)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    syn::Error::new_spanned(name, format!("`{model}` has no column `{name}`{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let cols = || {
            ["id", "name", "email", "avatar_url"]
                .map(String::from)
                .into_iter()
        };
        assert_eq!(did_you_mean("nmae", cols()).as_deref(), Some("name"));
        assert_eq!(did_you_mean("emial", cols()).as_deref(), Some("email"));
        assert_eq!(did_you_mean("avatar", cols()), None);
        assert_eq!(did_you_mean("zzz", cols()), None);
    }

    #[test]
    fn names_the_model_and_the_closest_field() {
        let fields: Vec<Ident> = ["id", "name"].map(|f| syn::parse_str(f).unwrap()).into();
        let model: Ident = syn::parse_str("User").unwrap();
        let typo: Ident = syn::parse_str("nmae").unwrap();
        let error = unknown_column(&model, &typo, fields.iter());
        assert_eq!(
            error.to_string(),
            "`User` has no column `nmae`; did you mean `name`?"
        );
        let unrelated: Ident = syn::parse_str("zzz").unwrap();
        let error = unknown_column(&model, &unrelated, fields.iter());
        assert_eq!(error.to_string(), "`User` has no column `zzz`");
    }
}

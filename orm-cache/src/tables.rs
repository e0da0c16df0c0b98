//! The tables a Diesel query reads, from the SQL Diesel writes for it.
//!
//! Diesel quotes every table and column it names: `FROM "users"`, `INNER JOIN "posts"`,
//! `"users"."id"`. So the tables of a query built with the DSL are the quoted names after
//! `FROM`/`JOIN` and before `.` in qualified column names. SQL written by hand (`sql_query`,
//! `sql::<T>(…)` fragments) names tables without quotes: a `FROM` or `JOIN` followed by
//! anything but a quoted name or a parenthesized subquery means the tables cannot be known,
//! and the query is refused unless its reader declares them.

/// The tables `sql` reads, in order of first mention, or why they cannot be known.
pub(crate) fn tables_read(sql: &str) -> Result<Vec<String>, String> {
    // `debug_query` appends ` -- binds: [...]`; the values are not SQL.
    let sql = sql.rsplit_once(" -- binds: ").map_or(sql, |(text, _)| text);
    let mut tables: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !tables.contains(&name) {
            tables.push(name);
        }
    };
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut after_from = false;
    let mut previous_word = "";
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'`') => {
                // A quoted name (SQLite's builder quotes with backticks), maybe the first of
                // `"schema"."table"."column"`.
                let mut parts = Vec::new();
                loop {
                    let (name, end) = quoted(sql, i, quote)?;
                    parts.push(name);
                    i = end;
                    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1) == Some(&quote) {
                        i += 1;
                    } else {
                        break;
                    }
                }
                if after_from {
                    // `FROM "t"` or `FROM "schema"."t"`.
                    add(parts.pop().expect("one part at least"));
                } else if parts.len() >= 2 {
                    // `"t"."col"` or `"schema"."t"."col"`.
                    add(parts[parts.len() - 2].clone());
                }
                after_from = false;
            }
            b'\'' => {
                i = skip_string(sql, i)?;
                after_from = false;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &sql[start..i];
                if after_from {
                    return Err(format!(
                        "`{}` after FROM/JOIN is SQL text, not a table Diesel names; declare \
                         the tables it reads with `.reads::<Model>()`",
                        word
                    ));
                }
                // `IS [NOT] DISTINCT FROM x` compares; its FROM is not a table clause.
                after_from = (word.eq_ignore_ascii_case("from")
                    && !previous_word.eq_ignore_ascii_case("distinct"))
                    || word.eq_ignore_ascii_case("join");
                previous_word = word;
            }
            b'(' => {
                // A subquery after FROM: its own FROM follows.
                after_from = false;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                if after_from {
                    return Err(
                        "a FROM/JOIN clause names no table Diesel quoted; declare the \
                                tables the query reads with `.reads::<Model>()`"
                            .to_owned(),
                    );
                }
                i += 1;
            }
        }
    }
    if tables.is_empty() {
        return Err(
            "the query names no table; declare the tables it reads with \
                    `.reads::<Model>()`"
                .to_owned(),
        );
    }
    Ok(tables)
}

/// The name quoted at `start` (by `quote`, doubled inside to escape it), and the index
/// after it.
fn quoted(sql: &str, start: usize, quote: u8) -> Result<(String, usize), String> {
    let bytes = sql.as_bytes();
    let mut name = String::new();
    let mut i = start + 1;
    let mut chunk = i;
    while i < bytes.len() {
        if bytes[i] == quote {
            name.push_str(&sql[chunk..i]);
            if bytes.get(i + 1) == Some(&quote) {
                name.push(char::from(quote));
                i += 2;
                chunk = i;
                continue;
            }
            return Ok((name, i + 1));
        }
        i += 1;
    }
    Err("unterminated quoted name".to_owned())
}

/// The index after the string literal starting at `start` (a `'`).
fn skip_string(sql: &str, start: usize) -> Result<usize, String> {
    let bytes = sql.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        i += 1;
    }
    Err("unterminated string literal".to_owned())
}

#[cfg(test)]
mod tests {
    use super::tables_read;

    #[test]
    fn finds_the_tables_diesel_names() {
        let sql = r#"SELECT "users"."id", "posts"."title" FROM ("users" INNER JOIN "posts" ON ("posts"."user_id" = "users"."id")) WHERE ("users"."id" = $1) -- binds: [7]"#;
        assert_eq!(tables_read(sql).unwrap(), vec!["users", "posts"]);
        let sql = r#"SELECT "s"."users"."id" FROM "s"."users" WHERE "s"."users"."id" IN (SELECT "likes"."user_id" FROM "likes")"#;
        assert_eq!(tables_read(sql).unwrap(), vec!["users", "likes"]);
        assert_eq!(
            tables_read(r#"SELECT COUNT(*) FROM "users""#).unwrap(),
            vec!["users"]
        );
        let sqlite = "SELECT `users`.`id` FROM (`users` INNER JOIN `posts` ON (`posts`.`user_id` = `users`.`id`)) -- binds: []";
        assert_eq!(tables_read(sqlite).unwrap(), vec!["users", "posts"]);
    }

    #[test]
    fn refuses_tables_named_in_sql_text() {
        assert!(tables_read("SELECT * FROM users").is_err());
        let sql = r#"SELECT "users"."id" FROM "users" WHERE id IN (SELECT user_id FROM posts)"#;
        assert!(tables_read(sql).unwrap_err().contains("posts"));
        assert!(tables_read("SELECT 1").is_err());
        // A string literal that looks like SQL is not read.
        let sql = r#"SELECT "users"."id" FROM "users" WHERE "users"."name" = 'x FROM y'"#;
        assert_eq!(tables_read(sql).unwrap(), vec!["users"]);
    }
}

//! No crate of the workspace has a module cycle: source files that name each other's items,
//! directly or through other files.
//!
//! Each source file under a crate's `src/` is one module (`foo.rs`, `foo/mod.rs`, `lib.rs`
//! for the root). A file depends on another when it names one of the other's items through a
//! path:
//! - a `use` starting at `crate`, `super`, `self`, a child module, or a name another `use`
//!   brought in (`use crate::ast::Model;`, `use super::names::column_path;`);
//! - the same paths in code (`crate::meta::Backend::Postgres`, `super::patch::patch_ident(…)`,
//!   `child::f()` in a parent, `pool::Node` after `use crate::pool;`).
//!
//! `super` and `self` are resolved as Rust does, inline modules (`mod tests { … }`) included:
//! `self::` names the file itself except in a `mod.rs`. A path to a re-exported item is
//! followed to the file that defines it (`crate::Error` leads to `error.rs` through
//! `pub use error::Error` in `lib.rs`; a private `use` a parent holds for its children is
//! followed the same way); an item neither defined nor re-exported where the path says counts
//! for the deepest module file the path names.
//!
//! Not dependencies: a parent's `mod child;` declarations and its re-exports of its own
//! descendants' items (`pub use child::Item`), the facade pattern; and a `use` of a module alone
//! (`use crate::pool;`), whose paths (`pool::Node`) are the dependencies. A parent that uses a
//! child's items in its own code (a private `use child::Item`, or `child::f()`) depends on the
//! child; a child that uses `super::Item` defined in the parent file depends on the parent.
//! Re-exporting another module's item (`pub use crate::error::Error` outside `lib.rs`) is a
//! dependency too. Names are seen in paths only: a parent's bare use of a name it re-exports
//! (`Item` after `pub use child::Item`) is not seen, `Item::new()` is.
//! Comments, string and character literals, and the bodies of `quote!`-like macros (code
//! generated for another crate) are skipped. Test modules count: they are code of their file.
//!
//! Cycles are the strongly connected components of more than one file in the graph of these
//! dependencies (Tarjan's algorithm); each is reported with its files and the names that tie
//! them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// The crates whose modules must form no cycle.
const CRATES: [&str; 3] = ["orm-core", "orm-derive", "orm-cache"];

#[test]
fn no_crate_has_a_module_cycle() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = String::new();
    for name in CRATES {
        let sources = read_sources(&workspace.join(name).join("src"));
        assert!(sources.contains_key("lib.rs"), "{name} has no src/lib.rs");
        for cycle in module_cycles(&sources) {
            report.push_str(&format!("{name}: {cycle}\n"));
        }
    }
    assert!(report.is_empty(), "module cycles:\n{report}");
}

// ---------------------------------------------------------------------------------------------
// The checker's own checks, on small crates held in memory.

fn crate_of(files: &[(&str, &str)]) -> Sources {
    files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

fn cycle_files(sources: &Sources) -> Vec<Vec<String>> {
    module_cycles(sources)
        .into_iter()
        .map(|c| c.files)
        .collect()
}

#[test]
fn finds_two_files_that_import_each_other() {
    let sources = crate_of(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::Beta;\npub struct Alpha(Beta);\n"),
        (
            "b.rs",
            "pub struct Beta;\npub fn f() -> super::a::Alpha { todo!() }\n",
        ),
    ]);
    let cycles = module_cycles(&sources);
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].files, ["a.rs", "b.rs"]);
    let report = cycles[0].to_string();
    assert!(report.contains("a.rs → b.rs: Beta"), "{report}");
    assert!(report.contains("b.rs → a.rs: Alpha"), "{report}");
}

#[test]
fn finds_a_cycle_through_three_files_and_a_directory() {
    let sources = crate_of(&[
        ("lib.rs", "mod conn;\nmod pool;\nmod error;\n"),
        ("conn.rs", "use crate::pool::Counter;\n"),
        ("pool/mod.rs", "mod overflow;\npub use overflow::Counter;\n"),
        (
            "pool/overflow.rs",
            "pub struct Counter(crate::error::Error);\n",
        ),
        (
            "error.rs",
            "pub struct Error;\nfn node() -> crate::conn::Node { todo!() }\n",
        ),
    ]);
    assert_eq!(
        cycle_files(&sources),
        [["conn.rs", "error.rs", "pool/overflow.rs"]]
    );
}

#[test]
fn a_facade_and_its_children_form_no_cycle() {
    let sources = crate_of(&[
        (
            "lib.rs",
            "mod error;\nmod conn;\npub use error::Error;\npub use conn::Conn;\npub struct Version;\n",
        ),
        ("error.rs", "pub struct Error(crate::Version);\n"),
        (
            "conn.rs",
            "use crate::Error;\npub struct Conn;\nfn f() -> crate::Error { todo!() }\n",
        ),
        (
            "expand/mod.rs",
            "mod view;\nmod names;\npub use view::expand;\n",
        ),
        (
            "expand/view.rs",
            "use super::names::path;\npub fn expand() { path() }\n",
        ),
        ("expand/names.rs", "pub fn path() {}\n"),
    ]);
    assert!(cycle_files(&sources).is_empty());
}

#[test]
fn a_parent_and_a_child_using_each_others_items_are_a_cycle() {
    let sources = crate_of(&[
        ("lib.rs", "mod expand;\n"),
        (
            "expand/mod.rs",
            "mod view;\npub fn column() {}\npub fn expand() { view::expand() }\n",
        ),
        ("expand/view.rs", "pub fn expand() { super::column() }\n"),
    ]);
    assert_eq!(cycle_files(&sources), [["expand/mod.rs", "expand/view.rs"]]);
}

#[test]
fn super_in_an_inline_module_is_its_own_file() {
    let lib = "mod a;\npub struct Root;\nfn f() { a::f() }\n";
    let tests_in_a =
        "pub fn f() {}\npub struct Helper;\n#[cfg(test)]\nmod tests {\n    use super::Helper;\n}\n";
    assert!(cycle_files(&crate_of(&[("lib.rs", lib), ("a.rs", tests_in_a)])).is_empty());
    let root_in_a = "pub fn f() {}\nfn g() -> crate::Root { todo!() }\n";
    assert_eq!(
        cycle_files(&crate_of(&[("lib.rs", lib), ("a.rs", root_in_a)])),
        [["a.rs", "lib.rs"]]
    );
}

#[test]
fn self_means_the_file_outside_mod_rs_and_the_directory_inside() {
    let outside = crate_of(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        (
            "a.rs",
            "use crate::b::B;\npub struct A;\nfn f() -> self::A { A }\n",
        ),
        ("b.rs", "pub struct B;\n"),
    ]);
    assert!(cycle_files(&outside).is_empty());
    let inside = crate_of(&[
        ("lib.rs", "mod a;\n"),
        (
            "a/mod.rs",
            "mod b;\nfn f() -> self::b::B { todo!() }\npub struct A;\n",
        ),
        ("a/b.rs", "pub struct B(super::A);\n"),
    ]);
    assert_eq!(cycle_files(&inside), [["a/b.rs", "a/mod.rs"]]);
}

#[test]
fn paths_in_comments_literals_and_generated_code_are_not_dependencies() {
    let sources = crate_of(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "b.rs",
            r####"//! See [`A`](crate::a::A) and [`f`](super::a::f).
/// `crate::a::A` is what the caller /* and crate::a::A */ gets.
/* outer /* nested crate::a::A */ still a comment: crate::a::A */
pub struct B;
const TEXT: &str = "crate::a::A";
const RAW: &str = r#"a "quoted" crate::a::A"#;
const OPEN: char = '{';
const QUOTE: char = '\'';
fn f<'a>(x: &'a str) -> &'a str { x }
fn g() -> proc_macro2::TokenStream { quote::quote!(use super::*; crate::a::A) }
"####,
        ),
    ]);
    assert!(cycle_files(&sources).is_empty());
}

#[test]
fn follows_a_use_of_a_module_to_the_paths_through_it() {
    let sources = crate_of(&[
        ("lib.rs", "mod conn;\nmod pool;\n"),
        (
            "conn.rs",
            "use crate::pool;\npub struct Node;\nfn f(c: pool::Counter) {}\n",
        ),
        ("pool/mod.rs", "mod counter;\npub use counter::Counter;\n"),
        (
            "pool/counter.rs",
            "use crate::conn as connection;\npub struct Counter(connection::Node);\n",
        ),
    ]);
    assert_eq!(cycle_files(&sources), [["conn.rs", "pool/counter.rs"]]);
}

// ---------------------------------------------------------------------------------------------
// Reading a crate.

/// A crate's source files: path under `src/` (with `/`) → text.
type Sources = BTreeMap<String, String>;

/// Every `.rs` file under `dir`, keyed by its path relative to `dir`.
fn read_sources(dir: &Path) -> Sources {
    let mut sources = Sources::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read a source directory") {
            let path = entry.expect("read a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(dir).expect("a path under src/");
                let key = relative.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("read a source file");
                sources.insert(key, text);
            }
        }
    }
    sources
}

/// The module a file holds: `pool/mod.rs` and `pool.rs` → `pool`, `lib.rs` → the root.
fn module_of_file(path: &str) -> Vec<String> {
    let mut segments: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if segments.last().is_some_and(|s| s == "mod") || segments == ["lib"] {
        segments.pop();
    }
    segments
}

// ---------------------------------------------------------------------------------------------
// Tokens: enough of Rust's lexer to skip comments and literals.

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A string, character or number literal, its text dropped.
    Literal,
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        at = next_token(&chars, at, &mut tokens);
    }
    tokens
}

/// Reads the token (or skips the whitespace or comment) at `at`; returns where the next begins.
fn next_token(chars: &[char], at: usize, tokens: &mut Vec<Token>) -> usize {
    let c = chars[at];
    let next = chars.get(at + 1).copied();
    if c.is_whitespace() {
        at + 1
    } else if c == '/' && next == Some('/') {
        (at..chars.len())
            .find(|&i| chars[i] == '\n')
            .unwrap_or(chars.len())
    } else if c == '/' && next == Some('*') {
        skip_block_comment(chars, at)
    } else if c == '"' {
        tokens.push(Token::Literal);
        skip_string(chars, at + 1)
    } else if c == '\'' {
        skip_quote(chars, at, tokens)
    } else if c.is_ascii_digit() {
        tokens.push(Token::Literal);
        let in_number = |i: usize| {
            let fraction = chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            is_ident_char(chars[i]) || fraction
        };
        (at..chars.len())
            .find(|&i| !in_number(i))
            .unwrap_or(chars.len())
    } else if c == '_' || c.is_alphabetic() {
        read_word(chars, at, tokens)
    } else if c == ':' && next == Some(':') {
        tokens.push(Token::PathSep);
        at + 2
    } else {
        tokens.push(Token::Punct(c));
        at + 1
    }
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// A `/* … */` comment, nested ones included.
fn skip_block_comment(chars: &[char], at: usize) -> usize {
    let mut depth = 0;
    let mut i = at;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => depth += 1,
            ('*', '/') => depth -= 1,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
        if depth == 0 {
            return i;
        }
    }
    chars.len()
}

/// The rest of a string after its opening quote, escapes included.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// A character literal (`'{'`, `'\''`), or a lifetime or label (`'a`), which is dropped.
fn skip_quote(chars: &[char], at: usize, tokens: &mut Vec<Token>) -> usize {
    if chars.get(at + 1) == Some(&'\\') {
        tokens.push(Token::Literal);
        let close = (at + 3..chars.len()).find(|&i| chars[i] == '\'');
        return close.map_or(chars.len(), |i| i + 1);
    }
    if chars.get(at + 2) == Some(&'\'') {
        tokens.push(Token::Literal);
        return at + 3;
    }
    (at + 1..chars.len())
        .find(|&i| !is_ident_char(chars[i]))
        .unwrap_or(chars.len())
}

/// An identifier, or the literal it prefixes (`r"…"`, `r#"…"#`, `b"…"`, `b'x'`), or a raw
/// identifier (`r#type`).
fn read_word(chars: &[char], at: usize, tokens: &mut Vec<Token>) -> usize {
    let end = (at..chars.len())
        .find(|&i| !is_ident_char(chars[i]))
        .unwrap_or(chars.len());
    let word: String = chars[at..end].iter().collect();
    let after = chars.get(end).copied();
    match (word.as_str(), after) {
        ("r" | "br" | "cr", Some('"' | '#')) => read_raw(chars, end, &word, tokens),
        ("b" | "c", Some('"')) => {
            tokens.push(Token::Literal);
            skip_string(chars, end + 1)
        }
        ("b", Some('\'')) => skip_quote(chars, end, tokens),
        _ => {
            tokens.push(Token::Ident(word));
            end
        }
    }
}

/// After a prefix `r`, `br` or `cr` and before `#` or `"`: a raw string (`r#"…"#`), a raw
/// identifier (`r#type`), or (in code no compiler accepts) the prefix alone.
fn read_raw(chars: &[char], at: usize, prefix: &str, tokens: &mut Vec<Token>) -> usize {
    let hashes = (at..chars.len()).take_while(|&i| chars[i] == '#').count();
    let quote = at + hashes;
    if chars.get(quote) == Some(&'"') {
        tokens.push(Token::Literal);
        let closing: Vec<char> = std::iter::once('"')
            .chain(std::iter::repeat_n('#', hashes))
            .collect();
        return (quote + 1..chars.len())
            .find(|&i| chars[i..].starts_with(&closing))
            .map_or(chars.len(), |i| i + closing.len());
    }
    let ident_end = (quote..chars.len())
        .find(|&i| !is_ident_char(chars[i]))
        .unwrap_or(chars.len());
    if prefix == "r" && hashes == 1 && ident_end > quote {
        let raw: String = chars[quote..ident_end].iter().collect();
        tokens.push(Token::Ident(format!("r#{raw}")));
        return ident_end;
    }
    tokens.push(Token::Ident(prefix.to_owned()));
    at
}

// ---------------------------------------------------------------------------------------------
// What each file declares and names.

/// Macros whose bodies are code generated for another crate, not this crate's paths.
const GENERATED_CODE_MACROS: [&str; 4] = [
    "quote",
    "quote_spanned",
    "parse_quote",
    "parse_quote_spanned",
];

/// Keywords followed by the name of the item they define.
const ITEM_KEYWORDS: [&str; 8] = [
    "fn", "struct", "enum", "union", "trait", "type", "const", "static",
];

/// A module path from the crate root (`["pool", "config"]`).
type ModulePath = Vec<String>;

/// One leaf of a `use` tree.
struct Use {
    file: usize,
    /// The module the `use` is written in.
    module: ModulePath,
    /// Any `pub`, `pub(crate)`, … visibility.
    public: bool,
    /// The path as written, `self` leaves folded into their parent (`use a::{self}` is `a`).
    path: Vec<String>,
    imports: Imported,
}

/// What a leaf of a `use` tree brings into scope.
#[derive(Clone, Debug, PartialEq)]
enum Imported {
    /// One name: the path's last segment, or its `as` name.
    Name(String),
    /// `use a::*`
    Everything,
}

/// A path in code, starting at a plain identifier (not after `::` or `.`).
struct CodePath {
    file: usize,
    module: ModulePath,
    path: Vec<String>,
}

/// Everything read from one crate's files.
#[derive(Default)]
struct CrateFacts {
    files: Vec<String>,
    /// Each module, file or inline, and the file that holds it.
    modules: HashMap<ModulePath, usize>,
    /// The items each module defines.
    items: HashSet<(ModulePath, String)>,
    uses: Vec<Use>,
    paths: Vec<CodePath>,
}

impl CrateFacts {
    fn read(sources: &Sources) -> Self {
        let mut facts = CrateFacts::default();
        for (file, (path, text)) in sources.iter().enumerate() {
            facts.files.push(path.clone());
            facts.modules.insert(module_of_file(path), file);
            let tokens = tokenize(text);
            FileScan::new(file, module_of_file(path), &tokens).run(&mut facts);
        }
        facts
    }
}

/// A walk over one file's tokens that records its modules, items, `use`s and paths.
struct FileScan<'t> {
    tokens: &'t [Token],
    at: usize,
    file: usize,
    file_module: ModulePath,
    /// The inline modules the walk is inside, each with the brace depth of its body.
    inline: Vec<(String, usize)>,
    depth: usize,
    /// Whether the last tokens were a `pub` visibility.
    public: bool,
}

impl<'t> FileScan<'t> {
    fn new(file: usize, file_module: ModulePath, tokens: &'t [Token]) -> Self {
        FileScan {
            tokens,
            at: 0,
            file,
            file_module,
            inline: Vec::new(),
            depth: 0,
            public: false,
        }
    }

    fn run(mut self, facts: &mut CrateFacts) {
        while self.at < self.tokens.len() {
            let public = self.public;
            self.public = false;
            self.step(facts, public);
        }
    }

    fn token(&self, at: usize) -> Option<&'t Token> {
        self.tokens.get(at)
    }

    fn ident(&self, at: usize) -> Option<&'t str> {
        match self.token(at) {
            Some(Token::Ident(word)) => Some(word),
            _ => None,
        }
    }

    fn module(&self) -> ModulePath {
        let inline = self.inline.iter().map(|(name, _)| name.clone());
        self.file_module.iter().cloned().chain(inline).collect()
    }

    /// Brace depth of the current module's body, where its items are declared.
    fn body_depth(&self) -> usize {
        self.inline.last().map_or(0, |(_, depth)| *depth)
    }

    /// Reads the construct at `self.at` and moves past it.
    fn step(&mut self, facts: &mut CrateFacts, public: bool) {
        let word = self.ident(self.at).unwrap_or_default();
        let bang = self.token(self.at + 1) == Some(&Token::Punct('!'));
        match self.token(self.at) {
            Some(Token::Ident(_)) if GENERATED_CODE_MACROS.contains(&word) && bang => {
                self.at = self.group_end(self.at + 2);
            }
            Some(Token::Ident(_)) if word == "macro_rules" && bang => {
                self.define_item(facts, self.at + 2);
                self.at += 3;
            }
            Some(Token::Ident(_)) if word == "pub" => self.read_visibility(),
            Some(Token::Ident(_)) if word == "use" => self.read_use(facts, public),
            Some(Token::Ident(_)) if word == "mod" => self.read_mod(facts),
            Some(Token::Ident(_)) if ITEM_KEYWORDS.contains(&word) => {
                self.define_item(facts, self.at + 1);
                self.at += 1;
            }
            Some(Token::Ident(_)) if self.starts_path() => self.read_code_path(facts),
            Some(Token::Punct('{')) => {
                self.depth += 1;
                self.at += 1;
            }
            Some(Token::Punct('}')) => self.close_brace(),
            _ => self.at += 1,
        }
    }

    /// `pub` or `pub(…)`; the item after it is public.
    fn read_visibility(&mut self) {
        self.public = true;
        self.at += 1;
        if self.token(self.at) == Some(&Token::Punct('(')) {
            self.at = self.group_end(self.at);
        }
    }

    fn close_brace(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        while self
            .inline
            .last()
            .is_some_and(|(_, body)| *body > self.depth)
        {
            self.inline.pop();
        }
        self.at += 1;
    }

    /// Records the name at `at` as an item of the current module, if the walk is at the
    /// module's top level.
    fn define_item(&self, facts: &mut CrateFacts, at: usize) {
        if let (Some(name), true) = (self.ident(at), self.depth == self.body_depth()) {
            facts.items.insert((self.module(), name.to_owned()));
        }
    }

    /// `mod name;` (a file, known from the file list) or `mod name { … }` (inline).
    fn read_mod(&mut self, facts: &mut CrateFacts) {
        self.define_item(facts, self.at + 1);
        let Some(name) = self.ident(self.at + 1) else {
            self.at += 1;
            return;
        };
        if self.token(self.at + 2) == Some(&Token::Punct('{')) {
            self.depth += 1;
            self.inline.push((name.to_owned(), self.depth));
            facts.modules.insert(self.module(), self.file);
            self.at += 3;
        } else {
            self.at += 2;
        }
    }

    /// Whether a path starts here: an identifier followed by `::`, not itself after `::` or `.`.
    fn starts_path(&self) -> bool {
        let before = self.at.checked_sub(1).and_then(|at| self.token(at));
        let continues = matches!(before, Some(Token::PathSep | Token::Punct('.')));
        !continues && self.token(self.at + 1) == Some(&Token::PathSep)
    }

    fn read_code_path(&mut self, facts: &mut CrateFacts) {
        let mut path = vec![self.ident(self.at).unwrap_or_default().to_owned()];
        self.at += 1;
        while self.token(self.at) == Some(&Token::PathSep) {
            let Some(segment) = self.ident(self.at + 1) else {
                break;
            };
            path.push(segment.to_owned());
            self.at += 2;
        }
        let macro_name = path.last().map(String::as_str).unwrap_or_default();
        if GENERATED_CODE_MACROS.contains(&macro_name)
            && self.token(self.at) == Some(&Token::Punct('!'))
        {
            self.at = self.group_end(self.at + 1);
            return;
        }
        let (file, module) = (self.file, self.module());
        facts.paths.push(CodePath { file, module, path });
    }

    /// `use …;`: each leaf of its tree.
    fn read_use(&mut self, facts: &mut CrateFacts, public: bool) {
        self.at += 1;
        let mut leaves = Vec::new();
        self.read_use_tree(Vec::new(), &mut leaves);
        while self.token(self.at).is_some_and(|t| *t != Token::Punct(';')) {
            self.at += 1;
        }
        for (path, imports) in leaves {
            let (file, module) = (self.file, self.module());
            facts.uses.push(Use {
                file,
                module,
                public,
                path,
                imports,
            });
        }
    }

    /// One tree of a `use`: `a::b`, `a::b as c`, `a::*` or `a::{…}` after `prefix`.
    fn read_use_tree(&mut self, mut path: Vec<String>, leaves: &mut Vec<(Vec<String>, Imported)>) {
        if self.token(self.at) == Some(&Token::PathSep) {
            path.push("::".to_owned());
            self.at += 1;
        }
        loop {
            match self.token(self.at) {
                Some(Token::Ident(word)) => path.push(word.clone()),
                Some(Token::Punct('*')) => {
                    self.at += 1;
                    leaves.push((path, Imported::Everything));
                    return;
                }
                Some(Token::Punct('{')) => return self.read_use_group(path, leaves),
                _ => return,
            }
            self.at += 1;
            if self.token(self.at) != Some(&Token::PathSep) {
                break;
            }
            self.at += 1;
        }
        if path.last().is_some_and(|last| last == "self") {
            path.pop();
        }
        let mut name = path.last().cloned().unwrap_or_default();
        if self.ident(self.at) == Some("as") {
            name = self.ident(self.at + 1).unwrap_or("_").to_owned();
            self.at += 2;
        }
        leaves.push((path, Imported::Name(name)));
    }

    /// `{a, b::c, …}` of a `use` tree.
    fn read_use_group(&mut self, path: Vec<String>, leaves: &mut Vec<(Vec<String>, Imported)>) {
        self.at += 1;
        while let Some(token) = self.token(self.at) {
            match token {
                Token::Punct('}') => {
                    self.at += 1;
                    return;
                }
                Token::Punct(',') => self.at += 1,
                _ => {
                    let before = self.at;
                    self.read_use_tree(path.clone(), leaves);
                    if self.at == before {
                        self.at += 1;
                    }
                }
            }
        }
    }

    /// The index after the delimited group opening at `open` (`(…)`, `[…]` or `{…}`).
    fn group_end(&self, open: usize) -> usize {
        let mut depth = 0usize;
        for at in open..self.tokens.len() {
            match self.tokens[at] {
                Token::Punct('(' | '[' | '{') => depth += 1,
                Token::Punct(')' | ']' | '}') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return at + 1;
                    }
                }
                _ if depth == 0 => return at,
                _ => {}
            }
        }
        self.tokens.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving paths to the files that define what they name.

/// How many `use`s a path may be followed through (a guard against `use a::b as a;`).
const MOST_HOPS: usize = 16;

/// Name lookups over a crate's facts.
struct Resolver<'f> {
    facts: &'f CrateFacts,
    /// The non-glob `use`s of each module, by the name they bind.
    bindings: HashMap<(&'f [String], &'f str), &'f Use>,
    /// The glob `use`s of each module.
    globs: HashMap<&'f [String], Vec<&'f Use>>,
}

impl<'f> Resolver<'f> {
    fn new(facts: &'f CrateFacts) -> Self {
        let mut bindings = HashMap::new();
        let mut globs: HashMap<&[String], Vec<&Use>> = HashMap::new();
        for u in &facts.uses {
            match &u.imports {
                Imported::Everything => globs.entry(&u.module).or_default().push(u),
                Imported::Name(name) => {
                    bindings.insert((u.module.as_slice(), name.as_str()), u);
                }
            }
        }
        Resolver {
            facts,
            bindings,
            globs,
        }
    }

    /// `path`, written in `module`, as a path from the crate root; `None` for a path that
    /// starts outside the crate (another crate, a local name).
    fn absolute(&self, module: &[String], path: &[String], hops: usize) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let join = |start: &[String]| [start, rest].concat();
        match first.as_str() {
            _ if hops > MOST_HOPS => None,
            "crate" => Some(rest.to_vec()),
            "self" => Some(join(module)),
            "super" => {
                let parent = module.split_last()?.1;
                match rest.first().map(String::as_str) {
                    Some("super") => self.absolute(parent, rest, hops + 1),
                    _ => Some(join(parent)),
                }
            }
            name => {
                if let Some(u) = self.bindings.get(&(module, name)) {
                    let start = self.absolute(&u.module, &u.path, hops + 1)?;
                    return Some(join(&start));
                }
                let child = [module, std::slice::from_ref(first)].concat();
                self.facts
                    .modules
                    .contains_key(&child)
                    .then(|| [child.as_slice(), rest].concat())
            }
        }
    }

    /// The file that defines what the absolute `path` names, and the item's name there
    /// (`None` when the path names a module).
    fn locate(&self, path: &[String], hops: usize) -> Option<(usize, Option<String>)> {
        let depth = (0..=path.len())
            .take_while(|&n| self.facts.modules.contains_key(&path[..n]))
            .last()?;
        let (module, rest) = path.split_at(depth);
        let file = self.facts.modules[module];
        let Some((item, after)) = rest.split_first() else {
            return Some((file, None));
        };
        let defined = self.facts.items.contains(&(module.to_vec(), item.clone()));
        if !defined && hops <= MOST_HOPS {
            if let Some(target) = self.reexport(module, item, hops) {
                return self.locate(&[target.as_slice(), after].concat(), hops + 1);
            }
        }
        Some((file, Some(item.clone())))
    }

    /// Where a `use` in `module` that brings `item` into scope points: its own binding, or a
    /// glob over a module that defines or binds `item`.
    fn reexport(&self, module: &[String], item: &str, hops: usize) -> Option<Vec<String>> {
        if let Some(u) = self.bindings.get(&(module, item)) {
            return self.absolute(&u.module, &u.path, hops + 1);
        }
        self.globs.get(module)?.iter().find_map(|glob| {
            let target = self.absolute(&glob.module, &glob.path, hops + 1)?;
            let owned = (target.clone(), item.to_owned());
            let known = self.facts.items.contains(&owned)
                || self.bindings.contains_key(&(target.as_slice(), item));
            known.then(|| [target.as_slice(), &[item.to_owned()]].concat())
        })
    }

    /// The file a `use` depends on and the name it ties them by, if it is a dependency.
    fn use_dependency(&self, u: &Use) -> Option<(usize, String)> {
        let target = self.absolute(&u.module, &u.path, 0)?;
        let reexports_descendant =
            u.public && target.len() > u.module.len() && target.starts_with(&u.module);
        if reexports_descendant {
            return None;
        }
        let (file, item) = self.locate(&target, 0)?;
        match (&u.imports, item) {
            (Imported::Everything, _) => Some((file, "*".to_owned())),
            (Imported::Name(_), Some(item)) => Some((file, item)),
            (Imported::Name(_), None) => None,
        }
    }

    /// The file a path in code depends on and the item it names there.
    fn path_dependency(&self, p: &CodePath) -> Option<(usize, String)> {
        let target = self.absolute(&p.module, &p.path, 0)?;
        let (file, item) = self.locate(&target, 0)?;
        Some((file, item?))
    }
}

/// The dependencies between files: (from, to) → the names that tie them.
type Dependencies = BTreeMap<(usize, usize), BTreeSet<String>>;

fn dependencies(facts: &CrateFacts) -> Dependencies {
    let resolver = Resolver::new(facts);
    let from_uses = facts
        .uses
        .iter()
        .filter_map(|u| Some((u.file, resolver.use_dependency(u)?)));
    let from_paths = facts
        .paths
        .iter()
        .filter_map(|p| Some((p.file, resolver.path_dependency(p)?)));
    let mut deps = Dependencies::new();
    for (from, (to, name)) in from_uses.chain(from_paths) {
        if from != to {
            deps.entry((from, to)).or_default().insert(name);
        }
    }
    deps
}

// ---------------------------------------------------------------------------------------------
// Cycles.

/// Files that depend on each other, directly or through one another.
struct Cycle {
    /// Sorted.
    files: Vec<String>,
    /// `from → to: names` for each dependency inside the cycle.
    ties: Vec<String>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.files.join(", "))?;
        for tie in &self.ties {
            write!(f, "\n    {tie}")?;
        }
        Ok(())
    }
}

/// The module cycles of one crate, given its source files.
fn module_cycles(sources: &Sources) -> Vec<Cycle> {
    let facts = CrateFacts::read(sources);
    let deps = dependencies(&facts);
    let mut cycles: Vec<Cycle> = strongly_connected(facts.files.len(), &deps)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| describe_cycle(&facts.files, &component, &deps))
        .collect();
    cycles.sort_by(|a, b| a.files.cmp(&b.files));
    cycles
}

fn describe_cycle(files: &[String], component: &[usize], deps: &Dependencies) -> Cycle {
    let mut names: Vec<String> = component.iter().map(|&f| files[f].clone()).collect();
    names.sort();
    let ties = deps
        .iter()
        .filter(|((from, to), _)| component.contains(from) && component.contains(to))
        .map(|((from, to), items)| {
            let items: Vec<&str> = items.iter().map(String::as_str).collect();
            format!("{} → {}: {}", files[*from], files[*to], items.join(", "))
        })
        .collect();
    Cycle { files: names, ties }
}

/// The strongly connected components of the graph over `0..nodes` (Tarjan's algorithm).
fn strongly_connected(nodes: usize, deps: &Dependencies) -> Vec<Vec<usize>> {
    let mut successors = vec![Vec::new(); nodes];
    for &(from, to) in deps.keys() {
        successors[from].push(to);
    }
    let mut tarjan = Tarjan {
        successors,
        index: vec![None; nodes],
        low: vec![0; nodes],
        on_stack: vec![false; nodes],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for node in 0..nodes {
        if tarjan.index[node].is_none() {
            tarjan.visit(node);
        }
    }
    tarjan.components
}

struct Tarjan {
    successors: Vec<Vec<usize>>,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan {
    fn visit(&mut self, node: usize) {
        self.index[node] = Some(self.next);
        self.low[node] = self.next;
        self.next += 1;
        self.stack.push(node);
        self.on_stack[node] = true;
        for successor in self.successors[node].clone() {
            match self.index[successor] {
                None => {
                    self.visit(successor);
                    self.low[node] = self.low[node].min(self.low[successor]);
                }
                Some(index) if self.on_stack[successor] => {
                    self.low[node] = self.low[node].min(index);
                }
                Some(_) => {}
            }
        }
        if Some(self.low[node]) == self.index[node] {
            let component = self.pop_component(node);
            self.components.push(component);
        }
    }

    fn pop_component(&mut self, root: usize) -> Vec<usize> {
        let mut component = Vec::new();
        while let Some(member) = self.stack.pop() {
            self.on_stack[member] = false;
            component.push(member);
            if member == root {
                break;
            }
        }
        component
    }
}

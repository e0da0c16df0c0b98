//! `orm-bench compile`: what `#[derive(Model)]` costs the compiler, against the same tables
//! and partials written in plain Diesel.
//!
//! It writes a small cargo workspace under `target/bench/compile/` with two crates of `--models`
//! models of ten columns and one three-column partial each:
//!
//! - `models-orm`: `#[derive(Model)]` with `#[orm(partial(...))]` (both default backends);
//! - `models-diesel`: Diesel's `table!` with `Queryable`, `Selectable`, `Insertable`,
//!   `AsChangeset` and `Identifiable` on the model, an insert struct without the generated key,
//!   and a `Queryable` + `Selectable` struct for the partial (no `check_for_backend`, which
//!   would add work on Diesel's side).
//!
//! Both crates share one target directory and one lock file (the repository's), so their
//! dependencies are built once, before any timing. Each round touches each crate's `lib.rs` and
//! times, for that crate alone: `cargo check` from scratch (`check_*`, incremental compilation
//! off: the whole crate is checked), `cargo check` again over a warm incremental cache
//! (`recheck_*`: the edit-compile loop's floor), and `cargo build` from scratch (`build_*`);
//! interleaved, `--runs` rounds. The figures are medians of wall time and of the CPU time cargo
//! and rustc used (user + system, from `/usr/bin/time`), which moves less than wall time when
//! the machine is shared.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::report::{self, Ratio, Target};
use crate::{BenchResult, Flags};

/// The ten columns of every generated model: name, Rust type, Diesel SQL type.
const COLUMNS: [(&str, &str, &str); 10] = [
    ("id", "i64", "BigInt"),
    ("name", "String", "Text"),
    ("email", "String", "Text"),
    ("bio", "Option<String>", "Nullable<Text>"),
    ("score", "i32", "Integer"),
    ("visits", "i64", "BigInt"),
    ("active", "bool", "Bool"),
    ("balance", "f64", "Double"),
    ("created_at", "chrono::NaiveDateTime", "Timestamp"),
    ("note", "Option<String>", "Nullable<Text>"),
];

/// The columns of every model's partial.
const PARTIAL: [&str; 3] = ["id", "name", "email"];

/// Run the benchmark.
pub fn run(mut flags: Flags) -> BenchResult<()> {
    let models = flags.usize("models", 60)?;
    let runs = flags.usize("runs", 3)?.max(1);
    flags.finish()?;

    let root = report::target_dir().join("bench").join("compile");
    write_workspace(&root, models)?;
    println!(
        "compile: {models} models of {} columns, one {}-column partial each; workspace {}",
        COLUMNS.len(),
        PARTIAL.len(),
        root.display()
    );

    // Dependencies first, untimed: the figures are the models' own crates.
    for krate in ["models-orm", "models-diesel"] {
        for command in ["check", "build"] {
            cargo(&root, command, krate, false)?;
        }
    }

    // (name, cargo command, crate, incremental)
    let cases = [
        ("check_orm", "check", "models-orm", false),
        ("check_diesel", "check", "models-diesel", false),
        ("recheck_orm", "check", "models-orm", true),
        ("recheck_diesel", "check", "models-diesel", true),
        ("build_orm", "build", "models-orm", false),
        ("build_diesel", "build", "models-diesel", false),
    ];
    let mut wall: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..runs {
        for (i, (name, command, krate, incremental)) in cases.iter().enumerate() {
            if *incremental {
                // Warm the incremental cache, then time a rebuild of unchanged source.
                touch(&root.join(krate).join("src").join("lib.rs"))?;
                cargo(&root, command, krate, true)?;
            }
            touch(&root.join(krate).join("src").join("lib.rs"))?;
            let (w, c) = cargo(&root, command, krate, *incremental)?;
            println!(
                "round {}/{runs}: {name:<13} wall {:>6.2} s  cpu {:>6.2} s",
                round + 1,
                w.as_secs_f64(),
                c.as_secs_f64()
            );
            wall[i].push(w);
            cpu[i].push(c);
        }
    }

    let secs = |d: Duration| d.as_secs_f64();
    let rows: Vec<Vec<String>> = cases
        .iter()
        .enumerate()
        .map(|(i, (name, _, _, _))| {
            let (min, max) = report::spread(&wall[i]);
            vec![
                (*name).to_owned(),
                format!("{:.2}", secs(report::median(&wall[i]))),
                format!("{:.2}", secs(report::median(&cpu[i]))),
                format!("{:.2}", secs(min)),
                format!("{:.2}", secs(max)),
            ]
        })
        .collect();
    report::print_table(
        &[
            "case",
            "median wall s",
            "median cpu s",
            "min wall s",
            "max wall s",
        ],
        &rows,
    );

    let median_of = |figures: &[Vec<Duration>], i: usize| secs(report::median(&figures[i]));
    // Per command: the wall-time ratio (with its target) and the CPU-time one, of orm's case
    // (index `i`) over Diesel's (`i + 1`).
    let commands = [
        (
            "check",
            0,
            "check_vs_diesel",
            "check_cpu_vs_diesel",
            Target::AtMost(1.3),
        ),
        (
            "recheck",
            2,
            "recheck_vs_diesel",
            "recheck_cpu_vs_diesel",
            Target::AtMost(1.3),
        ),
        (
            "build",
            4,
            "build_vs_diesel",
            "build_cpu_vs_diesel",
            Target::Context,
        ),
    ];
    let ratios: Vec<Ratio> = commands
        .into_iter()
        .flat_map(|(command, i, wall_name, cpu_name, target)| {
            [
                (wall_name, "wall", &wall, target),
                (cpu_name, "cpu", &cpu, Target::Context),
            ]
            .map(|(name, clock, figures, target)| Ratio {
                name,
                formula: format!("{command}_orm / {command}_diesel ({clock})"),
                value: median_of(figures, i) / median_of(figures, i + 1),
                target,
            })
        })
        .collect();
    report::print_ratios(&ratios);

    let mut json = serde_json::Map::new();
    json.insert("models".to_owned(), serde_json::json!(models));
    json.insert("columns".to_owned(), serde_json::json!(COLUMNS.len()));
    json.insert("runs".to_owned(), serde_json::json!(runs));
    for (i, (name, _, _, _)) in cases.iter().enumerate() {
        let list = |figures: &[Duration]| figures.iter().map(|d| secs(*d)).collect::<Vec<_>>();
        json.insert(
            (*name).to_owned(),
            serde_json::json!({
                "median_wall_s": median_of(&wall, i),
                "median_cpu_s": median_of(&cpu, i),
                "wall_s": list(&wall[i]),
                "cpu_s": list(&cpu[i]),
            }),
        );
    }
    report::add_ratios(&mut json, &ratios);
    let path = report::write_json("compile", &serde_json::Value::Object(json))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Run `cargo <command> -p <krate>` in the generated workspace, with or without incremental
/// compilation; its wall and CPU time.
fn cargo(
    root: &Path,
    command: &str,
    krate: &str,
    incremental: bool,
) -> BenchResult<(Duration, Duration)> {
    let cpu_file = root.join("cpu-time");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S")
        .arg("-o")
        .arg(&cpu_file)
        .arg(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([command, "--quiet", "-p", krate])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("CARGO_INCREMENTAL", if incremental { "1" } else { "0" })
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("could not run /usr/bin/time cargo: {e}"))?;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "cargo {command} -p {krate} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = std::fs::read_to_string(&cpu_file)?;
    let cpu: f64 = text
        .split_whitespace()
        .map(|s| s.parse::<f64>())
        .sum::<Result<f64, _>>()
        .map_err(|e| format!("unreadable /usr/bin/time output `{text}`: {e}"))?;
    Ok((wall, Duration::from_secs_f64(cpu)))
}

/// Make cargo see `path` as changed.
fn touch(path: &Path) -> BenchResult<()> {
    let text = std::fs::read(path)?;
    std::fs::write(path, text)?;
    Ok(())
}

/// Write the workspace: its manifest, the repository's lock file, and both crates.
fn write_workspace(root: &Path, models: usize) -> BenchResult<()> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.canonicalize()?;
    std::fs::create_dir_all(root)?;
    write_if_changed(
        &root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"models-orm\", \"models-diesel\"]\nresolver = \"2\"\n",
    )?;
    if !root.join("Cargo.lock").exists() {
        std::fs::copy(repo.join("Cargo.lock"), root.join("Cargo.lock"))?;
    }
    let diesel = "diesel = { version = \"~2.4.0\", default-features = false, features = \
                  [\"postgres\", \"sqlite\", \"chrono\", \"32-column-tables\"] }\n\
                  chrono = { version = \"0.4\", default-features = false, features = [\"clock\", \"std\"] }\n";
    let manifest = |name: &str, extra: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\n{diesel}{extra}"
        )
    };
    let orm_dep = format!("orm = {{ path = {:?} }}\n", repo.display().to_string());
    write_crate(
        &root.join("models-orm"),
        &manifest("models-orm", &orm_dep),
        &orm_source(models),
    )?;
    write_crate(
        &root.join("models-diesel"),
        &manifest("models-diesel", ""),
        &diesel_source(models),
    )?;
    Ok(())
}

fn write_crate(dir: &Path, manifest: &str, source: &str) -> BenchResult<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    write_if_changed(&dir.join("Cargo.toml"), manifest)?;
    write_if_changed(&dir.join("src").join("lib.rs"), source)?;
    Ok(())
}

/// Write `text` unless the file already holds it (a rewrite would rebuild needlessly).
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text)
}

/// The models through `#[derive(Model)]`.
fn orm_source(models: usize) -> String {
    let mut s = String::from("#![allow(dead_code)]\nuse orm::Model;\n");
    for m in 0..models {
        let _ = write!(
            s,
            "\n#[derive(Debug, Clone, Model)]\n#[orm(table = table_{m}, partial(Card{m} = [{}]))]\npub struct Model{m} {{\n    #[orm(primary_key, generated)]\n",
            PARTIAL.join(", ")
        );
        for (name, ty, _) in COLUMNS {
            let _ = writeln!(s, "    pub {name}: {ty},");
        }
        s.push_str("}\n");
    }
    s
}

/// The same tables, models and partials in plain Diesel.
fn diesel_source(models: usize) -> String {
    let mut s = String::from("#![allow(dead_code)]\nuse diesel::prelude::*;\n");
    for m in 0..models {
        let _ = write!(s, "\ndiesel::table! {{\n    table_{m} (id) {{\n");
        for (name, _, sql) in COLUMNS {
            let _ = writeln!(s, "        {name} -> {sql},");
        }
        s.push_str("    }\n}\n");
        let attrs = format!("#[diesel(table_name = table_{m})]\n");
        let _ = write!(
            s,
            "\n#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]\n{attrs}pub struct Model{m} {{\n"
        );
        for (name, ty, _) in COLUMNS {
            let _ = writeln!(s, "    pub {name}: {ty},");
        }
        s.push_str("}\n");
        let _ = write!(
            s,
            "\n#[derive(Debug, Clone, Insertable)]\n{attrs}pub struct NewModel{m} {{\n"
        );
        for (name, ty, _) in COLUMNS.iter().skip(1) {
            let _ = writeln!(s, "    pub {name}: {ty},");
        }
        s.push_str("}\n");
        let _ = write!(
            s,
            "\n#[derive(Debug, Clone, Queryable, Selectable)]\n{attrs}pub struct Card{m} {{\n"
        );
        for (name, ty, _) in COLUMNS.iter().filter(|c| PARTIAL.contains(&c.0)) {
            let _ = writeln!(s, "    pub {name}: {ty},");
        }
        s.push_str("}\n");
    }
    s
}

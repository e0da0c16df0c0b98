//! Shared by the benchmarks: medians and spreads, ratios against their targets, the JSON result
//! files and aligned text tables.

use std::path::PathBuf;
use std::time::Duration;

/// The median of `samples` (the mean of the middle two for an even count); zero if empty.
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => Duration::ZERO,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// The fastest and slowest of `samples`; zeros if empty.
pub fn spread(samples: &[Duration]) -> (Duration, Duration) {
    let min = samples.iter().min().copied().unwrap_or_default();
    let max = samples.iter().max().copied().unwrap_or_default();
    (min, max)
}

/// One method's timed runs.
#[derive(Debug, Clone)]
pub struct Figures<'a> {
    /// The JSON key, e.g. `full_orm`.
    pub name: &'static str,
    /// The printed name, transport included, e.g. `full_orm (sslmode=disable)`.
    pub label: String,
    /// Rows each run handled.
    pub rows: usize,
    pub samples: &'a [Duration],
}

/// Print `methods` as a table: label, rows, median, rows/s and the spread.
pub fn print_figures(methods: &[Figures<'_>]) {
    let rows: Vec<Vec<String>> = methods
        .iter()
        .map(|f| {
            let median = median(f.samples);
            let (min, max) = spread(f.samples);
            vec![
                f.label.clone(),
                f.rows.to_string(),
                format!("{:.1}", ms(median)),
                format!("{:.0}", per_second(f.rows, median)),
                format!("{:.1}", ms(min)),
                format!("{:.1}", ms(max)),
            ]
        })
        .collect();
    print_table(
        &["method", "rows", "median ms", "rows/s", "min ms", "max ms"],
        &rows,
    );
}

/// `methods` for the JSON file: `{"labels": {name: label}, "rows_per_s": {name: median rate},
/// "median_ms": …, "min_ms": …, "max_ms": …}`.
pub fn figures_json(methods: &[Figures<'_>]) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for f in methods {
        let median = median(f.samples);
        let (min, max) = spread(f.samples);
        let values = [
            ("labels", serde_json::json!(f.label)),
            ("rows_per_s", serde_json::json!(per_second(f.rows, median))),
            ("median_ms", serde_json::json!(ms(median))),
            ("min_ms", serde_json::json!(ms(min))),
            ("max_ms", serde_json::json!(ms(max))),
        ];
        for (key, value) in values {
            if let serde_json::Value::Object(map) = out
                .entry(key)
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()))
            {
                map.insert(f.name.to_owned(), value);
            }
        }
    }
    out
}

/// What a ratio is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Passes at or below this value.
    AtMost(f64),
    /// Passes at or above this value.
    AtLeast(f64),
    /// Shown for context: no target.
    Context,
}

/// A ratio of two medians, as printed and written to the JSON file.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    /// The JSON key, e.g. `full_vs_raw`.
    pub name: &'static str,
    /// How it is computed, e.g. `full_orm / full_raw_postgres`.
    pub formula: String,
    pub value: f64,
    pub target: Target,
}

impl Ratio {
    /// Whether it meets its target (`None`: it has none).
    pub fn pass(&self) -> Option<bool> {
        match self.target {
            Target::AtMost(t) => Some(self.value <= t),
            Target::AtLeast(t) => Some(self.value >= t),
            Target::Context => None,
        }
    }

    /// The target as text: `<= 1.05`, `>= 3`, or `context`.
    fn target_text(&self) -> String {
        match self.target {
            Target::AtMost(t) => format!("<= {t}"),
            Target::AtLeast(t) => format!(">= {t}"),
            Target::Context => "context".to_owned(),
        }
    }
}

/// Print `ratios`, one a line: name, formula, value, target and pass/MISS.
pub fn print_ratios(ratios: &[Ratio]) {
    let name_width = ratios.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let formula_width = ratios.iter().map(|r| r.formula.len()).max().unwrap_or(0);
    for r in ratios {
        let verdict = match r.pass() {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "",
        };
        let line = format!(
            "{:<name_width$} = {:<formula_width$} = {:>8.3}  {:<8}  {verdict}",
            r.name,
            r.formula,
            r.value,
            r.target_text(),
        );
        println!("{}", line.trim_end());
    }
}

/// Add each ratio to `json` under its name, and their targets and verdicts under `targets`.
pub fn add_ratios(json: &mut serde_json::Map<String, serde_json::Value>, ratios: &[Ratio]) {
    let mut targets = serde_json::Map::new();
    for r in ratios {
        json.insert(r.name.to_owned(), serde_json::json!(r.value));
        if let Some(pass) = r.pass() {
            targets.insert(
                r.name.to_owned(),
                serde_json::json!({ "target": r.target_text(), "pass": pass }),
            );
        }
    }
    json.insert("targets".to_owned(), serde_json::Value::Object(targets));
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Items per second for `count` items in `d`.
pub fn per_second(count: usize, d: Duration) -> f64 {
    let secs = d.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        f64::INFINITY
    }
}

/// The workspace's target directory: `CARGO_TARGET_DIR` if set, else `target/` beside the
/// workspace manifest.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    }
}

/// Write `value` as pretty JSON to `target/bench/<name>.json` (creating the directory) and
/// return the path written.
pub fn write_json(name: &str, value: &serde_json::Value) -> std::io::Result<PathBuf> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(&path, text)?;
    // Show a tidy path: `…/target/bench/x.json` rather than `…/bench/../target/…`.
    Ok(path.canonicalize().unwrap_or(path))
}

/// Render `rows` under `headers` as an aligned text table: the first column left-aligned (a
/// name), the others right-aligned (numbers).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.enumerate().take(columns) {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    let rule: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
    out.push_str(&"-".repeat(rule));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// Print [`table`] to standard output.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(headers, rows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        let d = Duration::from_millis;
        assert_eq!(median(&[d(5), d(1), d(3)]), d(3));
        assert_eq!(
            median(&[d(4), d(1), d(3), d(2)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[test]
    fn ratios_pass_or_miss_their_targets() {
        let r = |value, target| Ratio {
            name: "r",
            formula: "a / b".to_owned(),
            value,
            target,
        };
        assert_eq!(r(1.05, Target::AtMost(1.05)).pass(), Some(true));
        assert_eq!(r(1.06, Target::AtMost(1.05)).pass(), Some(false));
        assert_eq!(r(2.9, Target::AtLeast(3.0)).pass(), Some(false));
        assert_eq!(r(2.9, Target::Context).pass(), None);
        let mut json = serde_json::Map::new();
        add_ratios(&mut json, &[r(0.5, Target::AtLeast(0.95))]);
        assert_eq!(
            serde_json::Value::Object(json),
            serde_json::json!({"r": 0.5, "targets": {"r": {"target": ">= 0.95", "pass": false}}})
        );
    }

    #[test]
    fn table_aligns_names_left_and_numbers_right() {
        let t = table(
            &["method", "ms"],
            &[
                vec!["a".into(), "1.5".into()],
                vec!["long_name".into(), "100.25".into()],
            ],
        );
        assert_eq!(
            t,
            "method         ms\n-----------------\na             1.5\nlong_name  100.25\n"
        );
    }
}

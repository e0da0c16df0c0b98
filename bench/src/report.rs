//! Shared by the benchmarks: medians, the JSON result files and aligned text tables.

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

//! Code shape: what each runtime crate's source looks like, counted from the files themselves.
//!
//! The counts are textual (a regex-free scan of each line), which is crude but honest: the same
//! rules apply to both crates, and the report shows the rules next to the table.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

/// What one crate's `src/` holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Shape {
    /// Per file: lines that are neither blank nor only a comment.
    pub files: Vec<(String, usize)>,
    pub code_lines: usize,
    pub await_points: usize,
    pub lock_sites: usize,
    pub spawn_sites: usize,
    pub channel_sites: usize,
    pub unsafe_sites: usize,
}

/// How different the twins are.
#[derive(Clone, Debug, Serialize)]
pub struct TwinDiff {
    pub threaded: Shape,
    pub r#async: Shape,
    /// Lines that `diff` reports added or removed, summed over the mirrored files.
    pub diff_lines: usize,
    /// Files present on only one side (should be none).
    pub unpaired: Vec<String>,
}

/// The rules, for the report.
pub const RULES: &str = "code lines exclude blank and comment-only lines; `.await` points count \
`.await`; lock sites count `.lock()`, `.read()` and `.write()` on a lock; spawn sites count \
`spawn(` and `spawn_blocking(` calls; channel sites count `channel(` and `channel::<` \
constructors; unsafe counts the `unsafe` keyword";

pub fn measure(workspace: &Path) -> Result<TwinDiff, String> {
    let threaded_dir = workspace.join("crates/paxos-threaded/src");
    let async_dir = workspace.join("crates/paxos-async/src");
    let threaded = shape(&threaded_dir)?;
    let r#async = shape(&async_dir)?;
    let names = |s: &Shape| {
        s.files
            .iter()
            .map(|(f, _)| f.clone())
            .collect::<BTreeSet<_>>()
    };
    let (left, right) = (names(&threaded), names(&r#async));
    let unpaired = left.symmetric_difference(&right).cloned().collect();
    let mut diff_lines = 0;
    for file in left.intersection(&right) {
        let a = read(&threaded_dir.join(file))?;
        let b = read(&async_dir.join(file))?;
        diff_lines += changed_lines(&a, &b);
    }
    Ok(TwinDiff {
        threaded,
        r#async,
        diff_lines,
        unpaired,
    })
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn shape(dir: &Path) -> Result<Shape, String> {
    let mut shape = Shape::default();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    entries.sort();
    for path in entries {
        let text = read(&path)?;
        let code: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .collect();
        let count = |needles: &[&str]| -> usize {
            code.iter()
                .map(|line| {
                    needles
                        .iter()
                        .map(|n| line.matches(n).count())
                        .sum::<usize>()
                })
                .sum()
        };
        shape.await_points += count(&[".await"]);
        shape.lock_sites += count(&[".lock()", ".read()", ".write()"]);
        shape.spawn_sites += count(&["spawn(", "spawn_blocking("]);
        shape.channel_sites += count(&["channel(", "channel::<"]);
        shape.unsafe_sites += count(&["unsafe "]);
        shape.code_lines += code.len();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        shape.files.push((name.unwrap_or_default(), code.len()));
    }
    Ok(shape)
}

/// Lines added plus lines removed between `a` and `b`, by a longest-common-subsequence diff.
fn changed_lines(a: &str, b: &str) -> usize {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Files here are a few hundred lines, so the quadratic table is small.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    a.len() + b.len() - 2 * lcs[0][0]
}

#[cfg(test)]
mod tests {
    use super::changed_lines;

    #[test]
    fn counts_added_and_removed_lines() {
        assert_eq!(changed_lines("a\nb\nc", "a\nb\nc"), 0);
        assert_eq!(changed_lines("a\nb\nc", "a\nx\nc"), 2);
        assert_eq!(changed_lines("a\nc", "a\nb\nc"), 1);
    }
}

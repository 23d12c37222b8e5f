//! What the runner prints and leaves behind: the progress line, the summary, and the history
//! file of the post-mortem folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use paxos_core::Answer;

use super::floors::Figures;
use super::history::{Outcome, Record};
use super::verdict::{Status, Verdict};
use super::workload::Counters;

/// One progress line: plain text, so that it reads the same on a terminal and in a CI log.
pub fn progress(
    elapsed: Duration,
    run: Duration,
    ops: &Counters,
    faults: u64,
    state: &str,
) -> String {
    format!(
        "[{:>4}/{} s] ops {} (answered {}, unknown {}, retries {}), faults {faults}; {state}",
        elapsed.as_secs(),
        run.as_secs(),
        ops.invoked.load(Ordering::Relaxed),
        ops.answered.load(Ordering::Relaxed),
        ops.unknown.load(Ordering::Relaxed),
        ops.retries.load(Ordering::Relaxed),
    )
}

/// Writes every record as one JSON line, in invocation order.
pub fn write_history(path: &Path, records: &[Record]) -> std::io::Result<()> {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.invoke);
    let mut file = BufWriter::new(File::create(path)?);
    for record in sorted {
        writeln!(file, "{}", record.to_json())?;
    }
    file.flush()
}

/// Everything the summary reports.
#[derive(Debug)]
pub struct Run<'a> {
    pub title: String,
    /// The clients' operations, without the final reads.
    pub workload: &'a [Record],
    pub figures: &'a Figures,
    pub final_reads: usize,
    pub faults: &'a BTreeMap<String, u64>,
    /// How long the cluster took to serve again after the final heal, and the bound.
    pub recovery: Option<Duration>,
    pub recovery_bound: Duration,
    /// Watches answered with a change, answered unchanged, and failed.
    pub watches: (usize, usize, usize),
    /// `None` when the run was interrupted before the checks.
    pub verdict: Option<&'a Verdict>,
}

/// The summary, several lines of text.
pub fn summary(run: &Run) -> String {
    let mut text = format!("{}\n", run.title);
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut answered, mut mismatches, mut rejected, mut unknown) = (0, 0, 0, 0);
    for record in run.workload {
        let kind = match record.command.op {
            paxos_core::Op::Append { .. } => "append",
            paxos_core::Op::Cas { .. } => "cas",
            _ => "get",
        };
        *kinds.entry(kind).or_default() += 1;
        match &record.outcome {
            Outcome::Answered(Answer::Rejected { .. }) => rejected += 1,
            Outcome::Answered(answer) => {
                answered += 1;
                mismatches += u64::from(matches!(answer, Answer::Mismatch { .. }));
            }
            Outcome::Unknown(why) => {
                unknown += 1;
                *outcomes.entry(why.name().to_owned()).or_default() += 1;
            }
            Outcome::Unexpected(_) => *outcomes.entry("unexpected".to_owned()).or_default() += 1,
        }
    }
    let _ = writeln!(
        text,
        "operations: {} ({}), and {} final reads",
        run.workload.len(),
        list(&kinds),
        run.final_reads
    );
    let _ = writeln!(
        text,
        "  ok {answered} ({mismatches} of them cas mismatches); failed (400) {rejected}; \
         outcome unknown {unknown} ({})",
        list(&outcomes)
    );
    let (changed, unchanged, failed) = run.watches;
    let _ = writeln!(
        text,
        "watches: {} ({changed} answered with a change, {unchanged} unchanged, {failed} without \
         an answer)",
        changed + unchanged + failed
    );
    let figures = run.figures;
    let _ = writeln!(
        text,
        "exactly-once: {} appends; {} retries of {} requests, {} of them acknowledged in the \
         end, {} still unknown",
        figures.exactly_once,
        figures.retries,
        figures.retried,
        figures.retried_acked,
        figures.retried_unknown
    );
    let total: u64 = run.faults.values().sum();
    let _ = writeln!(text, "faults: {total} ({})", list(run.faults));
    let _ = match run.recovery {
        _ if run.verdict.is_none() => writeln!(text, "recovery: not measured"),
        Some(took) => writeln!(
            text,
            "recovery: every member served a write {:.1} s after the final heal (bound {} s)",
            took.as_secs_f64(),
            run.recovery_bound.as_secs()
        ),
        None => writeln!(
            text,
            "recovery: not every member served a write within {} s of the final heal",
            run.recovery_bound.as_secs()
        ),
    };
    match run.verdict {
        Some(verdict) => {
            let slowest = verdict
                .slowest_key
                .as_ref()
                .map_or(String::new(), |(k, t)| {
                    format!("; slowest key {k}, {:.2} s", t.as_secs_f64())
                });
            let unchecked = match verdict.unchecked.is_empty() {
                true => String::new(),
                false => format!("; not checked: {}", verdict.unchecked.join(", ")),
            };
            let _ = writeln!(
                text,
                "check: {} of {} keys in {:.1} s{slowest}{unchecked}",
                verdict.keys_checked(),
                verdict.keys,
                verdict.check_time.as_secs_f64()
            );
            let floors: Vec<String> = verdict.floors.iter().map(|f| f.to_string()).collect();
            let _ = writeln!(text, "floors: {}", floors.join("; "));
            let unmet: Vec<String> = verdict
                .floors
                .iter()
                .filter(|floor| !floor.met())
                .map(|floor| floor.shortfall())
                .collect();
            let _ = match verdict.status() {
                Status::Clean => writeln!(text, "verdict: clean"),
                Status::Inconclusive => writeln!(
                    text,
                    "verdict: inconclusive, {} floor(s) not met: the run checked too little to \
                     be called clean",
                    unmet.len()
                ),
                Status::Violation => {
                    writeln!(text, "verdict: {} violations", verdict.violations.len())
                }
            };
            for violation in &verdict.violations {
                let _ = writeln!(text, "  - {violation}");
            }
            for shortfall in &unmet {
                let _ = writeln!(text, "  - floor not met: {shortfall}");
            }
        }
        None => {
            let _ = writeln!(text, "verdict: none, the run was interrupted");
        }
    }
    text
}

/// `a 3, b 4` from counts by name.
fn list<K: std::fmt::Display>(counts: &BTreeMap<K, u64>) -> String {
    let items: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    match items.is_empty() {
        true => "none".to_owned(),
        false => items.join(", "),
    }
}

//! The report's rows for watchers spread over the three members (scenario 6b's last part).

use std::fmt::Write as _;

use super::Results;

/// One row per server: the watchers split evenly over the members, what they cost summed over
/// the members, and how long one write took to reach them all.
pub fn section(md: &mut String, results: &Results) {
    let spreads: Vec<_> = results
        .watchers
        .iter()
        .filter_map(|w| w.spread.as_ref().map(|s| (w.ladder.runtime, s)))
        .collect();
    if spreads.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Idle watchers spread over three members\n");
    let _ = writeln!(
        md,
        "Method: after the one-member watchers, as many watches, opened in turn on each member \
         of a fresh cluster, leader included, so that each holds a third; the \
         members' RSS and threads are summed before and after (once their \
         `paxos_watches_waiting` add up to every watch), and one write of the key answers them \
         all.\n"
    );
    let _ = writeln!(
        md,
        "| server | members | watchers | KiB / waiting watcher, all members | threads / watcher | answered by one write | p50 ms | p99 ms | max ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (runtime, s) in spreads {
        let f = &s.fanout;
        let _ = writeln!(
            md,
            "| {runtime} | {} | {} | {:.1} | {:.3} | {} of {} | {:.1} | {:.1} | {:.1} |",
            s.members,
            s.held,
            s.kib_per_watcher,
            s.threads_per_watcher,
            f.answered,
            f.watchers,
            f.p50_ms,
            f.p99_ms,
            f.max_ms
        );
    }
}

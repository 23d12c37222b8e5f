//! The talk's claims, each answered from the figures of this run (or left out when the run did
//! not measure it).

use std::fmt::Write;

use crate::bare::Waiter;
use crate::hello::Stack;
use crate::load::Workload;
use crate::scenario::throughput::{cell, put_cell};

use super::Results;
use crate::scenario::idle::IdleSeries;

/// The targets the report holds the idle-connection figures to, KiB per connection.
pub const IDLE_TARGETS: [(&str, f64); 2] = [("threaded", 16.0), ("async", 8.0)];

/// KiB of RSS per extra connection (or thread, or task) between the first and last point.
pub fn slope_kib(points: &[(usize, u64)]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    (last.0 > first.0).then(|| (last.1 as f64 - first.1 as f64) / (last.0 - first.0) as f64)
}

pub fn idle_slope(ladders: &[IdleSeries], runtime: &str) -> Option<(f64, usize)> {
    let series = ladders.iter().find(|s| s.runtime == runtime)?;
    let points: Vec<(usize, u64)> = series
        .points
        .iter()
        .map(|p| (p.held, p.sample.rss_kib))
        .collect();
    Some((slope_kib(&points)?, points.last()?.0))
}

pub fn bare_slope(results: &Results, waiter: Waiter) -> Option<f64> {
    let points: Vec<(usize, u64)> = results
        .bare
        .iter()
        .filter(|p| p.waiter == waiter)
        .map(|p| (p.n, p.sample.rss_kib))
        .collect();
    slope_kib(&points)
}

/// The client count the claims quote: 64 when measured, else the largest.
fn quoted_clients(results: &Results) -> usize {
    let biggest = results
        .throughput
        .iter()
        .map(|r| r.clients)
        .max()
        .unwrap_or(0);
    match results.throughput.iter().any(|r| r.clients == 64) {
        true => 64,
        false => biggest,
    }
}

pub fn claims(md: &mut String, results: &Results) {
    let at = quoted_clients(results);
    let rows = &results.throughput;
    if let (Some(t), Some(a)) = (put_cell(rows, "threaded", at), put_cell(rows, "async", at)) {
        let _ = writeln!(
            md,
            "- **\"Threads are at least as fast.\"** `put` at {at} clients: threaded {:.0} req/s, \
             async {:.0} req/s, ratio {:.2} (target: at least 0.8). What it costs the cluster per \
             request there: {:.3} against {:.3} CPU-seconds per 1,000, and {:.1} against {:.1} \
             context switches.",
            t.requests_per_second,
            a.requests_per_second,
            t.requests_per_second / a.requests_per_second,
            t.cpu_seconds_per_1k,
            a.cpu_seconds_per_1k,
            t.context_switches_per_request,
            a.context_switches_per_request
        );
        let _ = writeln!(
            md,
            "- **\"Async has worse tail latency.\"** `put` at {at} clients, closed loop: p99.9 \
             threaded {:.2} ms, async {:.2} ms; p99 {:.2} ms against {:.2} ms (errors: {} and {}).",
            t.latency.p999_ms,
            a.latency.p999_ms,
            t.latency.p99_ms,
            a.latency.p99_ms,
            t.latency.errors_cell(),
            a.latency.errors_cell()
        );
    }
    // The open loop at the highest rate both servers were offered.
    let top = results
        .open_loop
        .iter()
        .map(|r| r.fraction_of_slower)
        .fold(0.0, f64::max);
    let same_rate = |runtime: &str| {
        results
            .open_loop
            .iter()
            .find(|r| r.runtime == runtime && (r.fraction_of_slower - top).abs() < 1e-9)
    };
    if let (Some(t), Some(a)) = (same_rate("threaded"), same_rate("async")) {
        let _ = writeln!(
            md,
            "  In the open loop at the same rate for both, {:.0} `put`s a second ({:.0}% of the \
             slower server's saturation): p99 threaded {:.2} ms, async {:.2} ms (errors: {} and \
             {}).",
            t.offered_per_second,
            top * 100.0,
            t.latency.p99_ms,
            a.latency.p99_ms,
            t.latency.errors_cell(),
            a.latency.errors_cell()
        );
    }
    hello_claim(md, results);
    if let (Some(threads), Some(tasks)) = (
        bare_slope(results, Waiter::Threads),
        bare_slope(results, Waiter::Tasks),
    ) {
        let _ = writeln!(
            md,
            "- **\"A thread costs ~10 KB, a task ~2 KB\"** (Python). In Rust, bare: {threads:.1} KiB \
             of RSS per idle std thread, {tasks:.2} KiB per idle tokio task."
        );
    }
    let mut idle = Vec::new();
    for (runtime, target) in IDLE_TARGETS {
        if let Some((kib, held)) = idle_slope(&results.idle, runtime) {
            let answered = results
                .idle
                .iter()
                .find(|s| s.runtime == runtime)
                .and_then(|s| s.points.last())
                .is_some_and(|p| p.fresh_request_ms.is_some());
            idle.push(format!(
                "{runtime} {kib:.1} KiB per connection up to {held} (target at most \
                 {target:.0} KiB; {})",
                if answered {
                    "still answers fresh requests"
                } else {
                    "no longer answers fresh requests"
                }
            ));
        }
    }
    if !idle.is_empty() {
        let _ = writeln!(
            md,
            "- **\"Async only wins on huge numbers of mostly idle connections.\"** {}.",
            idle.join("; ")
        );
    }
    let ladders: Vec<IdleSeries> = results.watchers.iter().map(|w| w.ladder.clone()).collect();
    let watching: Vec<String> = results
        .watchers
        .iter()
        .filter_map(|w| {
            let runtime = w.ladder.runtime;
            let (kib, held) = idle_slope(&ladders, runtime)?;
            Some(format!(
                "{runtime} {kib:.1} KiB per watcher up to {held}, `put` {:.2}x with them \
                 waiting, {} of {} answered by one write within {:.0} ms",
                w.put_with / w.put_without.max(f64::MIN_POSITIVE),
                w.fanout.answered,
                w.fanout.watchers,
                w.fanout.max_ms
            ))
        })
        .collect();
    if !watching.is_empty() {
        let _ = writeln!(
            md,
            "- **The same, as a real workload: clients waiting on watches.** {}.",
            watching.join("; ")
        );
    }
    reads_claim(md, results, at);
    cancellation_claim(md, results);
    scaling_claim(md, results);
    shutdown_claim(md, results);
    if let (Some(etcd), Some(t), Some(a)) = (
        put_cell(rows, "etcd", at),
        put_cell(rows, "threaded", at),
        put_cell(rows, "async", at),
    ) {
        let _ = writeln!(
            md,
            "- **Reference: etcd on the same machine.** `put` at {at} clients: etcd {:.0} req/s \
             (p99 {:.2} ms); threaded {:.2}x and async {:.2}x of it, with p99 {:.2} ms and {:.2} ms \
             (target: at least etcd's throughput with a p99 no worse).",
            etcd.requests_per_second,
            etcd.latency.p99_ms,
            t.requests_per_second / etcd.requests_per_second,
            a.requests_per_second / etcd.requests_per_second,
            t.latency.p99_ms,
            a.latency.p99_ms
        );
    }
}

/// The framework's cost against the model's, from the hello-world rows.
fn hello_claim(md: &mut String, results: &Results) {
    let clients = results.hello.iter().map(|r| r.clients).max().unwrap_or(0);
    let row = |stack: Stack| {
        results
            .hello
            .iter()
            .find(|r| r.stack == stack && r.clients == clients)
    };
    if let (Some(stock), Some(conn), Some(hyper)) = (
        row(Stack::Rouille),
        row(Stack::RouilleConnectionThreads),
        row(Stack::HyperAxum),
    ) {
        let _ = writeln!(
            md,
            "- **The framework apart from the model.** Hello world at {clients} clients, no Paxos: \
             stock rouille {:.0} req/s ({:.1} context switches and {:.3} CPU ms per request), \
             rouille on its connection threads (as the threaded server runs it) {:.0} req/s \
             ({:.1}, {:.3}), hyper with axum (as the async server runs it) {:.0} req/s ({:.1}, \
             {:.3}).",
            stock.requests_per_second,
            stock.context_switches_per_request,
            stock.cpu_ms_per_request,
            conn.requests_per_second,
            conn.context_switches_per_request,
            conn.cpu_ms_per_request,
            hyper.requests_per_second,
            hyper.context_switches_per_request,
            hyper.cpu_ms_per_request
        );
    }
}

fn cancellation_claim(md: &mut String, results: &Results) {
    let describe = |runtime: &str| -> Option<String> {
        let run = results.cancellation.iter().find(|r| r.runtime == runtime)?;
        let held = run.before_close.waiting;
        let when = |ms: Option<f64>| {
            ms.map_or("not within the run".to_owned(), |ms| {
                format!("{ms:.0} ms after the close")
            })
        };
        let capped = match held < run.clients as u64 {
            true => " (it refuses requests past 480 waiting at once)",
            false => "",
        };
        Some(format!(
            "{runtime} held {held} of them{capped} and released them {} (request timeout {} \
             ms), its {} connection descriptors {}",
            when(run.waiting_released_ms),
            run.request_timeout_ms,
            run.before_close
                .open_fds
                .saturating_sub(run.baseline.open_fds),
            when(run.fds_released_ms)
        ))
    };
    if let (Some(t), Some(a)) = (describe("threaded"), describe("async")) {
        let clients = results.cancellation.first().map_or(0, |r| r.clients);
        let _ = writeln!(
            md,
            "- **\"Threads are not nearly as good at cancellation.\"** {clients} clients send a \
             `put` that cannot commit and close their connection while it waits: {t}; {a}."
        );
    }
}

fn scaling_claim(md: &mut String, results: &Results) {
    let mut parts = Vec::new();
    for runtime in ["threaded", "async"] {
        let mut rows: Vec<_> = results
            .scaling
            .iter()
            .filter(|r| r.runtime == runtime)
            .collect();
        rows.sort_by_key(|r| r.cpu_count);
        if let (Some(first), Some(last)) = (rows.first(), rows.last())
            && last.cpu_count > first.cpu_count
        {
            parts.push(format!(
                "{runtime} {:.0} req/s on {} CPU{} and {:.0} on {} ({:.2}x)",
                first.requests_per_second,
                first.cpu_count,
                if first.cpu_count == 1 { "" } else { "s" },
                last.requests_per_second,
                last.cpu_count,
                last.requests_per_second / first.requests_per_second.max(1e-9)
            ));
        }
    }
    if !parts.is_empty() {
        let _ = writeln!(
            md,
            "- **Scaling with cores.** `put` at 64 clients with the servers pinned: {}.",
            parts.join("; ")
        );
    }
}

fn shutdown_claim(md: &mut String, results: &Results) {
    let parts: Vec<String> = results
        .shutdown_under_load
        .iter()
        .map(|r| {
            format!(
                "{} exited in {:.0} ms, answering {} and refusing {} requests in its grace ({} \
                 cut off), {} acknowledged write{} lost",
                r.runtime,
                r.exit_ms,
                r.grace_answered,
                r.grace_refused,
                r.grace_cut_off,
                r.lost,
                if r.lost == 1 { "" } else { "s" }
            )
        })
        .collect();
    if !parts.is_empty() {
        let clients = results.shutdown_under_load.first().map_or(0, |r| r.clients);
        let _ = writeln!(
            md,
            "- **Shutdown under load.** SIGTERM to the leader while {clients} clients write \
             through every member: {}.",
            parts.join("; ")
        );
    }
}

/// Reads without the log: each server's `get` against its own `put`, and against etcd's range.
fn reads_claim(md: &mut String, results: &Results, at: usize) {
    let rows = &results.throughput;
    let rate = |runtime: &str, workload: Workload| {
        cell(rows, runtime, workload, at).map(|r| r.requests_per_second)
    };
    let mut said = Vec::new();
    for runtime in ["threaded", "async"] {
        let (Some(put), Some(get)) = (rate(runtime, Workload::Put), rate(runtime, Workload::Get))
        else {
            continue;
        };
        let mut line = format!(
            "{runtime} `get` {get:.0} req/s, {:.2}x its `put`",
            get / put
        );
        if let Some(etcd) = rate("etcd", Workload::Get) {
            line += &format!(", {:.2}x etcd's linearizable range", get / etcd);
        }
        if let Some(local) = rate(runtime, Workload::GetSerializable) {
            line += &format!("; serializable {local:.0} req/s");
        }
        said.push(line);
    }
    if !said.is_empty() {
        let _ = writeln!(
            md,
            "- **Reads without the log** (at {at} clients, spread; targets: a linearizable `get` \
             at least 3x the server's `put` and 2x etcd's range). {}.",
            said.join("; ")
        );
    }
}

//! The report: `report.md` with tables and the talk's claims against our figures, SVG plots, and
//! the raw JSON everything was computed from.

use std::fmt::Write;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::bare::{BarePoint, Waiter};
use crate::load::Workload;
use crate::plot::{Chart, Series};
use crate::run::{IdleSeries, LifecycleRow, OpenLoopRow, Placement, ThroughputRow, VariantRow};
use crate::shape::{self, TwinDiff};

/// Picks one latency quantile of a throughput row.
type Quantile = fn(&ThroughputRow) -> f64;
/// Picks one count of a code shape.
type Count = fn(&shape::Shape) -> usize;

/// Everything one `paxos-bench` run measured.
#[derive(Debug, Serialize)]
pub struct Results {
    pub plan: &'static str,
    pub date: String,
    pub machine: String,
    pub throughput: Vec<ThroughputRow>,
    pub open_loop: Vec<OpenLoopRow>,
    pub idle: Vec<IdleSeries>,
    pub bare: Vec<BarePoint>,
    pub lifecycle: Vec<LifecycleRow>,
    pub variants: Vec<VariantRow>,
    pub shape: TwinDiff,
}

/// Writes `report.md`, the plots and `results.json` into `dir`.
pub fn write(dir: &Path, results: &Results) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let put = |name: &str, text: String| {
        fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    put("results.json", json)?;
    for (name, chart) in charts(results) {
        put(&format!("{name}.svg"), chart.to_svg())?;
    }
    put("report.md", markdown(results))
}

fn charts(results: &Results) -> Vec<(&'static str, Chart)> {
    let spread_put = |runtime: &str| -> Vec<&ThroughputRow> {
        let mut rows: Vec<&ThroughputRow> = results
            .throughput
            .iter()
            .filter(|r| {
                r.runtime == runtime
                    && r.workload == Workload::Put
                    && r.placement == Placement::Spread
            })
            .collect();
        rows.sort_by_key(|r| r.clients);
        rows
    };
    let runtimes = ["threaded", "async"];
    let with_etcd: Vec<&str> = runtimes
        .into_iter()
        .chain(
            results
                .throughput
                .iter()
                .any(|r| r.runtime == "etcd")
                .then_some("etcd"),
        )
        .collect();
    let throughput = Chart {
        title: "Committed put throughput (3 members, clients on every member)".into(),
        x_label: "concurrent clients".into(),
        y_label: "requests / s".into(),
        log_x: true,
        log_y: false,
        series: with_etcd
            .iter()
            .map(|rt| Series {
                name: (*rt).into(),
                color: None,
                dash: None,
                points: spread_put(rt)
                    .iter()
                    .map(|r| (r.clients as f64, r.requests_per_second))
                    .collect(),
            })
            .collect(),
    };
    let latency = Chart {
        title: "put latency percentiles (closed loop)".into(),
        x_label: "concurrent clients".into(),
        y_label: "milliseconds".into(),
        log_x: true,
        log_y: true,
        series: runtimes
            .iter()
            .flat_map(|rt| {
                let rows = spread_put(rt);
                // One color per server, one dash pattern per percentile.
                let percentile = |label: &str, dash: Option<&'static str>, f: Quantile| Series {
                    name: format!("{rt} {label}"),
                    points: rows.iter().map(|r| (r.clients as f64, f(r))).collect(),
                    color: Some(usize::from(*rt == "async")),
                    dash,
                };
                [
                    percentile("p50", None, |r| r.p50_ms),
                    percentile("p99", Some("6 3"), |r| r.p99_ms),
                    percentile("p99.9", Some("2 2"), |r| r.p999_ms),
                ]
            })
            .collect(),
    };
    let idle = Chart {
        title: "Server memory with idle keep-alive connections".into(),
        x_label: "idle connections".into(),
        y_label: "RSS (MiB)".into(),
        log_x: false,
        log_y: false,
        series: results
            .idle
            .iter()
            .map(|s| Series {
                name: s.runtime.into(),
                color: None,
                dash: None,
                points: s
                    .points
                    .iter()
                    .map(|p| (p.held as f64, p.sample.rss_kib as f64 / 1024.0))
                    .collect(),
            })
            .collect(),
    };
    let bare = Chart {
        title: "Bare: N idle std threads vs N idle tokio tasks".into(),
        x_label: "N".into(),
        y_label: "RSS (MiB)".into(),
        log_x: false,
        log_y: false,
        series: [Waiter::Threads, Waiter::Tasks]
            .iter()
            .map(|&w| Series {
                name: w.name().into(),
                color: None,
                dash: None,
                points: results
                    .bare
                    .iter()
                    .filter(|p| p.waiter == w)
                    .map(|p| (p.n as f64, p.sample.rss_kib as f64 / 1024.0))
                    .collect(),
            })
            .collect(),
    };
    vec![
        ("throughput", throughput),
        ("latency", latency),
        ("idle-connections", idle),
        ("threads-vs-tasks", bare),
    ]
}

/// KiB of RSS per extra connection (or thread, or task) between the first and last point.
fn slope_kib(points: &[(usize, u64)]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    (last.0 > first.0).then(|| (last.1 as f64 - first.1 as f64) / (last.0 - first.0) as f64)
}

fn idle_slope(results: &Results, runtime: &str) -> Option<(f64, usize)> {
    let series = results.idle.iter().find(|s| s.runtime == runtime)?;
    let points: Vec<(usize, u64)> = series
        .points
        .iter()
        .map(|p| (p.held, p.sample.rss_kib))
        .collect();
    Some((slope_kib(&points)?, points.last()?.0))
}

fn bare_slope(results: &Results, waiter: Waiter) -> Option<f64> {
    let points: Vec<(usize, u64)> = results
        .bare
        .iter()
        .filter(|p| p.waiter == waiter)
        .map(|p| (p.n, p.sample.rss_kib))
        .collect();
    slope_kib(&points)
}

fn cell<'a>(results: &'a Results, runtime: &str, clients: usize) -> Option<&'a ThroughputRow> {
    results.throughput.iter().find(|r| {
        r.runtime == runtime
            && r.workload == Workload::Put
            && r.placement == Placement::Spread
            && r.clients == clients
    })
}

fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Twin Paxos: threads versus async, measured\n");
    let _ = writeln!(
        md,
        "Plan `{}`, {}. Machine: {}. Every figure comes from real server processes on \
         loopback (release builds, fsync on), driven by one load generator for both.\n",
        results.plan, results.date, results.machine
    );

    let _ = writeln!(md, "## The talk's claims, answered\n");
    claims(&mut md, results);

    let _ = writeln!(md, "\n## Throughput and latency (closed loop)\n");
    let _ = writeln!(
        md,
        "![throughput](throughput.svg)\n\n![latency](latency.svg)\n"
    );
    let _ = writeln!(
        md,
        "| server | op | clients | sent to | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | CPU s / 1k req | context switches / req |\n\
         |---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results.throughput {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:?} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.3} | {:.1} |",
            r.runtime,
            r.workload.name(),
            r.clients,
            r.placement,
            r.requests_per_second,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors,
            r.cpu_seconds_per_1k,
            r.context_switches_per_request
        );
    }

    let _ = writeln!(
        md,
        "\n## Open loop (`put`, latency from the intended send time)\n"
    );
    let _ = writeln!(
        md,
        "| server | load | offered/s | answered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results.open_loop {
        let _ = writeln!(
            md,
            "| {} | {:.0}% | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.runtime,
            r.load_fraction * 100.0,
            r.offered_per_second,
            r.answered_per_second,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors
        );
    }

    let _ = writeln!(md, "\n## Idle connections to one member\n");
    let _ = writeln!(md, "![idle connections](idle-connections.svg)\n");
    let _ = writeln!(
        md,
        "| server | connections held | RSS MiB | peak RSS MiB | threads | fresh request ms |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for s in &results.idle {
        for p in &s.points {
            let fresh = p
                .fresh_request_ms
                .map_or("no answer".to_owned(), |ms| format!("{ms:.2}"));
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {} | {fresh} |",
                s.runtime,
                p.held,
                p.sample.rss_kib as f64 / 1024.0,
                p.sample.hwm_kib as f64 / 1024.0,
                p.sample.threads
            );
        }
    }

    let _ = writeln!(md, "\n## Threads versus tasks, bare\n");
    let _ = writeln!(md, "![threads vs tasks](threads-vs-tasks.svg)\n");
    let _ = writeln!(
        md,
        "| N | threads RSS MiB | tasks RSS MiB |\n|---:|---:|---:|"
    );
    for p in results.bare.iter().filter(|p| p.waiter == Waiter::Threads) {
        let tasks = results
            .bare
            .iter()
            .find(|q| q.waiter == Waiter::Tasks && q.n == p.n)
            .map_or(f64::NAN, |q| q.sample.rss_kib as f64 / 1024.0);
        let _ = writeln!(
            md,
            "| {} | {:.1} | {tasks:.1} |",
            p.n,
            p.sample.rss_kib as f64 / 1024.0
        );
    }

    let _ = writeln!(md, "\n## Discovery and shutdown\n");
    let _ = writeln!(
        md,
        "| server | discovery ms (each run) | shutdown ms (each run) | idle connections at shutdown | clean exit |\n\
         |---|---|---|---:|---|"
    );
    for r in &results.lifecycle {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r.runtime,
            list(&r.discovery_ms),
            list(&r.shutdown_ms),
            r.shutdown_idle_connections,
            if r.clean_exits { "yes" } else { "no" }
        );
    }

    let _ = writeln!(md, "\n## Variants (`put`, clients on every member)\n");
    let _ = writeln!(
        md,
        "The threaded rows part the framework's cost from the model's: the design runs each \
         request on its connection's thread, the other two add rouille's dispatch (a queue, a \
         loop, a handler thread) to the same server, so their difference is the framework's; \
         the design against async is the model's. Context switches are counted on the threads \
         alive at the end, so a thread per request shows fewer than it made.\n"
    );
    let _ = writeln!(
        md,
        "| server | variant | clients | req/s | p50 ms | p99 ms | p99.9 ms | errors | CPU s / 1k req | context switches / req | threads |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results.variants {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.3} | {:.1} | {} |",
            r.runtime,
            r.variant,
            r.clients,
            r.requests_per_second,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors,
            r.cpu_seconds_per_1k,
            r.context_switches_per_request,
            r.threads
        );
    }

    let _ = writeln!(md, "\n## Code shape\n");
    let shape = &results.shape;
    let _ = writeln!(md, "| | threaded | async |\n|---|---:|---:|");
    let rows: [(&str, Count); 6] = [
        ("code lines", |s| s.code_lines),
        ("`.await` points", |s| s.await_points),
        ("lock sites", |s| s.lock_sites),
        ("spawn sites", |s| s.spawn_sites),
        ("channel sites", |s| s.channel_sites),
        ("`unsafe`", |s| s.unsafe_sites),
    ];
    for (label, f) in rows {
        let _ = writeln!(
            md,
            "| {label} | {} | {} |",
            f(&shape.threaded),
            f(&shape.r#async)
        );
    }
    let _ = writeln!(
        md,
        "\n`just diff` changes {} lines across the mirrored files{}. Per file (code lines):\n",
        shape.diff_lines,
        if shape.unpaired.is_empty() {
            String::new()
        } else {
            format!("; unpaired files: {}", shape.unpaired.join(", "))
        }
    );
    let _ = writeln!(md, "| file | threaded | async |\n|---|---:|---:|");
    for (file, lines) in &shape.threaded.files {
        let other = shape
            .r#async
            .files
            .iter()
            .find(|(f, _)| f == file)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(md, "| {file} | {lines} | {other} |");
    }
    let _ = writeln!(md, "\nCounting rules: {}.", shape::RULES);
    md
}

fn claims(md: &mut String, results: &Results) {
    let ratio = |clients: usize| -> Option<(f64, f64, f64)> {
        let t = cell(results, "threaded", clients)?;
        let a = cell(results, "async", clients)?;
        Some((
            t.requests_per_second,
            a.requests_per_second,
            t.requests_per_second / a.requests_per_second,
        ))
    };
    let biggest = results
        .throughput
        .iter()
        .map(|r| r.clients)
        .max()
        .unwrap_or(0);
    let at = if results.throughput.iter().any(|r| r.clients == 64) {
        64
    } else {
        biggest
    };
    match ratio(at) {
        Some((t, a, r)) => {
            let _ = writeln!(
                md,
                "- **\"Threads are at least as fast.\"** `put` at {at} clients: threaded {t:.0} req/s, \
                 async {a:.0} req/s, ratio {r:.2} (target: at least 0.8).",
            );
        }
        None => {
            let _ = writeln!(md, "- Throughput: not measured in this plan.");
        }
    }
    if let (Some(t), Some(a)) = (cell(results, "threaded", at), cell(results, "async", at)) {
        let _ = writeln!(
            md,
            "  What it costs the cluster per request there: {:.3} against {:.3} CPU-seconds per \
             1,000, and {:.1} against {:.1} context switches.",
            t.cpu_seconds_per_1k,
            a.cpu_seconds_per_1k,
            t.context_switches_per_request,
            a.context_switches_per_request
        );
    }
    if let (Some(t), Some(a)) = (cell(results, "threaded", at), cell(results, "async", at)) {
        let _ = writeln!(
            md,
            "- **\"Async has worse tail latency.\"** `put` p99.9 at {at} clients: threaded {:.2} ms, \
             async {:.2} ms; p99: {:.2} ms against {:.2} ms.",
            t.p999_ms, a.p999_ms, t.p99_ms, a.p99_ms
        );
    }
    if let (Some(threads), Some(tasks)) = (
        bare_slope(results, Waiter::Threads),
        bare_slope(results, Waiter::Tasks),
    ) {
        let _ = writeln!(
            md,
            "- **\"A thread costs ~10 KB, a task ~2 KB\"** (Python). In Rust, bare: {:.1} KiB of RSS per \
             idle std thread, {:.2} KiB per idle tokio task.",
            threads, tasks
        );
    }
    if let (Some(etcd), Some(t), Some(a)) = (
        cell(results, "etcd", at),
        cell(results, "threaded", at),
        cell(results, "async", at),
    ) {
        let _ = writeln!(
            md,
            "- **Reference: etcd on the same machine.** `put` at {at} clients: etcd {:.0} req/s \
             (p99 {:.2} ms); threaded {:.2}x and async {:.2}x of it, with p99 {:.2} ms and {:.2} ms \
             (target: at least etcd's throughput with a p99 no worse).",
            etcd.requests_per_second,
            etcd.p99_ms,
            t.requests_per_second / etcd.requests_per_second,
            a.requests_per_second / etcd.requests_per_second,
            t.p99_ms,
            a.p99_ms
        );
    }
    let mut idle = Vec::new();
    for (runtime, target) in [("threaded", 32.0), ("async", 8.0)] {
        if let Some((kib, held)) = idle_slope(results, runtime) {
            let answered = results
                .idle
                .iter()
                .find(|s| s.runtime == runtime)
                .and_then(|s| s.points.last())
                .is_some_and(|p| p.fresh_request_ms.is_some());
            idle.push(format!(
                "{runtime} {kib:.1} KiB per connection up to {held} (target under {target:.0} KiB; {})",
                if answered { "still answers fresh requests" } else { "no longer answers fresh requests" }
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
}

//! The report's SVG charts, drawn from the results.

use crate::bare::Waiter;
use crate::load::{Placement, Workload};
use crate::plot::{Chart, Series};
use crate::scenario::throughput::ThroughputRow;

use super::Results;

/// Picks one latency quantile of a throughput row.
type Quantile = fn(&ThroughputRow) -> f64;

/// Every chart, by file name (without `.svg`). A chart with no points is left out.
pub fn charts(results: &Results) -> Vec<(&'static str, Chart)> {
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
                    percentile("p50", None, |r| r.latency.p50_ms),
                    percentile("p99", Some("6 3"), |r| r.latency.p99_ms),
                    percentile("p99.9", Some("2 2"), |r| r.latency.p999_ms),
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
    let scaling = Chart {
        title: "put throughput by the servers' CPUs (64 clients)".into(),
        x_label: "CPUs the servers may use".into(),
        y_label: "requests / s".into(),
        log_x: false,
        log_y: false,
        series: runtimes
            .iter()
            .map(|rt| Series {
                name: (*rt).into(),
                color: None,
                dash: None,
                points: results
                    .scaling
                    .iter()
                    .filter(|r| r.runtime == *rt)
                    .map(|r| (r.cpu_count as f64, r.requests_per_second))
                    .collect(),
            })
            .collect(),
    };
    let cancellation = Chart {
        title: "Abandoned requests: requests the member still holds".into(),
        x_label: "ms since the clients closed".into(),
        y_label: "requests counted as waiting".into(),
        log_x: false,
        log_y: false,
        series: results
            .cancellation
            .iter()
            .map(|run| Series {
                name: run.runtime.into(),
                color: None,
                dash: None,
                points: run
                    .samples
                    .iter()
                    .map(|s| (s.at_ms, s.waiting as f64))
                    .collect(),
            })
            .collect(),
    };
    [
        ("throughput", throughput),
        ("latency", latency),
        ("idle-connections", idle),
        ("threads-vs-tasks", bare),
        ("scaling", scaling),
        ("abandoned-requests", cancellation),
    ]
    .into_iter()
    .filter(|(_, chart)| chart.series.iter().any(|s| !s.points.is_empty()))
    .collect()
}

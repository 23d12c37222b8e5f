//! The TLS section: for each server, `put` and `get` with TLS off and on, measured in the same
//! run on alternating clusters, as ratios TLS-on / TLS-off per server and threaded / async per
//! setting, so what TLS costs each runtime reads off one table.

use std::fmt::Write;

use crate::scenario::RUNTIMES;
use crate::scenario::tls::{TlsRow, WORKLOADS, row};

use super::Results;

pub fn section(md: &mut String, results: &Results) {
    let rows = &results.tls;
    let Some(clients) = rows.first().map(|r| r.clients) else {
        return;
    };
    let _ = writeln!(md, "\n## What TLS costs each runtime\n");
    let _ = writeln!(
        md,
        "Method: `put` and `get` from {clients} closed-loop clients on keep-alive connections \
         spread over the members, on a fresh 3-member cluster with TLS off and one with TLS on \
         (HTTPS to clients and between members, mutual TLS, rustls on ring in both servers and \
         in the load generator); each round runs threaded off, threaded on, async off, async \
         on, in an order that reverses from round to round; rounds merged. Each client shakes \
         hands once, so this is the steady cost of encrypting requests, answers and peer \
         traffic, not of handshakes. CPU is the whole cluster's per answered request.\n"
    );
    let _ = writeln!(
        md,
        "| server | op | TLS | req/s | p50 ms | p99 ms | errors | CPU s / 1k req | context switches / req | req/s on / off | CPU / req on / off |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for runtime in RUNTIMES {
        for workload in WORKLOADS {
            let off = row(rows, runtime.name(), workload, false);
            for r in [off, row(rows, runtime.name(), workload, true)]
                .into_iter()
                .flatten()
            {
                let (speed, cpu) = match (r.tls, off) {
                    (true, Some(off)) => (
                        ratio(r.requests_per_second, off.requests_per_second),
                        ratio(r.cpu_seconds_per_1k, off.cpu_seconds_per_1k),
                    ),
                    _ => (String::new(), String::new()),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.3} | {:.1} | {speed} | {cpu} |",
                    r.runtime,
                    r.workload.name(),
                    if r.tls { "on" } else { "off" },
                    r.requests_per_second,
                    r.latency.p50_ms,
                    r.latency.p99_ms,
                    r.latency.errors_cell(),
                    r.cpu_seconds_per_1k,
                    r.context_switches_per_request,
                );
            }
        }
    }
    threaded_over_async(md, rows);
}

/// Threaded against async at each operation and setting: whether TLS moves the comparison.
fn threaded_over_async(md: &mut String, rows: &[TlsRow]) {
    let [threaded, asynchronous] = RUNTIMES.map(|r| r.name());
    let _ = writeln!(
        md,
        "\n| op | TLS | {threaded} req/s | {asynchronous} req/s | {threaded} / {asynchronous} |\n\
         |---|---|---:|---:|---:|"
    );
    for workload in WORKLOADS {
        for on in [false, true] {
            let (Some(t), Some(a)) = (
                row(rows, threaded, workload, on),
                row(rows, asynchronous, workload, on),
            ) else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {} |",
                workload.name(),
                if on { "on" } else { "off" },
                t.requests_per_second,
                a.requests_per_second,
                ratio(t.requests_per_second, a.requests_per_second),
            );
        }
    }
}

/// `a / b` to two places, or a dash when `b` measured nothing.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".to_owned()
    }
}

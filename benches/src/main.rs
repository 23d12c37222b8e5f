//! `paxos-bench`: the threads-versus-async comparison of Twin Paxos.
//!
//! It starts real clusters of both servers on loopback (release builds next to this binary),
//! runs every scenario against both, and writes a report with tables, SVG plots and raw JSON.
//!
//! ```text
//! paxos-bench [--quick] [--out DIR]
//! paxos-bench closed threaded|async [--variant V] [--clients 1,64] [--workload put] [--seconds S]
//! ```
//!
//! `closed` is one focused closed-loop cell (a fresh cluster per client count), for comparing two
//! builds A B A B: point `PAXOS_TESTS_BIN_DIR` at either build's servers.
//!
//! # Layout
//!
//! - `plan`: the sizes of each scenario, full or quick.
//! - `run`: the scenarios themselves, built on the integration suite's cluster harness.
//! - `load`: the closed- and open-loop load generator; `http`: its raw keep-alive client.
//! - `idle`: idle keep-alive connections; `bare`: idle threads against idle tasks.
//! - `etcd`: the reference row, a 3-member etcd when one is installed.
//! - `procfs`: memory, threads and CPU time from `/proc`; `shape`: code-shape counts.
//! - `report`, `plot`, `progress`: the report, its SVG charts, and the progress bars.

mod bare;
mod etcd;
mod http;
mod idle;
mod load;
mod plan;
mod plot;
mod procfs;
mod progress;
mod report;
mod run;
mod shape;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: paxos-bench [--quick] [--out DIR]
       paxos-bench closed threaded|async [--variant V] [--clients N,N..] [--workload W] [--seconds S]
  --quick     every scenario, small: about a minute (CI runs this)
  --out DIR   where to write the report (default: target/report)
  closed      one closed-loop cell per client count on a fresh cluster, one line each: requests
              per second, latency, CPU and context switches per request, threads (defaults:
              as designed, 1,64 clients, put, 3 s after 0.5 s of warm-up)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bare") {
        // The child side of the threads-versus-tasks scenario (see `bare`).
        let (kind, n) = (args.get(1), args.get(2));
        return match (kind, n) {
            (Some(kind), Some(n)) => exit(bare::child_main(kind, n)),
            _ => exit(Err("usage: paxos-bench bare threads|tasks N".into())),
        };
    }
    if args.first().map(String::as_str) == Some("closed") {
        return exit(closed(&args[1..]));
    }
    let mut quick = false;
    let mut out = PathBuf::from("target/report");
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => match args.next() {
                Some(dir) => out = PathBuf::from(dir),
                None => return usage_error("--out needs a directory"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument {other:?}")),
        }
    }
    let plan = if quick {
        plan::Plan::quick()
    } else {
        plan::Plan::full()
    };
    exit(bench(&plan, &out))
}

fn bench(plan: &plan::Plan, out: &std::path::Path) -> Result<(), String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!(
        "paxos-bench: {} plan, report to {}",
        plan.name,
        out.display()
    );
    let mut throughput = run::throughput(plan);
    let open_loop = run::open_loop(plan, &throughput);
    let idle = run::idle_connections(plan);
    let bare = run::bare(plan)?;
    let lifecycle = run::lifecycle(plan);
    let variants = run::variants(plan);
    throughput.extend(run::etcd_reference(plan)?);
    let results = report::Results {
        plan: plan.name,
        date: today(),
        machine: procfs::machine_description(),
        throughput,
        open_loop,
        idle,
        bare,
        lifecycle,
        variants,
        shape: shape::measure(&workspace)?,
    };
    report::write(out, &results)?;
    eprintln!("paxos-bench: wrote {}", out.join("report.md").display());
    Ok(())
}

/// `paxos-bench closed ...`: focused closed-loop cells, printed one line each.
fn closed(args: &[String]) -> Result<(), String> {
    let mut args = args.iter().map(String::as_str);
    let runtime = match args.next() {
        Some("threaded") => paxos_tests::Runtime::Threaded,
        Some("async") => paxos_tests::Runtime::Async,
        other => return Err(format!("closed: threaded or async, not {other:?}\n{USAGE}")),
    };
    let (mut variant, mut clients, mut workload) = (None, vec![1, 64], load::Workload::Put);
    let mut seconds = 3.0;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag {
            "--variant" => variant = Some(value),
            "--clients" => {
                clients = value
                    .split(',')
                    .map(|n| n.parse().map_err(|_| format!("--clients: {n:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--workload" => {
                workload = match value {
                    "put" => load::Workload::Put,
                    "get" => load::Workload::Get,
                    "append" => load::Workload::Append,
                    other => return Err(format!("--workload: put, get or append, not {other}")),
                }
            }
            "--seconds" => seconds = value.parse().map_err(|_| format!("--seconds: {value:?}"))?,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    for n in clients {
        let (result, spent, threads) = run::focused(
            runtime,
            variant,
            n,
            workload,
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs_f64(seconds),
        );
        let answered = result.ok.max(1) as f64;
        println!(
            "{} {} {} x{n}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {:.3} CPU ms/req, {:.2} \
             context switches/req, {} errors, {threads} threads",
            runtime.name(),
            variant.unwrap_or("as-designed"),
            workload.name(),
            result.throughput(),
            result.quantile_ms(0.5),
            result.quantile_ms(0.99),
            spent.cpu_seconds * 1000.0 / answered,
            spent.context_switches as f64 / answered,
            result.errors,
        );
    }
    Ok(())
}

/// Today's date, from `date` rather than a date library: the report only needs to say it.
fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d %H:%M %Z")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown date".to_owned(), |d| d.trim().to_owned())
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("paxos-bench: {message}\n{USAGE}");
    ExitCode::from(2)
}

fn exit(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("paxos-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

//! `paxos-bench`: the threads-versus-async comparison of Twin Paxos.
//!
//! It starts real clusters of both servers on loopback (release builds next to this binary),
//! runs every scenario against both, and writes a report with tables, SVG plots and raw JSON.
//! See `USAGE` for the command line and `docs/benchmarks.md` for what each scenario measures.
//!
//! # Layout
//!
//! - `plan`: the sizes of each scenario, full or quick.
//! - `scenario`: the scenarios, one file each, and what they share (how a cluster is started,
//!   the order the servers take turns in, which member plays which role).
//! - `load`: the closed- and open-loop load generator; `http`: its raw keep-alive client.
//! - `idle`: idle keep-alive connections; `bare`: idle threads against idle tasks (a child
//!   mode); `hello`: hello-world servers per HTTP stack (a child mode); `etcd`: the reference
//!   cluster.
//! - `cpus`: CPU sets, `taskset` pinning of servers and load generator.
//! - `procfs`: memory, threads, descriptors and CPU time from `/proc`; `shape`: code-shape counts.
//! - `report`, `plot`, `progress`: the report, its SVG charts, and the progress bars.

mod bare;
mod cpus;
mod etcd;
mod hello;
mod http;
mod idle;
mod load;
mod plan;
mod plot;
mod procfs;
mod progress;
mod report;
mod scenario;
mod shape;
mod spread;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cpus::{CpuSet, LoadPinned};
use scenario::Servers;

const USAGE: &str = "usage: paxos-bench [--quick] [--out DIR] [--cpus LIST] [--only NAMES] [--scaling N,N..]
       paxos-bench closed threaded|async [--variant V] [--clients N,N..] [--workload W] [--seconds S] [--cpus LIST]
       paxos-bench hold ADDRESS N
  --quick      every scenario, small: about a minute and a half (CI runs this)
  --out DIR    where to write the report (default: target/report)
  --cpus LIST  start every server pinned to these CPUs (taskset -c LIST, e.g. 0 or 0-3); the
               load generator runs on the other CPUs, unpinned when there are none
  --only NAMES run only these scenarios, comma-separated, of: throughput (with the per-thread
               table), open-loop (needs throughput), hello, variants, tls, scaling, idle,
               watchers, bare, cancellation, shutdown, lifecycle, etcd, shape
  --scaling    the scaling scenario's CPU counts (default: 1,2,4,... that fit the machine)
  closed       one closed-loop cell per client count on a fresh cluster, one line each: requests
               per second, latency, CPU and context switches per request, threads (defaults:
               as designed, 1,64 clients, put, 3 s after 0.5 s of warm-up)
  hold         open N idle keep-alive connections to ADDRESS (one request answered on each) and
               hold them until stdin closes, e.g. while a heap profiler watches the server";

/// The scenarios `--only` may name, in the order they run.
const SCENARIOS: &[&str] = &[
    "throughput",
    "open-loop",
    "hello",
    "variants",
    "tls",
    "scaling",
    "idle",
    "watchers",
    "bare",
    "cancellation",
    "shutdown",
    "lifecycle",
    "etcd",
    "shape",
];

fn main() -> ExitCode {
    // Before anything is pinned: the CPUs the machine gives this process.
    let _ = CpuSet::allowed();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // The child side of the threads-versus-tasks scenario (see `bare`).
        Some("bare") => {
            return match (args.get(1), args.get(2)) {
                (Some(kind), Some(n)) => exit(bare::child_main(kind, n)),
                _ => exit(Err("usage: paxos-bench bare threads|tasks N".into())),
            };
        }
        // The child side of the hello-world scenario (see `hello`).
        Some("hello") => {
            return match (args.get(1), args.get(2)) {
                (Some(stack), Some(port)) => exit(hello::child_main(stack, port)),
                _ => exit(Err("usage: paxos-bench hello STACK PORT".into())),
            };
        }
        Some("closed") => return exit(closed(&args[1..])),
        Some("hold") => return exit(hold(&args[1..])),
        _ => {}
    }
    let mut quick = false;
    let mut out = PathBuf::from("target/report");
    let mut servers = Servers::default();
    let mut only: Option<Vec<String>> = None;
    let mut scaling: Option<Vec<usize>> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let parsed = match arg.as_str() {
            "--quick" => {
                quick = true;
                Ok(())
            }
            "--out" => value("--out").map(|dir| out = PathBuf::from(dir)),
            "--cpus" => value("--cpus")
                .and_then(|list| CpuSet::parse(&list))
                .map(|cpus| servers.cpus = Some(cpus)),
            "--only" => value("--only").and_then(|names| {
                let names: Vec<String> = names.split(',').map(str::to_owned).collect();
                match names.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
                    Some(unknown) => Err(format!("--only: no scenario {unknown:?}")),
                    None => {
                        only = Some(names);
                        Ok(())
                    }
                }
            }),
            "--scaling" => value("--scaling")
                .and_then(|counts| numbers(&counts, "--scaling"))
                .map(|counts| scaling = Some(counts)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(message) = parsed {
            return usage_error(&message);
        }
    }
    let mut plan = if quick {
        plan::Plan::quick()
    } else {
        plan::Plan::full()
    };
    if let Some(counts) = scaling {
        plan.scaling_cpus = counts;
    }
    let selected = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    exit(bench(&plan, &servers, &selected, &out))
}

fn bench(
    plan: &plan::Plan,
    servers: &Servers,
    selected: &dyn Fn(&str) -> bool,
    out: &std::path::Path,
) -> Result<(), String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!(
        "paxos-bench: {} plan, {}, report to {}",
        plan.name,
        servers.describe(),
        out.display()
    );
    // The load generator stays off the servers' CPUs for the whole run.
    let _pinned = servers.cpus.as_ref().map(LoadPinned::beside);
    let mut throughput = match selected("throughput") {
        true => scenario::throughput::run(plan, servers),
        false => scenario::throughput::Throughput::default(),
    };
    let open_loop = match selected("open-loop") {
        true => scenario::open_loop::run(plan, servers, &throughput.rows),
        false => Vec::new(),
    };
    let hello = match selected("hello") {
        true => scenario::hello::run(plan, servers)?,
        false => Vec::new(),
    };
    let variants = match selected("variants") {
        true => scenario::variants::run(plan, servers),
        false => Vec::new(),
    };
    let tls = match selected("tls") {
        true => scenario::tls::run(plan, servers)?,
        false => Vec::new(),
    };
    let scaling = match selected("scaling") {
        true => scenario::scaling::run(plan, servers),
        false => Vec::new(),
    };
    let idle = match selected("idle") {
        true => scenario::idle::run(plan, servers),
        false => Vec::new(),
    };
    let watchers = match selected("watchers") {
        true => scenario::idle::run_watchers(plan, servers),
        false => Vec::new(),
    };
    let bare = match selected("bare") {
        true => scenario::bare::run(plan)?,
        false => Vec::new(),
    };
    let cancellation = match selected("cancellation") {
        true => scenario::cancellation::run(plan, servers),
        false => Vec::new(),
    };
    let shutdown_under_load = match selected("shutdown") {
        true => scenario::shutdown::run(plan, servers),
        false => Vec::new(),
    };
    let lifecycle = match selected("lifecycle") {
        true => scenario::lifecycle::run(plan, servers),
        false => Vec::new(),
    };
    if selected("etcd") {
        throughput.rows.extend(scenario::etcd::run(plan)?);
    }
    let shape = match selected("shape") {
        true => Some(shape::measure(&workspace)?),
        false => None,
    };
    let results = report::Results {
        plan: plan.name,
        date: today(),
        machine: procfs::machine_description(),
        pinning: servers.describe(),
        throughput: throughput.rows,
        threads: throughput.threads,
        hello,
        variants,
        tls,
        scaling,
        open_loop,
        idle,
        watchers,
        bare,
        cancellation,
        shutdown_under_load,
        lifecycle,
        shape,
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
    let (mut seconds, mut cpus) = (3.0, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag {
            "--variant" => variant = Some(value),
            "--clients" => clients = numbers(value, "--clients")?,
            "--workload" => {
                workload = match value {
                    "put" => load::Workload::Put,
                    "get" => load::Workload::Get,
                    "get-serializable" => load::Workload::GetSerializable,
                    "append" => load::Workload::Append,
                    other => return Err(format!("--workload: put, get or append, not {other}")),
                }
            }
            "--seconds" => seconds = value.parse().map_err(|_| format!("--seconds: {value:?}"))?,
            "--cpus" => cpus = Some(CpuSet::parse(value)?),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    for n in clients {
        let focus = scenario::focused::Focus {
            runtime,
            variant,
            clients: n,
            workload,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs_f64(seconds),
            cpus: cpus.clone(),
        };
        let (result, spent, threads) = scenario::focused::run(&focus);
        let answered = result.ok.max(1) as f64;
        println!(
            "{} {} {}{} x{n}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {:.3} CPU ms/req, {:.2} \
             context switches/req, {} errors, {threads} threads",
            runtime.name(),
            variant.unwrap_or("as-designed"),
            workload.name(),
            cpus.as_ref()
                .map_or(String::new(), |c| format!(" on CPUs {c}")),
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

/// `paxos-bench hold ADDRESS N`: holds N idle connections until stdin closes.
fn hold(args: &[String]) -> Result<(), String> {
    let (Some(address), Some(n)) = (args.first(), args.get(1)) else {
        return Err("usage: paxos-bench hold ADDRESS N".into());
    };
    let n: usize = n.parse().map_err(|_| format!("hold: bad count {n:?}"))?;
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        match idle::open_idle(address, 0) {
            Ok(conn) => held.push(conn),
            Err(error) => return Err(format!("hold: connection {}: {error}", held.len() + 1)),
        }
    }
    println!("holding {n}");
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    Ok(())
}

/// A comma-separated list of numbers.
fn numbers(list: &str, flag: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|n| n.parse().map_err(|_| format!("{flag}: {n:?}")))
        .collect()
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

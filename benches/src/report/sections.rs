//! One section of the report per scenario, each opening with its method in a sentence (order,
//! role, pinning). A scenario the run left out has no section.

use std::fmt::Write;

use crate::bare::Waiter;
use crate::shape;

use super::Results;
use super::claims::{IDLE_TARGETS, idle_slope};
use crate::scenario::idle::IdleSeries;

/// Picks one count of a code shape.
type Count = fn(&shape::Shape) -> usize;

pub fn all(md: &mut String, results: &Results, charts: &[&str]) {
    let chart = |md: &mut String, name: &str, alt: &str| {
        if charts.contains(&name) {
            let _ = writeln!(md, "![{alt}]({name}.svg)\n");
        }
    };
    throughput(md, results, &chart);
    threads(md, results);
    hello(md, results);
    variants(md, results);
    super::tls::section(md, results);
    scaling(md, results, &chart);
    open_loop(md, results);
    idle(md, results, &chart);
    watchers(md, results);
    super::spread::section(md, results);
    bare(md, results, &chart);
    cancellation(md, results, &chart);
    shutdown_under_load(md, results);
    lifecycle(md, results);
    code_shape(md, results);
}

type Chart<'a> = dyn Fn(&mut String, &str, &str) + 'a;

fn throughput(md: &mut String, results: &Results, chart: &Chart<'_>) {
    if results.throughput.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Throughput and latency (closed loop)\n");
    let _ = writeln!(
        md,
        "Method: every cell on a fresh 3-member cluster per server per round, {}; the rounds \
         merged per server. CPU and context switches are the whole cluster's over the counted \
         window, per answered request (threads that ended within it are not counted).\n",
        crate::scenario::ORDER
    );
    chart(md, "throughput", "throughput");
    chart(md, "latency", "latency");
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
            r.latency.p50_ms,
            r.latency.p90_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.latency.errors_cell(),
            r.cpu_seconds_per_1k,
            r.context_switches_per_request
        );
    }
}

fn threads(md: &mut String, results: &Results) {
    if results.threads.is_empty() {
        return;
    }
    let clients = results.threads[0].clients;
    let _ = writeln!(md, "\n## Where a request's time goes, thread by thread\n");
    let _ = writeln!(
        md,
        "Method: each member's threads read from `/proc/<pid>/task/*` (name, context switches, \
         CPU time) when the counted window of the `put` cell at {clients} clients on every member \
         opens and when it closes, in every round of the throughput scenario; per request means \
         per request the cluster answered. A sleep (a voluntary context switch) is a thread \
         waiting for another thread, the disk or the network: the hand-offs; a preemption (an \
         involuntary one) is CPU contention, which the machine's other load adds to. Threads the servers leave unnamed are told apart by \
         the order they start in (tiny_http's accept thread first; tokio's workers, one per CPU, \
         before its blocking pool). The leader's column is one member, the followers' both.\n"
    );
    for table in &results.threads {
        let _ = writeln!(
            md,
            "**{}**, {} requests answered{}:\n",
            table.runtime,
            table.requests,
            match table.ended_in_window {
                0 => String::new(),
                n => format!(" ({n} threads ended inside a window; their counts are missing)"),
            }
        );
        let _ = writeln!(
            md,
            "| threads | leader | followers | sleeps / req, leader | followers | preemptions / req, leader | followers | CPU µs / req, leader | followers |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for group in table.group_names().into_iter().chain(["all"]) {
            let count = |role| match group {
                "all" => String::new(),
                _ => table.count(group, role).to_string(),
            };
            let _ = writeln!(
                md,
                "| {group} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |",
                count("leader"),
                count("followers"),
                table.sleeps_per_request(group, Some("leader")),
                table.sleeps_per_request(group, Some("followers")),
                table.preemptions_per_request(group, Some("leader")),
                table.preemptions_per_request(group, Some("followers")),
                table.cpu_us_per_request(group, Some("leader")),
                table.cpu_us_per_request(group, Some("followers")),
            );
        }
        let _ = writeln!(md);
    }
}

fn hello(md: &mut String, results: &Results) {
    if results.hello.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Hello world: each HTTP stack without Paxos\n");
    let _ = writeln!(
        md,
        "Method: one server process per stack (a child of the bench, `paxos-bench hello`) that \
         reads each request's body and answers a fixed JSON object; the same load generator \
         sends it the same `put` requests as the Paxos cells, on keep-alive connections; each \
         round starts every stack afresh, in an order that reverses from round to round. Both \
         rouille stacks run tiny_http with the threaded server's connection limits, hyper runs \
         with the async server's. Context switches count the threads alive at the end, so stock \
         rouille's thread per request shows fewer than it made; its CPU is whole.\n"
    );
    let _ = writeln!(
        md,
        "| stack | model | clients | req/s | p50 ms | p99 ms | errors | CPU ms / req | context switches / req | threads |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results.hello {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {} | {:.4} | {:.2} | {} |",
            r.stack.describe(),
            r.model,
            r.clients,
            r.requests_per_second,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.errors_cell(),
            r.cpu_ms_per_request,
            r.context_switches_per_request,
            r.threads
        );
    }
}

fn variants(md: &mut String, results: &Results) {
    if results.variants.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Variants (`put`, clients on every member)\n");
    let _ = writeln!(
        md,
        "Method: each round runs the five variants on fresh clusters, in an order that reverses \
         from round to round; rounds merged. The threaded rows part the framework's cost from \
         the model's: the design runs each request on its connection's thread, the other two \
         add rouille's dispatch (a queue, a loop, a handler thread) to the same server, so their \
         difference is the framework's; the design against async is the model's. Context \
         switches are counted on the threads alive at the end, so a thread per request shows \
         fewer than it made.\n"
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
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.latency.errors_cell(),
            r.cpu_seconds_per_1k,
            r.context_switches_per_request,
            r.threads
        );
    }
}

fn scaling(md: &mut String, results: &Results, chart: &Chart<'_>) {
    if results.scaling.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Scaling with cores\n");
    let _ = writeln!(
        md,
        "Method: `put` from clients on every member, each (CPUs, server) pair on a fresh cluster \
         whose members start under `taskset -c` (so tokio starts one worker per CPU it has), in \
         an order that reverses from round to round. The load generator runs on the CPUs the \
         servers do not have when every setting leaves some, and unpinned in every setting \
         otherwise, so that only the servers' CPUs change from row to row (here: see the \
         column). On a bigger machine, \
         `paxos-bench --only scaling` runs this on 1, 2, 4, ... CPUs, as many as \
         the machine has (see docs/benchmarks.md).\n"
    );
    chart(md, "scaling", "scaling with cores");
    let _ = writeln!(
        md,
        "| server | CPUs | load generator | clients | req/s | x of 1 CPU | p50 ms | p99 ms | errors | CPU ms / req | context switches / req | threads |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results.scaling {
        let one = results
            .scaling
            .iter()
            .filter(|o| o.runtime == r.runtime)
            .min_by_key(|o| o.cpu_count)
            .map_or(f64::NAN, |o| o.requests_per_second);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.3} | {:.1} | {} |",
            r.runtime,
            r.cpus,
            r.load_generator,
            r.clients,
            r.requests_per_second,
            r.requests_per_second / one,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.errors_cell(),
            r.cpu_ms_per_request,
            r.context_switches_per_request,
            r.threads
        );
    }
}

fn open_loop(md: &mut String, results: &Results) {
    if results.open_loop.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Open loop (`put`, latency from the intended send time)\n"
    );
    let _ = writeln!(
        md,
        "Method: requests due at a fixed rate from a fixed number of connections spread over \
         the members, each latency timed from when the request was due. Both servers run at the \
         same absolute rates, fractions of the slower server's saturation (its closed-loop `put` \
         rate at the nearest concurrency), and the faster one also at the same fractions of its \
         own; both clusters stay up and each fraction runs both servers, in an order that \
         alternates from fraction to fraction.\n"
    );
    let _ = writeln!(
        md,
        "| server | offered/s | % of own saturation | % of the slower's | answered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results.open_loop {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0}% | {:.0}% | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.runtime,
            r.offered_per_second,
            r.fraction_of_own * 100.0,
            r.fraction_of_slower * 100.0,
            r.answered_per_second,
            r.latency.p50_ms,
            r.latency.p90_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.latency.errors_cell()
        );
    }
}

fn idle(md: &mut String, results: &Results, chart: &Chart<'_>) {
    if results.idle.is_empty() {
        return;
    }
    let role = results.idle[0].role;
    let _ = writeln!(md, "\n## Idle connections to one member\n");
    let _ = writeln!(
        md,
        "Method: one {role} of each server (the same role on both) holds a ladder of idle \
         keep-alive connections, each of which has had one request answered; at each step its \
         memory and threads are read and fresh requests timed. Targets: at most {} KiB per \
         connection threaded, {} KiB async.\n",
        IDLE_TARGETS[0].1, IDLE_TARGETS[1].1
    );
    chart(md, "idle-connections", "idle connections");
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
    let _ = writeln!(
        md,
        "\nPer connection, from the first step to the last, by kind of resident memory (from \
         `/proc/<pid>/smaps`: thread stacks are the writable mappings glibc puts above a guard \
         page; heap is every other anonymous mapping, malloc's arenas included):\n"
    );
    let _ = writeln!(
        md,
        "| server | connections | KiB / connection | thread stacks | heap | the rest | target |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for (runtime, target) in IDLE_TARGETS {
        let Some(series) = results.idle.iter().find(|s| s.runtime == runtime) else {
            continue;
        };
        let (Some(first), Some(last), Some((kib, held))) = (
            series.points.first(),
            series.points.last(),
            idle_slope(&results.idle, runtime),
        ) else {
            continue;
        };
        let n = last.held.saturating_sub(first.held).max(1) as f64;
        let per = |f: fn(&crate::procfs::Resident) -> u64| {
            (f(&last.resident) as f64 - f(&first.resident) as f64) / n
        };
        let _ = writeln!(
            md,
            "| {runtime} | {held} | {kib:.1} | {:.1} | {:.1} | {:.1} | at most {target:.0} |",
            per(|r| r.thread_stacks_kib),
            per(|r| r.heap_kib),
            per(|r| r.other_kib),
        );
    }
}

fn watchers(md: &mut String, results: &Results) {
    if results.watchers.is_empty() {
        return;
    }
    let role = results.watchers[0].ladder.role;
    let _ = writeln!(md, "\n## Idle watchers on one member\n");
    let _ = writeln!(
        md,
        "Method: the idle-connection ladder again, on one {role} of each server, but each \
         connection, after its first answer, sends `GET /watch` of one key that nothing else \
         writes, with an hour's wait: the member holds one waiting request per connection (a \
         thread blocked on its promise, or a task parked on its channel). `watching` is the \
         member's `paxos_watches_waiting`. Then `put` is run with every watcher waiting, and \
         one write of the watched key answers them all; `put` with none waiting is the mean of \
         a run before the ladder and one after that write.\n"
    );
    let _ = writeln!(
        md,
        "| server | connections held | watching | RSS MiB | threads | fresh request ms |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for s in &results.watchers {
        for p in &s.ladder.points {
            let fresh = p
                .fresh_request_ms
                .map_or("no answer".to_owned(), |ms| format!("{ms:.2}"));
            let watching = p.watching.map_or("-".to_owned(), |n| n.to_string());
            let _ = writeln!(
                md,
                "| {} | {} | {watching} | {:.1} | {} | {fresh} |",
                s.ladder.runtime,
                p.held,
                p.sample.rss_kib as f64 / 1024.0,
                p.sample.threads
            );
        }
    }
    let _ = writeln!(
        md,
        "\n| server | KiB / waiting watcher | KiB / idle connection (scenario 6) | `put` req/s, none waiting | with them waiting | ratio | watchers answered by one write | p50 ms | p99 ms | max ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let ladders: Vec<IdleSeries> = results.watchers.iter().map(|w| w.ladder.clone()).collect();
    for w in &results.watchers {
        let runtime = w.ladder.runtime;
        let kib = |ladders: &[IdleSeries]| {
            idle_slope(ladders, runtime).map_or("-".to_owned(), |(kib, _)| format!("{kib:.1}"))
        };
        let f = &w.fanout;
        let _ = writeln!(
            md,
            "| {runtime} | {} | {} | {:.0} | {:.0} | {:.2} | {} of {} | {:.1} | {:.1} | {:.1} |",
            kib(&ladders),
            kib(&results.idle),
            w.put_without,
            w.put_with,
            w.put_with / w.put_without.max(f64::MIN_POSITIVE),
            f.answered,
            f.watchers,
            f.p50_ms,
            f.p99_ms,
            f.max_ms
        );
    }
}

fn bare(md: &mut String, results: &Results, chart: &Chart<'_>) {
    if results.bare.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Threads versus tasks, bare\n");
    let _ = writeln!(
        md,
        "Method: a fresh child process per point holds N idle std threads (each parked on a \
         condition variable) or N idle tokio tasks (on a current-thread runtime) and is read \
         once it says it is ready.\n"
    );
    chart(md, "threads-vs-tasks", "threads vs tasks");
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
}

fn cancellation(md: &mut String, results: &Results, chart: &Chart<'_>) {
    let Some(first) = results.cancellation.first() else {
        return;
    };
    let _ = writeln!(md, "\n## Abandoned requests\n");
    let _ = writeln!(
        md,
        "Method: a 3-member cluster per server whose two followers are then killed, so nothing \
         can commit; {} clients each send a `put` to the {} and, once the member counts \
         them as waiting (at most 480 wait; it refuses the rest `503` at once), all close their \
         connections together. The member's threads, open descriptors, requests counted as \
         waiting (`paxos_client_requests_waiting`) and RSS are read before, right after the \
         close, and every few hundred ms until its request timeout ({} ms from the send) has \
         passed and every figure is back, or for at most {} s more (tiny_http keeps an idle \
         connection thread 5 s). \"Released\" is the first reading from which on the figure stayed back (within \
         4 of where it started, for threads and descriptors, since each reading is a request \
         itself).\n",
        first.clients,
        first.role,
        first.request_timeout_ms,
        first.linger_ms as f64 / 1000.0
    );
    chart(md, "abandoned-requests", "abandoned requests");
    let _ = writeln!(
        md,
        "| server | moment | threads | open descriptors | waiting | RSS MiB |\n\
         |---|---|---:|---:|---:|---:|"
    );
    for run in &results.cancellation {
        let line = |md: &mut String, label: String, h: &crate::scenario::cancellation::Held| {
            let _ = writeln!(
                md,
                "| {} | {label} | {} | {} | {} | {:.1} |",
                run.runtime,
                h.threads,
                h.open_fds,
                h.waiting,
                h.rss_kib as f64 / 1024.0
            );
        };
        line(md, "before the requests".into(), &run.baseline);
        line(
            md,
            format!("all sent, {:.0} ms after the first", run.sent_to_closed_ms),
            &run.before_close,
        );
        // Every reading up to a second, then one a second.
        let mut next_ms = 1000.0;
        for (k, s) in run.samples.iter().enumerate() {
            let last = k + 1 == run.samples.len();
            if s.at_ms < 1000.0 || s.at_ms >= next_ms || last {
                line(md, format!("{:.0} ms after the close", s.at_ms), s);
                if s.at_ms >= next_ms {
                    next_ms = (s.at_ms / 1000.0).floor() * 1000.0 + 1000.0;
                }
            }
        }
    }
    let _ = writeln!(
        md,
        "\n| server | waiting requests released | descriptors released | threads released |\n\
         |---|---|---|---|"
    );
    let when = |ms: Option<f64>| {
        ms.map_or("not within the run".to_owned(), |ms| {
            format!("{ms:.0} ms after the close")
        })
    };
    for run in &results.cancellation {
        let threads = match (run.threads_released_ms, run.samples.last()) {
            (None, Some(last)) => format!(
                "not within the run: {} at the end, {} before the requests",
                last.threads, run.baseline.threads
            ),
            (released, _) => when(released),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {threads} |",
            run.runtime,
            when(run.waiting_released_ms),
            when(run.fds_released_ms),
        );
    }
}

fn shutdown_under_load(md: &mut String, results: &Results) {
    let Some(first) = results.shutdown_under_load.first() else {
        return;
    };
    let _ = writeln!(md, "\n## Shutdown under load\n");
    let _ = writeln!(
        md,
        "Method: {} closed-loop clients, client `c` writing `0, 1, 2, ...` to its own key on \
         member `c mod 3`, while the {} of each server's cluster gets a SIGTERM; its \
         grace is the time until it exits. After the load, every client's key is read from a \
         member left running: a value older than the last one acknowledged would be a lost \
         write. Threaded first, then async.\n",
        first.clients, first.role
    );
    let _ = writeln!(
        md,
        "| server | acknowledged/s before | exit ms | clean exit | answered in grace | refused in grace | cut off in grace | writes acknowledged again after | acknowledged | lost | unread |\n\
         |---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|"
    );
    for r in &results.shutdown_under_load {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.runtime,
            r.before_per_second,
            r.exit_ms,
            if r.clean_exit { "yes" } else { "no" },
            r.grace_answered,
            r.grace_refused,
            r.grace_cut_off,
            r.writes_resumed_ms
                .map_or("not within the run".to_owned(), |ms| format!("{ms:.0} ms")),
            r.acknowledged,
            r.lost,
            r.unread
        );
    }
}

fn lifecycle(md: &mut String, results: &Results) {
    let Some(first) = results.lifecycle.first() else {
        return;
    };
    let _ = writeln!(md, "\n## Discovery and idle shutdown\n");
    let _ = writeln!(
        md,
        "Method: each repetition starts a fresh cluster with the default discovery retry and \
         times until every member has found itself, then opens idle connections to a {} and \
         times its SIGTERM until exit; the repetitions alternate which server goes first.\n",
        first.shutdown_role
    );
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
}

fn code_shape(md: &mut String, results: &Results) {
    let Some(shape) = &results.shape else {
        return;
    };
    let _ = writeln!(md, "\n## Code shape\n");
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
}

//! The nemesis runner: a real cluster on loopback under concurrent clients while faults are
//! injected at random, then a check of everything the clients saw.
//!
//! A run goes: start the members, each with a config of its own that routes its peer traffic
//! through the fault [`proxy`]; start the clients ([`workload`]); let the nemesis ([`faults`])
//! kill, pause, partition and restart for the run's length; stop the clients; heal everything;
//! time how long the cluster takes to serve again ([`recovery`]); read every key's final value
//! through the log; and judge the history ([`verdict`]). Everything goes to a post-mortem folder
//! that is kept: the history, the fault timeline, the summary, and each member's config, data dir
//! and log ([`report`]).
//!
//! A verdict has three outcomes, each with its exit status:
//!
//! - `clean` ([`CLEAN`], 0): no check found a violation, and the run reached every [`floors`]
//!   floor, so it checked something real: enough faults for its length, enough operations
//!   answered definitely, enough of them with a known outcome, every key's history checked, and
//!   (when members were killed) exactly-once appends acknowledged after a retry;
//! - `violation` ([`VIOLATION`], 1): some check failed, whatever the floors say;
//! - `inconclusive` ([`INCONCLUSIVE`], 3): no violation, but a floor not met; the summary says
//!   which floor and by how much.
//!
//! A run interrupted by Ctrl-C or SIGTERM has no verdict ([`INTERRUPTED`], 130), and a bad
//! command line exits with 2.
//!
//! - [`options`]: the command line.
//! - [`rng`]: seeded random draws.
//! - [`proxy`]: a TCP forwarder per directed link that can refuse or blackhole.
//! - [`links`]: what a partition cuts: the proxies' links, or (`--netns`) the links of hosts in
//!   network namespaces.
//! - [`faults`] and [`timeline`]: the fault schedule and its record.
//! - [`workload`] and [`history`]: the clients and what they recorded; [`watchers`], the watches
//!   beside them and their check; [`serializable`], the check of the clients' serializable gets.
//! - [`recovery`], [`verdict`], [`floors`], [`report`]: the checks, what a clean run must have
//!   checked, and what is printed and kept.

pub mod faults;
pub mod floors;
pub mod history;
pub mod links;
pub mod options;
pub mod proxy;
pub mod recovery;
pub mod report;
pub mod rng;
pub mod serializable;
pub mod timeline;
pub mod verdict;
pub mod watchers;
pub mod workload;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::Cluster;
use crate::http::Client;
use crate::netns::{Host, Lan, Network};
pub use options::{Options, usage};

/// The generated configs' tuning: small, so that every fault matters within seconds.
const HEARTBEAT_MS: u64 = 50;
const ELECTION_TIMEOUT_MS: u64 = 500;
const REQUEST_TIMEOUT_MS: u64 = 2_000;
/// The clients' HTTP timeout: a little above the servers' request timeout, so that a member that
/// answers `503` on time is heard, and only one that cannot answer at all times out.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(REQUEST_TIMEOUT_MS + 1_000);
/// How soon after the final heal every member must serve again.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// How long the final reads may take in all.
const FINAL_READS_PATIENCE: Duration = Duration::from_secs(60);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The longest the runner sleeps between two looks at the cluster, so that a member exiting by
/// itself or an interrupt is noticed soon.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Exit statuses of the runner (2 is a bad command line's). `INCONCLUSIVE` differs from both
/// `CLEAN` and `VIOLATION` so that a script cannot take a run that checked too little for a
/// pass, nor for a bug.
pub const CLEAN: i32 = 0;
pub const VIOLATION: i32 = 1;
pub const INCONCLUSIVE: i32 = 3;
pub const INTERRUPTED: i32 = 130;
/// A bad command line, or a run that cannot be set up as asked (`--netns` without namespaces,
/// `--delay-ms` without netem).
pub const USAGE: i32 = 2;

/// Runs the nemesis as `options` say until done or `interrupted`; returns the exit status.
pub fn run(options: &Options, interrupted: &AtomicBool) -> i32 {
    let seed = options.seed.unwrap_or_else(rng::fresh_seed);
    if options.netns
        && let Some(reason) = Network::unavailable()
    {
        eprintln!(
            "nemesis: --netns needs Linux network namespaces (root and iproute2), but {reason}"
        );
        return USAGE;
    }
    let dir = post_mortem_dir(options.runtime.name());
    let placement = match (options.netns, options.delay_ms) {
        (false, _) => String::new(),
        (true, None) => ", hosts in network namespaces".to_owned(),
        (true, Some(ms)) => format!(", hosts in network namespaces, {ms} ms delay"),
    };
    let title = format!(
        "nemesis: {}, {} members, {} clients, {} s{placement}, seed {seed}",
        options.runtime.name(),
        options.members,
        options.clients,
        options.duration.as_secs()
    );
    println!("{title}\npost-mortem folder: {}", dir.display());

    let started = match options.netns {
        true => start_on_hosts(options, &dir, seed),
        false => Ok(start_cluster(options, &dir)),
    };
    let (mut cluster, links) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("nemesis: {e}; the run did not start");
            return USAGE;
        }
    };
    let urls: Vec<String> = (0..cluster.len())
        .map(|i| cluster.url(i, "/client-request"))
        .collect();
    let client = cluster.new_client(CLIENT_TIMEOUT);
    let epoch = Instant::now();
    let workload = workload::Workload::start(&urls, options.clients, &client, seed, epoch);
    let timeline = timeline::Timeline::create(&dir.join("faults.jsonl"), epoch);
    let mut nemesis = faults::Nemesis::new(
        &mut cluster,
        &links,
        rng::Rng::stream(seed, 0),
        timeline,
        Duration::from_millis(ELECTION_TIMEOUT_MS),
        options.duration,
    );
    inject_faults(
        &mut nemesis,
        &workload,
        options.duration,
        epoch,
        interrupted,
    );
    eprintln!("stopping the clients");
    let mut recorded = workload.stop();
    let workload_ops = recorded.records.len();

    let (recovery, verdict) = match interrupted.load(Ordering::Relaxed) {
        true => (None, None),
        false => {
            let (recovery, verdict) =
                heal_and_check(&mut nemesis, &client, &urls, &mut recorded, options, epoch);
            (recovery, Some(verdict))
        }
    };
    let workload::Recorded {
        records,
        serializable,
        watches,
    } = recorded;
    let mut figures = floors::Figures::of(
        options.duration,
        &records[..workload_ops],
        nemesis.timeline.counts(),
    );
    figures.watch_changes = watchers::counts(&watches).0 as u64;
    figures.serializable_answered = serializable::answered(&serializable);
    let verdict = verdict.map(|mut verdict| {
        verdict.floors = floors::floors(&figures, verdict.keys, verdict.keys_checked());
        verdict
    });
    let text = report::summary(&report::Run {
        title,
        workload: &records[..workload_ops],
        figures: &figures,
        final_reads: records.len() - workload_ops,
        watches: watchers::counts(&watches),
        faults: nemesis.timeline.counts(),
        recovery,
        recovery_bound: RECOVERY_BOUND,
        verdict: verdict.as_ref(),
    });
    println!("{text}post-mortem folder: {}", dir.display());
    write_or_warn(&dir.join("summary.txt"), |path| std::fs::write(path, &text));
    write_or_warn(&dir.join("history.jsonl"), |path| {
        report::write_history(path, &records)
    });
    // The members first, then what they ran on (their hosts' namespaces).
    drop(nemesis);
    drop(cluster);
    drop(links);
    match verdict.as_ref().map(verdict::Verdict::status) {
        Some(verdict::Status::Clean) => CLEAN,
        Some(verdict::Status::Inconclusive) => INCONCLUSIVE,
        Some(verdict::Status::Violation) => VIOLATION,
        None => INTERRUPTED,
    }
}

/// Starts the members in `dir`, each with a config whose `routes` send its peer traffic through
/// the proxies, and waits until they agree on a leader.
fn start_cluster(options: &Options, dir: &Path) -> (Cluster, links::Links) {
    let mut cluster = Cluster::builder(options.runtime)
        .size(options.members)
        .in_dir(dir)
        .tuning("heartbeat_ms", HEARTBEAT_MS)
        .tuning("election_timeout_ms", ELECTION_TIMEOUT_MS)
        .tuning("request_timeout_ms", REQUEST_TIMEOUT_MS)
        .build();
    let listens: Vec<_> = cluster.members.iter().map(|m| m.listen).collect();
    let proxies = proxy::Proxies::start(&listens);
    for i in 0..cluster.len() {
        let config = &cluster.config;
        let routes: serde_json::Map<String, serde_json::Value> = (0..config.servers.len())
            .filter(|&j| j != i)
            .map(|j| {
                (
                    config.servers[j].clone(),
                    proxies.addr(i, j).to_string().into(),
                )
            })
            .collect();
        let config = config.clone().set("routes", routes);
        cluster.set_member_config(i, config);
    }
    cluster.start_all();
    cluster.wait_for_leader();
    (cluster, links::Links::Proxies(proxies))
}

/// Starts the members on hosts of a new [`Network`], one member per host, each named in the
/// config by its cluster-network name, with no routes and a secret drawn from `seed` (their
/// addresses are not loopback), and waits until they agree on a leader. The network's layout
/// goes to `network.txt` in `dir`. An error if `--delay-ms` cannot be honoured.
fn start_on_hosts(
    options: &Options,
    dir: &Path,
    seed: u64,
) -> Result<(Cluster, links::Links), String> {
    let network = Network::start(options.members);
    if let Some(ms) = options.delay_ms {
        network.delay(Lan::A, ms)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_or_warn(&dir.join("network.txt"), |path| {
        std::fs::write(path, network.describe())
    });
    let entries: Vec<String> = network.hosts.iter().map(Host::cluster_entry).collect();
    let mut secret = rng::Rng::stream(seed, u64::MAX);
    let secret = format!("{:016x}{:016x}", secret.next_u64(), secret.next_u64());
    let mut cluster = Cluster::builder(options.runtime)
        .on_network(&network, &entries)
        .secret(&secret)
        .in_dir(dir)
        .tuning("heartbeat_ms", HEARTBEAT_MS)
        .tuning("election_timeout_ms", ELECTION_TIMEOUT_MS)
        .tuning("request_timeout_ms", REQUEST_TIMEOUT_MS)
        .build();
    cluster.start_all();
    cluster.wait_for_leader();
    Ok((cluster, links::Links::Hosts(network)))
}

/// Lets the nemesis work for `run` from `epoch` (or until interrupted), printing progress.
fn inject_faults(
    nemesis: &mut faults::Nemesis,
    workload: &workload::Workload,
    run: Duration,
    epoch: Instant,
    interrupted: &AtomicBool,
) {
    let end = epoch + run;
    let mut next_progress = epoch + PROGRESS_EVERY;
    loop {
        let now = Instant::now();
        if now >= end || interrupted.load(Ordering::Relaxed) {
            return;
        }
        nemesis.step();
        if now >= next_progress {
            let state = nemesis.describe();
            let faults = nemesis.timeline.total();
            let line = report::progress(epoch.elapsed(), run, workload.counters(), faults, &state);
            eprintln!("{line}");
            next_progress += PROGRESS_EVERY;
        }
        let wake = [nemesis.next_wakeup(), next_progress, end, now + LOOK_EVERY]
            .into_iter()
            .min()
            .expect("a wake-up time");
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
}

/// Heals every fault, times the recovery, reads every key of the `recorded` history (adding
/// those reads to it) and judges it whole, with its serializable gets and its watches.
fn heal_and_check(
    nemesis: &mut faults::Nemesis,
    client: &Client,
    urls: &[String],
    recorded: &mut workload::Recorded,
    options: &Options,
    epoch: Instant,
) -> (Option<Duration>, verdict::Verdict) {
    eprintln!("healing every fault, then waiting for every member to serve");
    nemesis.heal_everything();
    let recovery = recovery::time_to_serve(client, urls, RECOVERY_BOUND);
    let workload::Recorded {
        records,
        serializable,
        watches,
    } = recorded;
    let keys: BTreeSet<String> = records
        .iter()
        .map(|r| r.command.op.key().to_owned())
        .collect();
    let keys: Vec<String> = keys.into_iter().collect();
    eprintln!("reading the final value of {} keys", keys.len());
    // The final reader is one more client, numbered after the workload's.
    let reads = workload::final_reads(
        client,
        urls,
        &keys,
        options.clients,
        epoch,
        FINAL_READS_PATIENCE,
    );
    nemesis.notice_crashes();
    records.extend(reads.records);
    eprintln!("checking {} operations", records.len());
    let mut verdict = verdict::judge(records, &reads.values);
    let lists = verdict::final_lists(&reads.values);
    verdict.add("watches", watchers::check(watches, records, &lists));
    verdict.add(
        "serializable gets",
        serializable::check(serializable, records, &lists),
    );
    if recovery.is_none_or(|took| took > RECOVERY_BOUND) {
        verdict.add(
            "recovery",
            [format!(
                "not every member served a write within {} s of the final heal",
                RECOVERY_BOUND.as_secs()
            )],
        );
    }
    verdict.add(
        "final reads",
        reads
            .missing
            .iter()
            .map(|key| format!("no member answered a get of {key}")),
    );
    verdict.add("members", nemesis.crashes.drain(..));
    (recovery, verdict)
}

/// `target/nemesis/<runtime>-<unix time>/`, next to the running executable's profile directory
/// (`target/<profile>/nemesis`).
fn post_mortem_dir(runtime: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("the executable lives in target/<profile>/");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    target.join("nemesis").join(format!("{runtime}-{now}"))
}

fn write_or_warn(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) {
    if let Err(e) = write(path) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

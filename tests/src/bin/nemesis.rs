//! `nemesis RUNTIME [SECONDS] [--members N] [--clients N] [--seed N] [--netns [--delay-ms N]]`:
//! runs a cluster of the given server (on loopback, or with `--netns` on hosts in network
//! namespaces) under concurrent clients while faults are injected, then checks the history.
//! Exits 0 clean, 1 on a violation, 3 when inconclusive (no violation, but the run checked too
//! little), 2 on a bad command line (or `--netns`/`--delay-ms` impossible here), 130 when
//! interrupted; `--help` says more. See
//! `paxos_tests::nemesis`; `just nemesis` builds the servers and runs this.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use paxos_tests::nemesis::{self, Options, usage};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{}", usage());
        return;
    }
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("nemesis: {e}\n{}", usage());
            std::process::exit(2);
        }
    };
    // Ctrl-C or SIGTERM ends the run early; the runner then tears the cluster down (paused
    // members included) and still writes the post-mortem folder.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .expect("install the Ctrl-C handler");
    std::process::exit(nemesis::run(&options, &interrupted));
}

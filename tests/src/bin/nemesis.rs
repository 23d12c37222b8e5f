//! `nemesis RUNTIME [SECONDS] [--members N] [--clients N] [--seed N]`: runs a cluster of the
//! given server under concurrent clients while faults are injected, then checks the history.
//! See `paxos_tests::nemesis`; `just nemesis` builds the servers and runs this.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use paxos_tests::nemesis::{self, Options, USAGE};

fn main() {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("nemesis: {e}\n{USAGE}");
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

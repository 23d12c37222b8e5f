//! `paxos-threaded --config FILE --listen HOST:PORT [--data-dir DIR]`: see `--help`.

use std::process::ExitCode;

use paxos_host::{Startup, fail, startup};
use paxos_threaded::{Shutdown, run};

const PROGRAM: &str = "paxos-threaded";
/// The benchmark variants `PAXOS_VARIANT` may name.
const VARIANTS: &[&str] = &[paxos_threaded::server::PER_REQUEST_THREADS];

fn main() -> ExitCode {
    let Startup { args, config } = match startup(PROGRAM, VARIANTS) {
        Ok(startup) => startup,
        Err(status) => return status,
    };
    let shutdown = Shutdown::new();
    if let Err(error) = shutdown.cancel_on_signals() {
        return fail(PROGRAM, &error);
    }
    // The process exits when `run` returns, even if threads holding idle connections remain.
    match run(&args.listen, config, &args.data_dir, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(PROGRAM, &error),
    }
}

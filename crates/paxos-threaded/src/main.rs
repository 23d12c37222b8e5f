//! `paxos-threaded --config FILE --listen HOST:PORT [--data-dir DIR]`: see `--help`.

use std::process::ExitCode;

use paxos_host::{Startup, fail, startup};
use paxos_threaded::variants::VARIANTS;
use paxos_threaded::{Shutdown, run};

const PROGRAM: &str = "paxos-threaded";

fn main() -> ExitCode {
    let Startup { args, config, tls } = match startup(PROGRAM, VARIANTS) {
        Ok(startup) => startup,
        Err(status) => return status,
    };
    let shutdown = Shutdown::new();
    if let Err(error) = shutdown.cancel_on_signals() {
        return fail(PROGRAM, &error);
    }
    // Every thread `run` started has ended when it returns; `ctrlc`'s signal thread remains.
    match run(&args.listen, config, tls, &args.data_dir, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(PROGRAM, &error),
    }
}

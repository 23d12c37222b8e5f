//! `paxos-async --config FILE --listen HOST:PORT [--data-dir DIR]`: see `--help`.

use std::process::ExitCode;

use paxos_async::variants::{self, VARIANTS};
use paxos_async::{Shutdown, run};
use paxos_host::{RunError, SHUTDOWN_GRACE, Startup, fail, startup};
use tokio::net::TcpListener;

const PROGRAM: &str = "paxos-async";

fn main() -> ExitCode {
    let Startup { args, config, tls } = match startup(PROGRAM, VARIANTS) {
        Ok(startup) => startup,
        Err(status) => return status,
    };
    let runtime = match variants::runtime() {
        Ok(runtime) => runtime,
        Err(error) => return fail(PROGRAM, &error),
    };
    let result = runtime.block_on(async {
        let shutdown = Shutdown::new();
        shutdown.cancel_on_signals()?;
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|error| RunError::bind(&args.listen, &error))?;
        run(listener, config, tls, &args.data_dir, shutdown).await
    });
    // Every task `run` started has ended when it returns; the signal task and the blocking
    // pool's idle threads remain, and end here.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(PROGRAM, &error),
    }
}

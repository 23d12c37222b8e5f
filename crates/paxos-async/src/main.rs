//! `paxos-async --config FILE --listen HOST:PORT [--data-dir DIR]`: see `--help`.

use std::process::ExitCode;

use paxos_async::{Shutdown, run};
use paxos_host::{RunError, SHUTDOWN_GRACE, Startup, fail, startup};
use tokio::net::TcpListener;

const PROGRAM: &str = "paxos-async";

fn main() -> ExitCode {
    let Startup { args, config } = match startup(PROGRAM) {
        Ok(startup) => startup,
        Err(status) => return status,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(PROGRAM, &RunError(format!("cannot start tokio: {error}"))),
    };
    let result = runtime.block_on(async {
        let shutdown = Shutdown::new();
        shutdown.cancel_on_signals()?;
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|error| RunError::bind(&args.listen, &error))?;
        run(listener, config, &args.data_dir, shutdown).await
    });
    // Tasks still holding connections past the grace period are dropped, not waited for.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(PROGRAM, &error),
    }
}

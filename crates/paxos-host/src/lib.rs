//! What both Twin Paxos servers share that does I/O but is not the runtime's business.
//!
//! `paxos-core` holds the protocol with no I/O at all; `paxos-threaded` and `paxos-async` hold
//! what a runtime forces them to write twice: threads or tasks, channels, the HTTP framework and
//! client. Everything in between lives here, once: the command line, the config file, the data
//! dir, the metrics, the HTTP API's statuses and bodies, and the log lines. That keeps the two
//! servers' behaviour identical and their diff about the runtime alone.
//!
//! # Layout
//!
//! - [`cli`]: `--config FILE --listen HOST:PORT [--data-dir DIR]`, parsed by hand.
//!   Without `--data-dir` a server uses `./paxos-data/<host>-<port>` of `--listen`.
//! - [`config`]: the cluster config JSON: `servers`, `secret`, tuning fields and defaults.
//! - [`data_dir`]: the locked data dir, log replay, and batched append + fsync.
//! - [`events`]: what a driver's channel carries, and feeding it to the node.
//! - [`peer`]: peer URLs, timeouts and the batching of queued messages into envelopes.
//! - [`probe`]: reading `GET /server_id` answers and describing probe failures for discovery.
//! - [`routing`]: the one routing table, the one form of the path, and the peer secret check.
//! - [`http`]: statuses and JSON bodies of the API; the checks of a peer envelope.
//! - [`handling`]: the steps of a client or peer request, less the runtime's reading and
//!   waiting, and the byte budgets of bodies held at once.
//! - [`status`]: the snapshot of the node the driver publishes for `/status` and `/metrics`.
//! - [`metrics`]: counters, gauges and histograms, and their Prometheus text rendering, under one
//!   set of names; [`histogram`]: the histogram type and its encoding.
//! - [`waiters`]: the driver's table of client requests waiting for their answers.
//! - [`watches`]: the driver's table of watches waiting for a key to change.
//! - [`clients`]: both tables together, settled after every batch.
//! - [`log`]: the subscriber (level from `PAXOS_LOG`) and every log line, one function each.
//! - This file: the random [`ServerId`], the [`Clock`] that turns instants into the core's
//!   time, the [`startup`] both `main`s call, and [`RunError`], a failure at run time.
//!
//! # Exit statuses
//!
//! `0` after a clean shutdown, `1` for a [`RunError`] (address in use, data dir locked or
//! corrupt, could not find myself, fsync failed), `2` for a usage or configuration error. Every
//! error is one line on stderr.

pub mod cli;
pub mod clients;
pub mod config;
pub mod data_dir;
pub mod events;
pub mod handling;
pub mod histogram;
pub mod http;
pub mod log;
pub mod metrics;
pub mod peer;
pub mod probe;
pub mod routing;
pub mod status;
pub mod tls;
pub mod waiters;
pub mod watches;

use std::fmt;
use std::process::ExitCode;
use std::time::Instant;

pub use config::Config;
pub use data_dir::DataDir;
pub use events::Event;
pub use metrics::Metrics;
pub use status::StatusBoard;
pub use tls::Tls;
pub use waiters::Waiters;

/// A server's random identity for one run: 128 random bits, shown as 32 hex digits.
///
/// It serves two purposes: the id `GET /server_id` echoes for self-discovery, and the seed of
/// the node's election jitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerId {
    hex: String,
    bits: u128,
}

impl ServerId {
    /// Draws a fresh id (uuid v4).
    pub fn random() -> ServerId {
        let uuid = uuid::Uuid::new_v4();
        ServerId {
            hex: uuid.simple().to_string(),
            bits: uuid.as_u128(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.hex
    }

    /// The election jitter's seed: the id's high 64 bits.
    pub fn seed(&self) -> u64 {
        (self.bits >> 64) as u64
    }
}

/// The incarnation to start a node with: microseconds since the Unix epoch. The node goes past
/// the incarnation it recorded if that is higher, so starts from one data dir always grow; the
/// time of day makes them grow too after the data dir is lost, unless the clock went back.
pub fn incarnation() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX)
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex)
    }
}

/// Converts between the runtime's `Instant`s and the core's [`paxos_core::Time`], a duration
/// since the server started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> paxos_core::Time {
        self.start.elapsed()
    }

    pub fn time(&self, instant: Instant) -> paxos_core::Time {
        instant.saturating_duration_since(self.start)
    }

    pub fn instant(&self, time: paxos_core::Time) -> Instant {
        self.start + time
    }
}

/// A failure at run time: the one line to print before exiting with status 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

impl From<data_dir::DataDirError> for RunError {
    fn from(error: data_dir::DataDirError) -> Self {
        RunError(error.to_string())
    }
}

impl RunError {
    /// The error for a `--listen` address that cannot be bound.
    pub fn bind(listen: &str, error: &std::io::Error) -> RunError {
        let reason = match error.kind() {
            std::io::ErrorKind::AddrInUse => "address in use".to_owned(),
            std::io::ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
            _ => error.to_string(),
        };
        RunError(format!("cannot listen on {listen}: {reason}"))
    }
}

impl RunError {
    /// The error for a bound listener whose address cannot be read back.
    pub fn unreadable_address(error: &std::io::Error) -> RunError {
        RunError(format!("cannot read the listening address: {error}"))
    }
}

/// What a server needs to start, from its command line and config file.
#[derive(Debug)]
pub struct Startup {
    pub args: cli::Args,
    pub config: Config,
    /// The config's `tls`, read and checked.
    pub tls: Option<Tls>,
}

/// The environment variable that picks a benchmark variant of how a server uses its runtime,
/// e.g. `PAXOS_VARIANT=handler-pool` (threaded) or `current-thread` (async); each server lists
/// its own in `VARIANTS`, in its `lib.rs`. Unset, a server runs as designed; the benchmark sets
/// it to measure the roads not taken.
pub const VARIANT_VAR: &str = "PAXOS_VARIANT";

/// The benchmark variant this process runs, if any (see [`VARIANT_VAR`]); [`startup`] has
/// already refused a value the server does not know.
pub fn variant() -> Option<String> {
    std::env::var(VARIANT_VAR).ok().filter(|v| !v.is_empty())
}

/// Parses the command line, loads the config and installs logging: the part of `main` both
/// servers share. `variants` are the values of [`VARIANT_VAR`] this server knows. `Err` carries
/// the exit status to leave with at once: 0 after `--help` or `--version`, 2 after a usage or
/// configuration error, whose one line it has printed.
pub fn startup(program: &str, variants: &[&str]) -> Result<Startup, ExitCode> {
    let usage_error = |line: String| {
        eprintln!("{program}: {line}");
        ExitCode::from(2)
    };
    if let Some(variant) = variant()
        && !variants.contains(&variant.as_str())
    {
        return Err(usage_error(format!(
            "{VARIANT_VAR}={variant} is not a variant of {program}; it knows: {}",
            variants.join(", ")
        )));
    }
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Parsed::Run(args)) => args,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::usage(program));
            return Err(ExitCode::SUCCESS);
        }
        Ok(cli::Parsed::Version) => {
            println!("{}", cli::version(program));
            return Err(ExitCode::SUCCESS);
        }
        Err(error) => return Err(usage_error(error.to_string())),
    };
    let config = Config::load(&args.config).map_err(|e| usage_error(e.to_string()))?;
    config.check_exposure(&args.listen).map_err(|reason| {
        let path = args.config.display();
        usage_error(format!("config file {path}: {reason}"))
    })?;
    let tls = config
        .tls
        .as_ref()
        .map(Tls::load)
        .transpose()
        .map_err(|reason| {
            let path = args.config.display();
            usage_error(format!("config file {path}: {reason}"))
        })?;
    log::init().map_err(usage_error)?;
    Ok(Startup { args, config, tls })
}

/// Prints a run-time failure and returns exit status 1.
pub fn fail(program: &str, error: &RunError) -> ExitCode {
    eprintln!("{program}: {error}");
    ExitCode::from(1)
}

/// How long a stopping server waits for open connections and in-flight handlers before it exits
/// anyway. Idle keep-alive connections must not keep a server from stopping.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the driver waits for before it can take commands: this server's index in `servers`,
/// or `None` once it is sure never to find it (discovery gave up, or the server is stopping).
pub type Found = Option<paxos_core::MemberId>;

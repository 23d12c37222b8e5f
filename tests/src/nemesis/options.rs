//! The runner's command line: `nemesis RUNTIME [SECONDS] [--members N] [--clients N] [--seed N]
//! [--netns [--delay-ms N]]`.

use std::time::Duration;

use super::floors::{
    DEFINITE_PER_SECOND, MIN_DEFINITE, MIN_KNOWN_PERCENT, MIN_RETRIED_ACKED, SECONDS_PER_FAULT,
};
use super::{CLEAN, INCONCLUSIVE, INTERRUPTED, VIOLATION};
use crate::runtime::Runtime;

/// The text of `--help`, also shown after a bad command line.
pub fn usage() -> String {
    format!(
        "usage: nemesis threaded|async [SECONDS (60)] [--members N (3)] [--clients N (10)] \
         [--seed N (random)] [--netns [--delay-ms N]]

Runs a cluster of the server on loopback under concurrent clients (half of them exactly-once
clients that retry) while faults are injected for SECONDS, then checks the whole history.

Partitions go through a TCP proxy per link. With --netns (root and iproute2 only) each member
runs on a host of its own instead, a Linux network namespace with two addresses and three names,
the clients on another, and partitions take the hosts' links down at their switch: the cluster
network's link only (the clients still reach the member), or both (the host unplugged).
--delay-ms N (with --netns) delays every packet into a member on the cluster network by N ms
with tc's netem; this machine's kernel has no netem (\"Specified qdisc kind is unknown\"), so
here it refuses to start, saying so.

A run without violations is clean only if it reached every floor:
  faults injected                  one per {SECONDS_PER_FAULT} s of run, at least one
  operations answered definitely   {DEFINITE_PER_SECOND} per second of run, at least {MIN_DEFINITE} \
         (ok, cas mismatch or 400)
  operations with a known outcome  {MIN_KNOWN_PERCENT} %
  keys checked                     every key the history touched
  retried exactly-once appends     {MIN_RETRIED_ACKED} acknowledged after a retry, if members \
         were killed

exit status:
  {CLEAN}    clean: no violation, every floor met
  {VIOLATION}    violation: a check failed
  2    bad command line, or --netns or --delay-ms impossible here (the message says why)
  {INCONCLUSIVE}    inconclusive: no violation, but a floor not met (the summary says which, \
         by how much)
  {INTERRUPTED}  interrupted by Ctrl-C or SIGTERM: no verdict"
    )
}

#[derive(Clone, Debug)]
pub struct Options {
    pub runtime: Runtime,
    pub duration: Duration,
    pub members: usize,
    pub clients: usize,
    /// `None`: draw one and print it.
    pub seed: Option<u64>,
    /// Members on hosts in network namespaces, partitions by links taken down.
    pub netns: bool,
    /// With `netns`: a netem delay on the cluster network, in milliseconds.
    pub delay_ms: Option<u64>,
}

impl Options {
    /// Parses the arguments after the program name; the error is one sentence.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut positional = Vec::new();
        let mut options = Options {
            runtime: Runtime::Threaded,
            duration: Duration::from_secs(60),
            members: 3,
            clients: 10,
            seed: None,
            netns: false,
            delay_ms: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                let text = args
                    .next()
                    .ok_or_else(|| format!("{name} needs a number"))?;
                text.parse()
                    .map_err(|_| format!("{name} needs a number, not {text:?}"))
            };
            match arg.as_str() {
                "--members" => options.members = value("--members")? as usize,
                "--clients" => options.clients = value("--clients")? as usize,
                "--seed" => options.seed = Some(value("--seed")?),
                "--delay-ms" => options.delay_ms = Some(value("--delay-ms")?),
                "--netns" => options.netns = true,
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                _ => positional.push(arg),
            }
        }
        match positional.as_slice() {
            [runtime, rest @ ..] if rest.len() <= 1 => {
                options.runtime = match runtime.as_str() {
                    "threaded" => Runtime::Threaded,
                    "async" => Runtime::Async,
                    other => return Err(format!("unknown runtime {other:?}")),
                };
                if let Some(seconds) = rest.first() {
                    let seconds: u64 = seconds
                        .parse()
                        .map_err(|_| format!("SECONDS must be a number, not {seconds:?}"))?;
                    options.duration = Duration::from_secs(seconds);
                }
            }
            _ => return Err("give the runtime and at most a number of seconds".to_owned()),
        }
        if !(3..=9).contains(&options.members) {
            return Err("--members must be between 3 and 9".to_owned());
        }
        if options.clients == 0 {
            return Err("--clients must be at least 1".to_owned());
        }
        if options.delay_ms.is_some() && !options.netns {
            return Err("--delay-ms needs --netns: it delays the namespaces' links".to_owned());
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Options, String> {
        Options::parse(args.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn netns_and_delay() {
        let options = parse("async 30 --netns --delay-ms 20").unwrap();
        assert!(options.netns);
        assert_eq!(options.delay_ms, Some(20));
        assert!(!parse("threaded").unwrap().netns);
        let refused = parse("threaded 30 --delay-ms 20").unwrap_err();
        assert!(refused.contains("--netns"), "{refused}");
    }
}

//! CPU sets: which cores the servers run on (`--cpus`), and the load generator on the rest.
//!
//! Servers are pinned when they start, through `taskset -c LIST` (which `exec`s them, so the
//! process id is the server's): a server sees only its CPUs from its first instruction, as it
//! would on a smaller machine, so tokio starts one worker per pinned CPU rather than one per core
//! of the machine. The load generator (this process) is pinned to the CPUs the servers do not
//! have, when there are any, and left unpinned otherwise.

use std::fmt;
use std::process::Command;

/// A set of CPU numbers, kept sorted and without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSet(Vec<usize>);

impl CpuSet {
    /// Parses a `taskset -c` list: `0`, `0-3`, `0,2-3`.
    pub fn parse(list: &str) -> Result<CpuSet, String> {
        let mut cpus = Vec::new();
        for part in list.split(',').map(str::trim) {
            let number = |s: &str| {
                s.parse::<usize>()
                    .map_err(|_| format!("{list:?} is not a CPU list such as 0 or 0-1"))
            };
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (number(from)?, number(to)?);
                    if from > to {
                        return Err(format!("{list:?}: {from}-{to} runs backwards"));
                    }
                    cpus.extend(from..=to);
                }
                None => cpus.push(number(part)?),
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuSet(cpus))
    }

    /// The CPUs this process could run on when it started: read once, before anything pins it
    /// (`main` asks first), so that pinning the load generator does not shrink the machine.
    pub fn allowed() -> CpuSet {
        static ALLOWED: std::sync::OnceLock<CpuSet> = std::sync::OnceLock::new();
        ALLOWED.get_or_init(CpuSet::current).clone()
    }

    /// The CPUs this process may run on now (`Cpus_allowed_list` in `/proc/self/status`).
    pub fn current() -> CpuSet {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let list = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
                CpuSet::parse(list.trim()).ok()
            })
            .unwrap_or_else(|| {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                CpuSet((0..n).collect())
            })
    }

    /// The first `n` CPUs of this set.
    pub fn first(&self, n: usize) -> CpuSet {
        CpuSet(self.0.iter().copied().take(n).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CPUs of `self` not in `other`.
    pub fn minus(&self, other: &CpuSet) -> CpuSet {
        CpuSet(
            self.0
                .iter()
                .copied()
                .filter(|c| !other.0.contains(c))
                .collect(),
        )
    }

    /// The command that starts a program on these CPUs: `taskset -c LIST`.
    pub fn launcher(&self) -> [String; 3] {
        ["taskset".into(), "-c".into(), self.to_string()]
    }

    /// Moves every thread of process `pid` onto these CPUs (`taskset -a -p -c LIST PID`);
    /// threads it starts later inherit the set.
    pub fn pin(&self, pid: u32) -> Result<(), String> {
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", &self.to_string(), &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run taskset (util-linux): {e}"))?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("taskset -a -p -c {self} {pid} failed")),
        }
    }
}

impl fmt::Display for CpuSet {
    /// The set as `taskset -c` takes it, runs folded: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            parts.push(match start == end {
                true => start.to_string(),
                false => format!("{start}-{end}"),
            });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

/// Where the servers run and where the load generator runs, for the length of a guard.
#[derive(Debug)]
pub struct LoadPinned {
    restore: Option<CpuSet>,
}

impl LoadPinned {
    /// Pins this process (the load generator) to the CPUs the servers do not get, or to every
    /// CPU when the servers have them all. Dropping the guard puts back the CPUs it had.
    pub fn beside(servers: &CpuSet) -> LoadPinned {
        LoadPinned::on(&Self::target(servers))
    }

    /// Pins this process (the load generator) to `target`. Dropping the guard puts back the
    /// CPUs it had.
    pub fn on(target: &CpuSet) -> LoadPinned {
        let target = target.clone();
        let before = CpuSet::current();
        if target == before {
            return LoadPinned { restore: None };
        }
        match target.pin(std::process::id()) {
            Ok(()) => LoadPinned {
                restore: Some(before),
            },
            Err(error) => {
                eprintln!("paxos-bench: load generator left where it was: {error}");
                LoadPinned { restore: None }
            }
        }
    }

    /// Where the load generator runs beside servers on `servers`.
    fn target(servers: &CpuSet) -> CpuSet {
        let allowed = CpuSet::allowed();
        let rest = allowed.minus(servers);
        match rest.is_empty() {
            true => allowed,
            false => rest,
        }
    }

    /// How the load generator runs beside servers on `servers`, for the report: `on CPUs 1`
    /// or `unpinned`.
    pub fn describe(servers: &CpuSet) -> String {
        match CpuSet::allowed().minus(servers).is_empty() {
            true => "unpinned (no CPU left over)".to_owned(),
            false => format!("on CPUs {}", Self::target(servers)),
        }
    }
}

impl Drop for LoadPinned {
    fn drop(&mut self) {
        if let Some(allowed) = &self.restore {
            let _ = allowed.pin(std::process::id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lists() {
        let set = CpuSet::parse("3,0-1,1").unwrap();
        assert_eq!(set.0, vec![0, 1, 3]);
        assert_eq!(set.to_string(), "0-1,3");
        assert_eq!(set.first(2).to_string(), "0-1");
        assert_eq!(set.minus(&CpuSet::parse("1").unwrap()).to_string(), "0,3");
        assert!(CpuSet::parse("2-1").is_err());
        assert!(CpuSet::parse("a").is_err());
    }
}

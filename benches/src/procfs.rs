//! What `/proc` says about a process: memory, threads and CPU time.
//!
//! Every memory figure in the report comes from here, for the servers and for the bare
//! threads-versus-tasks programs alike, so they are measured the same way.

use std::fs;

/// One reading of `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProcSample {
    /// Resident set size now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), in KiB.
    pub hwm_kib: u64,
    pub threads: u64,
    /// User plus system CPU time so far, in seconds.
    pub cpu_seconds: f64,
}

/// Reads a process's sample, or `None` when it has exited.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        cpu_seconds: cpu_seconds(pid).unwrap_or(0.0),
    })
}

/// Context switches, voluntary and not, summed over every live thread of a process. Threads
/// that already exited are not counted, which matters only for servers that spawn a thread per
/// request.
pub fn context_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        if let Ok(status) = fs::read_to_string(task.path().join("status")) {
            total += switches(&status);
        }
    }
    Some(total)
}

/// User plus system time of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User plus system time from a `stat` file (a process's or a thread's), in seconds.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces, so count fields after its closing paren.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// One thread of a process, as `/proc/<pid>/task/<tid>/` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadSample {
    pub tid: u32,
    /// `comm`: the name the thread was given, or (unnamed) its creator's, at most 15 bytes.
    pub name: String,
    /// Voluntary context switches so far: the thread slept (waited for a lock, a channel, a
    /// socket, a disk).
    pub voluntary_switches: u64,
    /// Involuntary context switches so far: the thread was preempted.
    pub involuntary_switches: u64,
    /// User plus system time so far, in seconds.
    pub cpu_seconds: f64,
}

/// Every live thread of a process, by thread id; empty when it has exited.
pub fn threads(pid: u32) -> Vec<ThreadSample> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads: Vec<ThreadSample> = tasks
        .flatten()
        .filter_map(|task| {
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let dir = format!("/proc/{pid}/task/{tid}");
            let name = fs::read_to_string(format!("{dir}/comm")).ok()?;
            let status = fs::read_to_string(format!("{dir}/status")).ok()?;
            Some(ThreadSample {
                tid,
                name: name.trim_end().to_owned(),
                voluntary_switches: field(&status, "voluntary_ctxt_switches:"),
                involuntary_switches: field(&status, "nonvoluntary_ctxt_switches:"),
                cpu_seconds: stat_cpu_seconds(&format!("{dir}/stat")).unwrap_or(0.0),
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// A number field of a `status` file, 0 when missing.
fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Voluntary plus involuntary context switches in a `status` file.
fn switches(status: &str) -> u64 {
    status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// How many CPUs a process may run on (`Cpus_allowed_list`), e.g. 1 when pinned to one.
pub fn allowed_cpus(pid: u32) -> Option<usize> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    crate::cpus::CpuSet::parse(list.trim())
        .ok()
        .map(|s| s.len())
}

/// Open file descriptors of a process (sockets, files, pipes), or `None` when it has exited.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Resident memory by kind, from `/proc/<pid>/smaps`, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Resident {
    /// Threads' stacks (not the main thread's): anonymous writable mappings just above a small
    /// inaccessible guard mapping, which is how glibc lays out a thread's stack.
    pub thread_stacks_kib: u64,
    /// Every other anonymous mapping and `[heap]`: malloc's heap and arenas, and the rest.
    pub heap_kib: u64,
    /// File-backed mappings (the binary, libraries) and the main thread's stack.
    pub other_kib: u64,
}

/// A process's resident memory by kind, or `None` when it has exited.
pub fn resident(pid: u32) -> Option<Resident> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut resident = Resident::default();
    // The previous mapping: its end, and whether it was a small anonymous guard.
    let mut previous: Option<(u64, bool)> = None;
    // Where the `Rss:` lines of the current mapping go.
    let mut counter: Option<&mut u64> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let anonymous = path.is_empty() || path == "[heap]";
            let guard_below = previous.is_some_and(|(prev_end, guard)| guard && prev_end == start);
            let guard = path.is_empty() && perms.starts_with("---") && end - start <= 64 * 1024;
            previous = Some((end, guard));
            counter = Some(match (anonymous, perms.starts_with("rw")) {
                (true, true) if guard_below && path.is_empty() => &mut resident.thread_stacks_kib,
                (true, _) => &mut resident.heap_kib,
                _ => &mut resident.other_kib,
            });
            continue;
        }
        if first == "Rss:"
            && let Some(counter) = counter.as_deref_mut()
        {
            *counter += fields
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(resident)
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` once rather than linking libc for one call.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The machine, for the report's header.
pub fn machine_description() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {mem_gib:.0} GiB memory, Linux {}",
        kernel.trim()
    )
}

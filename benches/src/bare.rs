//! Threads versus tasks, bare: the talk's `thread-ram.py` and `asyncio-ram.py`, in Rust.
//!
//! The bench binary re-runs itself as `paxos-bench bare threads N` or `bare tasks N`: the child
//! starts N idle std threads (each parked on a condition variable) or N idle tokio tasks (each
//! awaiting a future that never completes, on a current-thread runtime), then reports its own
//! memory. A fresh process per point keeps one point's allocations out of the next one's figure.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

use serde::Serialize;

use crate::procfs::{self, ProcSample};

/// Which kind of idle waiter a child holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Waiter {
    Threads,
    Tasks,
}

impl Waiter {
    pub fn name(self) -> &'static str {
        match self {
            Waiter::Threads => "threads",
            Waiter::Tasks => "tasks",
        }
    }
}

/// One measured point.
#[derive(Clone, Debug, Serialize)]
pub struct BarePoint {
    pub waiter: Waiter,
    pub n: usize,
    pub sample: ProcSample,
}

/// Measures a child holding `n` idle waiters.
pub fn measure(waiter: Waiter, n: usize) -> Result<BarePoint, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut child = Command::new(exe)
        .args(["bare", waiter.name(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the bare {} child: {e}", waiter.name()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("child has no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the child's report: {e}"))?;
    let sample = procfs::sample(child.id());
    // Closing stdin tells the child to exit.
    drop(child.stdin.take());
    let _ = child.wait();
    if line.trim() != "ready" {
        return Err(format!(
            "bare {} child with n={n} did not get ready",
            waiter.name()
        ));
    }
    let sample = sample.ok_or("the bare child exited before it was measured")?;
    Ok(BarePoint { waiter, n, sample })
}

/// The child's side: hold `n` idle waiters, say "ready", wait for stdin to close.
pub fn child_main(waiter: &str, n: &str) -> Result<(), String> {
    let n: usize = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    match waiter {
        "threads" => hold_threads(n),
        "tasks" => hold_tasks(n),
        other => Err(format!("unknown waiter kind {other:?}")),
    }
}

fn wait_for_parent() {
    println!("ready");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn hold_threads(n: usize) -> Result<(), String> {
    let release = Arc::new((Mutex::new(false), Condvar::new()));
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let release = Arc::clone(&release);
        let handle = std::thread::Builder::new()
            .spawn(move || {
                let (lock, cvar) = &*release;
                let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !*done {
                    done = cvar.wait(done).unwrap_or_else(|e| e.into_inner());
                }
            })
            .map_err(|e| format!("spawning thread {}: {e}", handles.len()))?;
        handles.push(handle);
    }
    wait_for_parent();
    let (lock, cvar) = &*release;
    *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
    cvar.notify_all();
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}

fn hold_tasks(n: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("starting tokio: {e}"))?;
    runtime.block_on(async {
        let release = Arc::new(tokio::sync::Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let release = Arc::clone(&release);
            tasks.spawn(async move { release.notified().await });
        }
        // Let every task run up to its first await, as the threads above have.
        tokio::task::yield_now().await;
        tokio::task::spawn_blocking(wait_for_parent)
            .await
            .map_err(|e| format!("waiting for the parent: {e}"))?;
        release.notify_waiters();
        tasks.shutdown().await;
        Ok(())
    })
}

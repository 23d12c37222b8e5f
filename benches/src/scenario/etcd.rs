//! Scenario 12: the `put` and `get` cells of scenario 1 (clients on every member) against a
//! 3-member etcd on loopback (see [`crate::etcd`]), when one can be started.

use crate::etcd::Etcd;
use crate::load::{Api, Closed, Placement, Workload};
use crate::plan::Plan;
use crate::progress::Progress;

use super::throughput::ThroughputRow;

/// Returns no rows when `etcd` is not installed.
pub fn run(plan: &Plan) -> Result<Vec<ThroughputRow>, String> {
    let Some(etcd) = Etcd::start()? else {
        eprintln!("etcd reference     skipped: no `etcd` on the PATH (Debian: etcd-server)");
        return Ok(Vec::new());
    };
    let workloads = [Workload::Put, Workload::Get, Workload::GetSerializable];
    let mut progress = Progress::new("etcd reference", workloads.len() * plan.clients.len());
    let pids = etcd.pids();
    let mut rows = Vec::new();
    for workload in workloads {
        for &clients in &plan.clients {
            let (result, spent) = Closed {
                api: Api::Etcd,
                targets: &etcd.clients,
                clients,
                workload,
                warmup: plan.warmup,
                duration: plan.cell * plan.rounds as u32,
            }
            .run(&pids);
            let cell = (workload, clients, Placement::Spread);
            rows.push(ThroughputRow::new("etcd", cell, &result, spent));
            progress.step(&format!("etcd {} x{clients}", workload.name()));
        }
    }
    progress.finish();
    Ok(rows)
}

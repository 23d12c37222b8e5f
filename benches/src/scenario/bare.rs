//! Scenario 7: N idle std threads against N idle tokio tasks, each count in a fresh process
//! (see [`crate::bare`]).

use crate::bare::{self, BarePoint, Waiter};
use crate::plan::Plan;
use crate::progress::Progress;

pub fn run(plan: &Plan) -> Result<Vec<BarePoint>, String> {
    let mut progress = Progress::new("threads vs tasks", plan.bare_steps.len() * 2);
    let mut points = Vec::new();
    for &n in &plan.bare_steps {
        for waiter in [Waiter::Threads, Waiter::Tasks] {
            points.push(bare::measure(waiter, n)?);
            progress.step(&format!("{} {n}", waiter.name()));
        }
    }
    progress.finish();
    Ok(points)
}

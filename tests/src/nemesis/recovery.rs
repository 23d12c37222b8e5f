//! After the faults end: how long until the cluster serves again.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::Client;

/// Polls until every member has acknowledged a write of its own (a `put` to a key the checks do
/// not look at), for at most `bound`; returns how long that took, or `None` if it did not
/// happen in time.
pub fn time_to_serve(client: &Client, urls: &[String], bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut waiting: Vec<usize> = (0..urls.len()).collect();
    while !waiting.is_empty() {
        if started.elapsed() >= bound {
            return None;
        }
        waiting.retain(|&i| {
            let put = json!({"op": "put", "key": "nemesis-recovery", "value": format!("m{i}")});
            !matches!(client.send_json(&urls[i], &put), Ok(response) if response.status == 200)
        });
        if !waiting.is_empty() {
            // A member that answered at once (connection refused while it starts) is asked
            // again shortly rather than in a tight loop.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Some(started.elapsed())
}

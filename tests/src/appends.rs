//! The list-append checks: what every acknowledged `append` implies about a key's final list.
//!
//! A client that sends `append(key, v)` and gets `200` with list `L` learns that `v` is in the
//! log exactly once and that `L` is the key's whole list right after `v`. So, for the key's final
//! list `F`: every acknowledged value appears in `F` exactly once, every answered `L` is a prefix
//! of `F` that ends with its own value, each client's acknowledged values appear in `F` in the
//! order it sent them, and `F` holds no value that nobody sent, nor any value twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::http::Client;

/// One append whose answer was `200`.
#[derive(Clone, Debug)]
pub struct Acked {
    pub client: usize,
    pub key: String,
    pub value: String,
    pub list: Vec<String>,
}

/// Everything a workload sent and learnt.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub acked: Vec<Acked>,
    /// Values sent whose outcome is unknown (no answer, or `503`).
    pub unknown: Vec<(String, String)>,
}

impl History {
    pub fn merge(&mut self, other: History) {
        self.acked.extend(other.acked);
        self.unknown.extend(other.unknown);
    }

    pub fn keys(&self) -> HashSet<&str> {
        self.acked
            .iter()
            .map(|a| a.key.as_str())
            .chain(self.unknown.iter().map(|(k, _)| k.as_str()))
            .collect()
    }

    /// Panics, explaining the first violation, unless `finals` (each key's final list) agrees
    /// with every acknowledged append.
    pub fn check(&self, finals: &HashMap<String, Vec<String>>) {
        if let Some(first) = self.violations(finals).first() {
            panic!("{first}");
        }
    }

    /// Every way in which `finals` (each key's final list) disagrees with an acknowledged
    /// append, one sentence each; empty when they agree.
    pub fn violations(&self, finals: &HashMap<String, Vec<String>>) -> Vec<String> {
        let mut found = Vec::new();
        let mut keys: Vec<&str> = self.keys().into_iter().collect();
        keys.sort_unstable();
        for key in keys {
            let empty = Vec::new();
            let last = finals.get(key).unwrap_or(&empty);
            let mut seen = HashSet::new();
            for value in last {
                if !seen.insert(value.as_str()) {
                    found.push(format!(
                        "key {key}: value {value} appears twice in the final list"
                    ));
                }
            }
            let sent: HashSet<&str> = self
                .acked
                .iter()
                .filter(|a| a.key == key)
                .map(|a| a.value.as_str())
                .chain(
                    self.unknown
                        .iter()
                        .filter(|(k, _)| k == key)
                        .map(|(_, v)| v.as_str()),
                )
                .collect();
            for value in last {
                if !sent.contains(value.as_str()) {
                    found.push(format!(
                        "key {key}: the final list holds {value}, which nobody sent"
                    ));
                }
            }
            let position: HashMap<&str, usize> = last
                .iter()
                .enumerate()
                .map(|(i, v)| (v.as_str(), i))
                .collect();
            let mut last_position_of_client: HashMap<usize, usize> = HashMap::new();
            for acked in self.acked.iter().filter(|a| a.key == key) {
                let Some(&at) = position.get(acked.value.as_str()) else {
                    found.push(format!(
                        "key {key}: acknowledged value {} is missing from the final list ({} long)",
                        acked.value,
                        last.len()
                    ));
                    continue;
                };
                if !last.starts_with(&acked.list) {
                    found.push(format!(
                        "key {key}: the answer to append({}) is not a prefix of the final list: \
                         answered {:?}",
                        acked.value, acked.list
                    ));
                }
                if acked.list.last() != Some(&acked.value) || acked.list.len() != at + 1 {
                    found.push(format!(
                        "key {key}: the answer to append({}) does not end with it: answered {:?}",
                        acked.value, acked.list
                    ));
                }
                // `acked` is in each client's sending order.
                if let Some(&before) = last_position_of_client.get(&acked.client)
                    && before >= at
                {
                    found.push(format!(
                        "key {key}: client {}'s appends are out of order in the final list",
                        acked.client
                    ));
                }
                last_position_of_client.insert(acked.client, at);
            }
        }
        found
    }
}

/// Client threads that append unique values (`c<client>-<n>`) to a few keys, each through its
/// own member, until they sent `max_ops` each or are stopped.
#[derive(Debug)]
pub struct AppendLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    retried: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<History>>,
}

impl AppendLoad {
    /// Starts one thread per entry of `urls` (each a `/client-request` URL). A request without
    /// an answer (or answered `503`) is recorded as unknown and not retried. Values are
    /// `c<client>-<n>`.
    pub fn start(client: &Client, urls: Vec<String>, keys: &[&str], max_ops: usize) -> AppendLoad {
        let clients = urls.into_iter().map(|url| vec![url]).collect();
        AppendLoad::spawn(client, clients, keys, max_ops, false)
    }

    /// Starts one exactly-once client thread per entry of `urls`: each append carries
    /// `client_id` `e<client>` and a `seq`, and one without an answer is retried with the same
    /// pair on the client's next URL until it is answered (or the load is stopped), so each may
    /// reach the log through several members and must still apply once. Values are
    /// `e<client>-<n>`; clients are numbered from 1000 in the history.
    pub fn start_exactly_once(
        client: &Client,
        urls: Vec<Vec<String>>,
        keys: &[&str],
        max_ops: usize,
    ) -> AppendLoad {
        AppendLoad::spawn(client, urls, keys, max_ops, true)
    }

    fn spawn(
        client: &Client,
        clients: Vec<Vec<String>>,
        keys: &[&str],
        max_ops: usize,
        exactly_once: bool,
    ) -> AppendLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let retried = Arc::new(AtomicUsize::new(0));
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let threads = clients
            .into_iter()
            .enumerate()
            .map(|(id, urls)| {
                let (client, keys) = (client.clone(), keys.clone());
                let (stop, acked, retried) = (stop.clone(), acked.clone(), retried.clone());
                std::thread::spawn(move || {
                    let mut history = History::default();
                    let mut attempt = 0;
                    for n in 0..max_ops {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = &keys[(id + n) % keys.len()];
                        let (value, command) = if exactly_once {
                            let value = format!("e{id}-{n}");
                            let command = json!({"op": "append", "key": key, "value": value,
                                                 "client_id": format!("e{id}"), "seq": n + 1});
                            (value, command)
                        } else {
                            let value = format!("c{id}-{n}");
                            (
                                value.clone(),
                                json!({"op": "append", "key": key, "value": value}),
                            )
                        };
                        let first_attempt = attempt;
                        loop {
                            let url = &urls[attempt % urls.len()];
                            let answer = client.post_json(url, &command);
                            if let Ok(response) = &answer {
                                if response.status == 200 {
                                    let list: Vec<String> =
                                        serde_json::from_value(response.json()["value"].clone())
                                            .unwrap_or_else(|e| {
                                                panic!("{command} answered {}: {e}", response.body)
                                            });
                                    history.acked.push(Acked {
                                        client: if exactly_once { 1000 + id } else { id },
                                        key: key.clone(),
                                        value,
                                        list,
                                    });
                                    acked.fetch_add(1, Ordering::Relaxed);
                                    if attempt > first_attempt {
                                        retried.fetch_add(1, Ordering::Relaxed);
                                    }
                                    break;
                                }
                                assert_eq!(
                                    response.status, 503,
                                    "{command} to {url} answered {}",
                                    response.body
                                );
                            }
                            // No answer, or 503: the outcome is unknown.
                            attempt += 1;
                            if answer.is_err() {
                                // Most likely a member that is down: do not spin on it.
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            if !exactly_once || stop.load(Ordering::Relaxed) {
                                history.unknown.push((key.clone(), value));
                                break;
                            }
                        }
                    }
                    history
                })
            })
            .collect();
        AppendLoad {
            stop,
            acked,
            retried,
            threads,
        }
    }

    /// How many appends were acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// How many appends were acknowledged after one or more retries.
    pub fn retried(&self) -> usize {
        self.retried.load(Ordering::Relaxed)
    }

    /// Waits for every thread to finish on its own.
    pub fn join(self) -> History {
        let mut history = History::default();
        for thread in self.threads {
            match thread.join() {
                Ok(h) => history.merge(h),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        history
    }

    /// Asks every thread to stop after its current request, and waits.
    pub fn stop(self) -> History {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(client: usize, value: &str, list: &[&str]) -> Acked {
        Acked {
            client,
            key: "k".into(),
            value: value.into(),
            list: list.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn finals(list: &[&str]) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "k".to_owned(),
            list.iter().map(|v| (*v).to_owned()).collect(),
        )])
    }

    fn history() -> History {
        History {
            acked: vec![
                acked(0, "a", &["a"]),
                acked(1, "b", &["a", "b"]),
                acked(0, "c", &["a", "b", "c"]),
            ],
            unknown: vec![("k".into(), "u".into())],
        }
    }

    #[test]
    fn accepts_a_consistent_history() {
        history().check(&finals(&["a", "b", "c"]));
        history().check(&finals(&["a", "b", "c", "u"]));
    }

    #[test]
    #[should_panic(expected = "missing from the final list")]
    fn finds_a_lost_acknowledged_value() {
        history().check(&finals(&["a", "b"]));
    }

    #[test]
    #[should_panic(expected = "appears twice")]
    fn finds_a_duplicate() {
        history().check(&finals(&["a", "b", "c", "a"]));
    }

    #[test]
    #[should_panic(expected = "nobody sent")]
    fn finds_a_phantom_value() {
        history().check(&finals(&["a", "b", "c", "zzz"]));
    }

    #[test]
    #[should_panic(expected = "not a prefix")]
    fn finds_an_answer_that_is_not_a_prefix() {
        let mut h = history();
        h.acked[1].list = vec!["u".into(), "b".into()];
        h.check(&finals(&["a", "b", "c", "u"]));
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn finds_a_client_whose_appends_were_reordered() {
        // Client 0 sent a, then c; the log holds c before a.
        let h = History {
            acked: vec![
                acked(0, "a", &["c", "b", "a"]),
                acked(1, "b", &["c", "b"]),
                acked(0, "c", &["c"]),
            ],
            unknown: Vec::new(),
        };
        h.check(&finals(&["c", "b", "a"]));
    }
}

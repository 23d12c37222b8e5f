//! Finding myself: which entry of the config's `servers` list is this member?
//!
//! Names may be aliases (`localhost` and `127.0.0.1`, several DNS names for one host), so a member
//! cannot tell by looking. Instead it draws a random id at start, serves it at `GET /server_id`,
//! and asks every listed server for its id, itself included. The entry that echoes this member's
//! own id is itself. Members start in any order, so entries that do not answer yet are asked
//! again about once a `retry_interval`, until the discovery timeout.
//!
//! Aliases also make a list that names one member twice look like a longer one, whose majority
//! needs a member that does not exist. Two entries that answer the same id give it away, so the
//! search ends only once every probe out has come back: the member named twice sees both of its
//! entries echo it and refuses the list, as does any member that sees two entries answer with
//! one other member's id. An entry that does not answer yet cannot be checked; a member named
//! twice always answers its own probes, so it is the one that refuses.
//!
//! This machine only decides *whom to ask when* and *what the answers mean*; the runtime does the
//! asking. Its loop is:
//!
//! ```text
//! while discovery.finding().is_none() {
//!     for index in discovery.poll_probes(now) { ask servers[index] for its id, concurrently }
//!     wait for an answer or for discovery.poll_timeout()
//!     discovery.handle_answer(now, index, answer)  or  discovery.handle_timeout(now)
//! }
//! ```

use std::time::Duration;

use crate::Time;

/// The default pause between two probes of an entry that has not answered.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The default time a member searches for itself before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How the search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// This member is `servers[index]`.
    Found { index: usize },
    /// No entry echoed this member's id in time. `tried` says, per entry, what it last answered,
    /// so the error message can show what went wrong ("answered another id", "connection
    /// refused", ...).
    NotFound { tried: Vec<(String, String)> },
    /// Entries `first` and `second` answered the same id: the list names one member twice.
    NamedTwice {
        first: usize,
        second: usize,
        tried: Vec<(String, String)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Probe {
    /// Due to be asked at this time.
    Due(Time),
    /// Asked; the answer has not come back yet.
    Asking,
    /// Answered with this id (this member's own or another's), so not asked again.
    Answered(String),
}

/// The id an entry answered with, if it did.
fn answered(probe: &Probe) -> Option<&str> {
    match probe {
        Probe::Answered(id) => Some(id),
        _ => None,
    }
}

/// The self-discovery state machine.
#[derive(Debug)]
pub struct Discovery {
    my_id: String,
    servers: Vec<String>,
    probes: Vec<Probe>,
    /// The last thing each entry answered or the error asking it gave.
    last: Vec<Option<String>>,
    retry_interval: Duration,
    deadline: Time,
    finding: Option<Finding>,
}

impl Discovery {
    pub fn new(
        my_id: String,
        servers: Vec<String>,
        now: Time,
        retry_interval: Duration,
        timeout: Duration,
    ) -> Self {
        Discovery {
            probes: vec![Probe::Due(now); servers.len()],
            last: vec![None; servers.len()],
            my_id,
            servers,
            retry_interval,
            deadline: now + timeout,
            finding: None,
        }
    }

    /// The entries to ask now. Each is handed out once per probe; its answer must come back
    /// through [`handle_answer`](Self::handle_answer) (an error counts as an answer).
    pub fn poll_probes(&mut self, now: Time) -> Vec<usize> {
        if self.finding.is_some() {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (index, probe) in self.probes.iter_mut().enumerate() {
            if matches!(probe, Probe::Due(at) if *at <= now) {
                *probe = Probe::Asking;
                due.push(index);
            }
        }
        due
    }

    /// Takes the answer of entry `index`: the id it served, or why asking failed.
    pub fn handle_answer(&mut self, now: Time, index: usize, answer: Result<String, String>) {
        if self.finding.is_some() || index >= self.servers.len() {
            return;
        }
        match answer {
            Ok(id) => {
                self.last[index] = Some(if id == self.my_id {
                    "answered my own id".to_owned()
                } else {
                    format!("answered another member's id {id}")
                });
                self.probes[index] = Probe::Answered(id);
            }
            Err(error) => {
                self.last[index] = Some(error);
                self.probes[index] = Probe::Due(now + self.retry_interval);
            }
        }
        self.finding = self.conclude();
    }

    /// What the answers so far settle, if anything.
    fn conclude(&self) -> Option<Finding> {
        for (second, id) in self.probes.iter().enumerate() {
            let Some(id) = answered(id) else { continue };
            if let Some(first) = self.probes[..second]
                .iter()
                .position(|p| answered(p) == Some(id))
            {
                return Some(Finding::NamedTwice {
                    first,
                    second,
                    tried: self.tried(),
                });
            }
        }
        let mine = self
            .probes
            .iter()
            .position(|p| answered(p) == Some(self.my_id.as_str()));
        if let Some(index) = mine {
            // Found, once no answer still out could show that another entry names it too.
            let out = self.probes.iter().any(|p| matches!(p, Probe::Asking));
            return (!out).then_some(Finding::Found { index });
        }
        // Every entry is another live member: waiting cannot change that.
        let all_others = self.probes.iter().all(|p| answered(p).is_some());
        all_others.then(|| Finding::NotFound {
            tried: self.tried(),
        })
    }

    /// Ends the search if the deadline has passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.finding.is_none() && now >= self.deadline {
            self.finding = Some(Finding::NotFound {
                tried: self.tried(),
            });
        }
    }

    /// When to call back: the next probe due, or the deadline.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.finding.is_some() {
            return None;
        }
        let next_probe = self.probes.iter().filter_map(|p| match p {
            Probe::Due(at) => Some(*at),
            _ => None,
        });
        next_probe.chain([self.deadline]).min()
    }

    /// What the search found, once it ended.
    pub fn finding(&self) -> Option<&Finding> {
        self.finding.as_ref()
    }

    /// Each entry with what it last answered.
    fn tried(&self) -> Vec<(String, String)> {
        self.servers
            .iter()
            .zip(&self.last)
            .map(|(name, last)| {
                let last = last.clone().unwrap_or_else(|| "no answer yet".to_owned());
                (name.clone(), last)
            })
            .collect()
    }
}

impl Finding {
    /// The one-line error for a member that did not find itself.
    pub fn describe(&self, timeout: Duration) -> String {
        let list = |tried: &[(String, String)]| {
            let tried: Vec<String> = tried
                .iter()
                .map(|(name, last)| format!("{name} ({last})"))
                .collect();
            tried.join(", ")
        };
        match self {
            Finding::Found { index } => format!("found myself at entry {index}"),
            Finding::NotFound { tried } => format!(
                "could not find myself among [{}] within {} s",
                list(tried),
                timeout.as_secs_f64()
            ),
            Finding::NamedTwice {
                first,
                second,
                tried,
            } => format!(
                "servers names one member twice: entries {first} and {second} answered the same \
                 id; each entry must name a different member: [{}]",
                list(tried)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: Duration = Duration::from_secs(1);
    const TIMEOUT: Duration = Duration::from_secs(60);

    fn secs(s: u64) -> Time {
        Duration::from_secs(s)
    }

    fn servers() -> Vec<String> {
        ["127.0.0.1:7001", "localhost:7002", "127.0.0.2:7003"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn finds_itself_behind_an_alias() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        assert_eq!(d.poll_probes(secs(0)), vec![0, 1, 2]);
        d.handle_answer(secs(0), 0, Ok("other".into()));
        d.handle_answer(secs(0), 2, Err("connection refused".into()));
        assert_eq!(d.finding(), None);
        d.handle_answer(secs(0), 1, Ok("me".into()));
        assert_eq!(d.finding(), Some(&Finding::Found { index: 1 }));
        assert_eq!(d.poll_probes(secs(5)), Vec::<usize>::new());
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn waits_for_the_probes_out_before_it_settles() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        assert_eq!(d.poll_probes(secs(0)), vec![0, 1, 2]);
        d.handle_answer(secs(0), 0, Ok("me".into()));
        assert_eq!(d.finding(), None, "entries 1 and 2 may name me too");
        d.handle_answer(secs(0), 1, Err("connection refused".into()));
        assert_eq!(d.finding(), None);
        d.handle_answer(secs(0), 2, Ok("other".into()));
        assert_eq!(d.finding(), Some(&Finding::Found { index: 0 }));
    }

    #[test]
    fn refuses_a_list_that_names_this_member_twice() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        d.poll_probes(secs(0));
        d.handle_answer(secs(0), 2, Ok("me".into()));
        d.handle_answer(secs(0), 0, Err("connection refused".into()));
        d.handle_answer(secs(0), 1, Ok("me".into()));
        let finding = d.finding().expect("settled");
        assert!(matches!(
            finding,
            Finding::NamedTwice {
                first: 1,
                second: 2,
                ..
            }
        ));
        let message = finding.describe(TIMEOUT);
        assert!(message.starts_with("servers names one member twice: entries 1 and 2"));
        assert!(
            message.contains("localhost:7002 (answered my own id)"),
            "{message}"
        );
        assert!(
            message.contains("127.0.0.1:7001 (connection refused)"),
            "{message}"
        );
    }

    #[test]
    fn refuses_a_list_that_names_another_member_twice() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        d.poll_probes(secs(0));
        d.handle_answer(secs(0), 2, Ok("me".into()));
        d.handle_answer(secs(0), 0, Ok("other".into()));
        assert_eq!(d.finding(), None);
        d.handle_answer(secs(0), 1, Ok("other".into()));
        assert!(matches!(
            d.finding(),
            Some(Finding::NamedTwice {
                first: 0,
                second: 1,
                ..
            })
        ));
    }

    #[test]
    fn retries_unreachable_entries_once_an_interval_in_any_start_order() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        for index in d.poll_probes(secs(0)) {
            d.handle_answer(secs(0), index, Err("connection refused".into()));
        }
        assert_eq!(d.poll_timeout(), Some(secs(1)));
        assert!(d.poll_probes(Duration::from_millis(999)).is_empty());
        // Others come up first; this member's own listener comes up last.
        assert_eq!(d.poll_probes(secs(1)), vec![0, 1, 2]);
        d.handle_answer(secs(1), 0, Ok("a".into()));
        d.handle_answer(secs(1), 1, Err("connection refused".into()));
        d.handle_answer(secs(1), 2, Ok("b".into()));
        assert_eq!(
            d.poll_probes(secs(2)),
            vec![1],
            "answered entries are not asked again"
        );
        d.handle_answer(secs(2), 1, Ok("me".into()));
        assert_eq!(d.finding(), Some(&Finding::Found { index: 1 }));
    }

    #[test]
    fn gives_up_at_the_deadline_listing_what_it_tried() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        let mut now = secs(0);
        while d.finding().is_none() {
            for index in d.poll_probes(now) {
                d.handle_answer(now, index, Err("connection refused".into()));
            }
            now = d.poll_timeout().unwrap();
            d.handle_timeout(now);
        }
        assert_eq!(now, secs(60));
        let message = d.finding().unwrap().describe(TIMEOUT);
        assert!(message.starts_with("could not find myself among [127.0.0.1:7001 (connection"));
        assert!(message.ends_with("within 60 s"), "{message}");
    }

    #[test]
    fn gives_up_at_once_when_every_entry_is_someone_else() {
        let mut d = Discovery::new("me".into(), servers(), secs(0), RETRY, TIMEOUT);
        for index in d.poll_probes(secs(0)) {
            d.handle_answer(secs(0), index, Ok(format!("id{index}")));
        }
        let Some(Finding::NotFound { tried }) = d.finding() else {
            panic!("expected NotFound, got {:?}", d.finding());
        };
        assert!(tried[2].1.contains("id2"));
    }
}

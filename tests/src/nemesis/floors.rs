//! The floors: what a run must have checked before a verdict without violations may be called
//! clean. A history with no violation proves little if the nemesis injected nothing, if almost
//! every answer was lost (an unknown outcome is compatible with anything), or if some key was
//! never judged; such a run is `inconclusive` instead.
//!
//! A run is clean only if it reached every floor:
//!
//! - faults injected: one per [`SECONDS_PER_FAULT`] seconds of run, and at least one (so a
//!   0-second run is never clean);
//! - operations answered definitely (`ok`, a `cas` mismatch, or a `400`): [`DEFINITE_PER_SECOND`]
//!   per second of run, and at least [`MIN_DEFINITE`];
//! - the share of the operations whose outcome is known: [`MIN_KNOWN_PERCENT`] %;
//! - keys checked: every key the history touched, and at least one;
//! - serializable gets answered: one per [`SECONDS_PER_SERIALIZABLE`] seconds, at least one;
//! - exactly-once appends acknowledged after a retry: at least [`MIN_RETRIED_ACKED`] when the
//!   run killed members (then the exactly-once check judged answers that crossed a failure);
//!   none needed otherwise.
//!
//! The floors sit well below what a 30-second run on two busy cores reaches and well above what
//! a run with no working client, or no time, does. Twelve 30 s runs of both servers, with 3 and
//! 5 members, at a load average of 4 to 8 on 2 cores, reached 16 to 23 faults (floor 6), 891 to
//! 1810 definite answers (floor 300), 79 to 89 % known outcomes (floor 70 %) and 23 to 101
//! retried appends acknowledged (floor 5). A 0 s run injects no fault and answers a handful;
//! clients pointed at a closed port answer nothing and have no outcome known.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use paxos_core::{Answer, Op};

use super::faults::KILLS;
use super::history::{Outcome, Record};

/// One fault per this many seconds of run.
pub const SECONDS_PER_FAULT: u64 = 5;
/// Definite answers per second of run.
pub const DEFINITE_PER_SECOND: u64 = 10;
/// Definite answers whatever the run's length.
pub const MIN_DEFINITE: u64 = 100;
/// The least share of operations with a known outcome, in percent.
pub const MIN_KNOWN_PERCENT: u64 = 70;
/// Exactly-once appends acknowledged after one or more retries, in a run that killed members.
pub const MIN_RETRIED_ACKED: u64 = 5;
/// One serializable get answered per this many seconds of run.
pub const SECONDS_PER_SERIALIZABLE: u64 = 5;

/// What a run did, as the floors and the summary count it. A retried request is one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// The run's length as asked (the time the nemesis had).
    pub run: Duration,
    pub faults: u64,
    /// Faults that killed members (a whole-cluster restart is one).
    pub kills: u64,
    /// The clients' operations, final reads left out.
    pub operations: u64,
    /// Operations answered `ok`, mismatch or `400`: their outcome is known.
    pub definite: u64,
    /// Appends sent with `client_id` and `seq`.
    pub exactly_once: u64,
    /// Every retry of a request, and how many requests were retried, how many of those were
    /// acknowledged in the end, and how many stayed unknown.
    pub retries: u64,
    pub retried: u64,
    pub retried_acked: u64,
    pub retried_unknown: u64,
    /// Watches answered with a change, whose answers the watch check could judge.
    pub watch_changes: u64,
    /// Serializable gets answered, each of which the serializable check judged.
    pub serializable_answered: u64,
}

impl Figures {
    /// The figures of a run of length `run` whose clients recorded `workload` while the faults
    /// counted in `faults` (by kind) were injected.
    pub fn of(run: Duration, workload: &[Record], faults: &BTreeMap<String, u64>) -> Figures {
        let mut figures = Figures {
            run,
            faults: faults.values().sum(),
            kills: KILLS.iter().filter_map(|kind| faults.get(*kind)).sum(),
            operations: workload.len() as u64,
            ..Figures::default()
        };
        for record in workload {
            let definite = matches!(record.outcome, Outcome::Answered(_));
            figures.definite += u64::from(definite);
            if matches!(record.command.op, Op::Append { .. }) && record.command.seq.is_some() {
                figures.exactly_once += 1;
            }
            if record.earlier.is_empty() {
                continue;
            }
            figures.retries += record.earlier.len() as u64;
            figures.retried += 1;
            let acked = matches!(record.outcome, Outcome::Answered(Answer::Done { .. }));
            figures.retried_acked += u64::from(acked);
            figures.retried_unknown += u64::from(!definite);
        }
        figures
    }
}

/// One floor and what the run reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Floor {
    pub name: &'static str,
    pub reached: u64,
    pub needed: u64,
    /// `%` for a share, empty for a count.
    pub unit: &'static str,
    /// How `needed` follows from the run, for the line that says a floor was not met.
    pub basis: String,
}

impl Floor {
    pub fn met(&self) -> bool {
        self.reached >= self.needed
    }

    /// The sentence for a floor not met: which, and by how much.
    pub fn shortfall(&self) -> String {
        let unit = self.unit;
        format!(
            "{}: {}{unit}, short of the floor of {}{unit} ({}) by {}{unit}",
            self.name,
            self.reached,
            self.needed,
            self.basis,
            self.needed.saturating_sub(self.reached)
        )
    }
}

/// `faults 18 (floor 6)`.
impl fmt::Display for Floor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit;
        let (name, reached, needed) = (self.name, self.reached, self.needed);
        write!(f, "{name} {reached}{unit} (floor {needed}{unit})")
    }
}

/// Every floor for a run with `figures` whose history touched `keys` keys, `keys_checked` of
/// them checked to the end.
pub fn floors(figures: &Figures, keys: usize, keys_checked: usize) -> Vec<Floor> {
    let seconds = figures.run.as_secs();
    let known_percent = match figures.operations {
        0 => 0,
        operations => figures.definite * 100 / operations,
    };
    vec![
        Floor {
            name: "faults injected",
            reached: figures.faults,
            needed: (seconds / SECONDS_PER_FAULT).max(1),
            unit: "",
            basis: format!("one per {SECONDS_PER_FAULT} s of a {seconds} s run, at least one"),
        },
        Floor {
            name: "operations answered definitely",
            reached: figures.definite,
            needed: (seconds * DEFINITE_PER_SECOND).max(MIN_DEFINITE),
            unit: "",
            basis: format!(
                "{DEFINITE_PER_SECOND} per second of a {seconds} s run, at least {MIN_DEFINITE}"
            ),
        },
        Floor {
            name: "operations with a known outcome",
            reached: known_percent,
            needed: MIN_KNOWN_PERCENT,
            unit: "%",
            basis: format!("{} of {} operations", figures.definite, figures.operations),
        },
        Floor {
            name: "keys checked",
            reached: keys_checked as u64,
            needed: keys.max(1) as u64,
            unit: "",
            basis: format!("every key of the history, {keys}, and at least one"),
        },
        Floor {
            name: "retried exactly-once appends acknowledged",
            reached: figures.retried_acked,
            needed: match figures.kills {
                0 => 0,
                _ => MIN_RETRIED_ACKED,
            },
            unit: "",
            basis: format!(
                "{} faults killed members; {} retries of {} requests",
                figures.kills, figures.retries, figures.retried
            ),
        },
        Floor {
            name: "watches answered with a change",
            reached: figures.watch_changes,
            needed: seconds.max(1),
            unit: "",
            basis: format!("one per second of a {seconds} s run, at least one"),
        },
        Floor {
            name: "serializable gets answered",
            reached: figures.serializable_answered,
            needed: (seconds / SECONDS_PER_SERIALIZABLE).max(1),
            unit: "",
            basis: format!(
                "one per {SECONDS_PER_SERIALIZABLE} s of a {seconds} s run, at least one"
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use paxos_core::{Command, Value};

    use super::*;
    use crate::http::NoAnswer;
    use crate::nemesis::history::Unknown;

    /// A 30 s run's figures comfortably above every floor.
    fn healthy() -> Figures {
        Figures {
            run: Duration::from_secs(30),
            faults: 18,
            kills: 7,
            operations: 1400,
            definite: 1200,
            exactly_once: 300,
            retries: 40,
            retried: 30,
            retried_acked: 25,
            retried_unknown: 5,
            watch_changes: 90,
            serializable_answered: 40,
        }
    }

    fn unmet(figures: &Figures, keys: usize, checked: usize) -> Vec<String> {
        floors(figures, keys, checked)
            .iter()
            .filter(|floor| !floor.met())
            .map(Floor::shortfall)
            .collect()
    }

    #[test]
    fn a_healthy_run_meets_every_floor() {
        assert_eq!(unmet(&healthy(), 10, 10), Vec::<String>::new());
    }

    #[test]
    fn a_run_of_no_time_is_never_clean() {
        // What `nemesis threaded 0` records: a few answered operations, no fault.
        let figures = Figures {
            run: Duration::ZERO,
            operations: 10,
            definite: 10,
            ..Figures::default()
        };
        let unmet = unmet(&figures, 5, 5);
        assert_eq!(
            unmet,
            [
                "faults injected: 0, short of the floor of 1 (one per 5 s of a 0 s run, at \
                 least one) by 1",
                "operations answered definitely: 10, short of the floor of 100 (10 per second \
                 of a 0 s run, at least 100) by 90",
                "watches answered with a change: 0, short of the floor of 1 (one per second of \
                 a 0 s run, at least one) by 1",
                "serializable gets answered: 0, short of the floor of 1 (one per 5 s of a 0 s \
                 run, at least one) by 1",
            ]
        );
    }

    #[test]
    fn the_floors_scale_with_the_run() {
        let mut figures = healthy();
        figures.run = Duration::from_secs(600);
        let unmet = unmet(&figures, 10, 10);
        assert_eq!(unmet.len(), 4, "{unmet:?}");
        assert!(unmet[0].starts_with("faults injected: 18, short of the floor of 120"));
        assert!(
            unmet[1]
                .starts_with("operations answered definitely: 1200, short of the floor of 6000")
        );
        assert!(
            unmet[2].starts_with("watches answered with a change: 90, short of the floor of 600")
        );
        assert!(unmet[3].starts_with("serializable gets answered: 40, short of the floor of 120"));
    }

    #[test]
    fn a_run_of_lost_answers_is_inconclusive() {
        let mut figures = healthy();
        figures.definite = 700;
        let unmet = unmet(&figures, 10, 10);
        assert_eq!(
            unmet,
            [
                "operations with a known outcome: 50%, short of the floor of 70% (700 of 1400 \
              operations) by 20%"
            ]
        );
        // No operation at all is no share at all.
        figures.operations = 0;
        figures.definite = 0;
        let floors = floors(&figures, 0, 0);
        assert!(floors.iter().filter(|f| !f.met()).count() >= 3);
    }

    #[test]
    fn every_key_must_be_checked() {
        assert_eq!(
            unmet(&healthy(), 10, 9),
            [
                "keys checked: 9, short of the floor of 10 (every key of the history, 10, and at \
              least one) by 1"
            ]
        );
        assert_eq!(unmet(&healthy(), 0, 0).len(), 1);
    }

    #[test]
    fn retries_are_needed_only_when_members_were_killed() {
        let mut figures = healthy();
        figures.retried_acked = 4;
        assert_eq!(
            unmet(&figures, 10, 10),
            [
                "retried exactly-once appends acknowledged: 4, short of the floor of 5 (7 faults \
              killed members; 40 retries of 30 requests) by 1"
            ]
        );
        figures.retried_acked = 0;
        figures.kills = 0;
        assert_eq!(unmet(&figures, 10, 10), Vec::<String>::new());
    }

    #[test]
    fn figures_count_a_retried_request_once() {
        let append = |seq: Option<u64>| Command {
            op: Op::Append {
                key: "k".into(),
                value: "v".into(),
            },
            client_id: seq.map(|_| "c1".to_owned()),
            seq,
            consistency: Default::default(),
        };
        let record = |command: Command, outcome: Outcome, earlier: Vec<(usize, Unknown)>| Record {
            client: 1,
            member: 0,
            command,
            invoke: Duration::ZERO,
            complete: Duration::from_millis(5),
            outcome,
            earlier,
        };
        let done = Outcome::Answered(Answer::done(Some(Value::List(vec!["v".into()])), 1));
        let lost = Unknown::NoAnswer(NoAnswer::Timeout);
        let workload = [
            record(append(None), done.clone(), Vec::new()),
            record(append(None), Outcome::Unknown(lost), Vec::new()),
            record(
                append(Some(1)),
                done,
                vec![(1, lost), (2, Unknown::Unavailable)],
            ),
            record(append(Some(2)), Outcome::Unknown(lost), vec![(0, lost)]),
        ];
        let faults = BTreeMap::from([("kill".to_owned(), 2), ("pause".to_owned(), 3)]);
        let figures = Figures::of(Duration::from_secs(30), &workload, &faults);
        assert_eq!(
            figures,
            Figures {
                run: Duration::from_secs(30),
                faults: 5,
                kills: 2,
                operations: 4,
                definite: 2,
                exactly_once: 2,
                retries: 3,
                retried: 2,
                retried_acked: 1,
                retried_unknown: 1,
                watch_changes: 0,
                serializable_answered: 0,
            }
        );
    }
}

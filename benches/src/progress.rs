//! A one-line progress bar per scenario on stderr, so a 15-minute run shows where it is.

use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Debug)]
pub struct Progress {
    name: String,
    total: usize,
    done: usize,
    started: Instant,
}

impl Progress {
    pub fn new(name: &str, total: usize) -> Progress {
        let progress = Progress {
            name: name.to_owned(),
            total: total.max(1),
            done: 0,
            started: Instant::now(),
        };
        progress.draw("");
        progress
    }

    /// Marks one step done, saying what it was.
    pub fn step(&mut self, what: &str) {
        self.done = (self.done + 1).min(self.total);
        self.draw(what);
    }

    /// Redraws with a note, without counting a step.
    pub fn note(&self, what: &str) {
        self.draw(what);
    }

    pub fn finish(self) {
        let clear = if std::io::stderr().is_terminal() {
            "\r\x1b[2K"
        } else {
            ""
        };
        eprintln!(
            "{clear}{:<22} done in {:.0} s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn draw(&self, what: &str) {
        // A log file (CI) gets only the closing line of each scenario, not every redraw.
        if !std::io::stderr().is_terminal() {
            return;
        }
        const WIDTH: usize = 24;
        let filled = WIDTH * self.done / self.total;
        eprint!(
            "\r\x1b[2K{:<22} [{}{}] {}/{} {:.0} s {}",
            self.name,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64(),
            what
        );
        let _ = std::io::stderr().flush();
    }
}

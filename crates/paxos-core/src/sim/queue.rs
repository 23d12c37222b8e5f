//! A queue of things due at simulated times, popped earliest first.
//!
//! Entries due at the same time come out in the order they were pushed, so a run never depends on
//! how the heap happens to break ties, and a seed replays exactly.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::Time;

#[derive(Debug)]
pub struct Queue<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    pushed: u64,
}

#[derive(Debug)]
struct Entry<T> {
    at: Time,
    order: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            pushed: 0,
        }
    }
}

impl<T> Queue<T> {
    pub fn push(&mut self, at: Time, item: T) {
        self.pushed += 1;
        let order = self.pushed;
        self.heap.push(Reverse(Entry { at, order, item }));
    }

    /// When the earliest entry is due.
    pub fn next_at(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse(entry)| entry.at)
    }

    pub fn pop(&mut self) -> Option<(Time, T)> {
        self.heap.pop().map(|Reverse(entry)| (entry.at, entry.item))
    }
}

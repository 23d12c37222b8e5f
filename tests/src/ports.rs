//! Free loopback ports.
//!
//! A port is found by binding `ip:0` and reading what the kernel chose, then released for the
//! member to bind. Tests of one process run in parallel threads, so every port handed out is
//! remembered and never handed out again by this process.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that is free on every one of `ips` right now and was not handed out before.
pub fn free_port_on(ips: &[Ipv4Addr]) -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let first = TcpListener::bind((ips[0], 0)).expect("bind a loopback port");
        let port = first.local_addr().expect("local address").port();
        let free_elsewhere = ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok());
        drop(first);
        if free_elsewhere && taken.insert(port) {
            return port;
        }
    }
    panic!("found no free port on {ips:?}");
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on(&[Ipv4Addr::LOCALHOST])
}

//! A loopback port that refuses connections until opened, then forwards them to a target.
//!
//! A member whose config entry is a closed [`Gate`] cannot find itself (its probes of that entry
//! are refused), so a scenario can hold it in discovery for as long as it needs, then let it
//! through by opening the gate. The threads it starts end when it is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::ports::free_port;

/// See the module docs.
#[derive(Debug)]
pub struct Gate {
    port: u16,
    target: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Gate {
    /// A closed gate on a free port of 127.0.0.1, for `target`.
    pub fn closed(target: SocketAddr) -> Gate {
        Gate {
            port: free_port(),
            target,
            stop: Arc::new(AtomicBool::new(false)),
            acceptor: None,
        }
    }

    /// `127.0.0.1:<port>`, the address to put in a config.
    pub fn entry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts accepting and forwarding.
    pub fn open(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the gate's port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let (target, stop) = (self.target, Arc::clone(&self.stop));
        self.acceptor = Some(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => forward(client, target),
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Copies bytes both ways between `client` and a new connection to `target`, on two threads
/// that end when either side closes.
fn forward(client: TcpStream, target: SocketAddr) {
    let Ok(server) = TcpStream::connect(target) else {
        return;
    };
    client.set_nonblocking(false).expect("a blocking socket");
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        thread::spawn(move || {
            let mut buf = [0; 16 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    pipe(
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    pipe(server, client);
}

//! The fault proxy: one TCP forwarder per directed link between members, which a partition cuts.
//!
//! Member `i`'s config names, at every index `j` but its own, the proxy of the link `i -> j`,
//! which forwards to member `j`'s real address. So every byte `i` sends `j` (requests, and `j`'s
//! answers on the same connections) crosses that link's proxy, and cutting the link stops `i`
//! from talking to `j` while `j` may still talk to `i` through its own link `j -> i`.
//!
//! Cutting a link drops its open connections, then either refuses new ones (the listener is
//! closed, so a connect fails at once) or blackholes them (accepted, never read nor answered, so
//! the sender waits for its timeout). Only loopback addresses are ever bound or dialled.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ports::free_port;

/// How a cut link treats a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nothing listens: the connect fails at once.
    Refuse,
    /// The connection is accepted and then ignored: the sender times out.
    Blackhole,
}

impl Cut {
    pub fn name(self) -> &'static str {
        match self {
            Cut::Refuse => "refuse",
            Cut::Blackhole => "blackhole",
        }
    }
}

/// How often an acceptor checks for a new connection or a change of its link's state. Accepting
/// without blocking is what lets it close and reopen its listener when the link is cut or healed.
const POLL: Duration = Duration::from_millis(5);

/// How long the proxy waits to reach the member behind a link.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The proxies of every directed link of a cluster; dropping this stops them all.
#[derive(Debug)]
pub struct Proxies {
    links: HashMap<(usize, usize), Link>,
    stop: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Link {
    addr: SocketAddr,
    state: Arc<Mutex<LinkState>>,
    acceptor: Option<JoinHandle<()>>,
}

/// What a link's acceptor and its connections share.
#[derive(Debug, Default)]
struct LinkState {
    cut: Option<Cut>,
    /// Both sockets of every forwarded connection, so that a cut can shut them down.
    open: HashMap<u64, (TcpStream, TcpStream)>,
    next_id: u64,
    /// Connections accepted while the link is blackholed, held open until it heals.
    held: Vec<TcpStream>,
}

impl Proxies {
    /// Starts a proxy for every directed link between the members listening on `members`.
    pub fn start(members: &[SocketAddr]) -> Proxies {
        let stop = Arc::new(AtomicBool::new(false));
        let mut links = HashMap::new();
        for from in 0..members.len() {
            for (to, &target) in members.iter().enumerate() {
                if from == to {
                    continue;
                }
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
                let listener = TcpListener::bind(addr)
                    .unwrap_or_else(|e| panic!("cannot bind the proxy of {from}->{to}: {e}"));
                listener
                    .set_nonblocking(true)
                    .expect("a non-blocking listener");
                let state = Arc::new(Mutex::new(LinkState::default()));
                let acceptor = {
                    let (state, stop) = (state.clone(), stop.clone());
                    std::thread::Builder::new()
                        .name(format!("proxy-{from}-{to}"))
                        .spawn(move || accept_loop(listener, addr, target, &state, &stop))
                        .expect("spawn a proxy thread")
                };
                links.insert(
                    (from, to),
                    Link {
                        addr,
                        state,
                        acceptor: Some(acceptor),
                    },
                );
            }
        }
        Proxies { links, stop }
    }

    /// Where member `from` reaches member `to`.
    pub fn addr(&self, from: usize, to: usize) -> SocketAddr {
        self.links[&(from, to)].addr
    }

    /// Cuts the link `from -> to`: its connections are dropped, new ones refused or blackholed.
    pub fn cut(&self, from: usize, to: usize, how: Cut) {
        let mut state = lock(&self.links[&(from, to)].state);
        state.cut = Some(how);
        for (_, (a, b)) in state.open.drain() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }

    /// Opens every link again and closes the connections held by blackholes.
    pub fn heal_all(&self) {
        for link in self.links.values() {
            let mut state = lock(&link.state);
            state.cut = None;
            state.held.clear();
        }
    }

    /// The links cut right now, sorted.
    pub fn cut_links(&self) -> Vec<(usize, usize)> {
        let mut cut: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(_, link)| lock(&link.state).cut.is_some())
            .map(|(&pair, _)| pair)
            .collect();
        cut.sort_unstable();
        cut
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for link in self.links.values_mut() {
            if let Some(acceptor) = link.acceptor.take() {
                let _ = acceptor.join();
            }
            let mut state = lock(&link.state);
            state.held.clear();
            for (_, (a, b)) in state.open.drain() {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
        }
    }
}

fn lock(state: &Mutex<LinkState>) -> MutexGuard<'_, LinkState> {
    // The state is a few collections changed in single steps; a panic elsewhere cannot leave it
    // half-changed in a way that matters to a proxy.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections for one link until `stop`, closing the listener while the link refuses
/// and binding it again when it opens.
fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    state: &Arc<Mutex<LinkState>>,
    stop: &AtomicBool,
) {
    let mut listener = Some(listener);
    while !stop.load(Ordering::Relaxed) {
        let cut = lock(state).cut;
        if cut == Some(Cut::Refuse) {
            listener = None;
            std::thread::sleep(POLL);
            continue;
        }
        if listener.is_none() {
            // The port was ours a moment ago; binding it again fails only in the rare case that
            // the kernel lent it to an outgoing connection meanwhile, so just try again later.
            listener = TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .ok();
        }
        let accepted = match &listener {
            Some(l) => l.accept(),
            None => Err(io::ErrorKind::WouldBlock.into()),
        };
        match accepted {
            Ok((stream, _)) => admit(stream, target, state),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Holds a new connection if the link is blackholed, or forwards it on a thread of its own.
fn admit(stream: TcpStream, target: SocketAddr, state: &Arc<Mutex<LinkState>>) {
    let _ = stream.set_nonblocking(false);
    {
        let mut guard = lock(state);
        match guard.cut {
            Some(Cut::Blackhole) => return guard.held.push(stream),
            Some(Cut::Refuse) => return,
            None => {}
        }
    }
    let state = state.clone();
    let _ = std::thread::Builder::new()
        .name("proxy-conn".to_owned())
        .spawn(move || forward(stream, target, &state));
}

/// Forwards one connection both ways until either side closes or the link is cut.
fn forward(client: TcpStream, target: SocketAddr, state: &Mutex<LinkState>) {
    let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        return;
    };
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (Ok(client_back), Ok(server_back)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let id = {
        let mut guard = lock(state);
        if guard.cut.is_some() {
            return;
        }
        let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        let id = guard.next_id;
        guard.next_id += 1;
        guard.open.insert(id, (a, b));
        id
    };
    let backward = std::thread::Builder::new()
        .name("proxy-back".to_owned())
        .spawn(move || pump(server_back, client_back));
    pump(client, server);
    if let Ok(backward) = backward {
        let _ = backward.join();
    }
    lock(state).open.remove(&id);
}

/// Copies `from` into `to` until either ends, then shuts both down so the other direction ends
/// too.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A member stand-in that answers every byte it reads with the same byte.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut back = stream.try_clone().unwrap();
                    let _ = io::copy(&mut &stream, &mut back);
                });
            }
        });
        addr
    }

    /// Whether a round trip through `addr` works within 300 ms, and how it failed otherwise.
    fn round_trip(addr: SocketAddr) -> Result<(), io::ErrorKind> {
        let mut stream = TcpStream::connect(addr).map_err(|e| e.kind())?;
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        stream.write_all(b"x").map_err(|e| e.kind())?;
        let mut byte = [0];
        match stream.read(&mut byte) {
            Ok(1) => Ok(()),
            Ok(_) => Err(io::ErrorKind::UnexpectedEof),
            Err(e) => Err(e.kind()),
        }
    }

    #[test]
    fn forwards_refuses_blackholes_and_heals() {
        let members = [echo_server(), echo_server()];
        let proxies = Proxies::start(&members);
        let link = proxies.addr(0, 1);
        assert_eq!(round_trip(link), Ok(()));

        // An open connection is dropped by the cut.
        let mut open = TcpStream::connect(link).unwrap();
        open.write_all(b"x").unwrap();
        let mut byte = [0];
        open.read_exact(&mut byte).unwrap();
        proxies.cut(0, 1, Cut::Refuse);
        assert!(matches!(open.read(&mut byte), Ok(0) | Err(_)));
        crate::wait_for("the cut link refuses", Duration::from_secs(5), || {
            round_trip(link) == Err(io::ErrorKind::ConnectionRefused)
        });
        assert_eq!(proxies.cut_links(), vec![(0, 1)]);
        // The other direction is another link.
        assert_eq!(round_trip(proxies.addr(1, 0)), Ok(()));

        proxies.heal_all();
        crate::wait_for("the healed link forwards", Duration::from_secs(5), || {
            round_trip(link).is_ok()
        });

        proxies.cut(0, 1, Cut::Blackhole);
        let blackholed = round_trip(link);
        assert!(
            matches!(
                blackholed,
                Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
            ),
            "{blackholed:?}"
        );
        proxies.heal_all();
        assert_eq!(round_trip(link), Ok(()));
    }
}

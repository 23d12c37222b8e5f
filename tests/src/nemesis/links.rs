//! What a partition cuts: the fault proxies' links on loopback, or real links of hosts in network
//! namespaces (`--netns`).
//!
//! - [`Links::Proxies`]: every member's peer traffic for every other member goes through a
//!   [`Proxies`] link; a partition cuts the links between the minority and the majority, both
//!   ways, refusing or blackholing new connections.
//! - [`Links::Hosts`]: every member runs on a host of a [`Network`], named in the config by its
//!   cluster-network name (`nodeI.cluster.test`), with no routes and no proxy. A partition takes
//!   each minority member's switch ports down: only its cluster-network link (the members cannot
//!   reach it, nor it them, while the clients still do over the front network, as with the
//!   proxies), or both (the host unplugged: clients time out on it too). A minority of two (five
//!   members) is then two hosts alone, not a pair that still talks, unlike with the proxies.

use super::proxy::{Cut, Proxies};
use crate::netns::{Lan, Network};

/// How a partition cuts a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// A proxy link that refuses new connections.
    Refuse,
    /// A proxy link that blackholes new connections.
    Blackhole,
    /// A host's cluster-network link down at the switch.
    ClusterLinkDown,
    /// Both of a host's links down at the switch.
    Unplugged,
}

impl How {
    /// The suffix of the partition's kind in the timeline.
    pub fn name(self) -> &'static str {
        match self {
            How::Refuse => "refuse",
            How::Blackhole => "blackhole",
            How::ClusterLinkDown => "cluster-link-down",
            How::Unplugged => "unplugged",
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub enum Links {
    Proxies(Proxies),
    Hosts(Network),
}

impl Links {
    /// The two ways this kind of link is cut, drawn half the time each.
    pub fn ways(&self) -> [How; 2] {
        match self {
            Links::Proxies(_) => [How::Refuse, How::Blackhole],
            Links::Hosts(_) => [How::ClusterLinkDown, How::Unplugged],
        }
    }

    /// Cuts `minority` off the other members of a cluster of `n`, as `how` says.
    pub fn cut_off(&self, minority: &[usize], n: usize, how: How) {
        match self {
            Links::Proxies(proxies) => {
                let cut = match how {
                    How::Blackhole => Cut::Blackhole,
                    _ => Cut::Refuse,
                };
                for &a in minority {
                    for b in (0..n).filter(|b| !minority.contains(b)) {
                        proxies.cut(a, b, cut);
                        proxies.cut(b, a, cut);
                    }
                }
            }
            Links::Hosts(network) => {
                for &a in minority {
                    match how {
                        How::Unplugged => network.unplug(a),
                        _ => network.set_port(a, Lan::A, false),
                    }
                }
            }
        }
    }

    /// Ends every cut.
    pub fn heal_all(&self) {
        match self {
            Links::Proxies(proxies) => proxies.heal_all(),
            Links::Hosts(network) => network.heal_all(),
        }
    }

    /// What is cut now, for the progress line; `None` when nothing is.
    pub fn describe_cut(&self) -> Option<String> {
        match self {
            Links::Proxies(proxies) => match proxies.cut_links().len() {
                0 => None,
                cut => Some(format!("{cut} links cut")),
            },
            Links::Hosts(network) => match network.ports_down() {
                down if down.is_empty() => None,
                down => Some(format!("ports {} down", down.join(" "))),
            },
        }
    }

    pub fn is_cut(&self) -> bool {
        self.describe_cut().is_some()
    }
}

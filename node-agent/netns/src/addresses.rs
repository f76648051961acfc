//! Attachment addresses from the node's subnet (the first host is the bridge's own), handed out round robin:
//! the next free host after the last one given, wrapping. A released address is therefore given again only
//! after every other free one was, so a router whose route table still names a stopped instance does not
//! reach a new one (perhaps another tenant's) that took its address a moment later. With a state file the
//! position survives a restart of the agent, which would otherwise start again from the lowest hosts that
//! the instances it just removed were using.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

#[derive(Debug)]
pub struct AddressPool {
    subnet: Ipv4Net,
    used: BTreeSet<Ipv4Addr>,
    /// The address given last; the next search starts after it.
    last: Option<Ipv4Addr>,
    /// Where `last` is kept between runs (one line: the address).
    state_file: Option<PathBuf>,
}

impl AddressPool {
    /// `None` when the subnet has no room for a bridge and one instance. Reads where the last run stopped from
    /// `state_file` when given (a missing or unreadable file starts from the lowest host).
    pub fn new(subnet: Ipv4Net, state_file: Option<PathBuf>) -> Option<Self> {
        let subnet = subnet.trunc();
        let last = state_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|text| text.trim().parse::<Ipv4Addr>().ok())
            .filter(|a| subnet.contains(a));
        (subnet.prefix_len() <= 30).then_some(AddressPool {
            subnet,
            used: BTreeSet::new(),
            last,
            state_file,
        })
    }

    /// The bridge's address, the instances' default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.hosts().next().expect("a /30 or larger has hosts")
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let gateway = self.gateway();
        let free = |a: &Ipv4Addr| *a != gateway && !self.used.contains(a);
        let after_last = |a: &Ipv4Addr| self.last.is_none_or(|last| *a > last);
        let address = self
            .subnet
            .hosts()
            .filter(after_last)
            .find(free)
            .or_else(|| self.subnet.hosts().find(free))?;
        self.used.insert(address);
        self.last = Some(address);
        if let Some(file) = &self.state_file {
            // Best effort: losing it only means starting from the lowest hosts after a restart.
            if let Err(e) = std::fs::write(file, format!("{address}\n")) {
                tracing::warn!(path = %file.display(), error = %e, "saving the address pool's position");
            }
        }
        Some(address)
    }

    pub fn release(&mut self, address: Ipv4Addr) {
        self.used.remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_after_the_gateway_so_a_released_address_waits() {
        let mut pool = AddressPool::new("10.203.7.0/29".parse().unwrap(), None).unwrap();
        assert_eq!(pool.gateway(), Ipv4Addr::new(10, 203, 7, 1));
        let host = |d| Ipv4Addr::new(10, 203, 7, d);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a, b), (host(2), host(3)));
        pool.release(a);
        // .2 is free again, but the hosts after the last one given come first.
        let rest: Vec<_> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(
            rest,
            vec![host(4), host(5), host(6), host(2)],
            "wraps to .2 only at the end"
        );
        pool.release(host(5));
        pool.release(host(3));
        assert_eq!(
            pool.allocate(),
            Some(host(3)),
            "after .2 (the last given), the next free one"
        );
        assert_eq!(pool.allocate(), Some(host(5)));
        assert_eq!(pool.allocate(), None, "full");
    }

    #[test]
    fn the_position_survives_a_restart_through_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("addresses");
        let subnet: Ipv4Net = "10.203.8.0/24".parse().unwrap();
        let mut pool = AddressPool::new(subnet, Some(file.clone())).unwrap();
        let given: Vec<_> = (0..3).map(|_| pool.allocate().unwrap()).collect();
        drop(pool);
        let mut again = AddressPool::new(subnet, Some(file.clone())).unwrap();
        assert_eq!(
            again.allocate(),
            Some(Ipv4Addr::new(10, 203, 8, 5)),
            "after {given:?}"
        );
        // A file naming an address outside the subnet, or garbage, starts from the lowest host.
        for junk in ["10.9.9.9\n", "not an address"] {
            std::fs::write(&file, junk).unwrap();
            let mut fresh = AddressPool::new(subnet, Some(file.clone())).unwrap();
            assert_eq!(fresh.allocate(), Some(Ipv4Addr::new(10, 203, 8, 2)), "{junk:?}");
        }
    }

    #[test]
    fn small_subnets() {
        let cases = [("10.0.0.0/30", 1), ("10.0.0.0/29", 5), ("10.0.0.5/29", 5)];
        for (subnet, capacity) in cases {
            let mut pool = AddressPool::new(subnet.parse().unwrap(), None).unwrap();
            let got = std::iter::from_fn(|| pool.allocate()).count();
            assert_eq!(got, capacity, "{subnet}");
        }
        assert!(AddressPool::new("10.0.0.0/31".parse().unwrap(), None).is_none());
    }
}

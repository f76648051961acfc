//! Attachment addresses: the lowest free host of the node's subnet. The first host is the bridge's own.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

#[derive(Debug)]
pub struct AddressPool {
    subnet: Ipv4Net,
    used: BTreeSet<Ipv4Addr>,
}

impl AddressPool {
    /// `None` when the subnet has no room for a bridge and one instance.
    pub fn new(subnet: Ipv4Net) -> Option<Self> {
        (subnet.prefix_len() <= 30).then(|| AddressPool {
            subnet: subnet.trunc(),
            used: BTreeSet::new(),
        })
    }

    /// The bridge's address, the instances' default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.hosts().next().expect("a /30 or larger has hosts")
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let gateway = self.gateway();
        let free = self
            .subnet
            .hosts()
            .find(|a| *a != gateway && !self.used.contains(a))?;
        self.used.insert(free);
        Some(free)
    }

    pub fn release(&mut self, address: Ipv4Addr) {
        self.used.remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_host_after_the_gateway() {
        let mut pool = AddressPool::new("10.203.7.0/24".parse().unwrap()).unwrap();
        assert_eq!(pool.gateway(), Ipv4Addr::new(10, 203, 7, 1));
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 203, 7, 2), Ipv4Addr::new(10, 203, 7, 3))
        );
        pool.release(a);
        assert_eq!(
            pool.allocate(),
            Some(a),
            "released addresses are reused, lowest first"
        );
    }

    #[test]
    fn small_subnets() {
        let cases = [("10.0.0.0/30", 1), ("10.0.0.0/29", 5), ("10.0.0.5/29", 5)];
        for (subnet, capacity) in cases {
            let mut pool = AddressPool::new(subnet.parse().unwrap()).unwrap();
            let got = std::iter::from_fn(|| pool.allocate()).count();
            assert_eq!(got, capacity, "{subnet}");
        }
        assert!(AddressPool::new("10.0.0.0/31".parse().unwrap()).is_none());
    }
}

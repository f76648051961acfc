//! The block of host user and group ids an account's containers run as.

use serde::{Deserialize, Serialize};

/// An account's id range: container uids and gids `0..SIZE` are host ids `host_base()..host_base() + SIZE`.
/// Allocated once per account as a slot number that is never reused; slots never overlap, and all lie above
/// the host's own users (2^20 and up) and below `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct IdRange(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("id range slot {0} is out of range (0 to {max})", max = IdRange::MAX_SLOT)]
pub struct IdRangeError(pub i64);

impl IdRange {
    /// Ids per account: a full 16-bit range, as on a normal Linux system.
    pub const SIZE: u32 = 1 << 16;
    /// The host id of slot 0's root.
    pub const FIRST_BASE: u32 = 1 << 20;
    /// The last slot whose range ends below `u32::MAX` (`u32::MAX` is the invalid uid).
    pub const MAX_SLOT: u32 = (u32::MAX - Self::FIRST_BASE) / Self::SIZE - 1;

    pub fn from_slot(slot: i64) -> Result<Self, IdRangeError> {
        match u32::try_from(slot) {
            Ok(s) if s <= Self::MAX_SLOT => Ok(Self(s)),
            _ => Err(IdRangeError(slot)),
        }
    }

    pub fn slot(&self) -> u32 {
        self.0
    }

    /// The host uid (and gid) of the account's container root.
    pub fn host_base(&self) -> u32 {
        Self::FIRST_BASE + self.0 * Self::SIZE
    }
}

impl TryFrom<u32> for IdRange {
    type Error = IdRangeError;
    fn try_from(slot: u32) -> Result<Self, Self::Error> {
        Self::from_slot(slot.into())
    }
}

impl From<IdRange> for u32 {
    fn from(range: IdRange) -> u32 {
        range.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_disjoint_ranges_within_u32() {
        let cases: [(i64, Option<u32>); 6] = [
            (0, Some(1 << 20)),
            (1, Some((1 << 20) + 65536)),
            (16, Some(1 << 21)),
            (IdRange::MAX_SLOT.into(), Some(u32::MAX - 2 * 65536 + 1)),
            (i64::from(IdRange::MAX_SLOT) + 1, None),
            (-1, None),
        ];
        for (slot, base) in cases {
            assert_eq!(
                IdRange::from_slot(slot).ok().map(|r| r.host_base()),
                base,
                "slot {slot}"
            );
        }
        let last = IdRange::from_slot(IdRange::MAX_SLOT.into()).unwrap();
        assert!(last.host_base().checked_add(IdRange::SIZE).is_some());
    }

    #[test]
    fn serializes_as_its_slot_and_checks_it() {
        let range = IdRange::from_slot(7).unwrap();
        assert_eq!(serde_json::to_string(&range).unwrap(), "7");
        assert_eq!(serde_json::from_str::<IdRange>("7").unwrap(), range);
        assert!(serde_json::from_str::<IdRange>("70000").is_err());
    }
}

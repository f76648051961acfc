//! Per-account quotas: apps, instances (the sum of formation quantities), total memory (quantity × memory per
//! instance) and builds at once. The check is pure ([`check`]): usage before and after a change against the
//! limits. A change that does not grow a quantity is always allowed, so an account over its quota (after an
//! operator lowered it) can still scale down.
//!
//! Limits are the platform's defaults (`berth server --default-quota-*`) unless the account has its own
//! (`store::QuotaOverrides`, set by an operator). Builds at once are counted in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::{QuotaOverrides, QuotaUsage, Store, StoreError};
use vocabulary::AccountId;

/// The limits of an account with no overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub apps: u64,
    pub instances: u64,
    pub memory_bytes: u64,
    pub builds: u64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self {
            apps: 20,
            instances: 50,
            memory_bytes: 16 << 30,
            builds: 2,
        }
    }
}

impl QuotaLimits {
    /// These limits with the account's overrides applied.
    pub fn with(self, overrides: QuotaOverrides) -> Self {
        Self {
            apps: overrides.apps.unwrap_or(self.apps),
            instances: overrides.instances.unwrap_or(self.instances),
            memory_bytes: overrides.memory_bytes.unwrap_or(self.memory_bytes),
            builds: overrides.builds.unwrap_or(self.builds),
        }
    }
}

/// One of the quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Apps,
    Instances,
    Memory,
    Builds,
}

impl Quota {
    fn describe(self, amount: u64) -> String {
        match self {
            Self::Apps => format!("{amount} apps"),
            Self::Instances => format!("{amount} instances"),
            Self::Memory => format!("{} MiB of memory", amount >> 20),
            Self::Builds => format!("{amount} builds at once"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apps => "apps",
            Self::Instances => "instances",
            Self::Memory => "memory",
            Self::Builds => "builds",
        }
    }
}

/// A change refused by a quota: which one, what is used now, what the change would make it, and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} quota exceeded: the account uses {}, this would make it {}, and its limit is {}; scale down or delete \
     something, or ask an operator to raise the quota",
    quota.as_str(), quota.describe(*used), quota.describe(*wanted), quota.describe(*limit)
)]
pub struct QuotaExceeded {
    pub quota: Quota,
    pub used: u64,
    pub wanted: u64,
    pub limit: u64,
}

/// Refuses a change from `before` to `after` that grows a usage beyond its limit.
pub fn check(limits: QuotaLimits, before: QuotaUsage, after: QuotaUsage) -> Result<(), QuotaExceeded> {
    let rows = [
        (Quota::Apps, before.apps, after.apps, limits.apps),
        (
            Quota::Instances,
            before.instances,
            after.instances,
            limits.instances,
        ),
        (
            Quota::Memory,
            before.memory_bytes,
            after.memory_bytes,
            limits.memory_bytes,
        ),
    ];
    for (quota, used, wanted, limit) in rows {
        if wanted > used && wanted > limit {
            return Err(QuotaExceeded {
                quota,
                used,
                wanted,
                limit,
            });
        }
    }
    Ok(())
}

/// Why a quota could not be checked or was exceeded.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Exceeded(#[from] QuotaExceeded),
    #[error("reading the account's quota")]
    Store(#[from] StoreError),
}

/// The platform's default limits and this process's running builds. Cheap to clone (shared counters).
#[derive(Clone, Default)]
pub struct Quotas {
    defaults: QuotaLimits,
    builds: Arc<Mutex<HashMap<AccountId, u64>>>,
}

/// Counts one running build of an account until dropped.
pub struct BuildSlot {
    builds: Arc<Mutex<HashMap<AccountId, u64>>>,
    account: AccountId,
}

impl Quotas {
    pub fn new(defaults: QuotaLimits) -> Self {
        Self {
            defaults,
            builds: Arc::default(),
        }
    }

    pub fn defaults(&self) -> QuotaLimits {
        self.defaults
    }

    /// The account's limits: the defaults with its overrides.
    pub async fn limits(&self, store: &Store, account: AccountId) -> Result<QuotaLimits, StoreError> {
        Ok(self.defaults.with(store.quota_overrides(account).await?))
    }

    /// Checks a change of the account's usage, given what it would be afterwards as a function of now.
    pub async fn check_change(
        &self,
        store: &Store,
        account: AccountId,
        change: impl FnOnce(QuotaUsage) -> QuotaUsage,
    ) -> Result<(), QuotaError> {
        let before = store.quota_usage(account).await?;
        let after = change(before);
        check(self.limits(store, account).await?, before, after)?;
        Ok(())
    }

    /// Builds the account runs now in this process.
    pub fn running_builds(&self, account: AccountId) -> u64 {
        self.lock().get(&account).copied().unwrap_or(0)
    }

    /// Takes a build slot for the account, or says which quota refuses it.
    pub async fn start_build(&self, store: &Store, account: AccountId) -> Result<BuildSlot, QuotaError> {
        let limit = self.limits(store, account).await?.builds;
        let mut builds = self.lock();
        let running = builds.entry(account).or_insert(0);
        if *running >= limit {
            return Err(QuotaExceeded {
                quota: Quota::Builds,
                used: *running,
                wanted: *running + 1,
                limit,
            }
            .into());
        }
        *running += 1;
        Ok(BuildSlot {
            builds: self.builds.clone(),
            account,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, u64>> {
        // Single increments and decrements: a poisoned map is still consistent.
        self.builds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for BuildSlot {
    fn drop(&mut self) {
        let mut builds = self.builds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = builds.get_mut(&self.account) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                builds.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(apps: u64, instances: u64, mib: u64) -> QuotaUsage {
        QuotaUsage {
            apps,
            instances,
            memory_bytes: mib << 20,
        }
    }

    #[test]
    fn checks_growth_against_limits() {
        let limits = QuotaLimits {
            apps: 2,
            instances: 4,
            memory_bytes: 1024 << 20,
            builds: 1,
        };
        // (before, after, refused quota)
        let cases: &[(QuotaUsage, QuotaUsage, Option<Quota>)] = &[
            (usage(0, 0, 0), usage(1, 0, 0), None),
            (usage(1, 0, 0), usage(2, 0, 0), None),
            (usage(2, 0, 0), usage(3, 0, 0), Some(Quota::Apps)),
            (usage(1, 2, 512), usage(1, 4, 1024), None),
            (usage(1, 4, 512), usage(1, 5, 640), Some(Quota::Instances)),
            (usage(1, 2, 512), usage(1, 3, 1536), Some(Quota::Memory)),
            // Over the limit already (an operator lowered it): shrinking or staying is allowed, growing not.
            (usage(5, 9, 4096), usage(5, 8, 3072), None),
            (usage(5, 9, 4096), usage(5, 9, 4096), None),
            (usage(5, 9, 4096), usage(6, 9, 4096), Some(Quota::Apps)),
            // More instances of smaller memory: instances is what refuses.
            (usage(1, 4, 1024), usage(1, 6, 768), Some(Quota::Instances)),
        ];
        for (before, after, refused) in cases {
            let got = check(limits, *before, *after).err().map(|e| e.quota);
            assert_eq!(got, *refused, "{before:?} -> {after:?}");
        }
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let limits = QuotaLimits::default().with(QuotaOverrides {
            apps: Some(1),
            builds: Some(0),
            ..QuotaOverrides::default()
        });
        assert_eq!(limits.apps, 1);
        assert_eq!(limits.builds, 0);
        assert_eq!(limits.instances, QuotaLimits::default().instances);
    }

    #[test]
    fn the_message_names_quota_use_limit_and_what_to_do() {
        let err = QuotaExceeded {
            quota: Quota::Memory,
            used: 512 << 20,
            wanted: 1536 << 20,
            limit: 1024 << 20,
        };
        assert_eq!(
            err.to_string(),
            "memory quota exceeded: the account uses 512 MiB of memory, this would make it 1536 MiB of memory, \
             and its limit is 1024 MiB of memory; scale down or delete something, or ask an operator to raise \
             the quota"
        );
    }

    #[tokio::test]
    async fn build_slots_count_per_account_and_free_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("berth.db")).await.unwrap();
        let (account, _) = store
            .create_account(&vocabulary::AccountName::new("dev").unwrap(), false)
            .await
            .unwrap();
        let quotas = Quotas::new(QuotaLimits {
            builds: 1,
            ..QuotaLimits::default()
        });
        let slot = quotas.start_build(&store, account.id).await.unwrap();
        assert_eq!(quotas.running_builds(account.id), 1);
        let refused = quotas.start_build(&store, account.id).await.err();
        assert!(
            matches!(&refused, Some(QuotaError::Exceeded(e)) if e.quota == Quota::Builds),
            "{refused:?}"
        );
        drop(slot);
        assert_eq!(quotas.running_builds(account.id), 0);
        let _again = quotas.start_build(&store, account.id).await.unwrap();
    }
}

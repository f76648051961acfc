//! Pushes in flight: the one-time secret each `receive-pack` hands to its hook, and which apps are deploying.
//!
//! Secrets are kept by their SHA-256 so that a lookup's timing says nothing about a secret's bytes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::RngCore;
use sha2::{Digest, Sha256};
use store::{Account, App};
use vocabulary::AppId;

/// Who is pushing to which app; what a hook secret stands for.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub account: Account,
    pub app: App,
}

#[derive(Default)]
pub(crate) struct PushRegistry {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tickets: HashMap<[u8; 32], Ticket>,
    deploying: HashSet<AppId>,
}

/// Removes its ticket when dropped (when `receive-pack` has exited), whether or not the hook used it.
pub(crate) struct TicketGuard {
    registry: Arc<PushRegistry>,
    key: [u8; 32],
}

/// Marks an app as deploying until dropped.
pub(crate) struct DeployGuard {
    registry: Arc<PushRegistry>,
    app: AppId,
}

fn key_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl PushRegistry {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under panics (single inserts and removes), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Issues a fresh secret for `ticket`. The secret is valid until the guard drops or the hook takes it.
    pub fn register(self: &Arc<Self>, ticket: Ticket) -> (String, TicketGuard) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        let key = key_of(&secret);
        self.lock().tickets.insert(key, ticket);
        (
            secret,
            TicketGuard {
                registry: self.clone(),
                key,
            },
        )
    }

    /// The ticket for `secret`, at most once.
    pub fn take(&self, secret: &str) -> Option<Ticket> {
        self.lock().tickets.remove(&key_of(secret))
    }

    pub fn is_deploying(&self, app: AppId) -> bool {
        self.lock().deploying.contains(&app)
    }

    /// Marks `app` as deploying, or `None` if another push to it is deploying now.
    pub fn begin_deploy(self: &Arc<Self>, app: AppId) -> Option<DeployGuard> {
        if self.lock().deploying.insert(app) {
            Some(DeployGuard {
                registry: self.clone(),
                app,
            })
        } else {
            None
        }
    }
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        self.registry.lock().tickets.remove(&self.key);
    }
}

impl Drop for DeployGuard {
    fn drop(&mut self) {
        self.registry.lock().deploying.remove(&self.app);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::{AccountId, AccountName, AppName};

    fn ticket() -> Ticket {
        let account = Account {
            id: AccountId::new(),
            name: AccountName::new("alice").unwrap(),
            is_admin: false,
            created_at: Default::default(),
        };
        let app = App {
            id: AppId::new(),
            name: AppName::new("web").unwrap(),
            owner: account.id,
            created_at: Default::default(),
        };
        Ticket { account, app }
    }

    #[test]
    fn a_secret_works_once() {
        let registry = Arc::new(PushRegistry::default());
        let (secret, _guard) = registry.register(ticket());
        assert!(registry.take("not-the-secret").is_none());
        assert!(registry.take(&secret).is_some());
        assert!(registry.take(&secret).is_none());
    }

    #[test]
    fn a_secret_dies_with_its_receive_pack() {
        let registry = Arc::new(PushRegistry::default());
        let (secret, guard) = registry.register(ticket());
        drop(guard);
        assert!(registry.take(&secret).is_none());
    }

    #[test]
    fn secrets_differ() {
        let registry = Arc::new(PushRegistry::default());
        let (a, _ga) = registry.register(ticket());
        let (b, _gb) = registry.register(ticket());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn one_deploy_per_app() {
        let registry = Arc::new(PushRegistry::default());
        let app = AppId::new();
        let guard = registry.begin_deploy(app).expect("first deploy starts");
        assert!(registry.is_deploying(app));
        assert!(registry.begin_deploy(app).is_none());
        assert!(
            registry.begin_deploy(AppId::new()).is_some(),
            "other apps are not blocked"
        );
        drop(guard);
        assert!(!registry.is_deploying(app));
        assert!(registry.begin_deploy(app).is_some());
    }
}

//! Accounts and their API tokens. A token is 32 random bytes shown once as `berth_<64 hex digits>`; only its
//! SHA-256 is stored, so a leaked database does not leak working tokens.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use sqlx::sqlite::SqliteRow;
use vocabulary::{AccountId, AccountName, IdRange};

use crate::rows::{self, now, time_text};
use crate::{Account, Store, StoreError};

/// Every token starts with this, so that scanners and people can tell what it is.
pub const TOKEN_PREFIX: &str = "berth_";

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn account_from_row(row: &SqliteRow) -> Result<Account, StoreError> {
    use sqlx::Row;
    Ok(Account {
        id: rows::parsed(row, "id")?,
        name: rows::parsed(row, "name")?,
        is_admin: row.try_get("is_admin")?,
        created_at: rows::time(row, "created_at")?,
    })
}

impl Store {
    /// Creates an account and a first API token for it. Returns the account and the token in clear text (the
    /// only time it exists outside the caller). Fails with `StoreError::Conflict` if the name is taken.
    pub async fn create_account(
        &self,
        name: &AccountName,
        is_admin: bool,
    ) -> Result<(Account, String), StoreError> {
        let account = Account {
            id: AccountId::new(),
            name: name.clone(),
            is_admin,
            created_at: now(),
        };
        let token = new_token();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO accounts (id, name, is_admin, created_at) VALUES (?, ?, ?, ?)")
            .bind(account.id.to_string())
            .bind(name.as_str())
            .bind(is_admin)
            .bind(time_text(account.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::conflict_on_unique(e, || format!("account {name}")))?;
        // The account's host id range: the next slot, never one given out before.
        let slot: i64 =
            sqlx::query_scalar("INSERT INTO account_id_ranges (account_id) VALUES (?) RETURNING slot")
                .bind(account.id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        IdRange::from_slot(slot).map_err(|e| StoreError::IdRangesExhausted(e.to_string()))?;
        sqlx::query("INSERT INTO api_tokens (token_sha256, account_id, created_at) VALUES (?, ?, ?)")
            .bind(token_hash(&token))
            .bind(account.id.to_string())
            .bind(time_text(account.created_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((account, token))
    }

    /// The account a clear-text token belongs to (looked up by its SHA-256), if any.
    pub async fn account_for_token(&self, token: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.is_admin, a.created_at FROM api_tokens t \
             JOIN accounts a ON a.id = t.account_id WHERE t.token_sha256 = ?",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// A new token that can only read the route stream (for a router), made by the admin `created_by`.
    /// Returned in clear text this once; only its SHA-256 is kept.
    pub async fn create_router_token(&self, created_by: AccountId) -> Result<String, StoreError> {
        let token = new_token();
        sqlx::query("INSERT INTO router_tokens (token_sha256, created_by, created_at) VALUES (?, ?, ?)")
            .bind(token_hash(&token))
            .bind(created_by.to_string())
            .bind(time_text(now()))
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    /// True when `token` is a router token whose maker still exists and is still an admin.
    pub async fn router_token_valid(&self, token: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM router_tokens t JOIN accounts a ON a.id = t.created_by              WHERE t.token_sha256 = ? AND a.is_admin = 1",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// The account by ID, if it exists.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT id, name, is_admin, created_at FROM accounts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// The account's host id range (see `vocabulary::IdRange`), if the account exists.
    pub async fn id_range(&self, account: AccountId) -> Result<Option<IdRange>, StoreError> {
        let slot: Option<i64> = sqlx::query_scalar("SELECT slot FROM account_id_ranges WHERE account_id = ?")
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await?;
        slot.map(range_of_slot).transpose()
    }

    /// Every account's host id range.
    pub async fn id_ranges(&self) -> Result<BTreeMap<AccountId, IdRange>, StoreError> {
        let rows = sqlx::query("SELECT account_id, slot FROM account_id_ranges")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                use sqlx::Row;
                Ok((
                    rows::parsed(row, "account_id")?,
                    range_of_slot(row.try_get("slot")?)?,
                ))
            })
            .collect()
    }

    /// True when at least one admin account exists (first start makes one).
    pub async fn has_admin(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE is_admin = 1 LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }
}

fn range_of_slot(slot: i64) -> Result<IdRange, StoreError> {
    IdRange::from_slot(slot).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed_to_hex() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        let hash = token_hash(&a);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&a[TOKEN_PREFIX.len()..]));
        // A known vector, so the stored form cannot silently change.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

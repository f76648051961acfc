//! Accounts' optional dashboard passwords, kept as Argon2id PHC strings. Hashing and checking are slow on
//! purpose (tens of milliseconds of CPU and 19 MiB), so they run on tokio's blocking threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use vocabulary::{AccountId, AccountName};

use crate::rows::{now, time_text};
use crate::{Account, Store, StoreError};

/// The shortest password accepted.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// The longest password accepted (hashing cost grows with it).
pub const PASSWORD_MAX_BYTES: usize = 1024;

fn hash(password: &str) -> Result<String, StoreError> {
    let bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&bytes).map_err(|e| StoreError::Corrupt(format!("a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt(format!("hashing a password: {e}")))
}

fn verify(password: &str, phc: &str) -> Result<bool, StoreError> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| StoreError::Corrupt(format!("a stored password hash: {e}")))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Corrupt(format!("password hashing task: {e}")))?
}

impl Store {
    /// Sets (or replaces) the account's dashboard password. The caller checks its length
    /// ([`PASSWORD_MIN_CHARS`], [`PASSWORD_MAX_BYTES`]).
    pub async fn set_password(&self, account: AccountId, password: &str) -> Result<(), StoreError> {
        let password = password.to_owned();
        let phc = blocking(move || hash(&password)).await?;
        sqlx::query(
            "INSERT INTO account_passwords (account_id, phc, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
        )
        .bind(account.to_string())
        .bind(phc)
        .bind(time_text(now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account named `name` when `password` is its password; `None` for an unknown account, one without
    /// a password, or a wrong password (the same answer, so a sign-in form cannot tell them apart).
    pub async fn account_for_password(
        &self,
        name: &AccountName,
        password: &str,
    ) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.is_admin, a.created_at, p.phc FROM accounts a \
             JOIN account_passwords p ON p.account_id = a.id WHERE a.name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let account = crate::accounts::account_from_row(&row)?;
        let phc: String = sqlx::Row::try_get(&row, "phc")?;
        let password = password.to_owned();
        let ok = blocking(move || verify(&password, &phc)).await?;
        Ok(ok.then_some(account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "no salt");
        assert!(!a.contains("correct"));
        assert!(verify("correct horse battery", &a).unwrap());
        assert!(!verify("correct horse batterY", &a).unwrap());
        assert!(verify("x", "not a phc").is_err());
    }
}

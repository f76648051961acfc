//! Who may do what to an app besides its owner (collaborators), token scopes, suspended accounts, and looking
//! accounts up by name. The rules that use these (which role may do what) live in the API; this module only
//! stores and finds.

use sqlx::any::AnyRow;
use sqlx::Row;
use vocabulary::{AccountId, AccountName, AppId, AppName};

use crate::accounts::{account_from_row, new_token, token_hash};
use crate::apps::app_from_row;
use crate::rows::{self, now, time_text};
use crate::{Account, App, Store, StoreError};

/// What a token may do: everything its account may, or only read (GET requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    Full,
    Read,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Read => "read",
        }
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TokenScope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "full" => Ok(Self::Full),
            "read" => Ok(Self::Read),
            other => Err(format!("unknown token scope {other:?} (expected full or read)")),
        }
    }
}

/// How many hex digits of a token's SHA-256 name it in listings (`berth tokens`) and revocations.
pub const TOKEN_ID_LEN: usize = 12;

/// A token's account and what the token may do, as the auth layers need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAccess {
    pub account: Account,
    pub scope: TokenScope,
    /// The account is suspended: its tokens are refused.
    pub suspended: bool,
}

/// A token as listed to its owner: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first [`TOKEN_ID_LEN`] hex digits of the token's SHA-256.
    pub id: String,
    pub scope: TokenScope,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the caller is to an app it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppRole {
    Owner,
    Collaborator,
}

impl AppRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Collaborator => "collaborator",
        }
    }
}

/// An account given access to an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collaborator {
    pub account: AccountName,
    pub added_by: String,
    pub added_at: chrono::DateTime<chrono::Utc>,
}

/// `last_used_at` is written at most this often per token, so that reads stay reads.
const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn token_info_from_row(row: &AnyRow) -> Result<TokenInfo, StoreError> {
    let hash: String = row.try_get("token_sha256")?;
    Ok(TokenInfo {
        id: hash.chars().take(TOKEN_ID_LEN).collect(),
        scope: rows::parsed(row, "scope")?,
        created_at: rows::time(row, "created_at")?,
        last_used_at: optional_time(row, "last_used_at")?,
    })
}

fn optional_time(row: &AnyRow, column: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| {
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| StoreError::Corrupt(format!("column {column} = {text:?}: {e}")))
    })
    .transpose()
}

fn role_from_row(row: &AnyRow) -> Result<AppRole, StoreError> {
    let owner: i64 = row.try_get("is_owner")?;
    Ok(if owner == 1 {
        AppRole::Owner
    } else {
        AppRole::Collaborator
    })
}

/// Apps the account `$1` owns or collaborates on, with `is_owner` 1 or 0.
const APPS_WITH_ROLE: &str = "SELECT a.id, a.name, a.account_id, a.created_at, \
     CAST(CASE WHEN a.account_id = $1 THEN 1 ELSE 0 END AS BIGINT) AS is_owner FROM apps a \
     WHERE (a.account_id = $1 OR EXISTS (SELECT 1 FROM app_collaborators c \
     WHERE c.app_id = a.id AND c.account_id = $1))";

impl Store {
    /// The token's account, scope and whether the account is suspended (looked up by the token's SHA-256).
    /// Notes when the token was used, at most once a minute.
    pub async fn token_access(&self, token: &str) -> Result<Option<TokenAccess>, StoreError> {
        let hash = token_hash(token);
        let row = sqlx::query(
            "SELECT a.id, a.name, a.is_admin, a.created_at, a.suspended, t.scope, t.last_used_at \
             FROM api_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.token_sha256 = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let suspended: i64 = row.try_get("suspended")?;
        let access = TokenAccess {
            account: account_from_row(&row)?,
            scope: rows::parsed(&row, "scope")?,
            suspended: suspended != 0,
        };
        let now = now();
        let stale = optional_time(&row, "last_used_at")?.is_none_or(|t| now - t >= LAST_USED_GRANULARITY);
        if stale {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_sha256 = $2")
                .bind(time_text(now))
                .bind(&hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(access))
    }

    /// A new token for `account`, returned in clear text this once (only its SHA-256 is kept).
    pub async fn create_token(
        &self,
        account: AccountId,
        scope: TokenScope,
    ) -> Result<(TokenInfo, String), StoreError> {
        let token = new_token();
        let hash = token_hash(&token);
        let created_at = now();
        sqlx::query(
            "INSERT INTO api_tokens (token_sha256, account_id, created_at, scope) VALUES ($1, $2, $3, $4)",
        )
        .bind(&hash)
        .bind(account.to_string())
        .bind(time_text(created_at))
        .bind(scope.as_str())
        .execute(&self.pool)
        .await?;
        let info = TokenInfo {
            id: hash.chars().take(TOKEN_ID_LEN).collect(),
            scope,
            created_at,
            last_used_at: None,
        };
        Ok((info, token))
    }

    /// The account's tokens, oldest first.
    pub async fn tokens_of(&self, account: AccountId) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_sha256, scope, created_at, last_used_at FROM api_tokens \
             WHERE account_id = $1 ORDER BY created_at, token_sha256",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_info_from_row).collect()
    }

    /// Removes the account's tokens whose id (hash) starts with `id_prefix` (lowercase hex, checked by the
    /// caller), only when exactly one matches. Returns how many matched (0, 1, or more: none removed).
    pub async fn revoke_token(&self, account: AccountId, id_prefix: &str) -> Result<usize, StoreError> {
        let pattern = format!("{id_prefix}%");
        let mut tx = self.pool.begin().await?;
        let matching: Vec<String> = sqlx::query_scalar(
            "SELECT token_sha256 FROM api_tokens WHERE account_id = $1 AND token_sha256 LIKE $2",
        )
        .bind(account.to_string())
        .bind(&pattern)
        .fetch_all(&mut *tx)
        .await?;
        if let [hash] = matching.as_slice() {
            sqlx::query("DELETE FROM api_tokens WHERE token_sha256 = $1")
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(matching.len())
    }

    /// The account by name, if it exists.
    pub async fn account_by_name(&self, name: &AccountName) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT id, name, is_admin, created_at FROM accounts WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Every account with whether it is suspended, by name.
    pub async fn accounts(&self) -> Result<Vec<(Account, bool)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, is_admin, created_at, suspended FROM accounts ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                let suspended: i64 = row.try_get("suspended")?;
                Ok((account_from_row(row)?, suspended != 0))
            })
            .collect()
    }

    /// False for an account that does not exist.
    pub async fn account_suspended(&self, account: AccountId) -> Result<bool, StoreError> {
        let suspended: Option<i64> = sqlx::query_scalar("SELECT suspended FROM accounts WHERE id = $1")
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(suspended.is_some_and(|s| s != 0))
    }

    pub async fn set_account_suspended(&self, account: AccountId, suspended: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET suspended = $1 WHERE id = $2")
            .bind(i64::from(suspended))
            .bind(account.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes an account with its tokens, quotas and collaborations. The caller checks first that it owns no
    /// app; an account that made releases or router tokens still referenced fails with `StoreError::InUse`.
    pub async fn delete_account(&self, account: AccountId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(account.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::InUse {
                    what: "the account made releases that still exist".to_owned(),
                },
                _ => StoreError::Database(e),
            })?;
        Ok(())
    }

    /// The app by name with the account's role in it, only if the account owns it or collaborates on it (so
    /// other tenants cannot tell it exists).
    pub async fn app_with_role(
        &self,
        account: AccountId,
        name: &AppName,
    ) -> Result<Option<(App, AppRole)>, StoreError> {
        let row = sqlx::query(&format!("{APPS_WITH_ROLE} AND a.name = $2"))
            .bind(account.to_string())
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((app_from_row(&row)?, role_from_row(&row)?)))
            .transpose()
    }

    /// The apps the account owns or collaborates on, by name.
    pub async fn apps_with_role(&self, account: AccountId) -> Result<Vec<(App, AppRole)>, StoreError> {
        let rows = sqlx::query(&format!("{APPS_WITH_ROLE} ORDER BY a.name"))
            .bind(account.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((app_from_row(row)?, role_from_row(row)?)))
            .collect()
    }

    /// The app's collaborators, in the order they were added.
    pub async fn collaborators(&self, app: AppId) -> Result<Vec<Collaborator>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.name, c.added_by, c.added_at FROM app_collaborators c \
             JOIN accounts a ON a.id = c.account_id WHERE c.app_id = $1 ORDER BY c.added_at, a.name",
        )
        .bind(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Collaborator {
                    account: rows::parsed(row, "name")?,
                    added_by: row.try_get("added_by")?,
                    added_at: rows::time(row, "added_at")?,
                })
            })
            .collect()
    }

    /// Fails with `StoreError::Conflict` when the account already collaborates on the app.
    pub async fn add_collaborator(
        &self,
        app: AppId,
        account: &Account,
        added_by: &AccountName,
    ) -> Result<Collaborator, StoreError> {
        let added_at = now();
        sqlx::query(
            "INSERT INTO app_collaborators (app_id, account_id, added_by, added_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(app.to_string())
        .bind(account.id.to_string())
        .bind(added_by.as_str())
        .bind(time_text(added_at))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, || format!("collaborator {}", account.name)))?;
        Ok(Collaborator {
            account: account.name.clone(),
            added_by: added_by.to_string(),
            added_at,
        })
    }

    /// True when the account was a collaborator and no longer is.
    pub async fn remove_collaborator(&self, app: AppId, account: AccountId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM app_collaborators WHERE app_id = $1 AND account_id = $2")
            .bind(app.to_string())
            .bind(account.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_refused() {
        for scope in [TokenScope::Full, TokenScope::Read] {
            assert_eq!(scope.as_str().parse::<TokenScope>(), Ok(scope));
        }
        assert!("write".parse::<TokenScope>().unwrap_err().contains("write"));
    }
}

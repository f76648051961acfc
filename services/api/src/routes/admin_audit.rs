//! `GET /v1/admin/audit?account=NAME&limit=N` (admin tokens only): recorded changes, newest first.

use api_contract::access::AuditEntryInfo;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::require_admin;
use crate::{ApiError, ApiState, Caller};

/// How many entries a query without `limit` returns.
const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    account: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/admin/audit`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Vec<AuditEntryInfo>>, ApiError> {
    require_admin(&caller, "read the audit log")?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > store::MAX_AUDIT_ENTRIES {
        return Err(ApiError::Invalid(format!(
            "limit must be from 1 to {}, not {limit}",
            store::MAX_AUDIT_ENTRIES
        )));
    }
    let entries = state.store.audit_log(query.account.as_deref(), limit).await?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(|e| AuditEntryInfo {
                at: e.at,
                account: e.account,
                token_scope: e.token_scope,
                action: e.action,
                target: e.target,
                status: e.status,
            })
            .collect(),
    ))
}

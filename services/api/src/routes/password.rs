//! `PUT /v1/account/password`: sets the caller's own dashboard password, so a person can sign in to the
//! dashboard with name and password instead of pasting the API token. The password is never logged.

use api_contract::PasswordSet;
use axum::extract::State;
use axum::http::StatusCode;
use store::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};

use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

/// Why a password is refused, if it is.
pub fn check(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ApiError::Invalid(format!(
            "a password must have at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::Invalid(format!(
            "a password must be at most {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    Ok(())
}

/// `PUT /v1/account/password` with `{"password": "..."}`: 204 once set.
pub async fn set(
    State(state): State<ApiState>,
    Caller(account): Caller,
    Json(body): Json<PasswordSet>,
) -> Result<StatusCode, ApiError> {
    check(&body.password)?;
    state.store.set_password(account.id, &body.password).await?;
    tracing::info!(account = %account.name, "dashboard password set");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn lengths() {
        let cases = [
            ("", false),
            ("elevenchars", false),
            ("twelve chars", true),
            ("ééééééééééé", false),
            ("éééééééééééé", true),
        ];
        for (password, ok) in cases {
            assert_eq!(check(password).is_ok(), ok, "{password:?}");
        }
        assert!(check(&"x".repeat(1024)).is_ok());
        assert!(check(&"x".repeat(1025)).is_err());
    }
}

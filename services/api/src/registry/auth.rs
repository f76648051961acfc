//! Who is pulling: the API token given the way registry clients send credentials. skopeo, docker and
//! containerd send `Authorization: Basic base64(user:password)` after a Basic challenge, so the token is the
//! password (any user name); `Authorization: Bearer TOKEN` works too. The token is never logged.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use vocabulary::AppName;

use super::RegistryError;
use crate::ApiState;

/// The account pulling, resolved from its token.
#[derive(Debug, Clone)]
pub struct Puller(pub store::Account);

/// The token in a Basic password or a Bearer header; `None` when there is neither.
fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(password) = git_receive::basic_password(headers) {
        return Some(password);
    }
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl FromRequestParts<ApiState> for Puller {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, RegistryError> {
        let token = token(&parts.headers).ok_or(RegistryError::MissingToken)?;
        let account = state
            .store
            .token_access(&token)
            .await?
            // A suspended account's tokens pull nothing; pulls are reads, so read-only tokens may.
            .filter(|access| !access.suspended)
            .ok_or(RegistryError::InvalidToken)?;
        Ok(Self(account.account))
    }
}

impl Puller {
    /// The app named in the path, if this account may pull it: its own apps and those it collaborates on, or
    /// any app for an admin (node agents pull with an admin's token). A name
    /// that is not valid, an app that does not exist and another account's app all get the same answer.
    pub async fn app(&self, state: &ApiState, name: &str) -> Result<store::App, RegistryError> {
        let unknown = || RegistryError::NameUnknown {
            name: name.to_owned(),
        };
        let name = AppName::new(name).map_err(|_| unknown())?;
        let app = if self.0.is_admin {
            state.store.app_by_name(&name).await?
        } else {
            state
                .store
                .app_with_role(self.0.id, &name)
                .await?
                .map(|(app, _)| app)
        };
        app.ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_forms() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            // base64("x:berth_abc"), base64("berth_abc") has no colon, base64("x:")
            (Some("Basic eDpiZXJ0aF9hYmM="), Some("berth_abc")),
            (Some("basic eDpiZXJ0aF9hYmM="), Some("berth_abc")),
            (Some("Basic YmVydGhfYWJj"), None),
            (Some("Basic eDo="), None),
            (Some("Basic !!!"), None),
            (Some("Bearer berth_abc"), Some("berth_abc")),
            (Some("bearer  berth_abc "), Some("berth_abc")),
            (Some("Bearer "), None),
            (Some("berth_abc"), None),
            (Some("Token berth_abc"), None),
            (None, None),
        ];
        for (header, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(h) = header {
                headers.insert(AUTHORIZATION, h.parse().unwrap());
            }
            assert_eq!(token(&headers).as_deref(), *want, "{header:?}");
        }
    }
}

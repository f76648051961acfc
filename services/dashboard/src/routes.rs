//! Signing in and out, and the page. The sign-in form takes an account's API token, or its name and
//! password (never logged, never stored: they only prove who is signing in), and answers with the session
//! cookie.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::assets;
use crate::origin::same_origin;
use crate::{DashboardConfig, DashboardError};

const SIGN_IN: &str = "/dashboard/sign-in";
const HOME: &str = "/dashboard";

/// Either an API token, or an account name and the password set with `berth accounts password`.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    password: String,
}

impl SignInForm {
    /// The account these credentials belong to, if any. A name that is not a valid account name is simply
    /// no account's.
    async fn account(&self, store: &store::Store) -> Result<Option<store::Account>, DashboardError> {
        let token = self.token.trim();
        if !token.is_empty() {
            return Ok(store.account_for_token(token).await?);
        }
        let Ok(name) = vocabulary::AccountName::new(self.account.trim()) else {
            return Ok(None);
        };
        if self.password.is_empty() {
            return Ok(None);
        }
        Ok(store.account_for_password(&name, &self.password).await?)
    }
}

#[derive(Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    signed_out: bool,
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request's origin check (see [`same_origin`]).
fn check_origin(headers: &HeaderMap) -> Result<(), DashboardError> {
    let ok = same_origin(
        header_text(headers, header::HOST),
        header_text(headers, header::ORIGIN),
        header_text(headers, header::REFERER),
    );
    if ok {
        Ok(())
    } else {
        Err(DashboardError::CrossOrigin)
    }
}

async fn current_session(
    config: &DashboardConfig,
    headers: &HeaderMap,
) -> Result<Option<(String, store::Session)>, DashboardError> {
    let Some(id) = api::session::session_cookie(headers) else {
        return Ok(None);
    };
    Ok(config.store.session(id).await?.map(|s| (id.to_owned(), s)))
}

/// The session cookie's attributes: never readable by scripts, never sent by other sites' requests.
fn cookie(config: &DashboardConfig, headers: &HeaderMap, value: &str, max_age_secs: u64) -> HeaderValue {
    let https = header_text(headers, header::HeaderName::from_static("x-forwarded-proto"))
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let secure = if config.secure_cookies || https {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}",
        api_contract::SESSION_COOKIE
    );
    HeaderValue::from_str(&text).expect("session ids are hex, so the cookie is a valid header")
}

/// An HTML page that must not be framed, cached, or run any script but the dashboard's own.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /dashboard`: the page for a signed-in browser, else a redirect to the sign-in form.
pub async fn page(
    State(config): State<DashboardConfig>,
    headers: HeaderMap,
) -> Result<Response, DashboardError> {
    Ok(match current_session(&config, &headers).await? {
        Some((_, session)) => html(
            StatusCode::OK,
            assets::app_page(&session.account.name, &session.csrf_token),
        ),
        None => Redirect::to(SIGN_IN).into_response(),
    })
}

/// `GET /dashboard/sign-in`
pub async fn sign_in_form(
    State(config): State<DashboardConfig>,
    Query(query): Query<SignInQuery>,
    headers: HeaderMap,
) -> Result<Response, DashboardError> {
    if current_session(&config, &headers).await?.is_some() {
        return Ok(Redirect::to(HOME).into_response());
    }
    let note = if query.signed_out {
        "You are signed out."
    } else {
        ""
    };
    Ok(html(StatusCode::OK, assets::sign_in_page("", note)))
}

/// `POST /dashboard/sign-in` with `token=...` or `account=...&password=...` (the sign-in page's form).
pub async fn sign_in(
    State(config): State<DashboardConfig>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, DashboardError> {
    check_origin(&headers)?;
    let Some(account) = form.account(&config.store).await? else {
        tracing::info!("dashboard sign-in refused: unknown credentials");
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            assets::sign_in_page("Those credentials do not belong to any account.", ""),
        ));
    };
    let lifetime = chrono::Duration::from_std(config.session_lifetime).unwrap_or(chrono::Duration::hours(12));
    // Sessions that ended by expiry rather than sign-out go now, so the table holds only live ones (give
    // or take a day's sign-ins).
    config.store.delete_expired_sessions().await?;
    let session = config.store.create_session(account.id, lifetime).await?;
    tracing::info!(account = %account.name, "dashboard sign-in");
    let mut response = Redirect::to(HOME).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&config, &headers, &session.id, config.session_lifetime.as_secs()),
    );
    Ok(response)
}

/// `POST /dashboard/sign-out` with `csrf=...`: ends the session and clears the cookie.
pub async fn sign_out(
    State(config): State<DashboardConfig>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Result<Response, DashboardError> {
    check_origin(&headers)?;
    if let Some((id, session)) = current_session(&config, &headers).await? {
        if !api::session::same_secret(&form.csrf, &session.csrf_token) {
            return Err(DashboardError::Csrf);
        }
        config.store.delete_session(&id).await?;
        tracing::info!(account = %session.account.name, "dashboard sign-out");
    }
    let mut response = Redirect::to(&format!("{SIGN_IN}?signed_out=true")).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&config, &headers, "", 0));
    Ok(response)
}

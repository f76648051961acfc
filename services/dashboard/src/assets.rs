//! The dashboard's files, compiled into the binary. The two HTML templates get their few values
//! by plain replacement; the script and style sheet are served as they are.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use vocabulary::AccountName;

const APP_HTML: &str = include_str!("assets/app.html");
const SIGN_IN_HTML: &str = include_str!("assets/sign-in.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The signed-in page: the account's name and the session's CSRF token, which the script sends with every
/// change and the sign-out form posts. Nothing needs escaping: an `AccountName` is lowercase letters, digits
/// and dashes, and a CSRF token is hex (anything else is refused here, so a change of either cannot open a
/// hole in the page).
pub(crate) fn app_page(account: &AccountName, csrf: &str) -> String {
    let csrf = if csrf.bytes().all(|b| b.is_ascii_hexdigit()) {
        csrf
    } else {
        ""
    };
    APP_HTML
        .replace("{{ACCOUNT}}", account.as_str())
        .replace("{{CSRF}}", csrf)
}

/// The sign-in form, with an error or a note above it (either may be empty): fixed texts of this crate, so
/// they need no escaping.
pub(crate) fn sign_in_page(error: &'static str, note: &'static str) -> String {
    SIGN_IN_HTML.replace("{{ERROR}}", error).replace("{{NOTE}}", note)
}

/// `GET /dashboard/assets/{file}`
pub async fn serve(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        _ => return (StatusCode::NOT_FOUND, "no such dashboard file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidate each time: a new binary may bring new files under the same names.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_templates() {
        let alice = AccountName::new("alice").unwrap();
        let page = app_page(&alice, "c0ffee");
        assert!(page.contains(r#"content="c0ffee""#), "{page}");
        assert!(page.contains(r#"value="c0ffee""#), "{page}");
        assert!(!page.contains("{{"), "a placeholder is left: {page}");
        let page = app_page(&alice, "\"><script>");
        assert!(!page.contains("\"><script>"), "{page}");
        let page = sign_in_page("wrong", "");
        assert!(page.contains("wrong") && !page.contains("{{"), "{page}");
    }
}

//! The sign-in and sign-out forms' defence against posts from other sites, beside SameSite=Strict: the
//! browser's `Origin` header (or, failing that, `Referer`) must name the host the request was sent to.

/// True when `origin` (or, without it, `referer`) is `http://HOST` or `https://HOST` for the request's
/// `Host`. A missing `Host`, an opaque origin (`null`) and a request carrying neither header are refused.
pub fn same_origin(host: Option<&str>, origin: Option<&str>, referer: Option<&str>) -> bool {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    let matches = |url: &str| {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        rest.is_some_and(|rest| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            authority.eq_ignore_ascii_case(host)
        })
    };
    match (origin, referer) {
        (Some(origin), _) => matches(origin),
        (None, Some(referer)) => matches(referer),
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn origins() {
        let h = Some("127.0.0.1:7070");
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, bool);
        let cases: &[Case] = &[
            (h, Some("http://127.0.0.1:7070"), None, true),
            (h, Some("https://127.0.0.1:7070"), None, true),
            (h, None, Some("http://127.0.0.1:7070/dashboard/sign-in"), true),
            (
                h,
                Some("http://evil.example"),
                Some("http://127.0.0.1:7070/"),
                false,
            ),
            (h, Some("http://127.0.0.1:7070.evil.example"), None, false),
            (h, Some("http://127.0.0.1:70"), None, false),
            (h, Some("null"), None, false),
            (h, None, Some("http://evil.example/?http://127.0.0.1:7070"), false),
            (h, None, None, false),
            (None, Some("http://127.0.0.1:7070"), None, false),
            (Some("Berth.Example"), Some("https://berth.example"), None, true),
            (h, Some("ftp://127.0.0.1:7070"), None, false),
        ];
        for (host, origin, referer, want) in cases {
            assert_eq!(
                same_origin(*host, *origin, *referer),
                *want,
                "{host:?} {origin:?} {referer:?}"
            );
        }
    }
}

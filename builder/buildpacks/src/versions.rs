//! Language versions an app asks for (`runtime.txt`, `.python-version`, `engines.node`) against the ones the
//! stack has. Pure. The stack has one version of each language, so a mismatch is only ever a warning: apps
//! usually run fine on a nearby version.

/// The upstream version of a Debian package in the stack's package list (`nodejs=18.19.0+dfsg-6~deb12u2` →
/// `18.19.0`).
pub fn stack_version(packages: &[String], package: &str) -> Option<String> {
    let debian = packages
        .iter()
        .find_map(|p| p.strip_prefix(package)?.strip_prefix('='))?;
    let without_epoch = debian.split_once(':').map_or(debian, |(_, v)| v);
    let upstream = without_epoch
        .split(['-', '+', '~'])
        .next()
        .unwrap_or(without_epoch);
    (!upstream.is_empty()).then(|| upstream.to_owned())
}

/// The Python version asked for by `runtime.txt` (`python-3.11.4`) or `.python-version` (`3.11`), with the
/// file's name; `runtime.txt` wins, as on Heroku. `None` when neither names one.
pub fn requested_python(
    runtime_txt: Option<&str>,
    python_version: Option<&str>,
) -> Option<(&'static str, String)> {
    let first_line = |text: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
    };
    if let Some(line) = runtime_txt.and_then(first_line) {
        let version = line.strip_prefix("python-").unwrap_or(&line).to_owned();
        return Some(("runtime.txt", version));
    }
    python_version
        .and_then(first_line)
        .map(|v| (".python-version", v))
}

/// Whether the stack's `stack` version honours `requested`, a version or a prefix of one (`3.11` is
/// honoured by `3.11.2`, `3.11.4` is not).
pub fn python_honoured(requested: &str, stack: &str) -> bool {
    let requested: Vec<&str> = requested.split('.').collect();
    let stack: Vec<&str> = stack.split('.').collect();
    requested.len() <= stack.len() && requested.iter().zip(&stack).all(|(r, s)| r == s)
}

/// Whether node `version` (`18.19.0`) satisfies an `engines.node` range in npm's syntax (`18.x`, `^18.1`,
/// `>=16 <20`, `16 || 18`, `*`). `None` when the range uses syntax this does not read (hyphen ranges,
/// `lts/*`, pre-releases): the caller then says it could not check.
pub fn node_range_allows(range: &str, version: &str) -> Option<bool> {
    let version = parse_numbers(version)?;
    if version.len() != 3 {
        return None;
    }
    let mut any = false;
    for set in range.split("||") {
        let mut all = true;
        for comparator in set.split_whitespace() {
            all &= comparator_allows(comparator, &version)?;
        }
        any |= all;
    }
    Some(any)
}

fn comparator_allows(comparator: &str, version: &[u64]) -> Option<bool> {
    let ops = [">=", "<=", ">", "<", "=", "^", "~"];
    let op = ops
        .iter()
        .find(|op| comparator.starts_with(**op))
        .copied()
        .unwrap_or("");
    let rest = comparator[op.len()..].trim_start_matches('v');
    let wanted = parse_partial(rest)?;
    if wanted.is_empty() {
        return Some(true);
    }
    let head = |n: usize| &version[..n.min(version.len())];
    let at_least = version >= padded(&wanted).as_slice();
    Some(match op {
        ">=" => head(wanted.len()) >= wanted.as_slice(),
        "<=" => head(wanted.len()) <= wanted.as_slice(),
        ">" => head(wanted.len()) > wanted.as_slice(),
        "<" => head(wanted.len()) < wanted.as_slice(),
        "^" if wanted[0] == 0 && wanted.len() > 1 => head(2) == &wanted[..2] && at_least,
        "^" => head(1) == &wanted[..1] && at_least,
        "~" if wanted.len() > 1 => head(2) == &wanted[..2] && at_least,
        "~" => head(1) == &wanted[..1],
        _ => head(wanted.len()) == wanted.as_slice(),
    })
}

/// `18`, `18.x`, `18.19.*`, `*`, `x`: the numbers given, up to the first wildcard.
fn parse_partial(text: &str) -> Option<Vec<u64>> {
    let mut numbers = Vec::new();
    for part in text.split('.') {
        if matches!(part, "x" | "X" | "*" | "") {
            break;
        }
        numbers.push(part.parse().ok()?);
    }
    (numbers.len() <= 3).then_some(numbers)
}

fn parse_numbers(text: &str) -> Option<Vec<u64>> {
    text.split('.').map(|p| p.parse().ok()).collect()
}

fn padded(numbers: &[u64]) -> Vec<u64> {
    let mut v = numbers.to_vec();
    v.resize(3, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_versions() {
        let packages: Vec<String> = [
            "nodejs=18.19.0+dfsg-6~deb12u2",
            "python3=3.11.2-1+b1",
            "python3-pip=23.0.1+dfsg-1",
            "perl-base=5.36.0-7+deb12u1",
            "libc6=2:2.36-9",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(stack_version(&packages, "nodejs").as_deref(), Some("18.19.0"));
        assert_eq!(stack_version(&packages, "python3").as_deref(), Some("3.11.2"));
        assert_eq!(stack_version(&packages, "libc6").as_deref(), Some("2.36"));
        assert_eq!(stack_version(&packages, "npm"), None);
    }

    #[test]
    fn python_requests() {
        // (runtime.txt, .python-version, expected (file, version))
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            (Some("python-3.11.4\n"), None, Some(("runtime.txt", "3.11.4"))),
            (
                Some("python-3.12.1"),
                Some("3.10"),
                Some(("runtime.txt", "3.12.1")),
            ),
            (None, Some("# pyenv\n3.11\n"), Some((".python-version", "3.11"))),
            (Some("\n"), Some("3.11"), Some((".python-version", "3.11"))),
            (None, None, None),
        ];
        for (runtime, dot, expected) in cases {
            let got = requested_python(*runtime, *dot);
            assert_eq!(
                got.as_ref().map(|(f, v)| (*f, v.as_str())),
                *expected,
                "{runtime:?} {dot:?}"
            );
        }
        let honoured: &[(&str, &str, bool)] = &[
            ("3.11", "3.11.2", true),
            ("3", "3.11.2", true),
            ("3.11.2", "3.11.2", true),
            ("3.11.4", "3.11.2", false),
            ("3.12", "3.11.2", false),
            ("3.1", "3.11.2", false),
            ("3.11.2.1", "3.11.2", false),
        ];
        for (requested, stack, expected) in honoured {
            assert_eq!(
                python_honoured(requested, stack),
                *expected,
                "{requested} on {stack}"
            );
        }
    }

    #[test]
    fn node_ranges() {
        let cases: &[(&str, Option<bool>)] = &[
            ("18", Some(true)),
            ("18.x", Some(true)),
            ("18.19.x", Some(true)),
            ("18.19.0", Some(true)),
            ("v18.19.0", Some(true)),
            ("=18.19.0", Some(true)),
            ("18.20", Some(false)),
            ("20.x", Some(false)),
            ("*", Some(true)),
            ("", Some(true)),
            (">=14", Some(true)),
            (">=18.19.1", Some(false)),
            (">=16 <20", Some(true)),
            (">=16 <18", Some(false)),
            (">=20", Some(false)),
            ("<=18", Some(true)),
            (">18", Some(false)),
            (">17", Some(true)),
            ("^18.0.0", Some(true)),
            ("^18.20.0", Some(false)),
            ("^16", Some(false)),
            ("~18.19.0", Some(true)),
            ("~18.18.0", Some(false)),
            ("~18", Some(true)),
            ("16 || 18", Some(true)),
            ("16 || 20", Some(false)),
            ("^14 || ^16 || >=18", Some(true)),
            ("lts/*", None),
            ("18.0.0-rc.1", None),
        ];
        for (range, expected) in cases {
            assert_eq!(node_range_allows(range, "18.19.0"), *expected, "{range:?}");
        }
    }
}

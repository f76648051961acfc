//! Pure helpers: the host's Debian mirror, dpkg's package list, mount points under a directory.

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The first `URIs:` of a deb822 `.sources` file.
pub fn mirror_from_deb822(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("URIs:"))
        .find_map(|uris| uris.split_whitespace().next())
        .map(str::to_owned)
}

/// The URI of the first `deb` line of a one-line-style `sources.list`.
pub fn mirror_from_list(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("deb ")?.trim_start();
        // Skip `[arch=amd64 signed-by=...]` options.
        let rest = match rest.strip_prefix('[') {
            Some(options) => options.split_once(']')?.1.trim_start(),
            None => rest,
        };
        rest.split_whitespace().next().map(str::to_owned)
    })
}

/// The host's mirror: the first `URIs:` of `/etc/apt/sources.list.d/debian.sources`, else the first `deb`
/// line of `/etc/apt/sources.list`, else [`DEFAULT_MIRROR`].
pub fn host_mirror() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    read("/etc/apt/sources.list.d/debian.sources")
        .and_then(|t| mirror_from_deb822(&t))
        .or_else(|| read("/etc/apt/sources.list").and_then(|t| mirror_from_list(&t)))
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// `name=version` of every installed package in a dpkg `status` file, sorted.
pub fn installed_packages(status: &str) -> Vec<String> {
    let mut packages: Vec<String> = status
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|v| v.strip_prefix(':'))
                        .map(str::trim)
                })
            };
            let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
            installed
                .then(|| Some(format!("{}={}", field("Package")?, field("Version")?)))
                .flatten()
        })
        .collect();
    packages.sort();
    packages
}

/// Mount points at or below `dir` in a `/proc/self/mountinfo` text, deepest first (shared with the agent,
/// which lives in `container`).
pub use container::mountinfo::mounts_under;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_mirror() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n",
                Some("http://deb.debian.org/debian"),
            ),
            ("URIs: http://a.example/debian http://b.example/debian\n", Some("http://a.example/debian")),
            ("Types: deb\n", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(mirror_from_deb822(text).as_deref(), *expected, "{text:?}");
        }
    }

    #[test]
    fn list_mirror() {
        let cases: &[(&str, Option<&str>)] = &[
            ("deb http://ftp.de.debian.org/debian bookworm main\n", Some("http://ftp.de.debian.org/debian")),
            ("# comment\ndeb-src http://x/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://y/debian bookworm main\n", Some("http://y/debian")),
            ("#deb http://z/debian bookworm main\n", None),
        ];
        for (text, expected) in cases {
            assert_eq!(mirror_from_list(text).as_deref(), *expected, "{text:?}");
        }
    }

    #[test]
    fn dpkg_status() {
        let status = "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\n\n\
                      Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                      Package: base-files\nStatus: install ok installed\nPriority: required\nVersion: 12.4+deb12u5\n";
        assert_eq!(
            installed_packages(status),
            vec!["base-files=12.4+deb12u5", "python3=3.11.2-1+b1"]
        );
    }
}

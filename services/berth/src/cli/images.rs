//! `berth images push -a NAME REGISTRY/REPO:TAG`: copies a release's image from the API's registry (`/v2`) to
//! another registry with `skopeo copy`, which already speaks every registry's auth and upload protocol, checks
//! each blob's digest, and skips blobs the destination has. The API token reaches skopeo in a temporary auth
//! file (mode 0600), never on its command line.

use anyhow::{bail, Context};
use api_contract::ReleaseInfo;
use base64::Engine as _;
use vocabulary::{AppName, ReleaseVersion};

use crate::server::write_private;

/// What to push where, as typed.
#[derive(Debug, Clone)]
pub struct PushRequest {
    pub app: AppName,
    /// `None`: the current release.
    pub release: Option<ReleaseVersion>,
    pub destination: String,
    pub dest_tls_verify: bool,
    /// `USER:PASSWORD` for the destination; `None` leaves it to skopeo's own auth (`skopeo login`).
    pub dest_creds: Option<String>,
}

/// The release to push from the app's releases (newest first).
pub fn pick_release<'a>(
    app: &AppName,
    releases: &'a [ReleaseInfo],
    wanted: Option<ReleaseVersion>,
) -> anyhow::Result<&'a ReleaseInfo> {
    let Some(newest) = releases.first() else {
        bail!("app {app} has no releases yet: deploy it with git push first");
    };
    match wanted {
        None => Ok(newest),
        Some(version) => match releases.iter().find(|r| r.version == version) {
            Some(release) => Ok(release),
            None => bail!(
                "app {app} has no release {version} (the newest is {})",
                newest.version
            ),
        },
    }
}

/// `REGISTRY/REPO[:TAG|@DIGEST]`, with or without `docker://`, as skopeo's destination.
pub fn destination(typed: &str) -> anyhow::Result<String> {
    let bare = typed.strip_prefix("docker://").unwrap_or(typed);
    let well_formed = bare
        .split_once('/')
        .is_some_and(|(registry, repo)| !registry.is_empty() && !repo.is_empty())
        && !bare.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        bail!(
            "destination {typed:?} is not REGISTRY/REPO:TAG, such as registry.example.com/team/shop:v3 or \
             127.0.0.1:5000/shop:latest"
        );
    }
    Ok(format!("docker://{bare}"))
}

/// The API's registry as skopeo names it (`HOST:PORT`), and whether to verify TLS (not for plain HTTP).
pub fn api_registry(api: &str) -> anyhow::Result<(String, bool)> {
    let url = reqwest::Url::parse(api).with_context(|| format!("the API URL {api:?} is not a URL"))?;
    let host = url
        .host_str()
        .with_context(|| format!("the API URL {api:?} has no host"))?;
    let port = url
        .port_or_known_default()
        .with_context(|| format!("the API URL {api:?} has no port"))?;
    Ok((format!("{host}:{port}"), url.scheme() == "https"))
}

/// A containers-auth.json holding `user:password` for `registry`.
fn auth_file_json(registry: &str, user_password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(user_password);
    serde_json::json!({ "auths": { registry: { "auth": auth } } }).to_string()
}

/// Copies `release` of the app from the API at `api` to the destination with skopeo; returns the digest the
/// destination stored (the same as the release's: digests are preserved).
pub async fn push(
    api: &str,
    token: &str,
    request: &PushRequest,
    release: &ReleaseInfo,
) -> anyhow::Result<String> {
    let destination = destination(&request.destination)?;
    let (registry, src_tls_verify) = api_registry(api)?;
    match tokio::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .await
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "skopeo is not installed: `berth images push` copies images with it \
             (Debian and Ubuntu: apt-get install skopeo)"
        ),
        Err(e) => return Err(e).context("running skopeo"),
    }
    let dir = tempfile::tempdir().context("making a temporary directory for skopeo's auth files")?;
    let src_auth = dir.path().join("source-auth.json");
    write_private(&src_auth, &auth_file_json(&registry, &format!("berth:{token}")))?;
    let digest_file = dir.path().join("digest");

    let mut command = tokio::process::Command::new("skopeo");
    command
        .arg("copy")
        .arg("--preserve-digests")
        .arg(format!("--src-tls-verify={src_tls_verify}"))
        .arg("--src-authfile")
        .arg(&src_auth)
        .arg(format!("--dest-tls-verify={}", request.dest_tls_verify))
        .arg("--digestfile")
        .arg(&digest_file);
    if let Some(creds) = &request.dest_creds {
        let dest_registry = destination
            .trim_start_matches("docker://")
            .split('/')
            .next()
            .unwrap_or_default();
        let dest_auth = dir.path().join("destination-auth.json");
        write_private(&dest_auth, &auth_file_json(dest_registry, creds))?;
        command.arg("--dest-authfile").arg(&dest_auth);
    }
    command
        .arg(format!(
            "docker://{registry}/{}@{}",
            request.app, release.image_digest
        ))
        .arg(&destination);
    let status = command.status().await.context("running skopeo copy")?;
    if !status.success() {
        bail!("skopeo copy failed ({status}); its message is above");
    }
    let pushed = std::fs::read_to_string(&digest_file)
        .with_context(|| format!("reading the digest skopeo wrote to {}", digest_file.display()))?;
    Ok(pushed.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1:5000/shop:v1", Some("docker://127.0.0.1:5000/shop:v1")),
            (
                "docker://registry.example.com/team/shop",
                Some("docker://registry.example.com/team/shop"),
            ),
            ("ghcr.io/a/b@sha256:00", Some("docker://ghcr.io/a/b@sha256:00")),
            ("shop:v1", None),
            ("/shop", None),
            ("registry/", None),
            ("registry/shop v1", None),
            ("", None),
        ];
        for (typed, want) in cases {
            assert_eq!(destination(typed).ok().as_deref(), *want, "{typed:?}");
        }
    }

    #[test]
    fn api_registries() {
        let cases: &[(&str, Option<(&str, bool)>)] = &[
            ("http://127.0.0.1:7070", Some(("127.0.0.1:7070", false))),
            ("http://127.0.0.1:7070/", Some(("127.0.0.1:7070", false))),
            ("https://berth.example.com", Some(("berth.example.com:443", true))),
            ("http://[::1]:7070", Some(("[::1]:7070", false))),
            ("not a url", None),
        ];
        for (api, want) in cases {
            let got = api_registry(api).ok();
            assert_eq!(got.as_ref().map(|(r, tls)| (r.as_str(), *tls)), *want, "{api:?}");
        }
    }

    #[test]
    fn auth_files() {
        let json: serde_json::Value =
            serde_json::from_str(&auth_file_json("127.0.0.1:7070", "berth:tok")).unwrap();
        assert_eq!(json["auths"]["127.0.0.1:7070"]["auth"], "YmVydGg6dG9r");
    }

    fn release(version: u32) -> ReleaseInfo {
        serde_json::from_value(serde_json::json!({
            "version": version,
            "description": "",
            "image_digest": format!("sha256:{version}"),
            "processes": {},
            "config_keys": [],
            "created_by": null,
            "created_at": "2026-11-29T20:00:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn picking_a_release() {
        let app = AppName::new("shop").unwrap();
        let releases = [release(3), release(2), release(1)];
        type Case<'a> = (&'a [ReleaseInfo], Option<u32>, Result<u32, &'a str>);
        let cases: &[Case] = &[
            (&releases, None, Ok(3)),
            (&releases, Some(2), Ok(2)),
            (
                &releases,
                Some(9),
                Err("app shop has no release v9 (the newest is v3)"),
            ),
            (&[], None, Err("app shop has no releases yet")),
        ];
        for (releases, wanted, want) in cases {
            let got = pick_release(&app, releases, wanted.map(ReleaseVersion));
            match (got, want) {
                (Ok(r), Ok(v)) => assert_eq!(r.version, ReleaseVersion(*v)),
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{e}"),
                (got, want) => panic!("{wanted:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

//! The verbs that change a running app without a push: `berth config`, `berth releases info`, `berth
//! rollback`, `berth apps stop|start` and `berth ps restart`. Each waits for the server's answer, which comes
//! once the change serves; a change that does not serve exits 1 with the reason.

use std::collections::BTreeMap;

use anyhow::bail;
use api_contract::{
    ConfigUpdate, ConfigUpdated, ConfigVars, LifecycleInfo, ReleaseDetail, RestartRequest, RollbackInfo,
    RollbackRequest, RolloutInfo,
};
use reqwest::Method;
use vocabulary::{AppName, ReleaseVersion};

use super::client::Client;

/// Parses `NAME=VALUE` (the value may be empty and may hold `=`; names are checked by the server).
pub fn parse_assignment(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE such as GREETING=hello, got {arg:?}")),
    }
}

/// Parses `v3` or `3`.
pub fn parse_version(arg: &str) -> Result<ReleaseVersion, String> {
    let number = arg.strip_prefix('v').unwrap_or(arg);
    format!("v{number}")
        .parse()
        .map_err(|_| format!("expected a release such as v3, got {arg:?}"))
}

/// A value as a shell word: bare when it is plainly safe, else single-quoted, so that `KEY=VALUE` lines
/// stay one per variable and read back exactly (`eval`), newlines and all.
pub fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+,".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// `KEY=VALUE` lines, values quoted as [`shell_word`].
pub fn config_lines(config: &BTreeMap<String, String>) -> String {
    config
        .iter()
        .map(|(k, v)| format!("{k}={}\n", shell_word(v)))
        .collect()
}

/// Prints what a rollout came to; an error when it does not serve.
fn rolled(rollout: &RolloutInfo) -> anyhow::Result<()> {
    if rollout.deployed {
        println!("{}", rollout.message);
        Ok(())
    } else {
        match rollout.release {
            // "v5 failed: ...; rolled back to v4": the message says it all.
            Some(version) if rollout.message.starts_with(&format!("{version} failed")) => {
                bail!("{}", rollout.message)
            }
            Some(version) => bail!("{version} was released but does not serve: {}", rollout.message),
            None => bail!("{}", rollout.message),
        }
    }
}

pub async fn show_config(client: &Client, app: &AppName, json: bool) -> anyhow::Result<()> {
    let ConfigVars(config) = client.get(&format!("/v1/apps/{app}/config")).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&config)?);
    } else if config.is_empty() {
        println!("{app} has no config vars. Set one with `berth config set NAME=VALUE -a {app}`.");
    } else {
        print!("{}", config_lines(&config));
    }
    Ok(())
}

/// `berth config get NAME`: the value exactly as set, with one newline after it.
pub async fn get_config(client: &Client, app: &AppName, name: &str) -> anyhow::Result<()> {
    let ConfigVars(config) = client.get(&format!("/v1/apps/{app}/config")).await?;
    match config.get(name) {
        Some(value) => {
            println!("{value}");
            Ok(())
        }
        None => bail!("{app} has no config var {name}"),
    }
}

pub async fn change_config(
    client: &Client,
    app: &AppName,
    changes: BTreeMap<String, Option<String>>,
) -> anyhow::Result<()> {
    let names = changes.keys().cloned().collect::<Vec<_>>().join(", ");
    let verb = if changes.values().all(Option::is_some) {
        "Set"
    } else if changes.values().all(Option::is_none) {
        "Unset"
    } else {
        "Changed"
    };
    let path = format!("/v1/apps/{app}/config");
    let updated: ConfigUpdated = client.send(Method::PATCH, &path, &ConfigUpdate(changes)).await?;
    println!("{verb} {names} on {app}.");
    match &updated.rollout {
        Some(rollout) => rolled(rollout),
        None => {
            println!("{app} has no release yet: the config applies from its first deploy.");
            Ok(())
        }
    }
}

/// `berth releases info vN`: one release, config values included (the API shows them only to the owner).
pub async fn release_info(client: &Client, app: &AppName, version: ReleaseVersion) -> anyhow::Result<()> {
    let detail: ReleaseDetail = client
        .get(&format!("/v1/apps/{app}/releases/{}", version.0))
        .await?;
    print!("{}", release_detail(app, &detail));
    Ok(())
}

pub fn release_detail(app: &AppName, detail: &ReleaseDetail) -> String {
    let info = &detail.info;
    let mut out = format!(
        "=== {app} {version}\nKind:         {kind}\nDescription:  {description}\nBy:           {by}\n\
         Created:      {created}\nImage:        {image}\n",
        version = info.version,
        kind = info.kind.as_str(),
        description = info.description,
        by = info
            .created_by
            .as_ref()
            .map_or("-".to_owned(), ToString::to_string),
        created = info.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        image = info.image_digest,
    );
    out.push_str("Processes:\n");
    for (kind, command) in &info.processes {
        out.push_str(&format!("  {kind}: {command}\n"));
    }
    if detail.config.is_empty() {
        out.push_str("Config vars:  none\n");
    } else {
        out.push_str("Config vars:\n");
        for line in config_lines(&detail.config).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

pub async fn rollback(client: &Client, app: &AppName, version: Option<ReleaseVersion>) -> anyhow::Result<()> {
    let path = format!("/v1/apps/{app}/rollback");
    let info: RollbackInfo = client
        .send(Method::POST, &path, &RollbackRequest { version })
        .await?;
    if let Some(release) = info.rollout.release {
        println!("Rolled back {app} to {}: released {release}", info.to);
    }
    rolled(&info.rollout)
}

/// `stop`, `start` or `restart` (with its body).
pub async fn act(client: &Client, app: &AppName, what: &str, instance: Option<String>) -> anyhow::Result<()> {
    let path = format!("/v1/apps/{app}/{what}");
    let info: LifecycleInfo = client
        .send(Method::POST, &path, &RestartRequest { instance })
        .await?;
    if info.done {
        println!("{}", info.message);
        Ok(())
    } else {
        bail!("{}", info.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_and_versions() {
        assert_eq!(parse_assignment("A=1"), Ok(("A".into(), "1".into())));
        assert_eq!(parse_assignment("A="), Ok(("A".into(), String::new())));
        assert_eq!(parse_assignment("URL=a=b"), Ok(("URL".into(), "a=b".into())));
        assert!(parse_assignment("=1").is_err());
        assert!(parse_assignment("A").is_err());
        assert_eq!(parse_version("v3"), Ok(ReleaseVersion(3)));
        assert_eq!(parse_version("3"), Ok(ReleaseVersion(3)));
        for bad in ["v0", "x", "", "v"] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_lines_read_back_exactly() {
        let config = BTreeMap::from([
            ("A".to_owned(), "plain-value_1.2:3".to_owned()),
            ("B".to_owned(), "two\nlines it's ✓".to_owned()),
            ("C".to_owned(), String::new()),
        ]);
        let lines = config_lines(&config);
        assert_eq!(lines, "A=plain-value_1.2:3\nB='two\nlines it'\\''s ✓'\nC=''\n");
        // The shell reads the quoted words back as the values.
        let script = format!("{lines}printf '%s|%s|%s' \"$A\" \"$B\" \"$C\"");
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "plain-value_1.2:3|two\nlines it's ✓|"
        );
    }
}

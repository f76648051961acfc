//! What the client verbs print: plain aligned tables and lines, built as strings so they can be tested.

use api_contract::{AppInfo, CertificateInfo, DomainInfo, FormationInfo, InstanceInfo, ReleaseInfo};

/// Left-aligned columns two spaces apart, without trailing spaces.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

pub fn apps(apps: &[AppInfo]) -> String {
    if apps.is_empty() {
        return "You have no apps yet. Create one with `berth apps create NAME`.\n".to_owned();
    }
    // A ROLE column only when some app is someone else's.
    let shared = apps.iter().any(|a| a.role.as_deref() == Some("collaborator"));
    let mut rows = vec![header(if shared {
        &["NAME", "RELEASE", "URL", "ROLE"]
    } else {
        &["NAME", "RELEASE", "URL"]
    })];
    for app in apps {
        let release = app.release.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mut row = vec![app.name.to_string(), release, app.url.clone()];
        if shared {
            row.push(app.role.clone().unwrap_or_else(|| "-".to_owned()));
        }
        rows.push(row);
    }
    table(&rows)
}

pub fn app_created(app: &AppInfo, git_url: &str) -> String {
    format!(
        "Created app {name}.\n  URL:         {url}\n  Git remote:  {git_url}\n\
         Deploy with `git push {git_url} main` (any user name, your API token as the password).\n",
        name = app.name,
        url = app.url,
    )
}

pub fn app_info(app: &AppInfo, git_url: &str) -> String {
    let release = app
        .release
        .map_or_else(|| "none yet".to_owned(), |v| v.to_string());
    let timeout = app
        .first_byte_timeout
        .map_or_else(|| "router default".to_owned(), |s| format!("{s} s"));
    let build_timeout = app
        .build_timeout
        .map_or_else(|| "default (900 s)".to_owned(), |s| format!("{s} s"));
    let stop_grace = app
        .stop_grace
        .map_or_else(|| "default (30 s)".to_owned(), |s| format!("{s} s"));
    let boot_timeout = app
        .boot_timeout
        .map_or_else(|| "default (60 s)".to_owned(), |s| format!("{s} s"));
    let deploy_timeout = app
        .deploy_timeout
        .map_or_else(|| "default (120 s)".to_owned(), |s| format!("{s} s"));
    let health_check = app
        .health_check
        .as_ref()
        .map_or_else(|| "app.json's, if any".to_owned(), |p| format!("GET {p}"));
    format!(
        "=== {name}\nURL:         {url}\nGit remote:  {git_url}\nRelease:     {release}\nCreated:     {created}\n\
         Stopped:     {stopped}\n\
         HTTPS redirect:      {redirect}\nFirst-byte timeout:  {timeout}\nBuild timeout:       {build_timeout}\n\
         Stop grace:          {stop_grace}\nBoot timeout:        {boot_timeout}\n\
         Deploy timeout:      {deploy_timeout}\nHealth check:        {health_check}\n\
         Deploy strategy:     {strategy}\nConstraints:         {constraints}\n",
        strategy = app.deploy_strategy,
        constraints = vocabulary::labels_text(&app.constraints),
        name = app.name,
        stopped = if app.stopped { "yes (`berth apps start` runs it again)" } else { "no" },
        url = app.url,
        created = app.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        redirect = if app.redirect_https { "on" } else { "off" },
    )
}

/// `web=2, worker=0`
pub fn formation(formation: &[FormationInfo]) -> String {
    formation
        .iter()
        .map(|f| format!("{}={}", f.process_type, f.quantity))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `3d4h`, `2h5m`, `4m10s`, `9s`: the two largest units.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// `512M`, `1G`, `1.5G`.
pub fn memory(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}G", bytes >> 30)
    } else if bytes >= 1 << 30 {
        format!("{:.1}G", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{}M", bytes.div_ceil(MIB))
    }
}

pub fn instances(app: &str, instances: &[InstanceInfo], now: chrono::DateTime<chrono::Utc>) -> String {
    if instances.is_empty() {
        return format!(
            "{app} has no instances. Start one with `berth scale web=1 -a {app}` \
             (or `berth apps start {app}` if it is stopped).\n"
        );
    }
    let mut rows = vec![header(&[
        "INSTANCE",
        "STATE",
        "RELEASE",
        "NODE",
        "UPTIME",
        "RESTARTS",
        "MEMORY",
        "ADDRESS",
        "HOSTNAME",
        "LAST EXIT",
    ])];
    let dash = || "-".to_owned();
    let (pending, placed): (Vec<&InstanceInfo>, Vec<&InstanceInfo>) =
        instances.iter().partition(|i| i.pending_reason.is_some());
    for i in placed {
        rows.push(vec![
            i.name.clone(),
            i.state.as_str().to_owned(),
            i.release.to_string(),
            i.node.clone().unwrap_or_else(dash),
            duration((now - i.created_at).num_seconds()),
            i.restarts.to_string(),
            i.memory_bytes.map_or_else(dash, memory),
            i.address.map_or_else(dash, |a| a.to_string()),
            i.hostname.clone().unwrap_or_else(dash),
            i.last_exit.as_ref().map_or_else(dash, |e| {
                format!("{} ({})", e.reason, e.at.format("%Y-%m-%d %H:%M:%S UTC"))
            }),
        ]);
    }
    let mut out = if rows.len() > 1 {
        table(&rows)
    } else {
        String::new()
    };
    // Wanted but not placed: `web.3  pending  no node matches region=eu`.
    let pending: Vec<Vec<String>> = pending
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.state.as_str().to_owned(),
                format!(
                    "{} (for {})",
                    i.pending_reason.clone().unwrap_or_default(),
                    duration((now - i.created_at).num_seconds())
                ),
            ]
        })
        .collect();
    if !pending.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&table(&pending));
    }
    out
}

/// One-off instances running now, below `berth ps`'s table (not part of the formation); nothing if none.
pub fn one_offs(runs: &[api_contract::RunInfo], now: chrono::DateTime<chrono::Utc>) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let mut rows = vec![header(&["ONE-OFF", "RELEASE", "UPTIME", "COMMAND"])];
    for r in runs {
        rows.push(vec![
            r.name.clone(),
            r.release.to_string(),
            duration((now - r.started_at).num_seconds()),
            r.command.clone(),
        ]);
    }
    format!("\n{}", table(&rows))
}

pub fn releases(app: &str, releases: &[ReleaseInfo]) -> String {
    if releases.is_empty() {
        return format!("{app} has no releases yet: push to its git remote to deploy.\n");
    }
    let mut rows = vec![header(&["VERSION", "KIND", "CREATED", "BY", "DESCRIPTION"])];
    for r in releases {
        rows.push(vec![
            r.version.to_string(),
            r.kind.as_str().to_owned(),
            r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.created_by
                .as_ref()
                .map_or_else(|| "-".to_owned(), |a| a.to_string()),
            r.description.clone(),
        ]);
    }
    table(&rows)
}

pub fn rebase(app: &str, info: &api_contract::RebaseInfo) -> String {
    let short = |digest: &str| -> String {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        hex.chars().take(12).collect()
    };
    match &info.release {
        Some(version) => format!(
            "Rebased {app} onto stack {} (was {}): released {version}",
            short(&info.new_stack),
            short(&info.old_stack)
        ),
        None => format!(
            "{app} is already on the current stack {}: no new release",
            short(&info.new_stack)
        ),
    }
}

pub fn domains(app: &str, domains: &[DomainInfo]) -> String {
    if domains.is_empty() {
        return format!(
            "{app} has no custom domains. Add one with `berth domains add www.example.com -a {app}`.\n"
        );
    }
    let mut rows = vec![header(&["DOMAIN", "ADDED"])];
    for d in domains {
        rows.push(vec![
            d.name.to_string(),
            d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        ]);
    }
    table(&rows)
}

pub fn certificates(app: &str, certificates: &[CertificateInfo]) -> String {
    if certificates.is_empty() {
        return format!(
            "{app} has no certificates. Add one with `berth certs add --cert F --key F -a {app}`.\n"
        );
    }
    let mut rows = vec![header(&["ID", "HOSTS", "EXPIRES"])];
    for c in certificates {
        rows.push(vec![
            c.id.to_string(),
            c.hosts.join(","),
            c.not_after.format("%Y-%m-%d").to_string(),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_contract::InstanceStateInfo;
    use vocabulary::{AppName, InstanceId, ProcessType, ReleaseVersion};

    #[test]
    fn one_offs_below_the_instances() {
        let now = chrono::Utc::now();
        assert_eq!(one_offs(&[], now), "");
        let run = api_contract::RunInfo {
            name: "run.3".into(),
            command: "sh -c 'sleep 9'".into(),
            release: ReleaseVersion(2),
            started_at: now - chrono::Duration::seconds(75),
        };
        assert_eq!(
            one_offs(&[run], now),
            "\nONE-OFF  RELEASE  UPTIME  COMMAND\nrun.3    v2       1m15s   sh -c 'sleep 9'\n"
        );
    }

    #[test]
    fn releases_say_what_made_them() {
        let release = |version: u32, kind, description: &str| ReleaseInfo {
            version: ReleaseVersion(version),
            kind,
            description: description.to_owned(),
            image_digest: "sha256:00".into(),
            processes: Default::default(),
            config_keys: vec![],
            created_by: Some("alice".parse().unwrap()),
            created_at: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        };
        let list = [
            release(3, api_contract::ReleaseKindInfo::Rollback, "Rollback to v1"),
            release(2, api_contract::ReleaseKindInfo::Config, "Set A"),
            release(1, api_contract::ReleaseKindInfo::Build, "Deploy 5765b53"),
        ];
        assert_eq!(
            releases("shop", &list),
            "VERSION  KIND      CREATED              BY     DESCRIPTION\n\
             v3       rollback  2026-09-21 14:13:20  alice  Rollback to v1\n\
             v2       config    2026-09-21 14:13:20  alice  Set A\n\
             v1       build     2026-09-21 14:13:20  alice  Deploy 5765b53\n"
        );
    }

    #[test]
    fn tables_align_and_trim() {
        let rows = vec![
            header(&["A", "BB", "C"]),
            vec!["long-cell".into(), "x".into(), "".into()],
        ];
        assert_eq!(table(&rows), "A          BB  C\nlong-cell  x\n");
    }

    #[test]
    fn instance_lines() {
        let instance = |index: u32, state, address: Option<&str>| InstanceInfo {
            id: InstanceId::new(),
            name: format!("web.{index}"),
            process_type: ProcessType::web(),
            state,
            release: ReleaseVersion(3),
            hostname: Some(format!("shop-web-{index}")),
            address: address.map(|a| a.parse().unwrap()),
            restarts: index - 1,
            created_at: app().created_at,
            last_exit: None,
            node: (index == 1).then(|| "node-1".to_owned()),
            memory_bytes: Some(512 << 20),
            pending_reason: None,
        };
        let mut crashed = instance(2, InstanceStateInfo::Crashed, None);
        crashed.restarts = 2;
        crashed.last_exit = Some(api_contract::InstanceExitInfo {
            reason: "out of memory".into(),
            at: app().created_at,
        });
        let list = [
            instance(1, InstanceStateInfo::Running, Some("10.0.0.2:5000")),
            crashed,
        ];
        let now = app().created_at + chrono::Duration::seconds(3 * 3600 + 7 * 60 + 5);
        assert_eq!(
            instances("shop", &list, now),
            "INSTANCE  STATE    RELEASE  NODE    UPTIME  RESTARTS  MEMORY  ADDRESS        HOSTNAME    LAST EXIT\n\
             web.1     running  v3       node-1  3h7m    0         512M    10.0.0.2:5000  shop-web-1  -\n\
             web.2     crashed  v3       -       3h7m    2         512M    -              shop-web-2  out of memory (2024-05-01 12:30:00 UTC)\n"
        );
        assert!(instances("shop", &[], now).contains("berth scale web=1 -a shop"));
        // Pending instances follow, with the reason.
        let mut pending = instance(3, InstanceStateInfo::Pending, None);
        pending.pending_reason = Some("no node matches region=eu".into());
        pending.created_at = now - chrono::Duration::seconds(65);
        let with_pending = [list[0].clone(), pending.clone()];
        assert!(
            instances("shop", &with_pending, now)
                .ends_with("\nweb.3  pending  no node matches region=eu (for 1m5s)\n"),
            "{}",
            instances("shop", &with_pending, now)
        );
        assert_eq!(
            instances("shop", &[pending], now),
            "web.3  pending  no node matches region=eu (for 1m5s)\n"
        );
        let durations = [
            (0, "0s"),
            (59, "59s"),
            (61, "1m1s"),
            (3600, "1h0m"),
            (90_061, "1d1h"),
            (-5, "0s"),
        ];
        for (seconds, want) in durations {
            assert_eq!(duration(seconds), want, "{seconds}");
        }
        let sizes = [
            (256 << 20, "256M"),
            (1 << 30, "1G"),
            (3 << 29, "1.5G"),
            (1000, "1M"),
        ];
        for (bytes, want) in sizes {
            assert_eq!(memory(bytes), want, "{bytes}");
        }
    }

    fn app() -> AppInfo {
        serde_json::from_value(serde_json::json!({
            "name": "shop", "url": "http://shop.localhost:8080", "release": 2,
            "created_at": "2024-05-01T12:30:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn app_lines() {
        let app = app();
        assert_eq!(app.name, AppName::new("shop").unwrap());
        assert_eq!(
            apps(std::slice::from_ref(&app)),
            "NAME  RELEASE  URL\nshop  v2       http://shop.localhost:8080\n"
        );
        let created = app_created(&app, "http://127.0.0.1:7070/git/shop.git");
        assert!(
            created.contains("URL:         http://shop.localhost:8080\n"),
            "{created}"
        );
        assert!(
            created.contains("Git remote:  http://127.0.0.1:7070/git/shop.git\n"),
            "{created}"
        );
        let info = app_info(&app, "g");
        assert!(info.contains("Created:     2024-05-01 12:30:00 UTC"), "{info}");
        assert!(
            info.contains("HTTPS redirect:      off\nFirst-byte timeout:  router default\n"),
            "{info}"
        );
    }

    #[test]
    fn domain_lines() {
        let d: DomainInfo = serde_json::from_value(serde_json::json!({
            "name": "*.example.com", "created_at": "2024-05-01T12:30:00Z"
        }))
        .unwrap();
        assert_eq!(
            domains("shop", &[d]),
            "DOMAIN         ADDED\n*.example.com  2024-05-01 12:30:00\n"
        );
        assert!(domains("shop", &[]).contains("berth domains add www.example.com -a shop"));
    }

    #[test]
    fn formation_line() {
        let f = |t: &str, q| FormationInfo {
            process_type: ProcessType::new(t).unwrap(),
            quantity: q,
            memory_bytes: 1,
        };
        assert_eq!(formation(&[f("web", 2), f("worker", 0)]), "web=2, worker=0");
    }
}

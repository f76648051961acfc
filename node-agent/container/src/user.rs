//! An image's `USER` (`NAME`, `UID`, `NAME:GROUP`, `UID:GID`) resolved to ids the way Docker does, from the
//! container's own `/etc/passwd` and `/etc/group`. Pure: the init reads the files and calls [`resolve`].

/// The ids the app runs as, and the home directory `/etc/passwd` gives it (for `HOME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups of `/etc/group` that list the user, or only `gid` when the `USER`
    /// names a group.
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [name, _, uid, gid, _, home, ..] => Some(PasswdEntry {
                name,
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home,
            }),
            _ => None,
        }
    })
}

/// `(name, gid, members)` of each well-formed `/etc/group` line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [name, _, gid, members, ..] => Some((
                name,
                gid.parse().ok()?,
                members.split(',').filter(|m| !m.is_empty()).collect(),
            )),
            _ => None,
        }
    })
}

/// Resolves `user` against the texts of the container's `/etc/passwd` and `/etc/group` (empty when missing).
/// A numeric uid need not be in `/etc/passwd` (its group is then 0, as with Docker); a name must be.
pub fn resolve(user: &str, passwd: &str, group: &str) -> Result<Credentials, String> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(format!("user {user:?} is not NAME, UID, NAME:GROUP or UID:GID"));
    }
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| {
                    format!("unable to find user {user_part}: no matching entry in /etc/passwd")
                })?,
        ),
    };
    let uid = match &entry {
        Some(e) => e.uid,
        None => user_part.parse().expect("a name always has an entry"),
    };
    let home = entry.as_ref().map(|e| e.home.to_owned());
    let (gid, groups) = match group_part {
        Some(g) => {
            let gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => group_entries(group)
                    .find(|(name, _, _)| *name == g)
                    .map(|(_, gid, _)| gid)
                    .ok_or_else(|| format!("unable to find group {g}: no matching entry in /etc/group"))?,
            };
            (gid, vec![gid])
        }
        None => {
            let gid = entry.as_ref().map_or(0, |e| e.gid);
            let mut groups = vec![gid];
            if let Some(e) = &entry {
                for (_, g, members) in group_entries(group) {
                    if members.contains(&e.name) && !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
            (gid, groups)
        }
    };
    Ok(Credentials {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                          app:x:1000:1000::/home/app:/bin/sh\n\
                          broken line\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app,other\nnogroup:x:65534:\napp:x:1000:\nweb:x:33:app\n";

    #[test]
    fn users_resolve_like_docker() {
        type Case = (
            &'static str,
            Result<(u32, u32, &'static [u32], Option<&'static str>), &'static str>,
        );
        let cases: &[Case] = &[
            ("nobody", Ok((65534, 65534, &[65534], Some("/nonexistent")))),
            ("app", Ok((1000, 1000, &[1000, 50, 33], Some("/home/app")))),
            ("1000", Ok((1000, 1000, &[1000, 50, 33], Some("/home/app")))),
            ("4242", Ok((4242, 0, &[0], None))),
            ("app:staff", Ok((1000, 50, &[50], Some("/home/app")))),
            ("4242:7", Ok((4242, 7, &[7], None))),
            ("root", Ok((0, 0, &[0], Some("/root")))),
            ("ghost", Err("unable to find user ghost")),
            ("app:ghosts", Err("unable to find group ghosts")),
            ("", Err("is not NAME")),
            ("app:", Err("is not NAME")),
            (":50", Err("is not NAME")),
        ];
        for (user, want) in cases {
            let got = resolve(user, PASSWD, GROUP);
            match (want, got) {
                (Ok((uid, gid, groups, home)), Ok(c)) => {
                    assert_eq!(
                        (c.uid, c.gid, c.groups.as_slice(), c.home.as_deref()),
                        (*uid, *gid, *groups, *home),
                        "{user}"
                    );
                }
                (Err(part), Err(e)) => assert!(e.contains(part), "{user}: {e}"),
                (want, got) => panic!("{user}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn numeric_users_need_no_passwd_file() {
        let c = resolve("65534:65534", "", "").unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (65534, 65534, vec![65534]));
        assert!(resolve("nobody", "", "").is_err());
    }
}

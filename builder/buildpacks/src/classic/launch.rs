//! Starting a process of an app built by classic buildpacks: the `.profile.d/*.sh` scripts they left in the
//! app (and the app's own `.profile`) are sourced first, as Heroku does, so the PATH and variables they set
//! hold for the process (pure).

/// Sources the profile scripts of the app at `/app`, in name order, then runs `command`.
const PROFILE_PREFIX: &str = "for berth_profile in /app/.profile.d/*.sh; do \
if [ -r \"$berth_profile\" ]; then . \"$berth_profile\"; fi; done; unset berth_profile; \
if [ -r /app/.profile ]; then . /app/.profile; fi\n";

/// The shell command that runs `command` (a Procfile or `bin/release` command) after the profile scripts,
/// for `/bin/sh -c` (which is how instances run their command).
///
/// `command` is not wrapped in `exec`: it may be a compound command (`a && b`, `X=1 cmd`); the container's
/// init forwards signals to every process, so the shell in between does not keep the app from stopping.
pub fn with_profile_d(command: &str) -> String {
    format!("{PROFILE_PREFIX}{command}")
}

/// The argv of an image's `CMD` for `command`: `/bin/sh -c` of [`with_profile_d`].
pub fn launch_argv(command: &str) -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned(), with_profile_d(command)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_comes_after_the_profile_scripts() {
        let argv = launch_argv("python3 app.py && echo done");
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert!(argv[2].starts_with("for berth_profile in /app/.profile.d/*.sh; do "));
        assert!(argv[2].ends_with("\npython3 app.py && echo done"), "{}", argv[2]);
    }

    /// Runs the launcher with the host's `/bin/sh` against a fake app root: the prefix is rooted at `/app`, so
    /// the test rewrites that path to a temp dir.
    #[test]
    fn profile_scripts_are_sourced_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        std::fs::create_dir(app.join(".profile.d")).unwrap();
        std::fs::write(app.join(".profile.d/a.sh"), "export ORDER=a\nexport ONLY_A=1\n").unwrap();
        std::fs::write(app.join(".profile.d/b.sh"), "export ORDER=\"$ORDER b\"\n").unwrap();
        std::fs::write(app.join(".profile.d/ignored.txt"), "exit 9\n").unwrap();
        std::fs::write(app.join(".profile"), "export ORDER=\"$ORDER profile\"\n").unwrap();
        let script = with_profile_d("echo \"$ORDER $ONLY_A\" && echo \"${berth_profile:-unset}\"")
            .replace("/app/", &format!("{}/", app.display()));
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .env_remove("ORDER")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b profile 1\nunset\n");

        // No profile scripts at all is fine (the glob stays unexpanded and is skipped).
        let empty = tempfile::tempdir().unwrap();
        let script = with_profile_d("echo ran").replace("/app/", &format!("{}/", empty.path().display()));
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    }
}

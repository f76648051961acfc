//! The pre-receive hook, run by `git receive-pack` as `berth git-hook pre-receive` inside an app's
//! repository. It reads the ref updates from stdin, accepts exactly one update of `main` (or `master`), posts
//! it to the server (`BERTH_HOOK_URL`, with the push's one-time `BERTH_HOOK_SECRET`) and prints the deploy's
//! log as it streams back; git shows each line to the pusher as `remote: ...`. Exiting non-zero makes git
//! refuse the push, so the branch moves only when the deploy succeeded.
//!
//! Like any git hook it takes its input from the environment git gives it; it is the one place in Berth,
//! besides `main`, that reads environment variables.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::hook_server::DEPLOY_REFS;
use crate::{HookMessage, HookRequest};

const ZERO_ID: &str = "0000000000000000000000000000000000000000";

/// One line of pre-receive's input: `OLD NEW REF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub refname: String,
}

/// Which update to deploy, or why the push is refused. `Ok(None)`: nothing to do.
pub fn choose_update(input: &str) -> Result<Option<RefUpdate>, String> {
    let mut updates = Vec::new();
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [old, new, refname] = fields[..] else {
            return Err(format!("unexpected input from git: {line:?}"));
        };
        updates.push(RefUpdate {
            old: old.to_owned(),
            new: new.to_owned(),
            refname: refname.to_owned(),
        });
    }
    if let Some(other) = updates
        .iter()
        .find(|u| !DEPLOY_REFS.contains(&u.refname.as_str()))
    {
        return Err(format!(
            "{} is not deployed: berth deploys the main branch. Push with `git push REMOTE main` \
             (or `git push REMOTE HEAD:main` from another branch)",
            other.refname
        ));
    }
    if updates.len() > 1 {
        return Err("push one branch at a time: main (or master), not both".to_owned());
    }
    let Some(update) = updates.pop() else {
        return Ok(None);
    };
    if update.new == ZERO_ID {
        return Err(format!(
            "deleting {} is refused: it is what the app runs",
            update.refname
        ));
    }
    Ok(Some(update))
}

/// The hook's entry point: `berth git-hook HOOK`.
pub fn main(hook: &str) -> ExitCode {
    if hook != "pre-receive" {
        eprintln!("berth git-hook: unknown hook {hook:?}; only pre-receive is used");
        return ExitCode::FAILURE;
    }
    match pre_receive() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            say(&format!(" !     {reason}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints one line for the pusher right away (git relays it while the hook runs).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn pre_receive() -> Result<(), String> {
    let (Some(url), Some(secret)) = (env("BERTH_HOOK_URL"), env("BERTH_HOOK_SECRET")) else {
        return Err("this hook runs only inside a push received by berth (BERTH_HOOK_URL is not set)".into());
    };
    let mut input = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("reading the pushed refs: {e}"))?;
        input.push_str(&line);
        input.push('\n');
    }
    let Some(update) = choose_update(&input)? else {
        return Ok(());
    };
    let request = HookRequest {
        refname: update.refname,
        old: update.old,
        new: update.new,
        object_dir: env("GIT_OBJECT_DIRECTORY"),
        alternates: env("GIT_ALTERNATE_OBJECT_DIRECTORIES"),
        quarantine: env("GIT_QUARANTINE_PATH"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the hook: {e}"))?;
    runtime.block_on(post(&url, &secret, &request))
}

/// Posts the update and prints the streamed answer. No total timeout: a first deploy may build for minutes.
async fn post(url: &str, secret: &str, request: &HookRequest) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("starting the hook's HTTP client: {e}"))?;
    let mut response = client
        .post(url)
        .bearer_auth(secret)
        .json(request)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                format!("cannot reach the berth server at {url}: is it running?")
            } else {
                format!("sending the push to the berth server failed: {e}")
            }
        })?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "the berth server refused the push ({status}): {}",
            body.trim()
        ));
    }
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| format!("the connection to the berth server broke during the deploy: {e}"))?;
        let Some(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(done) = show(&String::from_utf8_lossy(&line[..end])) {
                return done;
            }
        }
    }
    Err("the berth server closed the connection before the deploy finished; the push is not deployed".into())
}

/// Prints one NDJSON line; `Some` once it is the final result.
fn show(line: &str) -> Option<Result<(), String>> {
    match serde_json::from_str::<HookMessage>(line) {
        Ok(HookMessage::Log { log }) => {
            say(&log);
            None
        }
        Ok(HookMessage::Done {
            ok: true, message, ..
        }) => {
            if let Some(message) = message {
                say(&format!("-----> {message}"));
            }
            Some(Ok(()))
        }
        Ok(HookMessage::Done { ok: false, error, .. }) => {
            Some(Err(error.unwrap_or_else(|| "the deploy failed".to_owned())))
        }
        Err(_) => {
            say(line);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(old: &str, new: &str, refname: &str) -> String {
        format!("{old} {new} {refname}\n")
    }

    #[test]
    fn only_one_update_of_main_or_master_deploys() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let main = line(&a, &b, "refs/heads/main");
        let first_push = line(ZERO_ID, &b, "refs/heads/master");
        let cases: Vec<(String, Result<Option<&str>, &str>)> = vec![
            (main.clone(), Ok(Some("refs/heads/main"))),
            (first_push, Ok(Some("refs/heads/master"))),
            (String::new(), Ok(None)),
            (
                line(&a, &b, "refs/heads/dev"),
                Err("refs/heads/dev is not deployed"),
            ),
            (line(&a, &b, "refs/tags/v1"), Err("refs/tags/v1 is not deployed")),
            (
                main.clone() + &line(&a, &b, "refs/heads/dev"),
                Err("refs/heads/dev is not deployed"),
            ),
            (
                main.clone() + &line(&a, &b, "refs/heads/master"),
                Err("push one branch at a time"),
            ),
            (
                line(&a, ZERO_ID, "refs/heads/main"),
                Err("deleting refs/heads/main is refused"),
            ),
            ("garbage\n".to_owned(), Err("unexpected input from git")),
        ];
        for (input, expected) in cases {
            let got = choose_update(&input);
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(got.map(|u| u.refname).as_deref(), want, "{input}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{input}: {got}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn final_lines_end_the_stream() {
        assert_eq!(show(r#"{"log":"-----> Building"}"#), None);
        assert_eq!(show("not json"), None);
        assert_eq!(show(r#"{"ok":true,"message":"v1 deployed"}"#), Some(Ok(())));
        assert_eq!(
            show(r#"{"ok":false,"error":"build failed"}"#),
            Some(Err("build failed".to_owned()))
        );
    }
}

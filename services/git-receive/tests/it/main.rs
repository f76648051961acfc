//! git-receive's service tests: the routes on a free port with a real SQLite store, pushed to with the real
//! `git` client. The pre-receive hook is this crate's `berth-git-hook` binary (the same code `berth git-hook`
//! runs).

mod push;
mod raw;
mod refusals;
mod support;

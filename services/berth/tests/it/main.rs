//! Tests of the `berth` binary as users run it: a real `berth server` (root: namespaces, cgroups, bridges),
//! the real `git` client pushing over HTTP, and real HTTP through the router; and a real `berth router`
//! following the real API, its log output, and client verbs against the real API (no root needed).

mod apps_update;
mod build_limits;
mod classic_push;
mod config;
mod control_processes;
mod dashboard;
mod dockerfile_from;
mod dockerfile_push;
mod end_to_end;
mod health;
mod hostile_build;
mod image_deploy;
mod images_push;
mod logging;
mod logs;
mod one_off;
mod rebase;
mod scheduling;
mod standalone_router;
mod support;
mod zero_downtime;

//! Tests of the `berth` binary as users run it: a real `berth server` (root: namespaces, cgroups, bridges),
//! the real `git` client pushing over HTTP, and real HTTP through the router; and a real `berth router`
//! following the real API, and its log output (no root needed).

mod end_to_end;
mod logging;
mod standalone_router;
mod support;

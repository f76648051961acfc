//! Integration tests: the real router between real HTTP backends, everything on 127.0.0.1 and port 0.

mod draining;
mod engine;
mod failover;
mod forwarding;
mod limits;
mod pooling;
mod routing;
mod scale;
mod shutdown;
mod streaming;
mod support;
mod tls;
mod upgrade;
mod visibility;

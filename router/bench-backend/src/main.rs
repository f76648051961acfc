//! `bench-backend`: the backend that `scripts/bench-router` measures the router against. It answers every
//! request with `200 hello\n` over HTTP/1.1 keep-alive on one thread, doing as little work as possible so that
//! the benchmark measures the proxy in front of it, not the backend.
//!
//! It is a measuring tool, not part of the platform: nothing depends on it and it depends on no Berth crate.
//! `bench-backend --addr 127.0.0.1:0` picks a free port; the first line on stdout is `listening on ADDR`.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The body of every answer.
const BODY: &[u8] = b"hello\n";

#[derive(Debug, Parser)]
#[command(about = "A minimal HTTP/1.1 keep-alive \"hello\" backend for the router benchmark")]
struct Args {
    /// Where to listen (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread: the benchmark pins the backend to one core, shared with the load generator.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(args.addr))
}

async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // The benchmark script reads this line to learn the port; flush so it is not held in a pipe's buffer.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: keep serving the others.
            Err(error) => {
                eprintln!("bench-backend: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            // A client closing its connection mid-request is normal at the end of a run; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(_request: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

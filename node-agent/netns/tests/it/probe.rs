//! Traffic between namespaces: listeners and connections opened from a thread that entered a namespace
//! (`setns` changes only the calling thread's network namespace; a socket stays in the one it was made in).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection attempt may take; dropped packets make it time out.
const CONNECT: Duration = Duration::from_millis(1500);

/// Runs `f` in a new thread inside the network namespace at `netns` (the host's when `None`).
pub fn in_netns<T: Send + 'static>(netns: Option<PathBuf>, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        if let Some(path) = netns {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        }
        f()
    })
    .join()
    .unwrap()
}

/// A TCP listener that answers each connection with the peer address it saw, then closes it.
pub struct Listener {
    socket: Arc<TcpListener>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub address: SocketAddr,
}

impl Listener {
    pub fn start(netns: Option<PathBuf>, address: SocketAddr) -> Listener {
        let socket = Arc::new(in_netns(netns, move || TcpListener::bind(address).unwrap()));
        let address = socket.local_addr().unwrap();
        let accepting = socket.clone();
        let thread = std::thread::spawn(move || {
            while let Ok((mut stream, peer)) = accepting.accept() {
                let _ = stream.write_all(peer.ip().to_string().as_bytes());
            }
        });
        Listener {
            socket,
            thread: Some(thread),
            address,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SAFETY: shutdown on a socket this struct owns; it only wakes the blocked accept (which then fails).
        unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from `netns` to `to` and returns the source address the listener saw, or why it failed.
pub fn connect(netns: Option<PathBuf>, to: SocketAddr) -> Result<String, String> {
    in_netns(netns, move || {
        let mut stream = TcpStream::connect_timeout(&to, CONNECT).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(CONNECT)).unwrap();
        let mut seen = String::new();
        stream.read_to_string(&mut seen).map_err(|e| e.to_string())?;
        Ok(seen)
    })
}

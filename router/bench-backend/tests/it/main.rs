//! Runs the real `bench-backend` binary on a free loopback port and talks HTTP/1.1 to it over a raw socket.

mod serving;

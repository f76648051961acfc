//! Finding where a chunked body ends without decoding it: the engine passes a backend's chunked response through
//! byte for byte, and needs only to know which bytes belong to it (and that its framing is valid, so that a
//! broken backend cannot make the client read the next response as part of this one).

/// The longest chunk-size line (with extensions) or trailer section accepted.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// Where the tracker is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data: this many bytes of it left.
    DataEnd(u8),
    /// After the last chunk, in the trailer section: this many trailer bytes seen so far.
    Trailers(usize),
    Done,
}

/// The chunk framing is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body: {0}")]
pub(crate) struct BadChunk(pub &'static str);

/// Follows a chunked body through the bytes it is given.
#[derive(Debug)]
pub(crate) struct ChunkedTracker {
    state: State,
}

impl ChunkedTracker {
    pub(crate) fn new() -> Self {
        Self { state: State::Size }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Looks at `buf`, the bytes of the body not yet accounted for, and returns how many of them can be passed
    /// on: the rest (a chunk-size line or trailer line cut short) must be given again with more bytes after it.
    /// Once the body ended ([`ChunkedTracker::is_done`]), bytes after it are not counted.
    pub(crate) fn advance(&mut self, buf: &[u8]) -> Result<usize, BadChunk> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match self.state {
                State::Done => return Ok(at),
                State::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        at += used;
                        self.state = State::Trailers(0);
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        at += used;
                        self.state = State::Data(size);
                    }
                    Ok(httparse::Status::Partial) if rest.len() > MAX_LINE => {
                        return Err(BadChunk("chunk-size line too long"))
                    }
                    Ok(httparse::Status::Partial) => return Ok(at),
                    Err(httparse::InvalidChunkSize) => return Err(BadChunk("invalid chunk size")),
                },
                State::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd(2)
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd(left) => {
                    let Some(&b) = rest.first() else { return Ok(at) };
                    let want = if left == 2 { b'\r' } else { b'\n' };
                    if b != want {
                        return Err(BadChunk("chunk data not followed by CRLF"));
                    }
                    at += 1;
                    self.state = if left == 2 { State::DataEnd(1) } else { State::Size };
                }
                State::Trailers(seen) => {
                    // Whole lines only: an empty line ends the body.
                    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                        if seen + rest.len() > MAX_TRAILERS {
                            return Err(BadChunk("trailer section too long"));
                        }
                        return Ok(at);
                    };
                    at += end + 2;
                    self.state = if end == 0 {
                        State::Done
                    } else {
                        State::Trailers(seen + end + 2)
                    };
                    if seen + end + 2 > MAX_TRAILERS {
                        return Err(BadChunk("trailer section too long"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes passed on, and whether the end was found.
    type Fed = Result<(usize, bool), BadChunk>;

    /// Feeds `body` in pieces of `step` bytes, as reads would, and returns how many bytes were passed on and
    /// whether the end was found.
    fn feed(body: &[u8], step: usize) -> Fed {
        let mut tracker = ChunkedTracker::new();
        let (mut passed, mut pending) = (0, Vec::new());
        for piece in body.chunks(step) {
            pending.extend_from_slice(piece);
            let n = tracker.advance(&pending)?;
            passed += n;
            pending.drain(..n);
            if tracker.is_done() {
                break;
            }
        }
        Ok((passed, tracker.is_done()))
    }

    #[test]
    fn finds_the_end_of_chunked_bodies_whatever_the_reads() {
        let next = b"HTTP/1.1 200 OK\r\n\r\n";
        let cases: &[(&[u8], Fed)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", Ok((15, true))),
            (
                b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n",
                Ok((36, true)),
            ),
            (b"0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n", Ok((31, true))),
            (b"5\r\nhel", Ok((6, false))),
            (b"zz\r\nhello\r\n0\r\n\r\n", Err(BadChunk("invalid chunk size"))),
            (
                b"ffffffffffffffffff1\r\nx\r\n",
                Err(BadChunk("invalid chunk size")),
            ),
            (
                b"5\r\nhelloXX0\r\n\r\n",
                Err(BadChunk("chunk data not followed by CRLF")),
            ),
        ];
        for (body, want) in cases {
            for step in [1, 2, 3, 7, 1000] {
                // What follows a complete body (the next response on the connection) is never counted.
                let input = if want.is_ok_and(|(_, done)| done) {
                    [*body, next.as_slice()].concat()
                } else {
                    body.to_vec()
                };
                let got = feed(&input, step);
                assert_eq!(
                    got,
                    *want,
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn endless_lines_are_refused() {
        let long_size = [b"1".repeat(10), b";".to_vec(), b"x".repeat(MAX_LINE)].concat();
        assert_eq!(feed(&long_size, 512), Err(BadChunk("chunk-size line too long")));
        let long_trailers = [b"0\r\n".to_vec(), b"X-A: b\r\n".repeat(MAX_TRAILERS / 8 + 1)].concat();
        assert_eq!(
            feed(&long_trailers, 512),
            Err(BadChunk("trailer section too long"))
        );
    }
}

//! `berth run`'s attached session: after `POST /v1/apps/{name}/runs` is answered `101 Switching Protocols`
//! (`Upgrade: berth-attach/1`), both sides exchange frames on the connection: one kind byte, a 4-byte
//! big-endian payload length, the payload. The client sends `Stdin`, `StdinClosed` and `Resize`; the server
//! sends `Started` first, then `Stdout` and `Stderr` as the command writes, and `Exit` last. A closed
//! connection kills the command.
//!
//! A framed upgrade rather than WebSocket: both ends already have HTTP/1.1 upgrades (hyper, reqwest), and
//! five frame kinds need no new dependency.

/// The `Upgrade` header's protocol.
pub const PROTOCOL: &str = "berth-attach/1";

/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdin(Vec<u8>),
    StdinClosed,
    /// The client's terminal changed size.
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The one-off's name, `run.3`.
    Started(String),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command's exit code (`128 + N` for signal N).
    Exit(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("frame kind {kind} with a payload of {len} bytes")]
    BadPayload { kind: u8, len: usize },
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Self::Stdin(_) => 1,
            Self::StdinClosed => 2,
            Self::Resize { .. } => 3,
            Self::Started(_) => 4,
            Self::Stdout(_) => 5,
            Self::Stderr(_) => 6,
            Self::Exit(_) => 7,
        }
    }

    /// The frame as bytes on the wire. A payload over [`MAX_PAYLOAD`] must be split by the caller.
    pub fn encode(&self) -> Vec<u8> {
        let payload: Vec<u8> = match self {
            Self::Stdin(b) | Self::Stdout(b) | Self::Stderr(b) => b.clone(),
            Self::StdinClosed => Vec::new(),
            Self::Resize { rows, cols } => [rows.to_be_bytes(), cols.to_be_bytes()].concat(),
            Self::Started(name) => name.as_bytes().to_vec(),
            Self::Exit(code) => code.to_be_bytes().to_vec(),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(self.kind());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// Collects bytes as they arrive and yields whole frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(header) = self.buf.get(..5) else {
            return Ok(None);
        };
        let kind = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..5 + len).skip(5).collect();
        let bad = || FrameError::BadPayload { kind, len };
        let frame = match kind {
            1 => Frame::Stdin(payload),
            2 if len == 0 => Frame::StdinClosed,
            3 if len == 4 => Frame::Resize {
                rows: u16::from_be_bytes([payload[0], payload[1]]),
                cols: u16::from_be_bytes([payload[2], payload[3]]),
            },
            4 => Frame::Started(String::from_utf8(payload).map_err(|_| bad())?),
            5 => Frame::Stdout(payload),
            6 => Frame::Stderr(payload),
            7 if len == 4 => Frame::Exit(i32::from_be_bytes([
                payload[0], payload[1], payload[2], payload[3],
            ])),
            2 | 3 | 7 => return Err(bad()),
            other => return Err(FrameError::UnknownKind(other)),
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_the_wire_in_any_pieces() {
        let frames = vec![
            Frame::Started("run.3".into()),
            Frame::Stdin(b"hi\n".to_vec()),
            Frame::Stdin(Vec::new()),
            Frame::StdinClosed,
            Frame::Resize { rows: 50, cols: 132 },
            Frame::Stdout(vec![0, 255, 10]),
            Frame::Stderr(b"err\n".to_vec()),
            Frame::Exit(3),
            Frame::Exit(-1),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for piece in [1, 2, 3, 7, wire.len()] {
            let mut decoder = Decoder::default();
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                decoder.push(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, frames, "in pieces of {piece}");
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        let cases: &[(&[u8], FrameError)] = &[
            (&[9, 0, 0, 0, 0], FrameError::UnknownKind(9)),
            (&[0, 0, 0, 0, 0], FrameError::UnknownKind(0)),
            (&[2, 0, 0, 0, 1, 0], FrameError::BadPayload { kind: 2, len: 1 }),
            (&[3, 0, 0, 0, 2, 0, 0], FrameError::BadPayload { kind: 3, len: 2 }),
            (&[7, 0, 0, 0, 1, 0], FrameError::BadPayload { kind: 7, len: 1 }),
            (&[4, 0, 0, 0, 1, 0xff], FrameError::BadPayload { kind: 4, len: 1 }),
            (&[5, 0x10, 0, 0, 1], FrameError::TooLarge(0x1000_0001)),
        ];
        for (bytes, want) in cases {
            let mut decoder = Decoder::default();
            decoder.push(bytes);
            assert_eq!(decoder.next_frame().as_ref(), Err(want), "{bytes:?}");
        }
        // Not yet whole: nothing, no error.
        let mut decoder = Decoder::default();
        decoder.push(&[5, 0, 0, 0, 3, b'a']);
        assert_eq!(decoder.next_frame(), Ok(None));
    }
}

//! Git's pkt-line framing: just enough to answer the ref advertisement, to read the capabilities a push asks
//! for, and to cut `receive-pack`'s output at packet boundaries (so a message of ours can be put between its
//! packets without breaking the stream).

use bytes::{Bytes, BytesMut};

/// Largest packet, header included (git's `LARGE_PACKET_MAX`).
const MAX_PACKET: usize = 65520;

/// One data packet.
pub(crate) fn encode(data: &[u8]) -> Vec<u8> {
    assert!(data.len() + 4 <= MAX_PACKET, "pkt-line payload too long");
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

pub(crate) const FLUSH: &[u8] = b"0000";

/// A message the pushing `git` shows and then stops: sideband channel 3 if the push asked for a sideband
/// (git prints it as `remote: ...`), else an `ERR` packet.
pub(crate) fn fatal_message(sideband: bool, message: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(message.len() + 8);
    if sideband {
        payload.push(3);
    } else {
        payload.extend_from_slice(b"ERR ");
    }
    payload.extend_from_slice(message.as_bytes());
    payload.push(b'\n');
    encode(&payload)
}

fn packet_len(header: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(header).ok()?;
    usize::from_str_radix(text, 16).ok()
}

/// Whether the push request (as far as it has arrived) asks for a sideband: `None` until its first packet
/// (the first command, carrying the capabilities after a NUL) is complete.
pub(crate) fn wants_sideband(request_start: &[u8]) -> Option<bool> {
    if request_start.len() < 4 {
        return None;
    }
    let len = match packet_len(&request_start[..4]) {
        Some(len) if len >= 4 => len,
        // A flush first (nothing to push) or garbage: receive-pack will answer it; no sideband either way.
        _ => return Some(false),
    };
    let packet = request_start.get(4..len)?;
    let capabilities = match packet.iter().position(|b| *b == 0) {
        Some(nul) => &packet[nul + 1..],
        None => return Some(false),
    };
    let capabilities = String::from_utf8_lossy(capabilities);
    Some(
        capabilities
            .split_ascii_whitespace()
            .any(|c| c == "side-band-64k" || c == "side-band"),
    )
}

/// Cuts a byte stream into whole packets. Once it sees something that is not a packet it stops cutting and
/// passes bytes through as they come.
#[derive(Default)]
pub(crate) struct Framer {
    pending: BytesMut,
    passthrough: bool,
}

impl Framer {
    /// Adds `data` and returns the whole packets now complete (possibly empty).
    pub fn push(&mut self, data: &[u8]) -> Bytes {
        self.pending.extend_from_slice(data);
        if self.passthrough {
            return self.pending.split().freeze();
        }
        let mut complete = 0;
        loop {
            let rest = &self.pending[complete..];
            if rest.len() < 4 {
                break;
            }
            let len = match packet_len(&rest[..4]) {
                // Flush, delimiter and response-end packets are just their header.
                Some(0..=2) => 4,
                Some(len) if (4..=MAX_PACKET).contains(&len) => len,
                _ => {
                    self.passthrough = true;
                    return self.pending.split().freeze();
                }
            };
            if rest.len() < len {
                break;
            }
            complete += len;
        }
        self.pending.split_to(complete).freeze()
    }

    /// Bytes held back because their packet is not complete yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_packets() {
        assert_eq!(
            encode(b"# service=git-receive-pack\n"),
            b"001f# service=git-receive-pack\n"
        );
        assert_eq!(encode(b""), b"0004");
        assert_eq!(fatal_message(true, "too big"), b"000d\x03too big\n");
        assert_eq!(fatal_message(false, "too big"), b"0010ERR too big\n");
    }

    #[test]
    fn reads_the_sideband_capability() {
        let first = |caps: &str| {
            let line = format!("{} {} refs/heads/main\0{caps}\n", "0".repeat(40), "a".repeat(40));
            encode(line.as_bytes())
        };
        let with = first("report-status side-band-64k quiet agent=git/2.47.3");
        let old_style = first("report-status side-band");
        let without = first("report-status agent=git/2.47.3");
        let cases: [(&[u8], Option<bool>); 7] = [
            (b"", None),
            (b"00", None),
            (&with[..20], None),
            (&with, Some(true)),
            (&old_style, Some(true)),
            (&without, Some(false)),
            (b"0000", Some(false)),
        ];
        for (input, expected) in cases {
            assert_eq!(
                wants_sideband(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn frames_whole_packets_only() {
        let mut framer = Framer::default();
        assert_eq!(&framer.push(b"000")[..], b"");
        assert_eq!(&framer.push(b"8\x02hi")[..], b"");
        assert_eq!(&framer.push(b"\n")[..], b"0008\x02hi\n");
        assert_eq!(framer.pending(), 0);
        assert_eq!(&framer.push(b"00000006ab0005")[..], b"00000006ab");
        assert_eq!(framer.pending(), 4);
        assert_eq!(&framer.push(b"c0001")[..], b"0005c0001");
    }

    #[test]
    fn passes_through_what_is_not_packets() {
        let mut framer = Framer::default();
        assert_eq!(&framer.push(b"0008\x02hi\nxyz")[..], b"0008\x02hi\n");
        assert_eq!(framer.pending(), 3);
        let mut framer = Framer::default();
        assert_eq!(&framer.push(b"zzzz")[..], b"zzzz");
        assert_eq!(&framer.push(b"more")[..], b"more");
    }
}

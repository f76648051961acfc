//! Reading `/proc/self/mountinfo`: pure text in, paths out. Used by the agent (instance disks) and the stack
//! builder (its build directory's mounts).

use std::path::{Path, PathBuf};

/// Mount points at or below `dir` in a `/proc/self/mountinfo` text, deepest first (the order to unmount).
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts.dedup();
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |at: usize| u32::from(bytes[at] - b'0');
            // `\777` is no byte: keep anything above 255 as it is.
            let Ok(value) = u8::try_from(digit(i + 1) * 64 + digit(i + 2) * 8 + digit(i + 3)) else {
                out.push(bytes[i]);
                i += 1;
                continue;
            };
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points() {
        let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                    90 22 0:5 / /srv/stacks/build-1/rootfs/proc rw - proc proc rw\n\
                    91 90 0:6 / /srv/stacks/build-1/rootfs/proc/sys/fs/binfmt_misc rw - binfmt_misc x rw\n\
                    92 22 0:7 / /srv/stacks/build-1/with\\040space rw - tmpfs t rw\n\
                    93 22 0:8 / /srv/stacks/build-10 rw - tmpfs t rw\n";
        assert_eq!(
            mounts_under(info, Path::new("/srv/stacks/build-1")),
            vec![
                PathBuf::from("/srv/stacks/build-1/rootfs/proc/sys/fs/binfmt_misc"),
                PathBuf::from("/srv/stacks/build-1/rootfs/proc"),
                PathBuf::from("/srv/stacks/build-1/with space"),
            ]
        );
    }
}

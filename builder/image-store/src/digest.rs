//! sha256 digests: validation, and writers/readers that hash what passes through them.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::ImageStoreError;

/// Checks `sha256:<64 lowercase hex>` and returns the hex part. Anything else (other algorithms, path
/// separators, upper case) is refused, so a digest can safely name a file.
pub(crate) fn hex_of(digest: &str) -> Result<&str, ImageStoreError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| ImageStoreError::BadDigest(digest.to_owned()))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ImageStoreError::BadDigest(digest.to_owned()));
    }
    Ok(hex)
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `bytes` hash to `digest`.
pub(crate) fn check_digest(bytes: &[u8], digest: &str) -> Result<(), ImageStoreError> {
    let actual = sha256_digest(bytes);
    if actual != digest {
        return Err(ImageStoreError::CorruptBlob {
            digest: digest.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Passes writes through to `inner` while hashing and counting them.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the `sha256:` digest and the byte count of everything written.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through from `inner` while hashing them.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads what is left (so the digest covers the whole stream) and returns the `sha256:` digest.
    pub(crate) fn drain_and_finish(mut self) -> io::Result<(R, String)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_validation() {
        let good = format!("sha256:{}", "a1".repeat(32));
        assert!(hex_of(&good).is_ok());
        for bad in [
            "",
            "sha256:",
            "sha512:abc",
            "sha256:../../../etc/passwd",
            &format!("sha256:{}", "A1".repeat(32)),
            &format!("sha256:{}", "a1".repeat(31)),
            &format!("sha256:{}/", "a1".repeat(32)),
        ] {
            assert!(hex_of(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hashing_writer_matches_plain_hash() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, digest, count) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(count, 11);
        assert_eq!(digest, sha256_digest(b"hello world"));
        assert_eq!(
            digest,
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}

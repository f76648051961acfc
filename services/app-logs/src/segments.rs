//! One app's kept log on disk: two append-only files of newline-delimited JSON, `current.ndjson` and
//! `previous.ndjson`. When the current one reaches its line limit it becomes the previous one (replacing the
//! older) and a new current one starts, so between `limit` and `2 × limit` lines are kept, never more.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use api_contract::LogLine;

use crate::LogsError;

const CURRENT: &str = "current.ndjson";
const PREVIOUS: &str = "previous.ndjson";

pub(crate) struct Segments {
    dir: PathBuf,
    current: BufWriter<File>,
    /// Lines in the current file.
    lines: usize,
    limit: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogsError + '_ {
    move |source| LogsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn open_append(path: &Path) -> Result<File, LogsError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

impl Segments {
    /// Opens (creating) `dir`'s segments, counting the lines already in the current one. A last line cut
    /// short by a crash is ended, so the next line starts on its own (readers skip the torn one).
    pub(crate) fn open(dir: &Path, limit: usize) -> Result<Self, LogsError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(CURRENT);
        let mut file = open_append(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let mut lines = bytes.iter().filter(|b| **b == b'\n').count();
        if bytes.last().is_some_and(|b| *b != b'\n') {
            file.seek(SeekFrom::End(0)).map_err(io(&path))?;
            file.write_all(b"\n").map_err(io(&path))?;
            lines += 1;
        }
        Ok(Self {
            dir: dir.to_owned(),
            current: BufWriter::with_capacity(64 * 1024, file),
            lines,
            limit: limit.max(1),
        })
    }

    pub(crate) fn append(&mut self, line: &LogLine) -> Result<(), LogsError> {
        if self.lines >= self.limit {
            self.rotate()?;
        }
        let path = self.dir.join(CURRENT);
        let mut json = serde_json::to_vec(line).expect("a log line serializes");
        json.push(b'\n');
        self.current.write_all(&json).map_err(io(&path))?;
        self.lines += 1;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogsError> {
        let (current, previous) = (self.dir.join(CURRENT), self.dir.join(PREVIOUS));
        self.current.flush().map_err(io(&current))?;
        std::fs::rename(&current, &previous).map_err(io(&previous))?;
        self.current = BufWriter::with_capacity(64 * 1024, open_append(&current)?);
        self.lines = 0;
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<(), LogsError> {
        let path = self.dir.join(CURRENT);
        self.current.flush().map_err(io(&path))
    }

    /// Every kept line, oldest first (flushing first). Lines that do not parse (torn by a crash) are skipped.
    pub(crate) fn read_all(&mut self) -> Result<Vec<LogLine>, LogsError> {
        self.flush()?;
        let mut lines = Vec::new();
        for name in [PREVIOUS, CURRENT] {
            let path = self.dir.join(name);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            };
            for text in BufReader::new(file).split(b'\n') {
                let text = text.map_err(io(&path))?;
                if let Ok(line) = serde_json::from_slice::<LogLine>(&text) {
                    lines.push(line);
                }
            }
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_contract::LogSource;

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    fn numbered(i: usize) -> LogLine {
        crate::line(LogSource::App, "web.1", i.to_string().as_bytes())
    }

    #[test]
    fn rotates_keeping_between_one_and_two_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segments::open(dir.path(), 3).unwrap();
        // (lines written so far, what is kept)
        let cases: [(usize, &[&str]); 5] = [
            (1, &["0"]),
            (3, &["0", "1", "2"]),
            (4, &["0", "1", "2", "3"]),
            (6, &["0", "1", "2", "3", "4", "5"]),
            (7, &["3", "4", "5", "6"]),
        ];
        let mut written = 0;
        for (upto, want) in cases {
            while written < upto {
                s.append(&numbered(written)).unwrap();
                written += 1;
            }
            assert_eq!(texts(s.read_all().unwrap()), want, "after {upto}");
        }
    }

    #[test]
    fn reopening_continues_counting_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segments::open(dir.path(), 3).unwrap();
        s.append(&numbered(0)).unwrap();
        s.append(&numbered(1)).unwrap();
        s.flush().unwrap();
        drop(s);
        // A crash mid-write leaves half a line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(CURRENT))
            .unwrap();
        f.write_all(br#"{"at":"2026-"#).unwrap();
        drop(f);
        let mut s = Segments::open(dir.path(), 3).unwrap();
        assert_eq!(s.lines, 3, "two lines and the torn one");
        s.append(&numbered(2)).unwrap();
        assert_eq!(texts(s.read_all().unwrap()), ["0", "1", "2"]);
        s.append(&numbered(3)).unwrap();
        assert_eq!(texts(s.read_all().unwrap()), ["0", "1", "2", "3"]);
    }
}

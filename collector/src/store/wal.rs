//! Keeps the part of SQLite's WAL that the writer writes next in the page
//! cache.
//!
//! Once a checkpoint has copied the whole WAL, the writer starts over at
//! its beginning. A WAL frame is a page plus a 24-byte header, so every
//! frame written covers part of a file page, which the kernel must read
//! from disk first when it is no longer cached. On a VM that reclaims idle
//! page cache within seconds, those synchronous reads stalled commits, and
//! every beacon waiting on them, for 50-250 ms. After each checkpoint this
//! asks the kernel to read the next pages ahead (`posix_fadvise`
//! `WILLNEED`, asynchronous), so the writer finds them cached.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Bytes read ahead: about half a second of WAL at full load.
const READ_AHEAD_BYTES: u64 = 16 << 20;
/// The WAL file's header, before its first frame.
const WAL_HEADER_BYTES: u64 = 32;
const FRAME_HEADER_BYTES: u64 = 24;

pub struct ReadAhead {
    path: PathBuf,
    /// Opened once the WAL exists; kept open (the writer's and the
    /// checkpointer's connections keep the WAL for the process's life).
    file: Option<File>,
    frame_bytes: u64,
}

impl ReadAhead {
    pub fn new(db: &Path, page_size: u64) -> ReadAhead {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        ReadAhead {
            path: path.into(),
            file: None,
            frame_bytes: page_size + FRAME_HEADER_BYTES,
        }
    }

    /// Where the writer writes next after a checkpoint that found `frames`
    /// frames in the WAL and had copied `copied` of them: at the start when
    /// all are copied (the next transaction restarts the WAL), else after
    /// the last frame.
    pub fn next_write_offset(&self, frames: i64, copied: i64) -> u64 {
        if frames <= 0 || copied >= frames {
            0
        } else {
            WAL_HEADER_BYTES + frames as u64 * self.frame_bytes
        }
    }

    /// Reads ahead from where the writer writes next (see
    /// [`ReadAhead::next_write_offset`]). Best effort: errors are ignored.
    pub fn after_checkpoint(&mut self, frames: i64, copied: i64) {
        let offset = self.next_write_offset(frames, copied);
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        if let Some(file) = &self.file {
            advise_will_need(file, offset, READ_AHEAD_BYTES);
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn advise_will_need(file: &File, offset: u64, len: u64) {
    use rustix::fs::{fadvise, Advice};
    let _ = fadvise(file, offset, std::num::NonZeroU64::new(len), Advice::WillNeed);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn advise_will_need(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_write_offset() {
        let r = ReadAhead::new(Path::new("/data/vitalsign.db"), 4096);
        assert_eq!(r.path, PathBuf::from("/data/vitalsign.db-wal"));
        // Empty, or all copied: the WAL restarts at its beginning.
        assert_eq!(r.next_write_offset(0, 0), 0);
        assert_eq!(r.next_write_offset(100, 100), 0);
        // Frames left to copy: the writer appends after frame 100.
        assert_eq!(r.next_write_offset(100, 40), 32 + 100 * 4120);
    }

    #[test]
    fn missing_wal_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ReadAhead::new(&dir.path().join("none.db"), 4096);
        r.after_checkpoint(10, 5);
        assert!(r.file.is_none());
    }
}

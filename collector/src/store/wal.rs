//! Keeps SQLite's WAL file in the page cache while the writer rewrites it.
//!
//! Once a checkpoint has copied the whole WAL, the writer starts over at
//! its beginning. A WAL frame is a page plus a 24-byte header, so every
//! frame written covers part of a file page, which the kernel must read
//! from disk first when it is no longer cached: a synchronous read inside
//! a commit, which every beacon waiting for the writer waits for.
//!
//! Proactive reclaim drops such pages while they are in use. On this
//! project's VM, DAMON pages out unmapped page cache in regions it finds
//! idle; a region is a few megabytes of physical memory judged by sampling,
//! so recently written WAL pages went too, and the writer blocked on 275
//! disk reads a second at full load. Reading ahead (`posix_fadvise`) helped
//! only until the next pass of reclaim. Pages mapped into a process are
//! what such reclaim leaves alone (and what ordinary reclaim keeps longest),
//! so the checkpointer thread maps the WAL read-only and faults its pages
//! in (`MADV_POPULATE_READ`); the mapping is never read. The pages stay
//! ordinary page cache: shared with the file, counted in the process's
//! resident size, and reclaimable under real memory pressure.
//!
//! Linux only; elsewhere [`Resident`] does nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most of the WAL kept mapped (address space only; the WAL stays far
/// below it: the writer restarts it every few seconds).
const MAX_MAPPED_BYTES: u64 = 1 << 30;
/// Pages the kernel removed from the mapping (a truncated and regrown WAL)
/// are mapped again by a pass over the whole WAL this often.
const FULL_PASS_EVERY: Duration = Duration::from_secs(1);

pub struct Resident {
    path: PathBuf,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    map: Option<linux::Mapping>,
    /// Bytes from the start of the WAL that are mapped and faulted in.
    populated: u64,
    last_full_pass: Instant,
}

impl Resident {
    pub fn new(db: &Path) -> Resident {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        Resident {
            path: path.into(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            map: None,
            populated: 0,
            last_full_pass: Instant::now(),
        }
    }

    /// Faults in the pages of the WAL not yet mapped: those it grew by
    /// since the last call, or all of it once a second. Best effort:
    /// errors (no WAL yet, an old kernel) leave things as they were.
    pub fn refresh(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            if self.map.is_none() {
                self.map = linux::Mapping::new(&self.path, MAX_MAPPED_BYTES);
            }
            let Some(map) = &self.map else { return };
            let Some(len) = map.file_len() else { return };
            let full = self.last_full_pass.elapsed() >= FULL_PASS_EVERY;
            if full {
                self.last_full_pass = Instant::now();
            }
            let page = rustix::param::page_size() as u64;
            let (from, to) = populate_range(self.populated, len.min(MAX_MAPPED_BYTES), full, page);
            // `from == to`: nothing to fault in, or the WAL shrank to `to`.
            if from == to || map.populate(from, to - from) {
                self.populated = to;
            }
        }
    }

    #[cfg(test)]
    fn populated(&self) -> u64 {
        self.populated
    }
}

/// The byte range to fault in, aligned to memory pages of `page` bytes,
/// for a WAL of `len` bytes of which the first `populated` were faulted in
/// before (all of it on a full pass). The last, partial page is faulted in
/// again next time, as it fills.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
fn populate_range(populated: u64, len: u64, full: bool, page: u64) -> (u64, u64) {
    let end = len / page * page;
    let start = if full { 0 } else { populated.min(end) / page * page };
    (start, end)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::fs::File;
    use std::path::Path;

    use rustix::mm::{madvise, mmap, munmap, Advice, MapFlags, ProtFlags};

    /// A read-only shared mapping of a file's first `len` bytes, which may
    /// run past its end (never read: only faulted in up to the end).
    pub struct Mapping {
        file: File,
        ptr: *mut std::ffi::c_void,
        len: usize,
    }

    // The mapping is only an address range handed to the kernel.
    unsafe impl Send for Mapping {}

    impl Mapping {
        pub fn new(path: &Path, len: u64) -> Option<Mapping> {
            let file = File::open(path).ok()?;
            let len = usize::try_from(len).ok()?;
            // SAFETY: a new mapping at an address the kernel picks; no Rust
            // reference into it is ever made.
            let ptr = unsafe { mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, &file, 0) }.ok()?;
            Some(Mapping { file, ptr, len })
        }

        pub fn file_len(&self) -> Option<u64> {
            self.file.metadata().ok().map(|m| m.len())
        }

        /// Faults in `[offset, offset + len)`, which must lie within the
        /// file and the mapping (faulting past the file's end fails).
        pub fn populate(&self, offset: u64, len: u64) -> bool {
            if offset.saturating_add(len) > self.len as u64 {
                return false;
            }
            // SAFETY: the range is inside the mapping; MADV_POPULATE_READ
            // only faults pages in, changing no memory.
            unsafe {
                let at = self.ptr.cast::<u8>().add(offset as usize).cast();
                madvise(at, len as usize, Advice::LinuxPopulateRead).is_ok()
            }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly what `new` mapped, once.
            let _ = unsafe { munmap(self.ptr, self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populate_range_is_page_aligned_and_incremental() {
        assert_eq!(populate_range(0, 0, false, 4096), (0, 0));
        // The header and a partial page: nothing whole yet.
        assert_eq!(populate_range(0, 32 + 4120, false, 4096), (0, 4096));
        // Grown: from the last whole page on.
        assert_eq!(populate_range(4096, 10 * 4120, false, 4096), (4096, 40960));
        // A full pass starts over.
        assert_eq!(populate_range(40960, 10 * 4120, true, 4096), (0, 40960));
        // Shrunk (truncated): the range ends at the new length.
        assert_eq!(populate_range(40960, 8192, false, 4096), (8192, 8192));
        // 64 KiB memory pages (some arm64 kernels).
        assert_eq!(populate_range(65536, 5 * 65536 + 7, false, 65536), (65536, 5 * 65536));
    }

    #[test]
    fn missing_wal_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Resident::new(&dir.path().join("none.db"));
        r.refresh();
        assert_eq!(r.populated(), 0);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_wal_is_mapped_as_it_grows() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let mut wal = std::fs::File::create(dir.path().join("x.db-wal")).unwrap();
        let mut r = Resident::new(&db);
        r.refresh();
        assert_eq!(r.populated(), 0);
        let page = rustix::param::page_size();
        wal.write_all(&vec![7u8; 3 * page + 100]).unwrap();
        r.refresh();
        assert_eq!(r.populated(), 3 * page as u64);
        wal.set_len(page as u64).unwrap();
        r.refresh();
        assert_eq!(r.populated(), page as u64);
        wal.set_len(5 * page as u64).unwrap();
        r.refresh();
        assert_eq!(r.populated(), 5 * page as u64);
    }
}

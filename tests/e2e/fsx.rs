//! fsx, the File System eXerciser of xfstests (`ltp/fsx.c`), rewritten in
//! Rust because it is not packaged: one file in a Live Folder, a seeded
//! random sequence of fsx's operations — read, write (at random offsets,
//! extending the file and leaving holes), mapread and mapwrite (`mmap`
//! with `MAP_SHARED`, `msync` after a mapwrite), truncate down and up,
//! `fsync` after each write (fsx `-y`) and close and reopen (fsx `-c`) —
//! with fsx's limits (files up to 256 KiB, operations up to 64 KiB). After
//! every operation the size (`fstat` and `lseek`) and every byte read are
//! compared with an in-memory model of the file, as fsx does, and a
//! mismatch is reported in fsx's style: the operation, the offsets and
//! bytes that differ, the operation that probably wrote them and the log
//! of the last operations.
//!
//! The same operations first run on a file in a local directory, as a
//! control that proves the model. Afterwards the file's final content
//! reaches a second device and stays the same after both remount.
//!
//! `MESHFS_SEED` repeats a run; `MESHFS_FSX_OPS` sets the number of
//! operations (the default fits in about two minutes on the project's test
//! machine; `MESHFS_FSX_OPS=100000` is the long run).

use mesh_e2e::{Device, Pair, Rng, SYNC, wait_until};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// fsx's default `-l`: the largest the file gets.
const MAX_FILE_LEN: usize = 256 * 1024;
/// fsx's default `-o`: the longest read, write or map.
const MAX_OP_LEN: usize = 64 * 1024;
/// fsx `-c`: close and reopen the file after one operation in this many.
const CLOSE_PROB: u32 = 64;
/// How many operations a run makes unless `MESHFS_FSX_OPS` says.
const DEFAULT_OPS: u64 = 2_000;
/// fsx `-p`: a progress line after this many operations.
const PROGRESS_EVERY: u64 = 1000;
/// How many of the last operations a failure report lists.
const LOG_SHOWN: usize = 100;

/// fsx's command-line choices that the tests vary.
#[derive(Clone, Copy, Debug)]
struct Options {
    /// Mapped reads and writes (fsx's default; `-R -W` turn them into
    /// plain reads and writes).
    mapped: bool,
    /// `fsync` after every write (fsx `-y`).
    fsync_writes: bool,
}

/// fsx's operations, in the order of its `OP_*` table (without the ones
/// meshfs does not offer: fallocate, hole punching, range cloning).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Read,
    Write,
    MapRead,
    MapWrite,
    Truncate,
}

const KINDS: [Kind; 5] = [
    Kind::Read,
    Kind::Write,
    Kind::MapRead,
    Kind::MapWrite,
    Kind::Truncate,
];

/// One entry of fsx's operation log.
#[derive(Clone, Copy, Debug)]
struct Logged {
    number: u64,
    kind: Kind,
    offset: usize,
    /// Bytes read or written; the new size of a truncate.
    size: usize,
    /// The file's size before the operation.
    file_size: usize,
    skipped: bool,
    close_open: bool,
}

impl Logged {
    /// fsx's `logdump` line; `bad` marks operations that touched the
    /// first bad byte.
    fn line(&self, bad: Option<usize>) -> String {
        let n = self.number;
        let mut line = format!("{n}({:3} mod 256): ", n % 256);
        let (offset, size) = (self.offset, self.size);
        let touches = |from: usize, to: usize| bad.is_some_and(|b| b >= from && b < to);
        if self.skipped {
            line.push_str("SKIPPED (no operation)");
        } else {
            let range = format!(
                "0x{offset:x} thru 0x{:x}\t(0x{size:x} bytes)",
                (offset + size).saturating_sub(1)
            );
            match self.kind {
                Kind::Read | Kind::MapRead => {
                    let name = if self.kind == Kind::Read {
                        "READ    "
                    } else {
                        "MAPREAD "
                    };
                    line.push_str(&format!("{name} {range}"));
                    if touches(offset, offset + size) {
                        line.push_str("\t***RRRR***");
                    }
                }
                Kind::Write | Kind::MapWrite => {
                    let name = if self.kind == Kind::Write {
                        "WRITE   "
                    } else {
                        "MAPWRITE"
                    };
                    line.push_str(&format!("{name} {range}"));
                    if offset > self.file_size {
                        line.push_str(" HOLE");
                    } else if offset + size > self.file_size {
                        line.push_str(" EXTEND");
                    }
                    if touches(offset.min(self.file_size), offset + size) {
                        line.push_str("\t***WWWW");
                    }
                }
                Kind::Truncate => {
                    let down = size < self.file_size;
                    line.push_str(&format!(
                        "TRUNCATE {}\tfrom 0x{:x} to 0x{size:x}",
                        if down { "DOWN" } else { "UP" },
                        self.file_size
                    ));
                    if touches(size.min(self.file_size), size.max(self.file_size)) {
                        line.push_str("\t******WWWW");
                    }
                }
            }
        }
        if self.close_open {
            line.push_str("\n\t\tCLOSE/OPEN");
        }
        line
    }
}

/// A `MAP_SHARED` mapping of whole pages of the file.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes (rounded up to whole pages) from `start`, a
    /// multiple of the page size.
    fn new(file: &File, start: usize, len: usize, writable: bool) -> std::io::Result<Mapping> {
        let len = len.next_multiple_of(page_size());
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a new mapping chosen by the kernel, of a descriptor that
        // stays open while it exists; fsx's callers keep `start + len`
        // within the page that holds the end of the file, so no access
        // faults.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                start as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` mapped, readable bytes, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, mapped writable by `new(.., true)` (the
        // only caller); no other reference to the mapping exists.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// `msync(MS_SYNC)` of the whole mapping.
    fn sync(&self) -> std::io::Result<()> {
        // SAFETY: the range is this live mapping.
        let rc = unsafe { libc::msync(self.ptr.cast(), self.len, libc::MS_SYNC) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// `munmap`, with its answer.
    fn unmap(self) -> std::io::Result<()> {
        let (ptr, len) = (self.ptr, self.len);
        std::mem::forget(self);
        // SAFETY: the mapping made by `new`, unmapped once.
        let rc = unsafe { libc::munmap(ptr.cast(), len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made by `new`; `unmap` forgets `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// fsx's 31-bit `random()`.
fn random(rng: &mut Rng) -> usize {
    (rng.next_u64() >> 33) as usize
}

/// fsx's `TRIM_OFF_LEN`: the offset modulo `limit`, the length cut at it.
fn trim(offset: usize, size: usize, limit: usize) -> (usize, usize) {
    let offset = if limit == 0 { 0 } else { offset % limit };
    (offset, size.min(limit - offset))
}

/// One fsx run on one file: the model (`good`, fsx's `good_buf`, as long
/// as the file should be) and the log.
struct Fsx {
    path: PathBuf,
    file: Option<File>,
    options: Options,
    seed: u64,
    rng: Rng,
    /// fsx's `original_buf`: random bytes mixed into what odd offsets get.
    original: Vec<u8>,
    good: Vec<u8>,
    /// fsx's `testcalls`: the number of the operation under way.
    number: u64,
    log: VecDeque<Logged>,
}

/// What fsx prints when a run fails.
type Report = String;

impl Fsx {
    /// Runs `ops` operations of the sequence for `seed` on a new file at
    /// `path`; returns the file's final content (checked against the
    /// model), or fsx's report of the first failure.
    fn run(path: &Path, seed: u64, options: Options, ops: u64) -> Result<Vec<u8>, Report> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut rng = Rng::new(seed);
        let original = (0..MAX_FILE_LEN).map(|_| random(&mut rng) as u8).collect();
        let mut fsx = Fsx {
            path: path.to_owned(),
            file: Some(file),
            options,
            seed,
            rng,
            original,
            good: Vec::new(),
            number: 0,
            log: VecDeque::new(),
        };
        fsx.check_trunc_hack()?;
        let start = Instant::now();
        let mut lap = start;
        while fsx.number < ops {
            fsx.step()?;
            if fsx.number.is_multiple_of(PROGRESS_EVERY) {
                eprintln!(
                    "fsx {}: {} operations done, the last {PROGRESS_EVERY} in {:.1} s",
                    path.display(),
                    fsx.number,
                    lap.elapsed().as_secs_f64()
                );
                lap = Instant::now();
            }
        }
        fsx.check_contents()?;
        fsx.close()
            .map_err(|e| fsx.failure(&format!("close: {e}"), None))?;
        eprintln!(
            "fsx {}: all {ops} operations completed A-OK! ({:.1} s)",
            path.display(),
            start.elapsed().as_secs_f64()
        );
        Ok(fsx.good)
    }

    fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("the file is open between operations")
    }

    /// fsx's `test()`: one random operation, then close/open and the size
    /// check.
    fn step(&mut self) -> Result<(), Report> {
        self.number += 1;
        let rv = random(&mut self.rng);
        let close_open = (rv >> 3) < (1 << 28) / CLOSE_PROB as usize;
        let offset = random(&mut self.rng);
        let size = random(&mut self.rng) % (MAX_OP_LEN + 1);
        let kind = match KINDS[rv % KINDS.len()] {
            Kind::MapRead if !self.options.mapped => Kind::Read,
            Kind::MapWrite if !self.options.mapped => Kind::Write,
            kind => kind,
        };
        let file_size = self.good.len();
        match kind {
            Kind::Read | Kind::MapRead => {
                let (offset, size) = trim(offset, size, file_size);
                self.read(kind, offset, size, close_open)?;
            }
            Kind::Write | Kind::MapWrite => {
                let (offset, size) = trim(offset, size, MAX_FILE_LEN);
                self.write(kind, offset, size, close_open)?;
            }
            Kind::Truncate => {
                let size = random(&mut self.rng) % MAX_FILE_LEN;
                self.log(kind, 0, size, false, close_open);
                self.file()
                    .set_len(size as u64)
                    .map_err(|e| self.failure(&format!("dotruncate: ftruncate: {e}"), None))?;
                self.good.resize(size, 0);
            }
        }
        if close_open {
            self.close_open()?;
        }
        self.check_size()
    }

    fn log(&mut self, kind: Kind, offset: usize, size: usize, skipped: bool, close_open: bool) {
        if self.log.len() == LOG_SHOWN {
            self.log.pop_front();
        }
        self.log.push_back(Logged {
            number: self.number,
            kind,
            offset,
            size,
            file_size: self.good.len(),
            skipped,
            close_open,
        });
    }

    /// `doread` and `domapread`.
    fn read(
        &mut self,
        kind: Kind,
        offset: usize,
        size: usize,
        close_open: bool,
    ) -> Result<(), Report> {
        if size == 0 {
            self.log(kind, offset, size, true, close_open);
            return Ok(());
        }
        self.log(kind, offset, size, false, close_open);
        let seen = if kind == Kind::Read {
            let mut buf = vec![0; size];
            let n = self
                .file()
                .read_at(&mut buf, offset as u64)
                .map_err(|e| self.failure(&format!("doread: read: {e}"), None))?;
            if n != size {
                return Err(self.failure(
                    &format!("short read: 0x{n:x} bytes instead of 0x{size:x}"),
                    None,
                ));
            }
            buf
        } else {
            let page = page_size();
            let pg_offset = offset % page;
            let map = Mapping::new(self.file(), offset - pg_offset, pg_offset + size, false)
                .map_err(|e| self.failure(&format!("domapread: mmap: {e}"), None))?;
            let buf = map.bytes()[pg_offset..pg_offset + size].to_vec();
            self.check_eof_page("Read", offset - pg_offset, offset + size, map.bytes())?;
            map.unmap()
                .map_err(|e| self.failure(&format!("domapread: munmap: {e}"), None))?;
            buf
        };
        self.check_buffers(&seen, offset)
    }

    /// fsx's `gendata`: the operation's number in every byte, plus the
    /// original random byte at odd offsets.
    fn gendata(&mut self, offset: usize, size: usize) {
        if offset + size > self.good.len() {
            self.good.resize(offset + size, 0);
        }
        let stamp = (self.number % 256) as u8;
        for at in offset..offset + size {
            self.good[at] = if at % 2 == 1 {
                stamp.wrapping_add(self.original[at])
            } else {
                stamp
            };
        }
    }

    /// `dowrite` (with `fsync` under `-y`) and `domapwrite`.
    fn write(
        &mut self,
        kind: Kind,
        offset: usize,
        size: usize,
        close_open: bool,
    ) -> Result<(), Report> {
        if size == 0 {
            self.log(kind, offset, size, true, close_open);
            return Ok(());
        }
        self.log(kind, offset, size, false, close_open);
        let old_size = self.good.len();
        self.gendata(offset, size);
        let data = &self.good[offset..offset + size];
        if kind == Kind::Write {
            let n = self
                .file()
                .write_at(data, offset as u64)
                .map_err(|e| self.failure(&format!("dowrite: write: {e}"), None))?;
            if n != size {
                return Err(self.failure(
                    &format!("short write: 0x{n:x} bytes instead of 0x{size:x}"),
                    None,
                ));
            }
            if self.options.fsync_writes {
                self.file()
                    .sync_all()
                    .map_err(|e| self.failure(&format!("fsync() failed: {e}"), None))?;
            }
            return Ok(());
        }
        if self.good.len() > old_size {
            self.file()
                .set_len(self.good.len() as u64)
                .map_err(|e| self.failure(&format!("domapwrite: ftruncate: {e}"), None))?;
        }
        let page = page_size();
        let pg_offset = offset % page;
        let mut map = Mapping::new(self.file(), offset - pg_offset, pg_offset + size, true)
            .map_err(|e| self.failure(&format!("domapwrite: mmap: {e}"), None))?;
        map.bytes_mut()[pg_offset..pg_offset + size]
            .copy_from_slice(&self.good[offset..offset + size]);
        map.sync()
            .map_err(|e| self.failure(&format!("domapwrite: msync: {e}"), None))?;
        self.check_eof_page("Write", offset - pg_offset, offset + size, map.bytes())?;
        map.unmap()
            .map_err(|e| self.failure(&format!("domapwrite: munmap: {e}"), None))
    }

    /// fsx's `check_eofpage`: when `end` lies in the file's last, partial
    /// page, the bytes of that page past the end of the file read zero.
    /// `map` holds the file's bytes from `start`.
    fn check_eof_page(
        &self,
        what: &str,
        start: usize,
        end: usize,
        map: &[u8],
    ) -> Result<(), Report> {
        let page = page_size();
        let size = self.good.len();
        if end <= size - size % page {
            return Ok(());
        }
        let past = &map[size - start..size.next_multiple_of(page) - start];
        match past.iter().position(|&b| b != 0) {
            None => Ok(()),
            Some(i) => Err(self.failure(
                &format!(
                    "Mapped {what}: non-zero data past EOF (0x{:x}) page offset 0x{:x} is 0x{:02x}",
                    size.saturating_sub(1),
                    (size + i) % page,
                    past[i]
                ),
                None,
            )),
        }
    }

    /// fsx's `check_buffers`: `seen`, read at `offset`, is what the model
    /// holds there; else the table of bad bytes.
    fn check_buffers(&self, seen: &[u8], offset: usize) -> Result<(), Report> {
        let good = &self.good[offset..offset + seen.len()];
        if good == seen {
            return Ok(());
        }
        let mut lines = vec![
            format!(
                "READ BAD DATA: offset = 0x{offset:x}, size = 0x{:x}, fname = {}",
                seen.len(),
                self.path.display()
            ),
            format!("{:<10}  {:<6}  {:<6}  RANGE", "OFFSET", "GOOD", "BAD"),
        ];
        let bad: Vec<usize> = (0..seen.len()).filter(|&i| good[i] != seen[i]).collect();
        for (n, &i) in bad.iter().take(16).enumerate() {
            lines.push(format!(
                "0x{:<8x}  0x{:02x}    0x{:02x}    0x{n:x}",
                offset + i,
                good[i],
                seen[i]
            ));
            // Even offsets hold the writing operation's number alone.
            let stamp = seen.get(i + (offset + i) % 2).copied().unwrap_or(0);
            lines.push(if stamp != 0 {
                format!("operation# (mod 256) for the bad data may be {stamp}")
            } else {
                "operation# (mod 256) for the bad data unknown, check HOLE and EXTEND ops"
                    .to_owned()
            });
        }
        lines.push(format!("{} bad byte(s) of 0x{:x}", bad.len(), seen.len()));
        Err(self.failure(&lines.join("\n"), Some(offset + bad[0])))
    }

    /// fsx's `check_size`: `fstat` and `lseek(SEEK_END)` agree with the
    /// model.
    fn check_size(&self) -> Result<(), Report> {
        let expected = self.good.len() as u64;
        let stat = self.file().metadata().map(|m| m.len());
        let mut file = self.file();
        let seek = file.seek(SeekFrom::End(0));
        match (stat, seek) {
            (Ok(stat), Ok(seek)) if stat == expected && seek == expected => Ok(()),
            (stat, seek) => Err(self.failure(
                &format!("Size error: expected 0x{expected:x} stat {stat:x?} seek {seek:x?}"),
                None,
            )),
        }
    }

    /// fsx's `check_trunc_hack`: the file can be extended by `ftruncate`.
    fn check_trunc_hack(&self) -> Result<(), Report> {
        let file = self.file();
        let size = self.good.len() as u64;
        let extended = size + 100_000;
        let answer = file
            .set_len(size)
            .and_then(|()| file.set_len(extended))
            .and_then(|()| file.metadata());
        match answer {
            Ok(meta) if meta.len() == extended => {}
            Ok(meta) => {
                return Err(self.failure(
                    &format!("no extend on truncate! not posix! (size {})", meta.len()),
                    None,
                ));
            }
            Err(e) => return Err(self.failure(&format!("check_trunc_hack: ftruncate: {e}"), None)),
        }
        file.set_len(size)
            .map_err(|e| self.failure(&format!("check_trunc_hack: ftruncate: {e}"), None))
    }

    /// The whole file reads as the model says (fsx `-X`'s
    /// `check_contents`, made once at the end).
    fn check_contents(&self) -> Result<(), Report> {
        let mut seen = vec![0; self.good.len()];
        let n = self
            .file()
            .read_at(&mut seen, 0)
            .map_err(|e| self.failure(&format!("check_contents: read: {e}"), None))?;
        if n != seen.len() {
            return Err(self.failure(
                &format!(
                    "short check read: 0x{n:x} bytes instead of 0x{:x}",
                    seen.len()
                ),
                None,
            ));
        }
        self.check_buffers(&seen, 0)
    }

    /// `close(2)`, with its answer (dropping a `File` ignores it).
    fn close(&mut self) -> std::io::Result<()> {
        let fd = self.file.take().expect("the file is open").into_raw_fd();
        // SAFETY: `fd` was just released by its `File`; closed once.
        if unsafe { libc::close(fd) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// fsx's `docloseopen`: close, drop the cached pages, open again.
    /// fsx drops the whole machine's caches; dropping this file's pages
    /// does the same for it without slowing everything else down.
    fn close_open(&mut self) -> Result<(), Report> {
        // SAFETY: advice on an open descriptor; no memory involved.
        let rc = unsafe {
            libc::posix_fadvise(self.file().as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
        };
        if rc != 0 {
            let e = std::io::Error::from_raw_os_error(rc);
            return Err(self.failure(&format!("docloseopen: fadvise: {e}"), None));
        }
        self.close()
            .map_err(|e| self.failure(&format!("docloseopen: close: {e}"), None))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.failure(&format!("docloseopen: open: {e}"), None))?;
        self.file = Some(file);
        Ok(())
    }

    /// fsx's failure report: what went wrong, then the log.
    fn failure(&self, what: &str, bad: Option<usize>) -> Report {
        let mut lines = vec![
            format!(
                "fsx of {} (MESHFS_SEED={}, {:?}) failed at operation {}:",
                self.path.display(),
                self.seed,
                self.options,
                self.number
            ),
            what.to_owned(),
            format!(
                "LOG DUMP ({} total operations, the last {} shown):",
                self.number,
                self.log.len()
            ),
        ];
        lines.extend(self.log.iter().map(|entry| entry.line(bad)));
        lines.join("\n")
    }
}

/// `MESHFS_FSX_OPS`, else [`DEFAULT_OPS`].
fn ops_from_env() -> u64 {
    match std::env::var("MESHFS_FSX_OPS") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            panic!("MESHFS_FSX_OPS must be a number of operations, not {text:?}")
        }),
        Err(_) => DEFAULT_OPS,
    }
}

/// Where `seen` first differs from `expected`, described; `None` when
/// they are equal.
fn first_difference(expected: &[u8], seen: &[u8]) -> Option<String> {
    if expected == seen {
        return None;
    }
    let at = expected
        .iter()
        .zip(seen)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(seen.len()));
    Some(format!(
        "{} bytes where {} were expected; first difference at 0x{at:x}: expected {:02x?}, seen {:02x?}",
        seen.len(),
        expected.len(),
        expected.get(at..(at + 8).min(expected.len())),
        seen.get(at..(at + 8).min(seen.len()))
    ))
}

/// Waits until `device` reads `rel` as `expected`.
fn wait_for_content(device: &Device, rel: &str, expected: &[u8], when: &str) {
    let path = device.path(rel);
    let deadline = SYNC * 3;
    let start = Instant::now();
    loop {
        let difference = match std::fs::read(&path) {
            Ok(seen) => first_difference(expected, &seen),
            Err(e) => Some(format!("reading it failed: {e}")),
        };
        let Some(difference) = difference else {
            return;
        };
        assert!(
            start.elapsed() < deadline,
            "{rel} on device {} {when}, after {deadline:?}: {difference}",
            device.name()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The control on a local directory, then fsx on a Live Folder of device a
/// with the same seed; then the content on device b, and on both after a
/// remount.
fn fsx_on_a_live_folder(what: &str, options: Options) {
    let ops = ops_from_env();
    let (_, seed) = Rng::from_env(&format!("fsx {what}"));
    let local = tempfile::tempdir().unwrap();
    let expected =
        Fsx::run(&local.path().join("fsx.bin"), seed, options, ops).unwrap_or_else(|report| {
            panic!(
                "the control on a local directory failed, so the test's model is wrong:\n{report}"
            )
        });

    let mut mesh = Pair::start();
    mesh.live_folder("Fsx");
    let rel = "Fsx/fsx.bin";
    if let Err(report) = Fsx::run(&mesh.a.path(rel), seed, options, ops) {
        panic!("{report}");
    }
    wait_for_content(&mesh.b, rel, &expected, "after the run");
    for device in [&mesh.a, &mesh.b] {
        wait_until(
            &format!("{} has nothing pending", device.name()),
            SYNC,
            || device.status()["pending_changes"] == 0,
        );
    }
    mesh.a.remount();
    mesh.b.remount();
    wait_for_content(&mesh.a, rel, &expected, "after a remount");
    wait_for_content(&mesh.b, rel, &expected, "after a remount");
    assert!(
        !mesh.a.log().contains("concurrent change won"),
        "a single writer never conflicts with itself"
    );
}

#[test]
fn fsx_with_mapped_reads_and_writes_matches_its_model_and_reaches_the_other_device() {
    fsx_on_a_live_folder(
        "with mmap",
        Options {
            mapped: true,
            fsync_writes: false,
        },
    );
}

#[test]
fn fsx_with_fsync_after_every_write_matches_its_model_and_reaches_the_other_device() {
    fsx_on_a_live_folder(
        "with fsync after writes",
        Options {
            mapped: false,
            fsync_writes: true,
        },
    );
}

//! Differential testing of the core with its syncer running: a seeded
//! stream of random operations — writes at random offsets, truncation,
//! renames over existing targets and back, mkdir, rmdir, unlink, and
//! descriptors kept open across renames and unlinks — applied to a Live
//! Folder and to a plain local directory alike. Every answer (success or
//! errno) must be the local directory's, the whole tree must match it at
//! every checkpoint while pushes and their echoes race with the next
//! operations, and once everything has settled a second device must show
//! the same tree. Nothing here may count as a conflict: one device writes.
//!
//! `MESHFS_SEED` repeats a run; `MESHFS_RANDOM_OPS` makes it longer (the
//! test command runs a short one with a fresh seed).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::mount::core::attrs::{SetAttr, SetIdBits};

/// splitmix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const DIRS: &[&str] = &["", "x/", "y/", "x/z/"];
const NAMES: &[&str] = &["a", "b.txt", "x", "y", "z", "db", "db-journal"];

/// One descriptor open on both sides.
struct Open {
    fh: u64,
    file: std::fs::File,
    what: String,
}

/// The errno of a local result, as a number.
fn local<T>(r: std::io::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

fn mesh<T>(r: Result<T, FsError>) -> Result<T, i32> {
    r.map_err(|e| e.errno())
}

struct Run {
    device: Device,
    folder: u64,
    dir: PathBuf,
    open: Vec<Open>,
    log: Vec<String>,
}

impl Run {
    /// The inode of `rel` inside the Live Folder, walked as the kernel
    /// walks a path (a file in the middle is ENOTDIR).
    fn resolve(&self, rel: &str) -> Result<u64, i32> {
        self.walk(rel).map(|(ino, _)| ino)
    }

    fn walk(&self, rel: &str) -> Result<(u64, EntryKind), i32> {
        let mut at = (self.folder, EntryKind::Dir);
        for name in rel.split('/').filter(|n| !n.is_empty()) {
            if at.1 != EntryKind::Dir {
                return Err(libc::ENOTDIR);
            }
            let attr = mesh(self.device.core.lookup(at.0, name))?;
            at = (attr.ino, attr.kind);
        }
        Ok(at)
    }

    /// The parent inode and the last name of `rel`.
    fn parent(&self, rel: &str) -> Result<(u64, String), i32> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        match self.walk(dir)? {
            (ino, EntryKind::Dir) => Ok((ino, name.to_owned())),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn check(&self, op: &str, ours: Result<(), i32>, theirs: Result<(), i32>) {
        assert_eq!(
            ours,
            theirs,
            "{op}: the mesh answered {ours:?}, a local directory {theirs:?}\n{}",
            self.history()
        );
    }

    fn history(&self) -> String {
        let from = self.log.len().saturating_sub(40);
        format!("the last operations:\n  {}", self.log[from..].join("\n  "))
    }

    fn step(&mut self, rng: &mut Rng) {
        let path = format!("{}{}", rng.pick(DIRS), rng.pick(NAMES));
        let choice = rng.below(100);
        let op = match choice {
            0..=29 => {
                let offset = rng.below(3) as u64 * 40_000 + rng.below(5000) as u64;
                let len = 1 + rng.below(20_000);
                let data = pseudo_bytes(rng.next(), len);
                let op = format!("write {path} at {offset}, {len} bytes");
                let ours = self.write(&path, offset, &data);
                let theirs = local(
                    OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(self.path(&path))
                        .and_then(|f| f.write_all_at(&data, offset)),
                );
                self.check(&op, ours, theirs);
                op
            }
            30..=37 => {
                let size = rng.below(3) as u64 * 30_000;
                let op = format!("truncate {path} to {size}");
                if self.path(&path).is_dir() {
                    return;
                }
                let ours = self.resolve(&path).and_then(|ino| {
                    let set = SetAttr {
                        size: Some(size),
                        ..SetAttr::default()
                    };
                    mesh(self.device.core.setattr(ino, set)).map(drop)
                });
                let theirs = local(
                    OpenOptions::new()
                        .write(true)
                        .open(self.path(&path))
                        .and_then(|f| f.set_len(size)),
                );
                self.check(&op, ours, theirs);
                op
            }
            38..=57 => {
                let to = format!("{}{}", rng.pick(DIRS), rng.pick(NAMES));
                let op = format!("rename {path} -> {to}");
                if path.starts_with(&format!("{to}/")) {
                    // The kernel answers this one itself (ENOTEMPTY).
                    return;
                }
                let ours = self.parent(&path).and_then(|(p, n)| {
                    let (np, nn) = self.parent(&to)?;
                    mesh(self.device.core.rename(p, &n, np, &nn, false))
                });
                let theirs = local(std::fs::rename(self.path(&path), self.path(&to)));
                self.check(&op, ours, theirs);
                op
            }
            58..=65 => {
                let op = format!("mkdir {path}");
                let ours = self.parent(&path).and_then(|(p, n)| {
                    mesh(self.device.core.make_node(p, &n, new_node(EntryKind::Dir))).map(drop)
                });
                let theirs = local(std::fs::create_dir(self.path(&path)));
                self.check(&op, ours, theirs);
                op
            }
            66..=71 => {
                let op = format!("rmdir {path}");
                let ours = self
                    .parent(&path)
                    .and_then(|(p, n)| mesh(self.device.core.rmdir(p, &n)));
                let theirs = local(std::fs::remove_dir(self.path(&path)));
                self.check(&op, ours, theirs);
                op
            }
            72..=79 => {
                let op = format!("unlink {path}");
                let ours = self
                    .parent(&path)
                    .and_then(|(p, n)| mesh(self.device.core.unlink(p, &n)));
                let theirs = local(std::fs::remove_file(self.path(&path)));
                self.check(&op, ours, theirs);
                op
            }
            80..=85 => {
                // Keep a descriptor open for later operations.
                if self.open.len() >= 4 || !self.path(&path).is_file() {
                    return;
                }
                let op = format!("open {path} for writing (#{})", self.open.len());
                let fh = self
                    .resolve(&path)
                    .and_then(|ino| mesh(self.device.core.open(ino, true, false)));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.path(&path));
                let (Ok(fh), Ok(file)) = (fh, file) else {
                    panic!("{op}: one side could not open it\n{}", self.history());
                };
                self.open.push(Open {
                    fh,
                    file,
                    what: path.clone(),
                });
                op
            }
            86..=93 => {
                if self.open.is_empty() {
                    return;
                }
                let i = rng.below(self.open.len());
                let offset = rng.below(60_000) as u64;
                let data = pseudo_bytes(rng.next(), 1 + rng.below(8000));
                let op = format!(
                    "write {} bytes at {offset} through #{i} (opened as {})",
                    data.len(),
                    self.open[i].what
                );
                let ours = mesh(self.device.core.write(
                    self.open[i].fh,
                    offset,
                    &data,
                    SetIdBits::Keep,
                ))
                .map(drop);
                let theirs = local(self.open[i].file.write_all_at(&data, offset));
                self.check(&op, ours, theirs);
                if rng.below(3) == 0 {
                    let fsync = mesh(self.device.core.fsync(self.open[i].fh));
                    self.check(&format!("{op}, then fsync"), fsync, Ok(()));
                }
                // What the descriptor reads is what it wrote.
                let end = offset + data.len() as u64;
                let read = mesh(
                    self.device
                        .core
                        .read(self.open[i].fh, offset, data.len() as u32),
                );
                assert_eq!(
                    read.as_deref().map(<[u8]>::len),
                    Ok(data.len()),
                    "{op}: reading back through the descriptor\n{}",
                    self.history()
                );
                assert!(
                    read.unwrap() == data,
                    "{op}: read back other bytes (to {end})"
                );
                op
            }
            _ => {
                if self.open.is_empty() {
                    return;
                }
                let i = rng.below(self.open.len());
                let open = self.open.remove(i);
                let op = format!("close #{i} (opened as {})", open.what);
                let ours = mesh(self.device.core.release(open.fh));
                self.check(&op, ours, Ok(()));
                op
            }
        };
        self.log.push(op);
    }

    /// Creates or opens the file and writes `data` at `offset`.
    fn write(&self, rel: &str, offset: u64, data: &[u8]) -> Result<(), i32> {
        let core = &self.device.core;
        let (parent, name) = self.parent(rel)?;
        let fh = match core.lookup(parent, &name) {
            Ok(attr) => mesh(core.open(attr.ino, true, false))?,
            Err(FsError::NotFound) => mesh(core.create(parent, &name, 0o644, 1000, 1000))?.1,
            Err(e) => return Err(e.errno()),
        };
        let written = mesh(core.write(fh, offset, data, SetIdBits::Keep));
        mesh(core.release(fh))?;
        written.map(drop)
    }

    /// Compares the whole tree with the local directory's.
    fn compare(&self, device: &Device, when: &str) {
        let ours: BTreeMap<String, Vec<u8>> = device
            .tree()
            .into_iter()
            .map(|(path, content)| (path["Docs/".len()..].to_owned(), content))
            .collect();
        let mut theirs = BTreeMap::new();
        local_files(&self.dir, "", &mut theirs);
        let mut dirs_ours = Vec::new();
        dirs_of(device, device.ino("Docs").unwrap(), "", &mut dirs_ours);
        let mut dirs_theirs = Vec::new();
        local_dirs(&self.dir, "", &mut dirs_theirs);
        if ours != theirs || dirs_ours != dirs_theirs {
            let differ: Vec<String> = ours
                .keys()
                .chain(theirs.keys())
                .filter(|k| ours.get(*k) != theirs.get(*k))
                .map(|k| {
                    format!(
                        "{k}: mesh {:?}, local {:?}",
                        ours.get(k).map(Vec::len),
                        theirs.get(k).map(Vec::len)
                    )
                })
                .collect();
            panic!(
                "{when}: the trees differ\n  files: {differ:?}\n  directories: mesh {dirs_ours:?}, local {dirs_theirs:?}\n{}",
                self.history()
            );
        }
    }
}

fn pseudo_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

fn local_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = format!("{prefix}{name}");
        if entry.file_type().unwrap().is_dir() {
            local_files(&entry.path(), &format!("{path}/"), out);
        } else {
            out.insert(path, std::fs::read(entry.path()).unwrap());
        }
    }
}

fn local_dirs(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_type().unwrap().is_dir() {
            let path = format!("{prefix}{}", entry.file_name().into_string().unwrap());
            out.push(path.clone());
            local_dirs(&entry.path(), &format!("{path}/"), out);
        }
    }
}

fn dirs_of(device: &Device, dir: u64, prefix: &str, out: &mut Vec<String>) {
    let mut entries = device.core.list_all(dir).unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries {
        if entry.attr.kind == EntryKind::Dir && entry.name != "." && entry.name != ".." {
            let path = format!("{prefix}{}", entry.name);
            out.push(path.clone());
            dirs_of(device, entry.attr.ino, &format!("{path}/"), out);
        }
    }
}

fn seed() -> u64 {
    match std::env::var("MESHFS_SEED") {
        Ok(s) => s.parse().expect("MESHFS_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

#[test]
fn random_operations_with_sync_running_match_a_local_directory() {
    let seed = seed();
    let ops: usize = std::env::var("MESHFS_RANDOM_OPS")
        .ok()
        .map(|n| n.parse().expect("MESHFS_RANDOM_OPS is a number"))
        .unwrap_or(1500);
    eprintln!("differential run: MESHFS_SEED={seed} MESHFS_RANDOM_OPS={ops}");
    let mesh = Mesh::new();
    let laptop = mesh.device("laptop");
    let folder = laptop.mkdir(ROOT, "Docs");
    mesh.start(&laptop);
    let local_dir = tempfile::tempdir().unwrap();
    let mut run = Run {
        device: laptop,
        folder,
        dir: local_dir.path().to_owned(),
        open: Vec::new(),
        log: Vec::new(),
    };
    let mut rng = Rng(seed);
    for i in 0..ops {
        run.step(&mut rng);
        if i % 250 == 249 {
            run.compare(&run.device, &format!("after {} operations", i + 1));
        }
    }
    for open in std::mem::take(&mut run.open) {
        run.device.core.release(open.fh).unwrap();
    }
    run.compare(&run.device, "with every descriptor closed");
    wait_until("the outbox drains", || run.device.outbox_len() == 0);
    run.compare(&run.device, "once everything is pushed");
    assert_eq!(
        run.device.outbox().conflicts_created,
        0,
        "one device's own changes never conflict\n{}",
        run.history()
    );
    let phone = mesh.device("phone");
    mesh.sync(&phone);
    run.compare(&phone, "on a second device");
}

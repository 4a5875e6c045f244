//! Differential testing through the kernel: one seeded stream of random
//! operations — writes at random offsets, appends, truncation, renames of
//! files and directories over existing targets and back, mkdir, rmdir,
//! unlink, symlinks, hard links, chmod, utimes, `user.*` extended
//! attributes, fsync, and descriptors kept open across renames and unlinks
//! — applied with plain system calls to a Live Folder of a real mount and
//! to a plain local directory alike. Every answer (success or errno) must
//! be the local directory's, and the whole tree (names, kinds, sizes,
//! content, modes, link targets, link counts, extended attributes) must
//! match it every few hundred operations while sync runs underneath; then,
//! once everything settled, on a second device; then after a remount.
//!
//! `MESHFS_SEED` repeats a run; `MESHFS_RANDOM_OPS` sets its length (the
//! test command runs a short one with a fresh seed each time).

use mesh_e2e::{Pair, Rng, SYNC, wait_until};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const DIRS: &[&str] = &["", "d/", "e/", "d/f/"];
const NAMES: &[&str] = &["a", "b.txt", "d", "e", "f", "db", "db-journal"];
const MODES: &[u32] = &[0o644, 0o600, 0o755, 0o700, 0o640];

/// What a call answered: success, or its errno.
type Answer = Result<(), i32>;

fn answer<T>(r: std::io::Result<T>) -> Answer {
    r.map(drop).map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let name = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::lsetxattr(
            cpath(p).as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn remove_xattr(p: &Path, name: &str) -> std::io::Result<()> {
    let name = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings.
    let r = unsafe { libc::lremovexattr(cpath(p).as_ptr(), name.as_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `user.*` attributes of `p` with their values.
fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let path = cpath(p);
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is as long as we say.
    let n = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return BTreeMap::new();
    }
    names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| n.starts_with(b"user."))
        .map(|name| {
            let cname = CString::new(name).unwrap();
            let mut value = vec![0u8; 4096];
            // SAFETY: as above.
            let len = unsafe {
                libc::lgetxattr(
                    path.as_ptr(),
                    cname.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            value.truncate(len.max(0) as usize);
            (String::from_utf8_lossy(name).into_owned(), value)
        })
        .collect()
}

fn set_mtime(p: &Path, seconds: i64) -> std::io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: seconds,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: seconds,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cpath(p).as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// What a path holds, as a user would check it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    mode: u32,
    size: u64,
    /// A hash of the bytes (the test's own process only compares them).
    content: Option<u64>,
    target: Option<PathBuf>,
    nlink: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
    /// Set by utimes only; other changes set it to "now", which differs
    /// between the two sides.
    mtime: Option<i64>,
}

/// Every path under `root` and what it holds. `mtimes` are those a test
/// set with utimes and nothing changed since, to compare too.
fn tree(root: &Path, mtimes: &BTreeMap<String, i64>) -> BTreeMap<String, Seen> {
    fn walk(
        root: &Path,
        dir: &Path,
        mtimes: &BTreeMap<String, i64>,
        out: &mut BTreeMap<String, Seen>,
    ) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = if meta.is_dir() {
                "dir"
            } else if meta.file_type().is_symlink() {
                "symlink"
            } else {
                "file"
            };
            let seen = Seen {
                kind,
                mode: if kind == "symlink" {
                    0
                } else {
                    meta.mode() & 0o7777
                },
                size: if kind == "file" { meta.len() } else { 0 },
                content: (kind == "file").then(|| content_hash(&fs::read(&path).unwrap())),
                target: (kind == "symlink").then(|| fs::read_link(&path).unwrap()),
                nlink: if kind == "dir" { 0 } else { meta.nlink() },
                xattrs: if kind == "symlink" {
                    BTreeMap::new()
                } else {
                    xattrs(&path)
                },
                mtime: mtimes.get(&rel).map(|_| meta.mtime()),
            };
            out.insert(rel, seen);
            if kind == "dir" {
                walk(root, &path, mtimes, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, mtimes, &mut out);
    out
}

/// Where two trees differ, one line each.
fn differences(expected: &BTreeMap<String, Seen>, seen: &BTreeMap<String, Seen>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want) in expected {
        match seen.get(path) {
            None => out.push(format!("missing {path}: {want:?}")),
            Some(got) if got != want => {
                out.push(format!("{path}: expected {want:?}, seen {got:?}"))
            }
            _ => {}
        }
    }
    for path in seen.keys().filter(|p| !expected.contains_key(*p)) {
        out.push(format!("unexpected {path}: {:?}", seen[path]));
    }
    out
}

/// A descriptor open on both sides, with the path it was opened by.
struct Kept {
    mesh: fs::File,
    local: fs::File,
    what: String,
}

struct Run {
    mesh: PathBuf,
    local: PathBuf,
    rng: Rng,
    kept: Vec<Kept>,
    /// Paths whose mtime was set by utimes and not changed since.
    mtimes: BTreeMap<String, i64>,
    log: Vec<String>,
}

impl Run {
    /// A path to work on: half the time one that exists (so that most
    /// calls do something), else one from a small pool (so that names
    /// collide, and some calls fail as they should).
    fn path(&mut self) -> String {
        if self.rng.one_in(2) {
            let existing: Vec<String> = tree(&self.local, &BTreeMap::new()).into_keys().collect();
            if !existing.is_empty() {
                return self.rng.pick(&existing).clone();
            }
        }
        let dir = *self.rng.pick(DIRS);
        let name = *self.rng.pick(NAMES);
        format!("{dir}{name}")
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.rng.below(max) as usize;
        let seed = self.rng.next_u64();
        mesh_e2e::pseudo_random_vec(seed, 0, len)
    }

    /// Runs `op` on both sides and checks the answers agree.
    fn both(&mut self, what: String, op: impl Fn(&Path) -> Answer) {
        let (m, l) = (op(&self.mesh), op(&self.local));
        self.log.push(format!("{what} -> {l:?}"));
        assert_eq!(
            m,
            l,
            "{what}: the mount answered {m:?}, a local directory {l:?}\nlast operations:\n{}",
            self.recent()
        );
    }

    fn recent(&self) -> String {
        let from = self.log.len().saturating_sub(30);
        self.log[from..].join("\n")
    }

    /// Forgets set mtimes under a path an operation touched.
    fn touched(&mut self, rel: &str) {
        self.mtimes
            .retain(|p, _| p != rel && !p.starts_with(&format!("{rel}/")));
        // The parent directory's mtime changes too.
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.mtimes.remove(parent);
        }
    }

    fn step(&mut self) {
        let p = self.path();
        match self.rng.below(20) {
            0..=2 => {
                let offset = self.rng.below(200_000);
                let data = self.bytes(100_000);
                self.touched(&p);
                self.both(
                    format!("pwrite {p} at {offset}, {} bytes", data.len()),
                    |root| {
                        answer(
                            fs::OpenOptions::new()
                                .write(true)
                                .create(true)
                                .truncate(false)
                                .open(root.join(&p))
                                .and_then(|f| f.write_all_at(&data, offset)),
                        )
                    },
                );
            }
            3 => {
                let data = self.bytes(10_000);
                self.touched(&p);
                self.both(format!("append {} bytes to {p}", data.len()), |root| {
                    answer(
                        fs::OpenOptions::new()
                            .append(true)
                            .create(true)
                            .open(root.join(&p))
                            .and_then(|mut f| f.write_all(&data)),
                    )
                });
            }
            4 => {
                let size = self.rng.below(300_000);
                self.touched(&p);
                self.both(format!("truncate {p} to {size}"), |root| {
                    answer(
                        fs::OpenOptions::new()
                            .write(true)
                            .open(root.join(&p))
                            .and_then(|f| f.set_len(size)),
                    )
                });
            }
            5 => {
                let data = self.bytes(50_000);
                self.touched(&p);
                self.both(format!("write {p} anew, {} bytes", data.len()), |root| {
                    answer(fs::write(root.join(&p), &data))
                });
            }
            6..=8 => {
                let to = self.path();
                self.touched(&p);
                self.touched(&to);
                self.both(format!("rename {p} {to}"), |root| {
                    answer(fs::rename(root.join(&p), root.join(&to)))
                });
            }
            9 => {
                self.touched(&p);
                self.both(format!("mkdir {p}"), |root| {
                    answer(fs::create_dir(root.join(&p)))
                });
            }
            10 => {
                self.touched(&p);
                self.both(format!("rmdir {p}"), |root| {
                    answer(fs::remove_dir(root.join(&p)))
                });
            }
            11 => {
                self.touched(&p);
                self.both(format!("unlink {p}"), |root| {
                    answer(fs::remove_file(root.join(&p)))
                });
            }
            12 => {
                let target = *self.rng.pick(NAMES);
                self.touched(&p);
                self.both(format!("symlink {target} {p}"), |root| {
                    answer(std::os::unix::fs::symlink(target, root.join(&p)))
                });
            }
            13 => {
                let to = self.path();
                self.mtimes.clear();
                self.both(format!("link {p} {to}"), |root| {
                    answer(fs::hard_link(root.join(&p), root.join(&to)))
                });
            }
            14 => {
                let mode = *self.rng.pick(MODES);
                self.both(format!("chmod {mode:o} {p}"), |root| {
                    let path = root.join(&p);
                    // chmod follows symlinks; keep to what is not one.
                    match fs::symlink_metadata(&path) {
                        Ok(m) if m.file_type().is_symlink() => Ok(()),
                        _ => answer(fs::set_permissions(&path, fs::Permissions::from_mode(mode))),
                    }
                });
            }
            15 => {
                let seconds = 1_600_000_000 + self.rng.below(100_000_000) as i64;
                self.both(format!("utimes {p} {seconds}"), |root| {
                    answer(set_mtime(&root.join(&p), seconds))
                });
                // Tracked while the file has one name: a write through
                // another would change it.
                if fs::symlink_metadata(self.local.join(&p))
                    .is_ok_and(|m| m.is_file() && m.nlink() == 1)
                {
                    self.mtimes.insert(p.clone(), seconds);
                }
            }
            16 => {
                let name = format!("user.k{}", self.rng.below(3));
                let value = self.bytes(64);
                if self.rng.one_in(4) {
                    self.both(format!("removexattr {p} {name}"), |root| {
                        answer(remove_xattr(&root.join(&p), &name))
                    });
                } else {
                    self.both(
                        format!("setxattr {p} {name} ({} bytes)", value.len()),
                        |root| {
                            // User attributes are for files and directories
                            // only; both sides refuse them on symlinks alike.
                            answer(set_xattr(&root.join(&p), &name, &value))
                        },
                    );
                }
            }
            17 => self.keep_open(p),
            _ => self.use_kept(),
        }
    }

    /// Opens `p` read-write on both sides and keeps the descriptors.
    fn keep_open(&mut self, p: String) {
        let open = |root: &Path| {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(root.join(&p))
        };
        let (m, l) = (open(&self.mesh), open(&self.local));
        self.log
            .push(format!("open {p} -> {:?}", l.as_ref().map(drop)));
        match (m, l) {
            (Ok(mesh), Ok(local)) => {
                if self.kept.len() >= 4 {
                    self.kept.remove(0);
                }
                self.kept.push(Kept {
                    mesh,
                    local,
                    what: p,
                });
            }
            (m, l) => assert_eq!(
                answer(m),
                answer(l),
                "open {p}\nlast operations:\n{}",
                self.recent()
            ),
        }
    }

    /// Writes through, fsyncs or closes a kept descriptor — wherever its
    /// file went since it was opened.
    fn use_kept(&mut self) {
        if self.kept.is_empty() {
            return;
        }
        let i = self.rng.below(self.kept.len() as u64) as usize;
        match self.rng.below(3) {
            0 => {
                let offset = self.rng.below(100_000);
                let data = self.bytes(20_000);
                let k = &self.kept[i];
                let (m, l) = (
                    answer(k.mesh.write_all_at(&data, offset)),
                    answer(k.local.write_all_at(&data, offset)),
                );
                let what = format!(
                    "pwrite through the descriptor opened as {} at {offset}",
                    k.what
                );
                self.log.push(format!("{what} -> {l:?}"));
                assert_eq!(m, l, "{what}\nlast operations:\n{}", self.recent());
                // Its file may be anywhere now: forget every set mtime.
                self.mtimes.clear();
            }
            1 => {
                let k = &self.kept[i];
                let (m, l) = (answer(k.mesh.sync_all()), answer(k.local.sync_all()));
                let what = format!("fsync of the descriptor opened as {}", k.what);
                self.log.push(format!("{what} -> {l:?}"));
                assert_eq!(m, l, "{what}\nlast operations:\n{}", self.recent());
            }
            _ => {
                let k = self.kept.remove(i);
                self.log
                    .push(format!("close the descriptor opened as {}", k.what));
            }
        }
    }

    fn compare(&self, at: usize) {
        let expected = tree(&self.local, &self.mtimes);
        let seen = tree(&self.mesh, &self.mtimes);
        let diff = differences(&expected, &seen);
        assert!(
            diff.is_empty(),
            "after {at} operations the mount differs from a local directory:\n{}\nlast operations:\n{}",
            diff.join("\n"),
            self.recent()
        );
    }
}

#[test]
fn random_operations_through_the_kernel_answer_as_a_local_directory_does() {
    let mut pair = Pair::start();
    pair.live_folder("Diff");
    let (rng, _) = Rng::from_env("differential through the kernel");
    let ops: usize = std::env::var("MESHFS_RANDOM_OPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let local = tempfile::tempdir().unwrap();
    let mut run = Run {
        mesh: pair.a.path("Diff"),
        local: local.path().join("Diff"),
        rng,
        kept: Vec::new(),
        mtimes: BTreeMap::new(),
        log: Vec::new(),
    };
    fs::create_dir(&run.local).unwrap();
    for op in 1..=ops {
        run.step();
        if op % 250 == 0 {
            run.compare(op);
        }
    }
    run.kept.clear();
    run.compare(ops);
    let succeeded = run.log.iter().filter(|l| l.ends_with("Ok(())")).count();
    eprintln!("{succeeded} of {} calls succeeded", run.log.len());
    assert!(
        succeeded * 4 > run.log.len(),
        "most calls failed: the generator does not exercise the mount"
    );

    // Settled, the other device shows the same — but a hard link's extra
    // names live on the device that made them (README): there, every
    // other path must be the same, and of each linked file one name.
    wait_until("device a's outbox drains", SYNC * 3, || {
        pair.a.status()["pending_changes"] == 0
    });
    let expected = tree(&run.local, &BTreeMap::new());
    let on_b = |pair: &Pair| tree(&pair.b.path("Diff"), &BTreeMap::new());
    let unlinked = |t: &BTreeMap<String, Seen>| -> BTreeMap<String, Seen> {
        t.iter()
            .filter(|(_, s)| s.nlink <= 1)
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect()
    };
    let want = unlinked(&expected);
    let mut last = Vec::new();
    let settled = (0..(SYNC.as_secs() * 10)).any(|_| {
        let seen: BTreeMap<String, Seen> = on_b(&pair)
            .into_iter()
            .filter(|(p, _)| want.contains_key(p) || !expected.contains_key(p))
            .map(|(p, mut s)| {
                s.nlink = s.nlink.min(1);
                (p, s)
            })
            .collect();
        last = differences(&want, &seen);
        last.is_empty() || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    assert!(settled, "the other device differs:\n{}", last.join("\n"));

    // And the device itself, mounted again, shows what it showed.
    pair.a.unmount();
    pair.a.mount_again();
    let diff = differences(&expected, &tree(&run.mesh, &BTreeMap::new()));
    assert!(diff.is_empty(), "after a remount:\n{}", diff.join("\n"));
}

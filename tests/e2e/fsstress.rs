//! fsstress-like: several processes at once, each in its own subtree of
//! one Live Folder, each doing a seeded random sequence of namespace and
//! data operations — create, write, append, truncate, rename (also over an
//! existing target), mkdir, rmdir, unlink, hard link, symlink, chmod,
//! fsync — and keeping a model of what its subtree must hold. Each process
//! compares its subtree with its model every [`CHECK_EVERY`] operations
//! and at the end. Then the whole tree on the device is the union of the
//! models; after sync settles the second device shows the same names,
//! sizes, content hashes, modes and link targets (without the extra names
//! of hard links, which stay on the device that made them, as the README
//! says); and a remount of both changes nothing.
//!
//! The processes are this test's own executable, run again with
//! `MESHFS_FSSTRESS_CHILD` set. The same processes first run on a local
//! directory, as a control that proves the model.
//!
//! `MESHFS_SEED` repeats a run (each process's sequence is derived from
//! it); `MESHFS_FSSTRESS_OPS` sets the operations per process.

use mesh_e2e::{Device, Pair, Rng, SYNC, wait_until};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many processes run at once.
const PROCESSES: usize = 4;
/// Operations per process unless `MESHFS_FSSTRESS_OPS` says.
const DEFAULT_OPS: u64 = 1_000;
/// A process compares its subtree with its model this often.
const CHECK_EVERY: u64 = 100;
/// How long the processes may take, all together.
const PROCESS_LIMIT: Duration = Duration::from_secs(600);
/// The largest a file gets.
const MAX_FILE: usize = 64 * 1024;
/// The longest write.
const MAX_WRITE: usize = 8 * 1024;
/// How many of its last operations a failing process lists.
const LOG_SHOWN: usize = 40;
/// Names are drawn from this few per directory, so that freed names are
/// reused soon.
const NAMES: u64 = 12;
/// The modes chmod chooses among (directories keep the owner's rwx).
const FILE_MODES: [u32; 6] = [0o600, 0o640, 0o644, 0o700, 0o755, 0o444];
const DIR_MODES: [u32; 4] = [0o700, 0o750, 0o755, 0o775];

// The environment of a child process.
const CHILD: &str = "MESHFS_FSSTRESS_CHILD";
const CHILD_SEED: &str = "MESHFS_FSSTRESS_CHILD_SEED";
const CHILD_OPS: &str = "MESHFS_FSSTRESS_CHILD_OPS";
const CHILD_LISTING: &str = "MESHFS_FSSTRESS_CHILD_LISTING";
/// This test's name, to run only it in a child.
const TEST: &str = "fsstress_processes_keep_their_trees_on_both_devices_and_after_a_remount";

/// A node of a process's model.
enum Node {
    Dir {
        mode: u32,
    },
    /// A name of an inode of [`Model::inodes`].
    File(u64),
    Symlink(String),
}

/// A regular file: its bytes, its mode and its names, the first being the
/// one other devices see.
struct Inode {
    data: Vec<u8>,
    mode: u32,
    names: Vec<String>,
}

/// What one process's subtree must hold, by path relative to the Live
/// Folder (`p0/...`).
#[derive(Default)]
struct Model {
    entries: BTreeMap<String, Node>,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
}

/// One line of a listing: a path and what is there (mode, size and content
/// hash; or the link target).
fn dir_line(path: &str, mode: u32) -> String {
    format!("{path}\tdir\t{mode:o}")
}

fn file_line(path: &str, mode: u32, data: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    data.hash(&mut hasher);
    format!(
        "{path}\tfile\t{mode:o}\t{} bytes\t{:016x}",
        data.len(),
        hasher.finish()
    )
}

fn symlink_line(path: &str, target: &str) -> String {
    format!("{path}\tsymlink\t-> {target}")
}

impl Model {
    /// The listing of the model as this device shows it (`here`) or as
    /// other devices do (only the first name of each file).
    fn listing(&self, here: bool) -> BTreeSet<String> {
        self.entries
            .iter()
            .filter_map(|(path, node)| match node {
                Node::Dir { mode } => Some(dir_line(path, *mode)),
                Node::Symlink(target) => Some(symlink_line(path, target)),
                Node::File(ino) => {
                    let inode = &self.inodes[ino];
                    (here || inode.names[0] == *path)
                        .then(|| file_line(path, inode.mode, &inode.data))
                }
            })
            .collect()
    }

    fn paths(&self, want: impl Fn(&Node) -> bool) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, node)| want(node))
            .map(|(path, _)| path.clone())
            .collect()
    }

    fn is_empty_dir(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        !self
            .entries
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }

    fn inode_of(&self, path: &str) -> u64 {
        match self.entries[path] {
            Node::File(ino) => ino,
            _ => panic!("{path} is not a file in the model"),
        }
    }

    /// Removes the name `path` (a file, symlink or empty directory).
    fn remove(&mut self, path: &str) {
        if let Some(Node::File(ino)) = self.entries.remove(path) {
            let inode = self.inodes.get_mut(&ino).expect("a file's inode");
            inode.names.retain(|n| n != path);
            if inode.names.is_empty() {
                self.inodes.remove(&ino);
            }
        }
    }

    /// `rename(from, to)`, `to` free or a name `from` may replace.
    fn rename(&mut self, from: &str, to: &str) {
        self.remove(to);
        let prefix = format!("{from}/");
        let moved: Vec<String> = self
            .entries
            .keys()
            .filter(|p| *p == from || p.starts_with(&prefix))
            .cloned()
            .collect();
        for old in moved {
            let new = format!("{to}{}", &old[from.len()..]);
            let node = self.entries.remove(&old).expect("listed above");
            if let Node::File(ino) = node {
                for name in &mut self.inodes.get_mut(&ino).expect("an inode").names {
                    if *name == old {
                        name.clone_from(&new);
                    }
                }
            }
            self.entries.insert(new, node);
        }
    }
}

/// Every entry below `root/under` (and `under` itself), as listing lines
/// with paths relative to `root`.
fn listing(root: &Path, under: &str) -> std::io::Result<BTreeSet<String>> {
    fn walk(root: &Path, path: &Path, out: &mut BTreeSet<String>) -> std::io::Result<()> {
        let rel = path
            .strip_prefix(root)
            .expect("below the root")
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(path)?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.insert(dir_line(&rel, mode));
            for entry in fs::read_dir(path)? {
                walk(root, &entry?.path(), out)?;
            }
        } else if meta.file_type().is_symlink() {
            out.insert(symlink_line(&rel, &fs::read_link(path)?.to_string_lossy()));
        } else {
            out.insert(file_line(&rel, mode, &fs::read(path)?));
        }
        Ok(())
    }
    let mut out = BTreeSet::new();
    if under.is_empty() {
        for entry in fs::read_dir(root)? {
            walk(root, &entry?.path(), &mut out)?;
        }
    } else {
        walk(root, &root.join(under), &mut out)?;
    }
    Ok(out)
}

/// The differences between two listings, the first few a line; `None`
/// when they are equal.
fn listing_diff(expected: &BTreeSet<String>, seen: &BTreeSet<String>) -> Option<String> {
    if expected == seen {
        return None;
    }
    let mut lines: Vec<String> = expected
        .difference(seen)
        .map(|l| format!("  expected, missing: {l}"))
        .collect();
    lines.extend(
        seen.difference(expected)
            .map(|l| format!("  seen, unexpected: {l}")),
    );
    let count = lines.len();
    lines.truncate(30);
    Some(format!("{count} line(s) differ:\n{}", lines.join("\n")))
}

/// One process's run: its model, its generator and the log of its last
/// operations.
struct Process {
    root: PathBuf,
    own: String,
    seed: u64,
    rng: Rng,
    model: Model,
    number: u64,
    log: VecDeque<String>,
}

impl Process {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn fail(&self, what: &str) -> ! {
        let log: Vec<String> = self.log.iter().map(|line| format!("  {line}")).collect();
        panic!(
            "fsstress process {} (MESHFS_FSSTRESS_CHILD_SEED={}) under {} failed at operation {}: {what}\nits last {} operations:\n{}",
            self.own,
            self.seed,
            self.root.display(),
            self.number,
            log.len(),
            log.join("\n")
        );
    }

    /// Logs the operation, runs it and fails the process on an error.
    fn op(&mut self, what: String, run: impl FnOnce(&Process) -> std::io::Result<()>) {
        if self.log.len() == LOG_SHOWN {
            self.log.pop_front();
        }
        self.log.push_back(format!("{}: {what}", self.number));
        if let Err(e) = run(self) {
            self.fail(&format!("{what}: {e}"));
        }
    }

    fn dirs(&self) -> Vec<String> {
        self.model.paths(|n| matches!(n, Node::Dir { .. }))
    }

    fn files(&self) -> Vec<String> {
        self.model.paths(|n| matches!(n, Node::File(_)))
    }

    /// A free name in a random directory.
    fn new_path(&mut self) -> String {
        let dirs = self.dirs();
        let dir = self.rng.pick(&dirs).clone();
        loop {
            let name = format!("{dir}/n{}", self.rng.below(NAMES));
            if !self.model.entries.contains_key(&name) {
                return name;
            }
            if self.rng.one_in(4) {
                self.model.next_inode += 1;
                return format!("{dir}/u{}", self.model.next_inode);
            }
        }
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.rng.next_u64() as u8).collect()
    }

    /// One random operation; what it needs missing, it makes something.
    fn step(&mut self) {
        self.number += 1;
        let files = self.files();
        let choice = self.rng.below(100);
        if files.is_empty() && matches!(choice, 10..38 | 82..) {
            return self.create();
        }
        match choice {
            0..10 => self.create(),
            10..25 => self.write(&files, false),
            25..32 => self.write(&files, true),
            32..38 => self.truncate(&files),
            38..50 => self.rename(),
            50..56 => self.mkdir(),
            56..60 => self.rmdir(),
            60..66 => self.unlink(),
            66..70 => self.link(&files),
            70..75 => self.symlink(),
            75..82 => self.chmod(),
            _ => self.fsync(&files),
        }
    }

    fn create(&mut self) {
        let path = self.new_path();
        let len = self.rng.below(MAX_WRITE as u64 + 1) as usize;
        let data = self.bytes(len);
        self.op(format!("create {path} with {len} bytes"), |p| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(p.path(&path))?;
            file.write_all(&data)
        });
        self.model.next_inode += 1;
        let ino = self.model.next_inode;
        self.model.inodes.insert(
            ino,
            Inode {
                data,
                mode: 0o644,
                names: vec![path.clone()],
            },
        );
        self.model.entries.insert(path, Node::File(ino));
    }

    /// A write at a random offset (maybe past the end, leaving a hole), or
    /// an append.
    fn write(&mut self, files: &[String], append: bool) {
        let path = self.rng.pick(files).clone();
        let ino = self.model.inode_of(&path);
        let size = self.model.inodes[&ino].data.len();
        let offset = if append {
            size
        } else {
            self.rng.below(size as u64 + 4097) as usize
        };
        let room = MAX_FILE.saturating_sub(offset).min(MAX_WRITE);
        let len = 1 + self.rng.below(room.max(1) as u64) as usize;
        let data = self.bytes(len);
        if append {
            self.op(format!("append {len} bytes to {path} (of {size})"), |p| {
                let mut file = OpenOptions::new().append(true).open(p.path(&path))?;
                file.write_all(&data)
            });
        } else {
            self.op(
                format!("write {len} bytes at {offset} of {path} (of {size})"),
                |p| {
                    let file = OpenOptions::new().write(true).open(p.path(&path))?;
                    file.write_all_at(&data, offset as u64)
                },
            );
        }
        let inode = self.model.inodes.get_mut(&ino).expect("an inode");
        if inode.data.len() < offset + len {
            inode.data.resize(offset + len, 0);
        }
        inode.data[offset..offset + len].copy_from_slice(&data);
    }

    fn truncate(&mut self, files: &[String]) {
        let path = self.rng.pick(files).clone();
        let ino = self.model.inode_of(&path);
        let size = self.model.inodes[&ino].data.len();
        let to = self.rng.below((size + MAX_WRITE).min(MAX_FILE) as u64 + 1) as usize;
        self.op(format!("truncate {path} from {size} to {to}"), |p| {
            OpenOptions::new()
                .write(true)
                .open(p.path(&path))?
                .set_len(to as u64)
        });
        self.model
            .inodes
            .get_mut(&ino)
            .expect("an inode")
            .data
            .resize(to, 0);
    }

    /// A rename to a free name or over an existing target the source may
    /// replace: a file or symlink over a file or symlink (not another name
    /// of the same inode), a directory over an empty directory outside it.
    fn rename(&mut self) {
        let own = self.own.clone();
        let sources = self.model.paths(|_| true);
        let sources: Vec<String> = sources.into_iter().filter(|p| *p != own).collect();
        if sources.is_empty() {
            return self.mkdir();
        }
        let from = self.rng.pick(&sources).clone();
        let is_dir = matches!(self.model.entries[&from], Node::Dir { .. });
        let inside = |p: &str| p == from || p.starts_with(&format!("{from}/"));
        let same_inode = |m: &Model, p: &str| match (&m.entries[&from], &m.entries[p]) {
            (Node::File(a), Node::File(b)) => a == b,
            _ => false,
        };
        let targets: Vec<String> = self
            .model
            .entries
            .iter()
            .filter(|(p, node)| {
                *p != &own
                    && !inside(p)
                    && match node {
                        Node::Dir { .. } => is_dir && self.model.is_empty_dir(p),
                        _ => !is_dir && !same_inode(&self.model, p),
                    }
            })
            .map(|(p, _)| p.clone())
            .collect();
        let to = if !targets.is_empty() && self.rng.one_in(2) {
            self.rng.pick(&targets).clone()
        } else {
            let mut to = self.new_path();
            while is_dir && inside(&to) {
                to = self.new_path();
            }
            to
        };
        let over = if self.model.entries.contains_key(&to) {
            " (over an existing target)"
        } else {
            ""
        };
        self.op(format!("rename {from} to {to}{over}"), |p| {
            fs::rename(p.path(&from), p.path(&to))
        });
        self.model.rename(&from, &to);
    }

    fn mkdir(&mut self) {
        let path = self.new_path();
        self.op(format!("mkdir {path}"), |p| {
            fs::DirBuilder::new().mode(0o755).create(p.path(&path))
        });
        self.model.entries.insert(path, Node::Dir { mode: 0o755 });
    }

    fn rmdir(&mut self) {
        let own = self.own.clone();
        let empty: Vec<String> = self
            .dirs()
            .into_iter()
            .filter(|d| *d != own && self.model.is_empty_dir(d))
            .collect();
        if empty.is_empty() {
            return self.mkdir();
        }
        let path = self.rng.pick(&empty).clone();
        self.op(format!("rmdir {path}"), |p| fs::remove_dir(p.path(&path)));
        self.model.remove(&path);
    }

    fn unlink(&mut self) {
        let names = self
            .model
            .paths(|n| matches!(n, Node::File(_) | Node::Symlink(_)));
        if names.is_empty() {
            return self.create();
        }
        let path = self.rng.pick(&names).clone();
        self.op(format!("unlink {path}"), |p| fs::remove_file(p.path(&path)));
        self.model.remove(&path);
    }

    /// A hard link to a file that has one name (so that which name other
    /// devices see stays certain).
    fn link(&mut self, files: &[String]) {
        let single: Vec<&String> = files
            .iter()
            .filter(|f| self.model.inodes[&self.model.inode_of(f)].names.len() == 1)
            .collect();
        if single.is_empty() {
            return self.create();
        }
        let from = (*self.rng.pick(&single)).clone();
        let to = self.new_path();
        self.op(format!("link {from} to {to}"), |p| {
            fs::hard_link(p.path(&from), p.path(&to))
        });
        let ino = self.model.inode_of(&from);
        let inode = self.model.inodes.get_mut(&ino).expect("an inode");
        inode.names.push(to.clone());
        self.model.entries.insert(to, Node::File(ino));
    }

    fn symlink(&mut self) {
        let path = self.new_path();
        let target = match self.rng.below(3) {
            0 => format!("n{}", self.rng.below(NAMES)),
            1 => format!("../n{}/x", self.rng.below(NAMES)),
            _ => "/nowhere/at/all".to_owned(),
        };
        self.op(format!("symlink {path} -> {target}"), |p| {
            std::os::unix::fs::symlink(&target, p.path(&path))
        });
        self.model.entries.insert(path, Node::Symlink(target));
    }

    fn chmod(&mut self) {
        let paths = self
            .model
            .paths(|n| matches!(n, Node::Dir { .. } | Node::File(_)));
        let path = self.rng.pick(&paths).clone();
        let is_dir = matches!(self.model.entries[&path], Node::Dir { .. });
        let mode = *self.rng.pick(if is_dir {
            &DIR_MODES[..]
        } else {
            &FILE_MODES[..]
        });
        self.op(format!("chmod {mode:o} {path}"), |p| {
            fs::set_permissions(p.path(&path), fs::Permissions::from_mode(mode))
        });
        match self.model.entries.get_mut(&path) {
            Some(Node::Dir { mode: m }) => *m = mode,
            Some(Node::File(ino)) => {
                let ino = *ino;
                self.model.inodes.get_mut(&ino).expect("an inode").mode = mode;
            }
            _ => unreachable!("chosen among directories and files"),
        }
    }

    fn fsync(&mut self, files: &[String]) {
        let path = self.rng.pick(files).clone();
        self.op(format!("fsync {path}"), |p| {
            OpenOptions::new()
                .read(true)
                .open(p.path(&path))?
                .sync_all()
        });
    }

    /// The subtree on disk is what the model says.
    fn compare(&self) {
        let seen = listing(&self.root, &self.own)
            .unwrap_or_else(|e| self.fail(&format!("listing its subtree: {e}")));
        if let Some(diff) = listing_diff(&self.model.listing(true), &seen) {
            self.fail(&format!("its subtree differs from its model: {diff}"));
        }
    }
}

/// What a child process is told, from its environment.
struct ChildSpec {
    root: PathBuf,
    own: String,
    seed: u64,
    ops: u64,
    listing: PathBuf,
}

impl ChildSpec {
    fn from_env() -> Option<ChildSpec> {
        let spec = std::env::var_os(CHILD)?;
        let var = |name| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        let spec = PathBuf::from(spec);
        Some(ChildSpec {
            root: spec.parent().expect("a subtree of a folder").to_owned(),
            own: spec
                .file_name()
                .expect("a subtree")
                .to_string_lossy()
                .into_owned(),
            seed: var(CHILD_SEED).parse().expect("a seed"),
            ops: var(CHILD_OPS).parse().expect("a number of operations"),
            listing: PathBuf::from(var(CHILD_LISTING)),
        })
    }

    /// The child's run: its subtree, its operations, its checks; then its
    /// model's listings (here and elsewhere) in files for the parent.
    fn run(self) {
        // SAFETY: umask has no preconditions; this process is the child's own.
        unsafe { libc::umask(0o022) };
        let mut process = Process {
            root: self.root,
            own: self.own.clone(),
            seed: self.seed,
            rng: Rng::new(self.seed),
            model: Model::default(),
            number: 0,
            log: VecDeque::new(),
        };
        process.op(format!("mkdir {}", self.own), |p| {
            fs::DirBuilder::new().mode(0o755).create(p.path(&p.own))
        });
        process
            .model
            .entries
            .insert(self.own.clone(), Node::Dir { mode: 0o755 });
        while process.number < self.ops {
            process.step();
            if process.number.is_multiple_of(CHECK_EVERY) {
                process.compare();
            }
        }
        process.compare();
        for (here, suffix) in [(true, "here"), (false, "elsewhere")] {
            let lines: Vec<String> = process.model.listing(here).into_iter().collect();
            fs::write(self.listing.with_extension(suffix), lines.join("\n") + "\n")
                .expect("writing the model's listing");
        }
    }
}

/// The child processes; killed when dropped (also when the test fails).
struct Processes(Vec<(usize, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The models' listings, for this device and for the others.
struct Expected {
    here: BTreeSet<String>,
    elsewhere: BTreeSet<String>,
}

/// Runs [`PROCESSES`] children under `root` at once and waits for them;
/// panics with a failing child's output; returns the union of their
/// models.
fn run_processes(root: &Path, seed: u64, ops: u64, what: &str) -> Expected {
    let out = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().expect("the test executable");
    let mut processes = Processes(Vec::new());
    for i in 0..PROCESSES {
        let child_seed = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9)).next_u64();
        let log = fs::File::create(out.path().join(format!("p{i}.out"))).unwrap();
        let child = Command::new(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD, root.join(format!("p{i}")))
            .env(CHILD_SEED, child_seed.to_string())
            .env(CHILD_OPS, ops.to_string())
            .env(CHILD_LISTING, out.path().join(format!("p{i}.listing")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting a child process");
        eprintln!(
            "fsstress {what}: process p{i} (pid {}) seed {child_seed}",
            child.id()
        );
        processes.0.push((i, child));
    }
    let start = Instant::now();
    let mut failed = Vec::new();
    for (i, child) in &mut processes.0 {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > PROCESS_LIMIT {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.is_none_or(|s| !s.success()) {
            let output = fs::read_to_string(out.path().join(format!("p{i}.out"))).unwrap();
            let said = match status {
                Some(s) => format!("exited with {s}"),
                None => format!("did not finish in {PROCESS_LIMIT:?}"),
            };
            failed.push(format!("process p{i} {said}; it printed:\n{output}"));
        }
    }
    assert!(
        failed.is_empty(),
        "fsstress {what} (MESHFS_SEED={seed}): {}",
        failed.join("\n")
    );
    eprintln!(
        "fsstress {what}: {PROCESSES} processes of {ops} operations in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let read = |suffix: &str| -> BTreeSet<String> {
        (0..PROCESSES)
            .flat_map(|i| {
                let path = out.path().join(format!("p{i}.{suffix}"));
                fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let expected = Expected {
        here: read("here"),
        elsewhere: read("elsewhere"),
    };
    eprintln!(
        "fsstress {what}: the models hold {} entries ({} seen by other devices)",
        expected.here.len(),
        expected.elsewhere.len()
    );
    expected
}

/// Waits until the listing of `device`'s `folder` is `expected`.
fn wait_for_listing(device: &Device, folder: &str, expected: &BTreeSet<String>, when: &str) {
    let root = device.path(folder);
    let deadline = SYNC * 3;
    let start = Instant::now();
    loop {
        let diff = match listing(&root, "") {
            Ok(seen) => listing_diff(expected, &seen),
            Err(e) => Some(format!("listing it failed: {e}")),
        };
        let Some(diff) = diff else { return };
        assert!(
            start.elapsed() < deadline,
            "{folder} on device {} {when}, after {deadline:?}: {diff}",
            device.name()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ops_from_env() -> u64 {
    match std::env::var("MESHFS_FSSTRESS_OPS") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            panic!("MESHFS_FSSTRESS_OPS must be a number of operations, not {text:?}")
        }),
        Err(_) => DEFAULT_OPS,
    }
}

#[test]
fn fsstress_processes_keep_their_trees_on_both_devices_and_after_a_remount() {
    if let Some(child) = ChildSpec::from_env() {
        return child.run();
    }
    let ops = ops_from_env();
    let (_, seed) = Rng::from_env("fsstress");
    let local = tempfile::tempdir().unwrap();
    let control = run_processes(local.path(), seed, ops, "on a local directory");
    let local_tree = listing(local.path(), "").unwrap();
    assert_eq!(
        listing_diff(&control.here, &local_tree),
        None,
        "the control"
    );

    let mut mesh = Pair::start();
    mesh.live_folder("Stress");
    let expected = run_processes(&mesh.a.path("Stress"), seed, ops, "on a Live Folder");
    wait_for_listing(&mesh.a, "Stress", &expected.here, "after the run");
    wait_for_listing(&mesh.b, "Stress", &expected.elsewhere, "after sync");
    for device in [&mesh.a, &mesh.b] {
        wait_until(
            &format!("{} has nothing pending", device.name()),
            SYNC,
            || device.status()["pending_changes"] == 0,
        );
    }
    mesh.a.remount();
    mesh.b.remount();
    wait_for_listing(&mesh.a, "Stress", &expected.here, "after a remount");
    wait_for_listing(&mesh.b, "Stress", &expected.elsewhere, "after a remount");
}

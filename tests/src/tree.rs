//! Trees: what is at a path, snapshots of whole trees and waiting for one,
//! and small helpers for listings and errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What is at a path: a directory, a file with its bytes, or a symlink
/// with its target.
#[derive(Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Dir => write!(f, "Dir"),
            Entry::File(bytes) if bytes.len() <= 120 => {
                write!(f, "File(b\"{}\")", bytes.escape_ascii())
            }
            Entry::File(bytes) => write!(
                f,
                "File({} bytes starting b\"{}\")",
                bytes.len(),
                bytes[..40].escape_ascii()
            ),
            Entry::Symlink(target) => write!(f, "Symlink({})", target.display()),
        }
    }
}

/// What is at `path` now: `Ok(None)` when nothing is, `Err` with the error
/// when it cannot be read. Symlinks are not followed.
pub fn entry(path: &Path) -> Result<Option<Entry>, String> {
    let described = |e: std::io::Error| format!("{}: {e}", path.display());
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(described(e)),
    };
    Ok(Some(if meta.is_dir() {
        Entry::Dir
    } else if meta.file_type().is_symlink() {
        Entry::Symlink(std::fs::read_link(path).map_err(described)?)
    } else {
        Entry::File(std::fs::read(path).map_err(described)?)
    }))
}

/// Everything under `root` — directories, files with their bytes, symlinks
/// with their targets — by path relative to `root`. Meant for small trees.
pub fn snapshot(root: &Path) -> std::io::Result<BTreeMap<PathBuf, Entry>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let rel = path.strip_prefix(root).expect("below the root").to_owned();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                out.insert(rel, Entry::Dir);
                walk(root, &path, out)?;
            } else if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Symlink(std::fs::read_link(&path)?));
            } else {
                out.insert(rel, Entry::File(std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

/// Polls [`snapshot`] of `root` until it equals `expected`, or panics after
/// `deadline` naming the first differences.
pub fn wait_for_tree(
    what: &str,
    deadline: Duration,
    root: &Path,
    expected: &BTreeMap<PathBuf, Entry>,
) {
    let start = Instant::now();
    loop {
        let seen = snapshot(root);
        if seen.as_ref().is_ok_and(|seen| seen == expected) {
            return;
        }
        if start.elapsed() > deadline {
            let detail = match seen {
                Ok(seen) => tree_diff(expected, &seen),
                Err(e) => format!("listing {} failed: {e}", root.display()),
            };
            panic!("timed out after {deadline:?} waiting for {what}:\n{detail}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first differences between two snapshots, one a line.
pub fn tree_diff(expected: &BTreeMap<PathBuf, Entry>, seen: &BTreeMap<PathBuf, Entry>) -> String {
    let mut lines = Vec::new();
    let mut count = 0;
    for (path, want) in expected {
        match seen.get(path) {
            Some(got) if got == want => {}
            Some(got) => {
                count += 1;
                lines.push(format!(
                    "  {}: expected {want:?}, found {got:?}",
                    path.display()
                ));
            }
            None => {
                count += 1;
                lines.push(format!("  {}: missing (expected {want:?})", path.display()));
            }
        }
    }
    for (path, got) in seen {
        if !expected.contains_key(path) {
            count += 1;
            lines.push(format!("  {}: unexpected {got:?}", path.display()));
        }
    }
    lines.truncate(20);
    format!(
        "{count} difference(s) (expected {} entries, found {}), first ones:\n{}",
        expected.len(),
        seen.len(),
        lines.join("\n")
    )
}

/// How many regular files are below `root` (0 when it cannot be listed);
/// reads no content.
pub fn count_files(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// The names in directory `dir`, sorted; panics when it cannot be listed.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The errno of a failed call, or `None` when it succeeded.
pub fn errno_of<T>(result: std::io::Result<T>) -> Option<i32> {
    result.err().map(|e| e.raw_os_error().unwrap_or(-1))
}

//! Checking a directory before mounting on it, so that `meshfs mount`
//! says in one sentence why it cannot (missing, not a directory, already a
//! mount point, not ours to mount on, not empty) instead of leaving it to
//! FUSE; and whether something is mounted there, for `meshfs unmount`.

use std::path::{Path, PathBuf};

/// Why a directory cannot be mounted on.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} does not exist; create it first (`mkdir -p {0}`) or mount on another directory")]
    Missing(String),
    #[error("{0} is not a directory; mount on a directory")]
    NotDirectory(String),
    #[error("{0} is already a mount point; unmount what is mounted there first")]
    Mounted(String),
    #[error(
        "{0} is a mount whose program has stopped; clear it with `meshfs unmount {0}`, then mount again"
    )]
    Disconnected(String),
    #[error(
        "you may not mount on {0}: permission denied (mounting needs write access to it); mount on a directory of your own"
    )]
    NoPermission(String),
    #[error(
        "{0} is not empty: mounting on it would hide what it holds until unmounted; mount on an empty directory, or pass --nonempty to mount over it anyway"
    )]
    NotEmpty(String),
    #[error("could not look at {0}")]
    Unreadable(String, #[source] std::io::Error),
}

/// Checks that `mountpoint` can be mounted on (a non-empty directory only
/// with `nonempty`); its absolute path.
pub fn check(mountpoint: &Path, nonempty: bool) -> Result<PathBuf, Refused> {
    let path = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_owned());
    let shown = path.display().to_string();
    if is_mounted(&path) {
        return Err(Refused::Mounted(shown));
    }
    let metadata = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => return Err(refusal(e, shown)),
    };
    if !metadata.is_dir() {
        return Err(Refused::NotDirectory(shown));
    }
    if !may_write(&path) {
        return Err(Refused::NoPermission(shown));
    }
    let mut entries = std::fs::read_dir(&path).map_err(|e| refusal(e, shown.clone()))?;
    if !nonempty && entries.next().is_some() {
        return Err(Refused::NotEmpty(shown));
    }
    Ok(path)
}

fn refusal(e: std::io::Error, shown: String) -> Refused {
    match e.kind() {
        std::io::ErrorKind::NotFound => Refused::Missing(shown),
        std::io::ErrorKind::PermissionDenied => Refused::NoPermission(shown),
        std::io::ErrorKind::NotADirectory => Refused::NotDirectory(shown),
        _ if e.raw_os_error() == Some(libc::ENOTCONN) => Refused::Disconnected(shown),
        _ => Refused::Unreadable(shown, e),
    }
}

/// Whether this user may write to `path` (fusermount3 requires it of
/// anyone but root).
fn may_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Whether something is mounted at `path` (as `/proc/self/mountinfo`
/// says; the path must be absolute).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|at| Path::new(&unescape(at)) == path)
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/tmp/a\040b\011c"), "/tmp/a b\tc");
        assert_eq!(unescape(r"/tmp/plain"), "/tmp/plain");
        assert_eq!(unescape(r"/tmp/x\9"), r"/tmp/x\9");
    }

    #[test]
    fn the_root_is_mounted_and_a_fresh_directory_is_not() {
        assert!(is_mounted(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path()));
    }
}

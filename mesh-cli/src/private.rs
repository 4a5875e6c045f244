//! Private state on disk. Every directory `meshd` and `meshfs` keep state
//! in is made 0700 and every file 0600, whatever the umask they were
//! started with: the state holds password hashes, device tokens and all
//! file content, which no other local user may read. Both programs create
//! their state only through these functions.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a state directory.
pub const DIR_MODE: u32 = 0o700;
/// The mode of a state file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents 0700; an existing `dir` that
/// others may enter (made by an earlier version) is made 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    restrict(dir, DIR_MODE)
}

/// Open options that create a file 0600; add `read`, `write`, `append`,
/// `truncate` as needed.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates (or empties) a file 0600 for writing. A file that was there
/// already is made 0600 too.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    restrict_open(&file, FILE_MODE)?;
    Ok(file)
}

/// Opens a file 0600 for appending, creating it if needed (a log).
pub fn append_file(path: &Path) -> io::Result<File> {
    let file = options().create(true).append(true).open(path)?;
    restrict_open(&file, FILE_MODE)?;
    Ok(file)
}

/// Writes `bytes` as the whole content of a 0600 file.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_file(path)?.write_all(bytes)
}

/// Replaces `path` with a 0600 file holding `bytes` atomically: a
/// temporary file beside it, fsync, rename. A reader sees the old content
/// or the new, never part of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = create_file(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes an existing file or directory no more open than `mode`; a
/// missing one is left missing.
pub fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o777 & !mode != 0 => {
            std::fs::set_permissions(path, Permissions::from_mode(mode))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn restrict_open(file: &File, mode: u32) -> io::Result<()> {
    if file.metadata()?.permissions().mode() & 0o777 & !mode != 0 {
        file.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_state_is_private_and_old_state_is_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("f");
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        write_file(&file, b"new").unwrap();
        assert_eq!(
            (mode(&file), std::fs::read(&file).unwrap()),
            (0o600, b"new".to_vec())
        );

        let atomic = dir.join("g");
        write_atomic(&atomic, b"one").unwrap();
        write_atomic(&atomic, b"two").unwrap();
        assert_eq!(
            (mode(&atomic), std::fs::read(&atomic).unwrap()),
            (0o600, b"two".to_vec())
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "no temporary file left"
        );

        let log = dir.join("log");
        append_file(&log).unwrap().write_all(b"a").unwrap();
        append_file(&log).unwrap().write_all(b"b").unwrap();
        assert_eq!(
            (mode(&log), std::fs::read(&log).unwrap()),
            (0o600, b"ab".to_vec())
        );

        restrict(&dir.join("missing"), FILE_MODE).unwrap();
    }
}

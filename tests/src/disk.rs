//! A small filesystem made for one test: a tmpfs of a few MiB, mounted on a
//! temporary directory, so that a device's home can run out of space
//! without touching the machine's disk. Unmounted when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::{COMMAND_LIMIT, run, run_ok};

/// A tmpfs of a fixed size, mounted until dropped.
pub struct SmallDisk {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB (needs root, as the mount tests do).
    pub fn new(mib: u64) -> SmallDisk {
        let dir = tempfile::Builder::new()
            .prefix("meshfs-e2e-disk.")
            .tempdir()
            .expect("a temporary directory");
        let root = dir.path().join("disk");
        std::fs::create_dir(&root).expect("creating the disk's mountpoint");
        let mut mount = Command::new("mount");
        mount
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(&root);
        run_ok(mount, None, COMMAND_LIMIT);
        SmallDisk {
            dir: Some(dir),
            root,
        }
    }

    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Takes every byte still free with a file of its own (outside any
    /// home), so that the next write anywhere on it fails; returns the
    /// file, to remove when room should come back.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.root.join("filler");
        let mut file = std::fs::File::create(&filler).expect("creating the filler");
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", filler.display()),
            }
        }
        // Then the last bytes of a partial block.
        while let Ok(n) = file.write(&block[..512]) {
            if n == 0 {
                break;
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let mut umount = Command::new("umount");
        umount.arg(&self.root);
        if !run(umount, None, COMMAND_LIMIT).status.success() {
            // Still in use (a mount left behind by a failed test): keep it.
            if let Some(dir) = self.dir.take() {
                eprintln!("{} is still busy; leaving it", dir.keep().display());
            }
        }
    }
}

//! `meshfs pin` and `meshfs unpin`: sets [`user.mesh.pinned`](PINNED) on a
//! path in a mounted mesh (the mount then keeps that file, or everything
//! below that folder, on this device), and for a pin reads what is below it
//! once so that it is here before the command returns, with a progress bar.

use anyhow::Context;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::local::xattr;
use crate::mount::core::attrs::{PINNED, STATE};

/// Fails unless `path` is in a mounted mesh (only a mesh has a state):
/// elsewhere the attribute is missing, or the file system has none.
fn require_mesh(path: &Path) -> anyhow::Result<()> {
    match xattr::get(path, STATE) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP)) => {
            anyhow::bail!("{} is not in a mounted mesh", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn pin(path: &Path) -> anyhow::Result<()> {
    require_mesh(path)?;
    xattr::set(path, PINNED, b"1").with_context(|| format!("pinning {}", path.display()))?;
    let mut files = Vec::new();
    regular_files(path, &mut files).with_context(|| format!("listing {}", path.display()))?;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message("fetching");
    let mut failed: Vec<(PathBuf, std::io::Error)> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for (file, _) in &files {
        if let Err(e) = read_through(file, &mut buf, &bar) {
            failed.push((file.clone(), e));
        }
    }
    bar.finish_and_clear();
    if let Some((first, e)) = failed.first() {
        anyhow::bail!(
            "{} is pinned, but {} of its {} files could not be fetched now (first: {}: {e}); \
             they arrive when the server is reachable",
            path.display(),
            failed.len(),
            files.len(),
            first.display()
        );
    }
    println!(
        "pinned {}: {} file{}, {} kept on this device",
        mesh_cli::display::escaped(&path.display().to_string()),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        HumanBytes(total)
    );
    Ok(())
}

pub fn unpin(path: &Path) -> anyhow::Result<()> {
    require_mesh(path)?;
    xattr::set(path, PINNED, b"0").with_context(|| format!("unpinning {}", path.display()))?;
    println!(
        "unpinned {}: its content may now leave this device",
        mesh_cli::display::escaped(&path.display().to_string())
    );
    Ok(())
}

/// The regular files at or below `path`, with their sizes (symbolic links
/// are not followed).
fn regular_files(path: &Path, out: &mut Vec<(PathBuf, u64)>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_file() {
        out.push((path.to_owned(), meta.len()));
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            regular_files(&entry?.path(), out)?;
        }
    }
    Ok(())
}

/// Reads a file to its end (which brings its content to this device).
fn read_through(path: &Path, buf: &mut [u8], bar: &ProgressBar) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    loop {
        match file.read(buf)? {
            0 => return Ok(()),
            n => bar.inc(n as u64),
        }
    }
}

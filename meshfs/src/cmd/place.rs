//! Naming a place in the mount from the command line: the Live Folder a
//! path is, or is in, found by the mesh object id its root answers in
//! [`user.mesh.object`](OBJECT), and the path below that root.

use anyhow::Context;
use mesh_protocol::api::ObjectId;
use std::io;
use std::path::Path;

use crate::local::xattr;
use crate::mount::core::attrs::OBJECT;

fn parse(id: &[u8]) -> anyhow::Result<ObjectId> {
    std::str::from_utf8(id)
        .ok()
        .and_then(|id| id.parse().ok())
        .context("the mount answered a malformed object id")
}

/// The mesh object of the Live Folder whose root is `path`.
pub fn folder_at(path: &Path) -> anyhow::Result<ObjectId> {
    let id = xattr::get(path, OBJECT).map_err(|e| match e.raw_os_error() {
        Some(libc::ENODATA) => anyhow::anyhow!(
            "{} is not a Live Folder: only a whole folder at the top of the mount is shared",
            path.display()
        ),
        _ => anyhow::anyhow!("{} is not in a mounted mesh ({e})", path.display()),
    })?;
    parse(&id)
}

/// A path in a Live Folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub object: ObjectId,
    /// The path below the folder's root, `/`-separated; empty for the root.
    pub inside: String,
}

/// The Live Folder `path` is in, and where in it.
pub fn place_of(path: &Path) -> anyhow::Result<Place> {
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot find {}", path.display()))?;
    for root in path.ancestors() {
        match xattr::get(root, OBJECT) {
            Ok(id) => {
                let inside = path
                    .strip_prefix(root)
                    .expect("an ancestor is a prefix")
                    .to_string_lossy()
                    .into_owned();
                return Ok(Place {
                    object: parse(&id)?,
                    inside,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(e).with_context(|| format!("reading {}", root.display()));
            }
            Err(_) => {}
        }
    }
    anyhow::bail!(
        "{} is not in a Live Folder of a mounted mesh",
        path.display()
    )
}

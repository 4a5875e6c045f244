//! The filesystem's errors. Each maps to exactly one errno and one log
//! level, both here in one `match`, and is logged once, where the FUSE
//! layer answers with it.

use crate::client::RemoteError;
use mesh_protocol::api::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("is a directory")]
    IsDir,
    #[error("not a directory")]
    NotDir,
    #[error("file name too long")]
    NameTooLong,
    /// The name (or target) as its bytes, escaped: the user's file.
    #[error(
        "a name or symbolic link target that is not UTF-8 (Mesh names are UTF-8 on every device): {0}"
    )]
    NotUtf8(String),
    #[error("a kind of node this call does not make")]
    UnsupportedKind,
    #[error("invalid name or argument: {0}")]
    Invalid(String),
    #[error("permission denied: {0}")]
    Access(String),
    #[error("operation not permitted: {0}")]
    NotPermitted(String),
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    #[error("no such attribute")]
    NoAttribute,
    /// An attribute outside `user.`, read: there are none (no ACLs, no
    /// security labels), answered as a file system without them answers.
    #[error("no extended attributes are kept outside user.*")]
    OtherNamespace,
    #[error("an ioctl request meshfs does not handle")]
    NoIoctl,
    /// A request the kernel answers itself once told the filesystem does
    /// not (`copy_file_range` becomes reads and writes, `poll` is always
    /// ready, `fallocate` is refused with `EOPNOTSUPP`, `close` sends no
    /// `flush`).
    #[error("{0}: left to the kernel")]
    LeftToKernel(&'static str),
    #[error("buffer too small")]
    Range,
    #[error("an offset at or past the end of the file")]
    PastEnd,
    #[error("a move between Live Folders")]
    CrossDevice,
    #[error("the server cannot be reached and the content is not on this device")]
    Offline,
    #[error("the server did not answer in time")]
    TimedOut,
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata cache: {0}")]
    Db(#[from] rusqlite::Error),
}

/// How an error is logged where the FUSE layer answers with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// An everyday answer (ENOENT on lookup, EEXIST on create, …): a
    /// debug line.
    Expected,
    /// A fault worth a warning.
    Fault,
}

impl FsError {
    /// The errno the kernel is answered with and how the answer is logged,
    /// decided together so that the two cannot drift apart.
    pub fn answer(&self) -> (i32, Severity) {
        use Severity::{Expected, Fault};
        match self {
            FsError::NotFound => (libc::ENOENT, Expected),
            FsError::Exists => (libc::EEXIST, Expected),
            FsError::NotEmpty => (libc::ENOTEMPTY, Expected),
            FsError::IsDir => (libc::EISDIR, Expected),
            FsError::NotDir => (libc::ENOTDIR, Expected),
            FsError::NameTooLong => (libc::ENAMETOOLONG, Expected),
            // As filesystems with a name encoding answer (NTFS, exFAT, ZFS
            // with utf8only), and logged: a file the user has is not taken.
            FsError::NotUtf8(_) => (libc::EILSEQ, Fault),
            FsError::UnsupportedKind => (libc::EINVAL, Expected),
            FsError::Invalid(_) => (libc::EINVAL, Expected),
            FsError::Access(_) => (libc::EACCES, Expected),
            FsError::NotPermitted(_) => (libc::EPERM, Expected),
            FsError::NotSupported(_) => (libc::EOPNOTSUPP, Fault),
            FsError::NoAttribute => (libc::ENODATA, Expected),
            // `EOPNOTSUPP` rather than `ENODATA`: `ls -l` then stops asking
            // every file of the mount for its ACL and security label.
            FsError::OtherNamespace => (libc::EOPNOTSUPP, Expected),
            // As local filesystems answer a request they do not know (a
            // terminal's TCGETS, which Python asks of every file it opens).
            FsError::NoIoctl => (libc::ENOTTY, Expected),
            FsError::LeftToKernel(_) => (libc::ENOSYS, Expected),
            FsError::Range => (libc::ERANGE, Expected),
            FsError::PastEnd => (libc::ENXIO, Expected),
            FsError::CrossDevice => (libc::EXDEV, Fault),
            FsError::Offline => (libc::EIO, Fault),
            FsError::TimedOut => (libc::EIO, Fault),
            FsError::Remote(RemoteError::Forbidden(_)) => (libc::EACCES, Fault),
            FsError::Remote(RemoteError::NotFound) => (libc::ENOENT, Fault),
            FsError::Remote(RemoteError::Refused {
                code: ErrorCode::OverQuota,
                ..
            }) => (libc::EDQUOT, Fault),
            FsError::Remote(_) => (libc::EIO, Fault),
            FsError::Io(e) => (e.raw_os_error().unwrap_or(libc::EIO), Fault),
            FsError::Db(e) if is_disk_full(e) => (libc::ENOSPC, Fault),
            FsError::Db(_) => (libc::EIO, Fault),
        }
    }

    /// The errno the kernel is answered with.
    pub fn errno(&self) -> i32 {
        self.answer().0
    }
}

/// Whether SQLite failed for want of space: the metadata cache's disk is
/// full (SQLite's unix VFS turns a write's `ENOSPC` into `SQLITE_FULL`).
fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

pub type FsResult<T> = Result<T, FsError>;

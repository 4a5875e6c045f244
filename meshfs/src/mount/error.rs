//! The filesystem's errors. Each maps to exactly one errno, here, and is
//! logged once, where the FUSE layer answers with it.

use crate::client::RemoteError;

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
    #[error("buffer too small")]
    Range,
    #[error("a move between Live Folders")]
    CrossDevice,
    #[error("the server cannot be reached and the content is not on this device")]
    Offline,
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata cache: {0}")]
    Db(#[from] rusqlite::Error),
}

impl FsError {
    /// The errno the kernel is answered with.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::IsDir => libc::EISDIR,
            FsError::NotDir => libc::ENOTDIR,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::Access(_) => libc::EACCES,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::NotSupported(_) => libc::EOPNOTSUPP,
            FsError::NoAttribute => libc::ENODATA,
            FsError::Range => libc::ERANGE,
            FsError::CrossDevice => libc::EXDEV,
            FsError::Offline => libc::EIO,
            FsError::Remote(RemoteError::Forbidden(_)) => libc::EACCES,
            FsError::Remote(RemoteError::NotFound) => libc::ENOENT,
            FsError::Remote(_) => libc::EIO,
            FsError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            FsError::Db(_) => libc::EIO,
        }
    }

    /// Whether this is an expected answer (ENOENT on lookup, …) rather than
    /// a fault worth a log line.
    pub fn is_expected(&self) -> bool {
        matches!(
            self,
            FsError::NotFound
                | FsError::Exists
                | FsError::NotEmpty
                | FsError::IsDir
                | FsError::NotDir
                | FsError::NameTooLong
                | FsError::NoAttribute
                | FsError::Range
                | FsError::Access(_)
                | FsError::NotPermitted(_)
                | FsError::Invalid(_)
        )
    }
}

pub type FsResult<T> = Result<T, FsError>;

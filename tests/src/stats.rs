//! What the filesystem at a path says of itself: `statvfs`, and the size
//! and free space `df` shows from it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `statvfs(2)` of the filesystem at `path`; panics if it fails.
pub fn statvfs(path: &Path) -> libc::statvfs {
    let c = CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: zeroes are a valid statvfs to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(
        r,
        0,
        "statvfs {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    st
}

/// `(size, free)` in bytes of the filesystem at `path`, as `df` shows
/// them (free: what an unprivileged user may still use).
pub fn df(path: &Path) -> (u64, u64) {
    let st = statvfs(path);
    (st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)
}

//! This machine's host name: a new device's default name, and the host in
//! the URL `meshd` gives itself when it listens on every address.

/// The host name, if the machine has one.
pub fn name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

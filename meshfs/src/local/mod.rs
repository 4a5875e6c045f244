//! What belongs to this device on this machine, apart from a mount: its
//! home directory (configuration, account, cache, log, pid file), its
//! token, the mount daemon's process, checking a mountpoint, reading a
//! password, talking to a running mount through extended attributes, and
//! turning a server's name into one local path component.

pub mod component;
pub mod credentials;
pub mod daemon;
pub mod home;
pub mod mountpoint;
pub mod password;
pub mod xattr;

//! What belongs to this device on this machine, apart from a mount: its
//! home directory (configuration, account, cache, log, pid file), its
//! token, the mount daemon's process, reading a password, and talking to a
//! running mount through extended attributes.

pub mod credentials;
pub mod daemon;
pub mod home;
pub mod password;
pub mod xattr;

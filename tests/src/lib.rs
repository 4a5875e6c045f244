//! End-to-end harness for Mesh: starts the real `meshd` server and mounts
//! real `meshfs` FUSE filesystems against it, one temporary home directory
//! and mountpoint per device, so tests act exactly as a user would — with
//! plain file system calls on the mountpoints and the real command lines.
//!
//! The binaries are not built by this crate: run `cargo build --workspace`
//! first. They are found next to the test executable
//! (`<target>/debug/{meshd,meshfs}`), or wherever `MESHD_BIN` / `MESHFS_BIN`
//! point.
//!
//! * [`Server::start`] runs `meshd serve` on a temporary data directory and
//!   a free port; dropping it stops the server (SIGTERM, then SIGKILL).
//! * [`Device::mount`] signs a new device in (`meshfs login`) and mounts it
//!   (`meshfs mount`); dropping it unmounts, by force if need be, even when
//!   the test panics. On a panic both drop handlers print the end of their
//!   logs, so a failure can be read from the test output alone.
//! * Changes travel between devices in the background: wait for them with
//!   [`wait_until`], never with a fixed sleep.
//!
//! Requires `/dev/fuse` and the rights to mount (the tests run as root).

mod content;
mod device;
mod disk;
mod env;
mod proxy;
mod rng;
mod server;
pub mod smtp;
mod stats;
mod tree;
mod wait;

pub use content::{
    check_pseudo_random, cmp, pseudo_random, pseudo_random_vec, write_pseudo_random,
};
pub use device::{Device, EMAIL, Frozen, Pair};
pub use disk::SmallDisk;
pub use env::{is_mounted, meshd_bin, meshfs_bin, xtask_bin};
pub use proxy::{FaultProxy, Link};
pub use rng::Rng;
pub use server::{PASSWORD, Server};
pub use stats::{df, statvfs};
pub use tree::{Entry, count_files, entry, errno_of, names, snapshot, tree_diff, wait_for_tree};
pub use wait::{SYNC, wait_for, wait_for_entry, wait_until};

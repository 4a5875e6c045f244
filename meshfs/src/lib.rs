//! `meshfs`: mounts a Mesh as a FUSE filesystem. Folders list at once from
//! a SQLite cache, content arrives on demand, writes flow back through a
//! durable outbox, and changes from other devices appear without polling.
//!
//! One crate, laid out by role, so that a folder's name tells where a
//! behaviour lives:
//!
//! - `cli` — the clap definitions, and only those;
//! - `cmd` — what each subcommand does, one file each;
//! - `mount` — the mount itself: FUSE adapter, core, metadata cache, chunk
//!   cache, content fetching, sync;
//! - `client` — what the client asks of the server;
//! - `local` — this device's state on this machine: home, credentials,
//!   the daemon's process, password input, xattrs of a running mount;
//! - `direct_io` — chunk bytes written to disk past the page cache, shared
//!   by the client (which collects them aligned) and the chunk cache.
//!
//! mountpoint-s3 splits its binary from its library crate; here the
//! binary is one line (`main.rs`) and every subcommand needs the same
//! home, credentials and client as the mount, so a second crate would add
//! a boundary with nothing on its other side. The end-to-end tests use the
//! library for `local::xattr`.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod direct_io;
pub mod local;
pub mod mount;

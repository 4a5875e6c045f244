//! `meshfs`: mounts a Mesh as a FUSE filesystem. Folders list at once from
//! a SQLite cache, content arrives on demand, writes flow back through a
//! durable outbox, and changes from other devices appear without polling.

pub mod chunk_cache;
pub mod cli;
pub mod core;
pub mod credentials;
pub mod devices;
pub mod error;
pub mod fetch;
pub mod fuse;
pub mod home;
pub mod meta;
pub mod mount;
pub mod news;
pub mod pinning;
pub mod place;
pub mod remote;
pub mod report;
pub mod session;
pub mod sharing;
pub mod sync;
pub mod who;
pub mod xattr;

//! The mount: the FUSE adapter (`fuse`) over a filesystem core that knows
//! no kernel (`core`), the metadata cache (`meta`), content on demand
//! (`fetch` into `chunk_cache`), keeping in step with the server (`sync`),
//! the core's errors and their errnos (`error`), and running it all as one
//! process (`run`).

pub mod chunk_cache;
pub mod core;
pub mod error;
pub mod fetch;
pub mod fuse;
pub mod meta;
pub mod run;
pub mod sync;

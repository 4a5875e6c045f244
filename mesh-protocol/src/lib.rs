//! `mesh-protocol`: what the Mesh server and client share — the FeedSync item
//! model and merge, its Atom and JSON encodings, content chunking, and the
//! payloads of the HTTP API and the change stream (with its subscriptions,
//! presence, awareness and news).

pub mod api;
pub mod atom;
pub mod chunk_batch;
pub mod content;
pub mod feed;
pub mod feedsync;
pub mod folder;
pub mod json;
pub mod live;
pub mod slice;
pub mod sse;

/// The FeedSync namespace (`sx:`).
pub const FEEDSYNC_NS: &str = "http://feedsync.org/2007/feedsync";
/// The Atom namespace.
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// Mesh's own Atom extensions (`mesh:data`, `mesh:chunk`).
pub const MESH_NS: &str = "urn:x-mesh:feed:1";

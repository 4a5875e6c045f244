//! The Atom encoding of FeedSync feeds (RFC 4287 with the `sx:` elements of
//! FeedSync 1.0.1 and Mesh's `mesh:` extensions), read and written with
//! quick-xml.

use crate::feed::Feed;

/// An Atom document that cannot be read, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AtomError {
    pub message: String,
}

/// Reads an Atom feed.
pub fn read_feed(_xml: &[u8]) -> Result<Feed, AtomError> {
    todo!()
}

/// Writes an Atom feed.
pub fn write_feed(_feed: &Feed) -> String {
    todo!()
}

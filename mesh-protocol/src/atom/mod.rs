//! The Atom encoding of FeedSync feeds: RFC 4287 with the `sx:` elements of
//! FeedSync 1.0.1 (see `shared/FEEDSYNC.md`) and Mesh's `mesh:` extensions,
//! read with quick-xml's namespace-aware reader and written as UTF-8 text.
//!
//! # Mapping
//!
//! - `feed`: `title` (text), `id`, `updated`, `link`s, `sx:sharing` (with
//!   `sx:related` children) and, in answers only, `mesh:skipped` elements
//!   (`index`, `atom-id`, `reason`) map to [`Feed`].
//! - `entry`: its `sx:sync` (with `sx:history` records and an optional
//!   `sx:conflicts` of whole entries) is the [`Sync`] of the item's current
//!   version, and its Atom elements are the [`Body`]: `title`, `id`,
//!   `updated`, `published`, `author`s, `summary`, `content` (inline, or out
//!   of line with `src`), `link`s, `category`s, `mesh:data` (JSON text) and
//!   the content reference, a `link rel="enclosure"` with a `urn:blake3:`
//!   href, a `length` and one `mesh:chunk` child per chunk.
//! - Text constructs and inline content of type `xhtml` or an XML media type
//!   ([`TextKind::is_markup`]) hold the markup inside the element exactly as
//!   it appears in the document; the other types hold the text.
//!
//! # Reading
//!
//! - Elements and attributes are matched by namespace URI and local name
//!   ([`crate::ATOM_NS`], [`crate::FEEDSYNC_NS`], [`crate::MESH_NS`]),
//!   whatever prefixes the document binds them to.
//! - `sx:sync` may be anywhere among an entry's children and its attributes
//!   in any order; `deleted` and `noconflicts` default to false (`true`,
//!   `false`, `1` and `0` are accepted); a history record needs `when`,
//!   `by` or both.
//! - An entry without `sx:sync` is not synced: it is reported in
//!   [`Feed::skipped`] (after any `mesh:skipped` of the document) and
//!   reading goes on.
//! - Elements this module does not know are skipped wherever they are —
//!   extension elements, and Atom's `contributor`, `rights`, `source` and
//!   the feed's `subtitle`, `generator`, … — so they do not survive a round
//!   trip. So are comments, processing instructions and a DOCTYPE.
//! - Any other fault refuses the whole document with an [`AtomError`] that
//!   names the problem and, where known, its line and column: XML that is not
//!   well-formed or not UTF-8, a root other than `atom:feed`, missing or
//!   malformed attributes, numbers and dates, an element that may appear
//!   once appearing twice, a history record without `when` and `by`, an
//!   `sx:sync` without history, a bad content hash, a conflict without
//!   `sx:sync`, with conflicts of its own or with another sync id, and
//!   `mesh:data` that is not JSON.
//!
//! # Writing, and lossless round trips
//!
//! [`read_feed`] of [`write_feed`] gives back the same [`Feed`] (but for
//! the characters XML 1.0 cannot hold, below). To keep it so while writing
//! valid Atom:
//!
//! - Every attribute value and every text is escaped; tab, newline and
//!   carriage return in attribute values, carriage return in text and the
//!   other control characters XML 1.0 allows (DEL and the C1 controls) are
//!   written as character references, so that XML's newline and attribute
//!   normalization leaves them alone.
//! - The document is well-formed XML 1.0 whatever the feed holds: a
//!   character XML 1.0 cannot hold even as a reference (the other C0
//!   controls, U+FFFE, U+FFFF) is written in text and attribute values as
//!   a visible escape, `\u{1b}`, and reads back as those characters — the
//!   one place a round trip is not lossless. In `mesh:data`, which is JSON,
//!   it is a JSON escape (`\u001b`) and reads back exactly, so a Live
//!   Folder entry's data (its name included) always survives. (This reader
//!   also accepts such characters as references, as older writers wrote
//!   them; strict parsers do not.)
//! - Markup values are written as they are when they are well-formed XML in
//!   the context of the feed, and escaped as text otherwise, so the document
//!   always stays well-formed (such a value reads back as its escaped form).
//! - Atom requires an entry's `title` and `updated`. When the body has none,
//!   a stand-in marked `mesh:implied="true"` is written — an empty title, and
//!   as `updated` the newest `when` of the version's history or else the Unix
//!   epoch — and a marked element reads back as none. The feed's `title` and
//!   `updated` get the same treatment (the stand-in `updated` is the newest
//!   entry `updated`); a feed without an id is written without `atom:id`.
//! - `atom:id` is the body's `atom_id`, or the sync id when it has none; an
//!   `atom:id` equal to the sync id reads back as none (the model stores it
//!   so, see [`crate::feedsync::Item::update`]).
//! - The content reference is written before the other links, and on reading
//!   the first `enclosure` link with a `urn:blake3:` href is the content
//!   reference. A body with no content reference but such a link among its
//!   links would therefore read back differently; Mesh never writes one.
//! - Dates are written in RFC 3339, UTC, ending in `Z`, with as many
//!   fraction digits as they need; any RFC 3339 offset is read and converted
//!   to UTC.
//!
//! # Layout
//!
//! Reading is done in two steps: `dom` parses the document into a tree of
//! elements (checking that it is well-formed), and `read` turns that tree
//! into a [`Feed`]. `write` writes a feed as text, and `tests` holds the
//! unit tests.
//!
//! [`Feed`]: crate::feed::Feed
//! [`Feed::skipped`]: crate::feed::Feed::skipped
//! [`Sync`]: crate::feedsync::Sync
//! [`Body`]: crate::feedsync::Body
//! [`TextKind::is_markup`]: crate::feedsync::TextKind::is_markup

mod dom;
mod read;
mod write;

use std::fmt;

pub use read::read_feed;
pub use write::write_feed;

/// The prefix of a content reference's href, before the whole content's hash.
const CONTENT_URN: &str = "urn:blake3:";

/// An Atom document that cannot be read: what is wrong and, where known,
/// where. Displays as `line 12, column 5: sx:history has neither …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomError {
    pub message: String,
    pub position: Option<Position>,
}

impl fmt::Display for AtomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.position {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AtomError {}

/// A place in an XML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Bytes from the start of the document.
    pub offset: usize,
    /// Line, from 1.
    pub line: usize,
    /// Characters from the start of the line, from 1.
    pub column: usize,
}

impl Position {
    fn of(doc: &[u8], offset: usize) -> Self {
        let before = &doc[..offset.min(doc.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Position {
            offset,
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count(),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests;

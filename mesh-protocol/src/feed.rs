//! A feed of synced items, the unit both encodings read and write, with the
//! FeedSync feed-level `sx:sharing` metadata.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::feedsync::{Item, Link};

/// A feed: its Atom metadata, its items, and the entries that were skipped
/// when it was read because they carry no sync metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    pub title: Option<String>,
    pub id: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    /// Feed links (`self`, `next`, …).
    pub links: Vec<Link>,
    pub sharing: Option<Sharing>,
    pub items: Vec<Item>,
    /// Entries read without `sx:sync`: not synced, reported to the sender.
    pub skipped: Vec<Skipped>,
}

/// An entry of a posted feed that was not synced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Position among the feed's entries, from 0.
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atom_id: Option<String>,
    pub reason: String,
}

/// `sx:sharing`: the range a partial feed covers and where the complete
/// feed is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
}

/// `sx:related`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Related {
    pub link: String,
    /// `complete` or `aggregated`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

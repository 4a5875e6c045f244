//! The content of one version of an item: the Atom entry fields Mesh keeps
//! (title, authors, links, categories, content, …), an application's JSON
//! payload (`mesh:data`) and, for files, a content reference (enclosure).
//!
//! The same struct is encoded as JSON (serde, here) and as Atom
//! (`crate::atom`); both round-trip losslessly.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::content::ContentRef;

/// The content of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// `atom:title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// `atom:id` when it differs from the sync id (written as the sync id
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atom_id: Option<String>,
    /// `atom:updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
    /// `atom:published`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    /// `atom:author`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Person>,
    /// `atom:summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    /// `atom:content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `atom:link`s other than the content enclosure, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// `atom:category`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// An application's own payload (`mesh:data`); for a Live Folder entry
    /// the entry's metadata (`crate::folder::EntryData`). A JSON `null`
    /// payload is `Some(Value::Null)`, distinct from no payload.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<serde_json::Value>,
    /// A file's content, stored as chunks (`atom:link rel="enclosure"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<ContentRef>,
}

/// Reads a member that is present as `Some`, even when it is `null` (serde
/// would read `null` as `None`, so `Some(Value::Null)` would not round-trip).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// An Atom text construct or inline content: its type and its value. For
/// `xhtml` and XML media types the value is the XML markup inside the
/// element; for the others it is the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    #[serde(rename = "type", default)]
    pub kind: TextKind,
    pub value: String,
}

impl Text {
    pub fn plain(value: impl Into<String>) -> Self {
        Text {
            kind: TextKind::Text,
            value: value.into(),
        }
    }
}

/// The `type` attribute of a text construct or of inline content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TextKind {
    #[default]
    Text,
    Html,
    Xhtml,
    /// Any other media type (inline content only).
    Media(String),
}

impl TextKind {
    pub fn as_str(&self) -> &str {
        match self {
            TextKind::Text => "text",
            TextKind::Html => "html",
            TextKind::Xhtml => "xhtml",
            TextKind::Media(m) => m,
        }
    }

    /// Whether the value is XML markup rather than text: `xhtml` and XML
    /// media types (RFC 4287 §4.1.3.3).
    pub fn is_markup(&self) -> bool {
        match self {
            TextKind::Xhtml => true,
            TextKind::Media(m) => {
                let m = m
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                m.ends_with("+xml") || m.ends_with("/xml")
            }
            _ => false,
        }
    }
}

impl From<String> for TextKind {
    fn from(s: String) -> Self {
        match s.as_str() {
            "" | "text" => TextKind::Text,
            "html" => TextKind::Html,
            "xhtml" => TextKind::Xhtml,
            _ => TextKind::Media(s),
        }
    }
}

impl From<TextKind> for String {
    fn from(k: TextKind) -> String {
        k.as_str().to_owned()
    }
}

/// `atom:content`: inline, or out of line by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Content {
    Inline(Text),
    OutOfLine {
        src: String,
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
    },
}

/// `atom:author`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// `atom:link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hreflang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// `atom:category`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub term: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

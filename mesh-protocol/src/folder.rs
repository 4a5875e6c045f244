//! Live Folder entries: the `data` payload of an item in a `folder` object.
//! The tree is flat: each entry names its parent entry by sync id (none for
//! the folder's top level), so a rename or a move is one entry update.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The longest entry name, in bytes (as on most Unix filesystems).
pub const MAX_NAME_LEN: usize = 255;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    /// A character device node (kept as an entry; never opened as a device
    /// on another machine).
    Char,
    /// A block device node.
    Block,
}

impl EntryKind {
    /// Every kind.
    pub const ALL: [EntryKind; 7] = [
        EntryKind::File,
        EntryKind::Dir,
        EntryKind::Symlink,
        EntryKind::Fifo,
        EntryKind::Socket,
        EntryKind::Char,
        EntryKind::Block,
    ];

    /// The kind's name, as entry data spells it (`"type": "dir"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Socket => "socket",
            EntryKind::Char => "char",
            EntryKind::Block => "block",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`EntryKind`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a kind of entry")]
pub struct UnknownKind(pub String);

impl FromStr for EntryKind {
    type Err = UnknownKind;

    /// The kind [`EntryKind::as_str`] names.
    fn from_str(s: &str) -> Result<EntryKind, UnknownKind> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// The metadata of a Live Folder entry. A file's content is the item's
/// enclosure; its size is the enclosure's length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryData {
    pub name: String,
    /// The sync id of the parent directory entry; `None` at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Permission bits, `0o7777` at most.
    pub mode: u32,
    /// Modification time, with nanoseconds.
    pub mtime: DateTime<Utc>,
    /// A symbolic link's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A device node's device number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    /// Extended attributes (`user.*`), values in hexadecimal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    /// For a conflicted copy: the sync id of the entry whose concurrent
    /// version it keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_of: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Lowercase hexadecimal, as extended attribute values travel.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hexadecimal; `None` if it is not.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl EntryData {
    /// The extended attributes with their values as bytes.
    pub fn xattr_values(&self) -> BTreeMap<String, Vec<u8>> {
        self.xattrs
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), from_hex(v)?)))
            .collect()
    }

    /// Extended attributes from values as bytes.
    pub fn encode_xattrs(values: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
        values.iter().map(|(k, v)| (k.clone(), to_hex(v))).collect()
    }
}

/// A name no endpoint may give an entry or a mesh object, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("a name cannot be empty")]
    Empty,
    #[error("a name cannot be \".\" or \"..\"")]
    Dots,
    #[error("a name cannot contain '/' or NUL")]
    Separator,
    #[error("a name has at most {MAX_NAME_LEN} bytes")]
    TooLong,
    #[error("a mesh object's name cannot contain control characters")]
    Control,
    #[error("a mesh object's name cannot be only white space")]
    Blank,
}

/// The one home of the name rules. An entry's name, and a mesh object's
/// name (a Live Folder is a directory at the root of every member's mount,
/// and a device may build a local path from it), must be one path
/// component: not empty, not `.` or `..`, no `/` or NUL, at most
/// [`MAX_NAME_LEN`] bytes.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() {
        Err(InvalidName::Empty)
    } else if name == "." || name == ".." {
        Err(InvalidName::Dots)
    } else if name.contains(['/', '\0']) {
        Err(InvalidName::Separator)
    } else if name.len() > MAX_NAME_LEN {
        Err(InvalidName::TooLong)
    } else {
        Ok(())
    }
}

/// A mesh object's name: [`validate_name`]'s rules, and also no control
/// characters and not only white space. An object's name is shown to
/// people who did not choose it — other members' mounts, invitation
/// e-mails (in the subject line, where a newline would forge headers),
/// the confirmation page, news — so it must read as what it is. Entry
/// names keep every other character a local file system allows, so that
/// any directory copied in keeps its names; they are escaped where shown.
pub fn validate_object_name(name: &str) -> Result<(), InvalidName> {
    validate_name(name)?;
    if name.chars().any(char::is_control) {
        Err(InvalidName::Control)
    } else if name.trim().is_empty() {
        Err(InvalidName::Blank)
    } else {
        Ok(())
    }
}

/// Entry data that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntry {
    #[error("not Live Folder entry data: {0}")]
    Shape(String),
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error("mode {0:#o} has bits beyond 0o7777")]
    Mode(u32),
    #[error("a symbolic link needs a non-empty target of at most 4096 bytes")]
    Target,
    #[error("a file needs an enclosure; other kinds cannot have one")]
    Enclosure,
    #[error("an extended attribute name must start with \"user.\" and its value be hexadecimal")]
    Xattr,
}

impl EntryData {
    /// Reads and checks the entry data of an item body.
    pub fn from_body(body: &crate::feedsync::Body) -> Result<EntryData, InvalidEntry> {
        let data = body
            .data
            .clone()
            .ok_or_else(|| InvalidEntry::Shape("the item has no data".into()))?;
        let entry: EntryData =
            serde_json::from_value(data).map_err(|e| InvalidEntry::Shape(e.to_string()))?;
        entry.validate(body.enclosure.is_some())?;
        Ok(entry)
    }

    /// Checks the rules every endpoint enforces.
    pub fn validate(&self, has_enclosure: bool) -> Result<(), InvalidEntry> {
        validate_name(&self.name)?;
        if self.mode & !0o7777 != 0 {
            return Err(InvalidEntry::Mode(self.mode));
        }
        if self.kind == EntryKind::Symlink
            && self
                .target
                .as_ref()
                .is_none_or(|t| t.is_empty() || t.len() > 4096 || t.contains('\0'))
        {
            return Err(InvalidEntry::Target);
        }
        if (self.kind == EntryKind::File) != has_enclosure {
            return Err(InvalidEntry::Enclosure);
        }
        if self
            .xattrs
            .iter()
            .any(|(k, v)| !k.starts_with("user.") || k.len() > 255 || from_hex(v).is_none())
        {
            return Err(InvalidEntry::Xattr);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::ContentRef;
    use crate::feedsync::Body;
    use serde_json::json;

    fn body(data: serde_json::Value, file: bool) -> Body {
        Body {
            data: Some(data),
            enclosure: file.then(ContentRef::empty),
            ..Body::default()
        }
    }

    #[test]
    fn kinds_are_named_as_entry_data_spells_them() {
        for kind in EntryKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
            assert_eq!(kind.as_str().parse(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(
            "directory".parse::<EntryKind>(),
            Err(UnknownKind("directory".into()))
        );
        assert_eq!("File".parse::<EntryKind>(), Err(UnknownKind("File".into())));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("report.docx"), Ok(()));
        assert_eq!(validate_name(""), Err(InvalidName::Empty));
        assert_eq!(validate_name(".."), Err(InvalidName::Dots));
        assert_eq!(validate_name("a/b"), Err(InvalidName::Separator));
        assert_eq!(validate_name("a\0b"), Err(InvalidName::Separator));
        assert_eq!(validate_name(&"x".repeat(256)), Err(InvalidName::TooLong));
        assert_eq!(validate_name(&"é".repeat(127)), Ok(()));
        assert_eq!(
            validate_name("bell\u{7}"),
            Ok(()),
            "entries keep control characters"
        );
    }

    #[test]
    fn object_names_follow_the_entry_rules_and_more() {
        assert_eq!(validate_object_name("Photos"), Ok(()));
        assert_eq!(validate_object_name("Photos (2026)"), Ok(()));
        for (name, why) in [
            ("", InvalidName::Empty),
            (".", InvalidName::Dots),
            ("..", InvalidName::Dots),
            ("a/b", InvalidName::Separator),
            ("/tmp/x", InvalidName::Separator),
            ("../../x", InvalidName::Separator),
            ("a\0b", InvalidName::Separator),
            ("bell\u{7}", InvalidName::Control),
            ("two\nlines", InvalidName::Control),
            ("esc\u{1b}[2J", InvalidName::Control),
            ("   ", InvalidName::Blank),
        ] {
            assert_eq!(validate_object_name(name), Err(why), "{name:?}");
        }
        assert_eq!(
            validate_object_name(&"x".repeat(256)),
            Err(InvalidName::TooLong)
        );
        assert_eq!(validate_object_name(&"x".repeat(255)), Ok(()));
    }

    #[test]
    fn entries_round_trip_and_are_checked() {
        let file = json!({"name": "a.txt", "type": "file", "mode": 0o644, "mtime": "2026-11-27T10:00:00.123456789Z"});
        let entry = EntryData::from_body(&body(file.clone(), true)).unwrap();
        assert_eq!(entry.mtime.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(serde_json::to_value(&entry).unwrap(), file);
        assert_eq!(
            EntryData::from_body(&body(file.clone(), false)),
            Err(InvalidEntry::Enclosure)
        );
        let mut bad = file.clone();
        bad["name"] = json!("../etc");
        assert!(matches!(
            EntryData::from_body(&body(bad, true)),
            Err(InvalidEntry::Name(_))
        ));
        let mut bad = file.clone();
        bad["mode"] = json!(0o100644);
        assert_eq!(
            EntryData::from_body(&body(bad, true)),
            Err(InvalidEntry::Mode(0o100644))
        );
        let link =
            json!({"name": "l", "type": "symlink", "mode": 0o777, "mtime": "2026-11-27T10:00:00Z"});
        assert_eq!(
            EntryData::from_body(&body(link, false)),
            Err(InvalidEntry::Target)
        );
        let xattr = json!({"name": "d", "type": "dir", "mode": 0o755, "mtime": "2026-11-27T10:00:00Z",
                           "xattrs": {"trusted.x": "00"}});
        assert_eq!(
            EntryData::from_body(&body(xattr, false)),
            Err(InvalidEntry::Xattr)
        );
        assert!(matches!(
            EntryData::from_body(&body(json!({"name": "x"}), false)),
            Err(InvalidEntry::Shape(_))
        ));
    }
}

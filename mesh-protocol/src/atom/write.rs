//! Writing: a [`Feed`] as an Atom document, one element a line, indented.

use chrono::{DateTime, SecondsFormat, Utc};

use super::CONTENT_URN;
use super::dom::parse;
use crate::content::ContentRef;
use crate::feed::{Feed, Sharing};
use crate::feedsync::{Content, Link, Sync, Text, Version};
use crate::{ATOM_NS, FEEDSYNC_NS, MESH_NS};

/// Writes an Atom feed with the `xmlns`, `xmlns:sx` and `xmlns:mesh`
/// declarations on its root.
pub fn write_feed(feed: &Feed) -> String {
    let mut out = Out::default();
    out.xml
        .push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    out.open(
        "feed",
        &[
            ("xmlns", Some(ATOM_NS)),
            ("xmlns:sx", Some(FEEDSYNC_NS)),
            ("xmlns:mesh", Some(MESH_NS)),
        ],
    );
    match &feed.title {
        Some(title) => out.leaf("title", &[], Chars::Text(title)),
        None => out.leaf("title", IMPLIED, Chars::Text("")),
    }
    if let Some(id) = &feed.id {
        out.leaf("id", &[], Chars::Text(id));
    }
    let newest_entry = feed.items.iter().map(|i| entry_updated(&i.current)).max();
    write_updated(&mut out, feed.updated, newest_entry.unwrap_or_default());
    for link in &feed.links {
        write_link(&mut out, link);
    }
    if let Some(sharing) = &feed.sharing {
        write_sharing(&mut out, sharing);
    }
    for skipped in &feed.skipped {
        let index = skipped.index.to_string();
        out.empty(
            "mesh:skipped",
            &[
                ("index", Some(&index)),
                ("atom-id", skipped.atom_id.as_deref()),
                ("reason", Some(&skipped.reason)),
            ],
        );
    }
    for item in &feed.items {
        write_entry(&mut out, &item.current, &item.conflicts);
    }
    out.close("feed");
    out.xml.push('\n');
    out.xml
}

/// Attributes of an element being written; `None` values are left out.
type Attrs<'v> = [(&'static str, Option<&'v str>)];

/// The mark of a stand-in for an absent value.
const IMPLIED: &Attrs<'static> = &[("mesh:implied", Some("true"))];

/// The content of a leaf element: text to escape, or markup to copy.
enum Chars<'v> {
    Text(&'v str),
    Markup(&'v str),
}

/// An XML document being written, one element a line, indented.
#[derive(Default)]
struct Out {
    xml: String,
    depth: usize,
}

impl Out {
    fn tag(&mut self, name: &str, attrs: &Attrs<'_>) {
        self.xml.push('\n');
        for _ in 0..self.depth {
            self.xml.push_str("  ");
        }
        self.xml.push('<');
        self.xml.push_str(name);
        for (key, value) in attrs {
            if let Some(value) = value {
                self.xml.push(' ');
                self.xml.push_str(key);
                self.xml.push_str("=\"");
                escape_into(&mut self.xml, value, true);
                self.xml.push('"');
            }
        }
    }

    fn open(&mut self, name: &str, attrs: &Attrs<'_>) {
        self.tag(name, attrs);
        self.xml.push('>');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.xml.push('\n');
        for _ in 0..self.depth {
            self.xml.push_str("  ");
        }
        self.xml.push_str("</");
        self.xml.push_str(name);
        self.xml.push('>');
    }

    fn empty(&mut self, name: &str, attrs: &Attrs<'_>) {
        self.tag(name, attrs);
        self.xml.push_str("/>");
    }

    fn leaf(&mut self, name: &str, attrs: &Attrs<'_>, chars: Chars<'_>) {
        self.tag(name, attrs);
        self.xml.push('>');
        match chars {
            Chars::Text(text) => escape_into(&mut self.xml, text, false),
            Chars::Markup(markup) => self.xml.push_str(markup),
        }
        self.xml.push_str("</");
        self.xml.push_str(name);
        self.xml.push('>');
    }
}

/// Whether XML 1.0 can hold `c` at all, as itself or as a character
/// reference (its `Char` production): not the C0 controls but tab, newline
/// and carriage return, nor U+FFFE and U+FFFF.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Appends `s` escaped as character data or, with `in_attribute`, as a
/// double-quoted attribute value. A character XML 1.0 cannot hold is
/// written as a visible escape, `\u{1b}`, so the document stays
/// well-formed for every parser (it reads back as those characters).
fn escape_into(out: &mut String, s: &str, in_attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\t' | '\n' if !in_attribute => out.push(c),
            c if !is_xml_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c if c.is_control() => out.push_str(&format!("&#{};", u32::from(c))),
            c => out.push(c),
        }
    }
}

/// JSON text for `mesh:data`, with every character XML 1.0 cannot hold
/// written as a JSON escape (`\u001b`; they are all in the Basic
/// Multilingual Plane), so the data reads back exactly. Outside strings
/// JSON text is ASCII, so each such character is inside a string.
fn json_for_xml(json: String) -> String {
    if json.chars().all(is_xml_char) {
        return json;
    }
    json.chars()
        .map(|c| {
            if is_xml_char(c) {
                c.to_string()
            } else {
                format!("\\u{:04x}", u32::from(c))
            }
        })
        .collect()
}

fn date(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Whether `markup` is well-formed XML content where a feed written here
/// holds it (the default namespace Atom, `sx` and `mesh` bound), so that it
/// can be written as it is and read back the same.
fn fits_in_feed(markup: &str) -> bool {
    let doc = format!(
        r#"<x xmlns="{ATOM_NS}" xmlns:sx="{FEEDSYNC_NS}" xmlns:mesh="{MESH_NS}">{markup}</x>"#
    );
    parse(doc.as_bytes()).is_ok_and(|root| root.inner == markup)
}

fn write_text(out: &mut Out, name: &str, text: &Text) {
    let chars = if text.kind.is_markup() && fits_in_feed(&text.value) {
        Chars::Markup(&text.value)
    } else {
        Chars::Text(&text.value)
    };
    out.leaf(name, &[("type", Some(text.kind.as_str()))], chars);
}

/// An `updated` element: the value, or a marked stand-in when there is none.
fn write_updated(out: &mut Out, updated: Option<DateTime<Utc>>, stand_in: DateTime<Utc>) {
    match updated {
        Some(d) => out.leaf("updated", &[], Chars::Text(&date(&d))),
        None => out.leaf("updated", IMPLIED, Chars::Text(&date(&stand_in))),
    }
}

/// The `updated` written for a version: its own, else the newest `when` of
/// its history, else the Unix epoch.
fn entry_updated(v: &Version) -> DateTime<Utc> {
    v.body
        .updated
        .or_else(|| v.sync.history.iter().find_map(|h| h.when))
        .unwrap_or_default()
}

fn write_link(out: &mut Out, link: &Link) {
    let length = link.length.map(|l| l.to_string());
    out.empty(
        "link",
        &[
            ("href", Some(&link.href)),
            ("rel", link.rel.as_deref()),
            ("type", link.media_type.as_deref()),
            ("hreflang", link.hreflang.as_deref()),
            ("title", link.title.as_deref()),
            ("length", length.as_deref()),
        ],
    );
}

fn write_sharing(out: &mut Out, sharing: &Sharing) {
    let expires = sharing.expires.as_ref().map(date);
    out.open(
        "sx:sharing",
        &[
            ("since", sharing.since.as_deref()),
            ("until", sharing.until.as_deref()),
            ("expires", expires.as_deref()),
        ],
    );
    for related in &sharing.related {
        out.empty(
            "sx:related",
            &[
                ("link", Some(&related.link)),
                ("type", Some(&related.kind)),
                ("title", related.title.as_deref()),
            ],
        );
    }
    out.close("sx:sharing");
}

fn write_content_ref(out: &mut Out, content: &ContentRef) {
    let href = format!("{CONTENT_URN}{}", content.hash);
    let length = content.length.to_string();
    out.open(
        "link",
        &[
            ("rel", Some("enclosure")),
            ("href", Some(&href)),
            ("length", Some(&length)),
            ("type", Some("application/octet-stream")),
        ],
    );
    for chunk in &content.chunks {
        let (hash, size) = (chunk.hash.to_hex(), chunk.size.to_string());
        out.empty(
            "mesh:chunk",
            &[("hash", Some(&hash)), ("size", Some(&size))],
        );
    }
    out.close("link");
}

/// Writes one version as an entry, with `conflicts` (none for a conflict).
fn write_entry(out: &mut Out, version: &Version, conflicts: &[Version]) {
    let Version { sync, body } = version;
    out.open("entry", &[]);
    match &body.title {
        Some(title) => write_text(out, "title", title),
        None => out.leaf("title", IMPLIED, Chars::Text("")),
    }
    let atom_id = body.atom_id.as_deref().unwrap_or(sync.id.as_str());
    out.leaf("id", &[], Chars::Text(atom_id));
    write_updated(out, body.updated, entry_updated(version));
    if let Some(published) = &body.published {
        out.leaf("published", &[], Chars::Text(&date(published)));
    }
    for author in &body.authors {
        out.open("author", &[]);
        out.leaf("name", &[], Chars::Text(&author.name));
        if let Some(email) = &author.email {
            out.leaf("email", &[], Chars::Text(email));
        }
        if let Some(uri) = &author.uri {
            out.leaf("uri", &[], Chars::Text(uri));
        }
        out.close("author");
    }
    if let Some(summary) = &body.summary {
        write_text(out, "summary", summary);
    }
    match &body.content {
        Some(Content::Inline(text)) => write_text(out, "content", text),
        Some(Content::OutOfLine { src, media_type }) => out.empty(
            "content",
            &[("type", media_type.as_deref()), ("src", Some(src))],
        ),
        None => {}
    }
    if let Some(content) = &body.enclosure {
        write_content_ref(out, content);
    }
    for link in &body.links {
        write_link(out, link);
    }
    for category in &body.categories {
        out.empty(
            "category",
            &[
                ("term", Some(&category.term)),
                ("scheme", category.scheme.as_deref()),
                ("label", category.label.as_deref()),
            ],
        );
    }
    if let Some(data) = &body.data {
        out.leaf(
            "mesh:data",
            &[],
            Chars::Text(&json_for_xml(data.to_string())),
        );
    }
    write_sync(out, sync, conflicts);
    out.close("entry");
}

fn write_sync(out: &mut Out, sync: &Sync, conflicts: &[Version]) {
    let updates = sync.updates.to_string();
    out.open(
        "sx:sync",
        &[
            ("id", Some(sync.id.as_str())),
            ("updates", Some(&updates)),
            ("deleted", Some(if sync.deleted { "true" } else { "false" })),
            (
                "noconflicts",
                Some(if sync.noconflicts { "true" } else { "false" }),
            ),
        ],
    );
    for record in sync.history.iter() {
        let sequence = record.sequence.to_string();
        let when = record.when.as_ref().map(date);
        out.empty(
            "sx:history",
            &[
                ("sequence", Some(&sequence)),
                ("when", when.as_deref()),
                ("by", record.by.as_deref()),
            ],
        );
    }
    if !conflicts.is_empty() {
        out.open("sx:conflicts", &[]);
        for conflict in conflicts {
            write_entry(out, conflict, &[]);
        }
        out.close("sx:conflicts");
    }
    out.close("sx:sync");
}

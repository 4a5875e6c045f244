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
//! [`read_feed`] of [`write_feed`] gives back the same [`Feed`]. To keep it
//! so while writing valid Atom:
//!
//! - Every attribute value and every text is escaped; tab, newline and
//!   carriage return in attribute values, carriage return in text and
//!   control characters anywhere are written as character references, so
//!   that XML's newline and attribute normalization leaves them alone.
//!   (XML 1.0 forbids most control characters even as references; this
//!   reader accepts them, strict parsers do not.)
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

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::content::{ChunkRef, ContentRef, Hash};
use crate::feed::{Feed, Related, Sharing, Skipped};
use crate::feedsync::{
    Body, Category, Content, History, HistoryList, Item, Link, Person, Sync, SyncId, Text,
    TextKind, Version,
};
use crate::{ATOM_NS, FEEDSYNC_NS, MESH_NS};

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

/// Reads an Atom feed (see the module documentation for what is read and
/// what is refused).
pub fn read_feed(xml: &[u8]) -> Result<Feed, AtomError> {
    parse(xml)
        .and_then(|root| feed(&root))
        .map_err(|fault| AtomError {
            message: fault.message,
            position: fault.at.map(|at| Position::of(xml, at)),
        })
}

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

// ---------------------------------------------------------------------------
// Reading, step 1: the document as a tree of elements.

/// The namespaces this module reads, and the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Atom,
    Sx,
    Mesh,
    /// Another namespace.
    Other,
    /// No namespace (unprefixed attributes, elements outside any default
    /// namespace).
    None,
}

impl Ns {
    /// The namespace of a resolved name, or the unknown prefix.
    fn of(resolved: ResolveResult<'_>) -> Result<Ns, String> {
        match resolved {
            ResolveResult::Bound(ns) => Ok(match ns.0 {
                ATOM_NS => Ns::Atom,
                FEEDSYNC_NS => Ns::Sx,
                MESH_NS => Ns::Mesh,
                _ => Ns::Other,
            }),
            ResolveResult::Unbound => Ok(Ns::None),
            ResolveResult::Unknown(prefix) => Err(prefix),
        }
    }
}

struct Attribute {
    ns: Ns,
    name: String,
    value: String,
}

/// An element of the document.
struct Element<'a> {
    ns: Ns,
    /// Local name.
    name: String,
    /// Name as written, for messages.
    qname: String,
    attrs: Vec<Attribute>,
    children: Vec<Element<'a>>,
    /// The character data directly inside, unescaped and concatenated.
    text: String,
    /// Everything between the start and the end tag, as written.
    inner: &'a str,
    /// Byte offset of the start tag.
    at: usize,
}

/// A fault found while reading, at a byte offset when known.
struct Fault {
    at: Option<usize>,
    message: String,
}

fn fault_at(at: usize, message: impl Into<String>) -> Fault {
    Fault {
        at: Some(at),
        message: message.into(),
    }
}

/// How deep elements may nest: far more than any feed needs, few enough that
/// the tree can be built and dropped without exhausting the stack.
const MAX_DEPTH: usize = 256;

/// Parses a whole document into its root element, checking that it is
/// well-formed and namespace-well-formed XML.
fn parse(xml: &[u8]) -> Result<Element<'_>, Fault> {
    let src = std::str::from_utf8(xml)
        .map_err(|e| fault_at(e.valid_up_to(), "the document is not valid UTF-8"))?;
    let mut reader = NsReader::from_str(src);
    // Open elements, each with the offset where its content starts.
    let mut open: Vec<(Element<'_>, usize)> = Vec::new();
    let mut root = None;
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader
            .read_resolved_event()
            .map(|(ns, event)| (Ns::of(ns), event));
        let (ns, event) = event.map_err(|e| {
            fault_at(
                reader.error_position() as usize,
                format!("the document is not well-formed XML: {e}"),
            )
        })?;
        let chars = match event {
            Event::Start(start) => {
                if open.len() == MAX_DEPTH {
                    return Err(fault_at(
                        at,
                        format!("elements nested more than {MAX_DEPTH} deep"),
                    ));
                }
                let element = element(&reader, &start, ns, at)?;
                open.push((element, reader.buffer_position() as usize));
                continue;
            }
            Event::Empty(start) => {
                let element = element(&reader, &start, ns, at)?;
                attach(element, &mut open, &mut root)?;
                continue;
            }
            Event::End(_) => {
                let (mut element, inner_start) = open
                    .pop()
                    .ok_or_else(|| fault_at(at, "an end tag without a start tag"))?;
                element.inner = &src[inner_start..at];
                attach(element, &mut open, &mut root)?;
                continue;
            }
            Event::Text(text) => text.xml10_content(),
            Event::CData(cdata) => cdata.xml10_content(),
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => c.to_string().into(),
                Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                    .ok_or_else(|| fault_at(at, format!("unknown entity `&{};`", &*reference)))?
                    .into(),
                Err(e) => return Err(fault_at(at, format!("bad character reference: {e}"))),
            },
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => continue,
            Event::Eof => break,
        };
        match open.last_mut() {
            Some((parent, _)) => parent.text.push_str(&chars),
            None if chars.trim().is_empty() => {}
            None => {
                return Err(fault_at(
                    at,
                    "text outside the root element (this is not an XML document)",
                ));
            }
        }
    }
    if let Some((element, _)) = open.last() {
        return Err(fault_at(
            src.len(),
            format!(
                "the document ends inside `<{}>`: it is cut short",
                element.qname
            ),
        ));
    }
    root.ok_or_else(|| fault_at(src.len(), "the document has no root element"))
}

/// Builds an element from its start tag.
fn element<'a>(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: Result<Ns, String>,
    at: usize,
) -> Result<Element<'a>, Fault> {
    let qname = start.name().into_inner().to_owned();
    let ns = ns.map_err(|prefix| {
        fault_at(
            at,
            format!("`<{qname}>` uses the undeclared prefix `{prefix}`"),
        )
    })?;
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| fault_at(at, format!("bad attribute in `<{qname}>`: {e}")))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let key = attr.key.into_inner();
        let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
        let attr_ns = Ns::of(attr_ns).map_err(|prefix| {
            fault_at(
                at,
                format!("attribute `{key}` uses the undeclared prefix `{prefix}`"),
            )
        })?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| fault_at(at, format!("bad value of `{key}` in `<{qname}>`: {e}")))?;
        attrs.push(Attribute {
            ns: attr_ns,
            name: local.into_inner().to_owned(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        ns,
        name: start.local_name().into_inner().to_owned(),
        qname,
        attrs,
        children: Vec::new(),
        text: String::new(),
        inner: "",
        at,
    })
}

/// Adds a complete element to its parent, or makes it the root.
fn attach<'a>(
    element: Element<'a>,
    open: &mut [(Element<'a>, usize)],
    root: &mut Option<Element<'a>>,
) -> Result<(), Fault> {
    match open.last_mut() {
        Some((parent, _)) => parent.children.push(element),
        None if root.is_some() => {
            return Err(element.fault("a second root element; a document has one"));
        }
        None => *root = Some(element),
    }
    Ok(())
}

impl<'a> Element<'a> {
    fn is(&self, ns: Ns, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    fn fault(&self, message: impl fmt::Display) -> Fault {
        fault_at(self.at, message.to_string())
    }

    /// The children with this name, in order.
    fn all<'s>(&'s self, ns: Ns, name: &str) -> impl Iterator<Item = &'s Element<'a>> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The child with this name, which may appear at most once.
    fn single(&self, ns: Ns, name: &str) -> Result<Option<&Element<'a>>, Fault> {
        let mut found = self.all(ns, name);
        let first = found.next();
        match found.next() {
            Some(second) => Err(second.fault(format!(
                "`{}` holds more than one `{}`",
                self.qname, second.qname
            ))),
            None => Ok(first),
        }
    }

    /// The child with this name, which must appear exactly once.
    fn required_child(&self, ns: Ns, name: &str) -> Result<&Element<'a>, Fault> {
        self.single(ns, name)?
            .ok_or_else(|| self.fault(format!("`{}` has no `{name}`", self.qname)))
    }

    fn ns_attr(&self, ns: Ns, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// An attribute in no namespace.
    fn attr(&self, name: &str) -> Option<&str> {
        self.ns_attr(Ns::None, name)
    }

    fn owned_attr(&self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_owned)
    }

    fn missing(&self, name: &str) -> Fault {
        self.fault(format!("`{}` has no `{name}` attribute", self.qname))
    }

    fn required(&self, name: &str) -> Result<&str, Fault> {
        self.attr(name).ok_or_else(|| self.missing(name))
    }

    /// An attribute read with `parse`, which answers `None` for a value that
    /// is not `kind`.
    fn attr_as<T>(
        &self,
        name: &str,
        kind: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, Fault> {
        self.attr(name)
            .map(|value| {
                parse(value).ok_or_else(|| {
                    self.fault(format!(
                        "`{name}` of `{}` is not {kind}: {value:?}",
                        self.qname
                    ))
                })
            })
            .transpose()
    }

    fn required_as<T>(
        &self,
        name: &str,
        kind: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, Fault> {
        self.attr_as(name, kind, parse)?
            .ok_or_else(|| self.missing(name))
    }

    /// The element's text as a date.
    fn date(&self) -> Result<DateTime<Utc>, Fault> {
        rfc3339(&self.text).ok_or_else(|| {
            self.fault(format!(
                "`{}` is not an RFC 3339 date: {:?}",
                self.qname, self.text
            ))
        })
    }

    /// Whether this is a stand-in for a value that is absent.
    fn implied(&self) -> bool {
        self.ns_attr(Ns::Mesh, "implied") == Some("true")
    }
}

const NUMBER: &str = "a whole number";
const DATE: &str = "an RFC 3339 date";

fn number<T: FromStr>(s: &str) -> Option<T> {
    s.trim().parse().ok()
}

fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------
// Reading, step 2: the tree as a feed.

fn feed(root: &Element<'_>) -> Result<Feed, Fault> {
    if !root.is(Ns::Atom, "feed") {
        return Err(root.fault(format!(
            "the root element is `{}`, not an Atom `feed` (in namespace {ATOM_NS})",
            root.qname
        )));
    }
    let mut feed = Feed {
        title: root
            .single(Ns::Atom, "title")?
            .filter(|e| !e.implied())
            .map(|e| e.text.clone()),
        id: root.single(Ns::Atom, "id")?.map(|e| e.text.clone()),
        updated: root
            .single(Ns::Atom, "updated")?
            .filter(|e| !e.implied())
            .map(Element::date)
            .transpose()?,
        links: root
            .all(Ns::Atom, "link")
            .map(link)
            .collect::<Result<_, _>>()?,
        sharing: root.single(Ns::Sx, "sharing")?.map(sharing).transpose()?,
        items: Vec::new(),
        skipped: root
            .all(Ns::Mesh, "skipped")
            .map(skipped)
            .collect::<Result<_, _>>()?,
    };
    for (index, entry) in root.all(Ns::Atom, "entry").enumerate() {
        match item(entry)? {
            Some(item) => feed.items.push(item),
            None => feed.skipped.push(Skipped {
                index,
                atom_id: entry.all(Ns::Atom, "id").next().map(|e| e.text.clone()),
                reason: "the entry has no sx:sync element".into(),
            }),
        }
    }
    Ok(feed)
}

fn sharing(el: &Element<'_>) -> Result<Sharing, Fault> {
    Ok(Sharing {
        since: el.owned_attr("since"),
        until: el.owned_attr("until"),
        expires: el.attr_as("expires", DATE, rfc3339)?,
        related: el
            .all(Ns::Sx, "related")
            .map(|r| {
                Ok(Related {
                    link: r.required("link")?.to_owned(),
                    kind: r.required("type")?.to_owned(),
                    title: r.owned_attr("title"),
                })
            })
            .collect::<Result<_, _>>()?,
    })
}

fn skipped(el: &Element<'_>) -> Result<Skipped, Fault> {
    Ok(Skipped {
        index: el.required_as("index", NUMBER, number)?,
        atom_id: el.owned_attr("atom-id"),
        reason: el.required("reason")?.to_owned(),
    })
}

/// An entry as an item, or `None` for an entry without `sx:sync`.
fn item(entry: &Element<'_>) -> Result<Option<Item>, Fault> {
    let Some((current, conflicts)) = version(entry)? else {
        return Ok(None);
    };
    let conflicts = match conflicts {
        Some(el) => el
            .all(Ns::Atom, "entry")
            .map(|e| conflict(e, &current.sync.id))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(Some(Item { current, conflicts }))
}

/// An entry inside `sx:conflicts`.
fn conflict(entry: &Element<'_>, id: &SyncId) -> Result<Version, Fault> {
    match version(entry)? {
        None => Err(entry.fault("a conflict entry has no sx:sync element")),
        Some((_, Some(nested))) => Err(nested
            .fault("sx:conflicts inside a conflict: a conflict cannot hold conflicts of its own")),
        Some((v, None)) if v.sync.id != *id => Err(entry.fault(format!(
            "a conflict has sync id {} but its item has {id}",
            v.sync.id
        ))),
        Some((v, None)) => Ok(v),
    }
}

/// An entry's version and its `sx:conflicts` element, or `None` for an
/// entry without `sx:sync`.
fn version<'e, 'a>(
    entry: &'e Element<'a>,
) -> Result<Option<(Version, Option<&'e Element<'a>>)>, Fault> {
    let Some(sync_el) = entry.single(Ns::Sx, "sync")? else {
        return Ok(None);
    };
    let sync = sync(sync_el)?;
    let body = body(entry, &sync.id)?;
    Ok(Some((
        Version { sync, body },
        sync_el.single(Ns::Sx, "conflicts")?,
    )))
}

fn sync(el: &Element<'_>) -> Result<Sync, Fault> {
    let id = SyncId::parse(el.required("id")?).map_err(|e| el.fault(e))?;
    let history = el
        .all(Ns::Sx, "history")
        .map(history)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sync {
        id,
        updates: el.required_as("updates", NUMBER, number)?,
        deleted: el
            .attr_as("deleted", "a boolean", boolean)?
            .unwrap_or(false),
        noconflicts: el
            .attr_as("noconflicts", "a boolean", boolean)?
            .unwrap_or(false),
        history: HistoryList::try_from(history).map_err(|e| el.fault(e))?,
    })
}

fn history(el: &Element<'_>) -> Result<History, Fault> {
    let record = History {
        sequence: el.required_as("sequence", NUMBER, number)?,
        when: el.attr_as("when", DATE, rfc3339)?,
        by: el.owned_attr("by"),
    };
    if record.when.is_none() && record.by.is_none() {
        return Err(el.fault(format!("`{}` has neither `when` nor `by`", el.qname)));
    }
    Ok(record)
}

fn body(entry: &Element<'_>, id: &SyncId) -> Result<Body, Fault> {
    let mut links = Vec::new();
    let mut enclosure = None;
    for el in entry.all(Ns::Atom, "link") {
        let is_content = el.attr("rel") == Some("enclosure")
            && el.attr("href").is_some_and(|h| h.starts_with(CONTENT_URN));
        if is_content && enclosure.is_none() {
            enclosure = Some(content_ref(el)?);
        } else {
            links.push(link(el)?);
        }
    }
    Ok(Body {
        title: entry
            .single(Ns::Atom, "title")?
            .filter(|e| !e.implied())
            .map(text),
        atom_id: entry
            .single(Ns::Atom, "id")?
            .map(|e| e.text.clone())
            .filter(|atom_id| atom_id != id.as_str()),
        updated: entry
            .single(Ns::Atom, "updated")?
            .filter(|e| !e.implied())
            .map(Element::date)
            .transpose()?,
        published: entry
            .single(Ns::Atom, "published")?
            .map(Element::date)
            .transpose()?,
        authors: entry
            .all(Ns::Atom, "author")
            .map(person)
            .collect::<Result<_, _>>()?,
        summary: entry.single(Ns::Atom, "summary")?.map(text),
        content: entry.single(Ns::Atom, "content")?.map(content),
        links,
        categories: entry
            .all(Ns::Atom, "category")
            .map(|c| {
                Ok(Category {
                    term: c.required("term")?.to_owned(),
                    scheme: c.owned_attr("scheme"),
                    label: c.owned_attr("label"),
                })
            })
            .collect::<Result<_, _>>()?,
        data: entry.single(Ns::Mesh, "data")?.map(json).transpose()?,
        enclosure,
    })
}

/// A text construct or inline content.
fn text(el: &Element<'_>) -> Text {
    let kind = TextKind::from(el.owned_attr("type").unwrap_or_default());
    let value = if kind.is_markup() {
        el.inner.to_owned()
    } else {
        el.text.clone()
    };
    Text { kind, value }
}

fn content(el: &Element<'_>) -> Content {
    match el.owned_attr("src") {
        Some(src) => Content::OutOfLine {
            src,
            media_type: el.owned_attr("type"),
        },
        None => Content::Inline(text(el)),
    }
}

fn person(el: &Element<'_>) -> Result<Person, Fault> {
    let child = |name| Ok::<_, Fault>(el.single(Ns::Atom, name)?.map(|e| e.text.clone()));
    Ok(Person {
        name: el.required_child(Ns::Atom, "name")?.text.clone(),
        email: child("email")?,
        uri: child("uri")?,
    })
}

fn link(el: &Element<'_>) -> Result<Link, Fault> {
    Ok(Link {
        href: el.required("href")?.to_owned(),
        rel: el.owned_attr("rel"),
        media_type: el.owned_attr("type"),
        hreflang: el.owned_attr("hreflang"),
        title: el.owned_attr("title"),
        length: el.attr_as("length", NUMBER, number)?,
    })
}

/// The prefix of a content reference's href, before the whole content's hash.
const CONTENT_URN: &str = "urn:blake3:";
const HASH: &str = "a BLAKE3 hash (64 hexadecimal digits)";
const CONTENT_HREF: &str = "`urn:blake3:` and a BLAKE3 hash (64 hexadecimal digits)";

fn hash(s: &str) -> Option<Hash> {
    Hash::parse(s.trim()).ok()
}

fn content_ref(el: &Element<'_>) -> Result<ContentRef, Fault> {
    Ok(ContentRef {
        hash: el.required_as("href", CONTENT_HREF, |href| {
            hash(href.strip_prefix(CONTENT_URN)?)
        })?,
        length: el.required_as("length", NUMBER, number)?,
        chunks: el
            .all(Ns::Mesh, "chunk")
            .map(|c| {
                Ok(ChunkRef {
                    hash: c.required_as("hash", HASH, hash)?,
                    size: c.required_as("size", NUMBER, number)?,
                })
            })
            .collect::<Result<_, _>>()?,
    })
}

fn json(el: &Element<'_>) -> Result<serde_json::Value, Fault> {
    serde_json::from_str(&el.text)
        .map_err(|e| el.fault(format!("`{}` does not hold valid JSON: {e}", el.qname)))
}

// ---------------------------------------------------------------------------
// Writing.

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

/// Appends `s` escaped as character data or, with `in_attribute`, as a
/// double-quoted attribute value.
fn escape_into(out: &mut String, s: &str, in_attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\t' | '\n' if !in_attribute => out.push(c),
            c if c.is_control() => out.push_str(&format!("&#{};", u32::from(c))),
            c => out.push(c),
        }
    }
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
        out.leaf("mesh:data", &[], Chars::Text(&data.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedsync::merge;
    use chrono::TimeZone;

    const SYNC: &str = r#"<sx:sync id="urn:uuid:1" updates="1"><sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/></sx:sync>"#;

    /// A feed around `entries`, the `entries` starting on line 3.
    fn feed_xml(entries: &str) -> String {
        format!(
            "<feed xmlns=\"{ATOM_NS}\" xmlns:sx=\"{FEEDSYNC_NS}\" xmlns:mesh=\"{MESH_NS}\">\n\
             <title>t</title>\n{entries}\n</feed>"
        )
    }

    fn read(xml: &str) -> Feed {
        read_feed(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    fn only_item(xml: &str) -> Item {
        let mut feed = read(xml);
        assert_eq!(feed.items.len(), 1, "{feed:?}");
        feed.items.remove(0)
    }

    /// Reads `xml`, expecting an error whose text contains `needle`.
    fn error(xml: &str, needle: &str) -> AtomError {
        let e = read_feed(xml.as_bytes()).expect_err("the document should be refused");
        assert!(
            e.to_string().contains(needle),
            "{e:?} does not mention {needle:?}"
        );
        e
    }

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2008, 1, 1, 10, 0, s).unwrap()
    }

    fn round_trip(feed: &Feed) {
        let xml = write_feed(feed);
        assert_eq!(&read(&xml), feed, "{xml}");
    }

    #[test]
    fn text_that_is_not_xml_is_refused() {
        let e = error("this is not XML", "not an XML document");
        assert_eq!(e.position.map(|p| (p.line, p.column)), Some((1, 1)));
        error("", "no root element");
        error("<feed", "not well-formed");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "<x>".repeat(100_000);
        error(&feed_xml(&deep), "elements nested more than 256 deep");
    }

    #[test]
    fn a_truncated_document_is_refused() {
        let xml = feed_xml(&format!("<entry>{SYNC}</entry>"));
        for cut in [xml.len() - 3, xml.len() - 10, xml.len() / 2, 40] {
            let e = read_feed(&xml.as_bytes()[..cut]).expect_err("cut short");
            assert!(
                e.message.contains("cut short") || e.message.contains("not well-formed"),
                "{e}"
            );
            assert!(e.position.is_some());
        }
    }

    #[test]
    fn a_root_other_than_an_atom_feed_is_refused() {
        error(
            r#"<rss version="2.0"><channel/></rss>"#,
            "root element is `rss`",
        );
        error("<feed><title>x</title></feed>", "not an Atom `feed`");
        error(
            r#"<feed xmlns="http://example.com/"/>"#,
            "not an Atom `feed`",
        );
        error(
            &format!(r#"<a:feed xmlns:a="{ATOM_NS}"/><a:feed xmlns:a="{ATOM_NS}"/>"#),
            "second root",
        );
    }

    #[test]
    fn faults_name_their_line_and_column() {
        let e = error(
            &feed_xml(
                "<entry>\n    <sx:sync id=\"urn:uuid:1\" updates=\"1\">\n      <sx:history sequence=\"1\"/></sx:sync></entry>",
            ),
            "`sx:history` has neither `when` nor `by`",
        );
        assert!(
            e.to_string()
                .starts_with("line 5, column 7: `sx:history` has neither"),
            "{e}"
        );
    }

    #[test]
    fn malformed_sync_metadata_is_refused() {
        let entry = |sync: &str| feed_xml(&format!("<entry><id>x</id>{sync}</entry>"));
        error(
            &entry(r#"<sx:sync updates="1"><sx:history sequence="1" by="A"/></sx:sync>"#),
            "`sx:sync` has no `id` attribute",
        );
        error(
            &entry(r#"<sx:sync id="a"><sx:history sequence="1" by="A"/></sx:sync>"#),
            "`sx:sync` has no `updates` attribute",
        );
        error(
            &entry(r#"<sx:sync id="a" updates="two"><sx:history sequence="1" by="A"/></sx:sync>"#),
            r#"`updates` of `sx:sync` is not a whole number: "two""#,
        );
        error(
            &entry(r#"<sx:sync id="a" updates="-1"><sx:history sequence="1" by="A"/></sx:sync>"#),
            "not a whole number",
        );
        error(
            &entry(
                r#"<sx:sync id="a" updates="1" deleted="yes"><sx:history sequence="1" by="A"/></sx:sync>"#,
            ),
            "`deleted` of `sx:sync` is not a boolean",
        );
        error(
            &entry(r#"<sx:sync id="a" updates="1"/>"#),
            "at least one sx:history",
        );
        error(
            &entry(r#"<sx:sync id="a" updates="1"><sx:history by="A"/></sx:sync>"#),
            "`sx:history` has no `sequence` attribute",
        );
        error(
            &entry(
                r#"<sx:sync id="a" updates="1"><sx:history sequence="1" when="yesterday"/></sx:sync>"#,
            ),
            "`when` of `sx:history` is not an RFC 3339 date",
        );
        error(
            &entry(r#"<sx:sync id="" updates="1"><sx:history sequence="1" by="A"/></sx:sync>"#),
            "invalid sync id",
        );
        error(&entry(&format!("{SYNC}{SYNC}")), "more than one `sx:sync`");
    }

    #[test]
    fn malformed_conflicts_are_refused() {
        let with_conflicts = |conflicts: &str| {
            feed_xml(&format!(
                r#"<entry><sx:sync id="urn:uuid:1" updates="1"><sx:history sequence="1" by="A"/><sx:conflicts>{conflicts}</sx:conflicts></sx:sync></entry>"#
            ))
        };
        error(
            &with_conflicts("<entry><title>x</title></entry>"),
            "a conflict entry has no sx:sync",
        );
        error(
            &with_conflicts(&format!(
                r#"<entry><sx:sync id="urn:uuid:1" updates="1"><sx:history sequence="1" by="B"/><sx:conflicts><entry>{SYNC}</entry></sx:conflicts></sx:sync></entry>"#
            )),
            "a conflict cannot hold conflicts of its own",
        );
        error(
            &with_conflicts(
                r#"<entry><sx:sync id="urn:uuid:2" updates="1"><sx:history sequence="1" by="B"/></sx:sync></entry>"#,
            ),
            "a conflict has sync id urn:uuid:2 but its item has urn:uuid:1",
        );
    }

    #[test]
    fn malformed_content_is_refused() {
        let entry = |body: &str| feed_xml(&format!("<entry>{body}{SYNC}</entry>"));
        let hash = Hash::of(b"x");
        error(
            &entry(&format!(
                r#"<link rel="enclosure" href="urn:blake3:{hash}" length="1"><mesh:chunk hash="xyz" size="1"/></link>"#
            )),
            r#"`hash` of `mesh:chunk` is not a BLAKE3 hash (64 hexadecimal digits): "xyz""#,
        );
        error(
            &entry(r#"<link rel="enclosure" href="urn:blake3:abc" length="1"/>"#),
            "`href` of `link` is not `urn:blake3:` and a BLAKE3 hash",
        );
        error(
            &entry(&format!(
                r#"<link rel="enclosure" href="urn:blake3:{hash}"/>"#
            )),
            "`link` has no `length` attribute",
        );
        error(
            &entry(r#"<mesh:data>{"a": 1,}</mesh:data>"#),
            "`mesh:data` does not hold valid JSON",
        );
        error(
            &entry("<updated>soon</updated>"),
            "`updated` is not an RFC 3339 date",
        );
        error(
            &entry("<title>a</title><title>b</title>"),
            "more than one `title`",
        );
        error(
            &entry("<author><email>a@b</email></author>"),
            "`author` has no `name`",
        );
        error(
            &entry("<link rel=\"self\"/>"),
            "`link` has no `href` attribute",
        );
        error(&entry("<category/>"), "`category` has no `term` attribute");
        error(&entry("<x:foo/>"), "undeclared prefix `x`");
        error(&entry("<title>&nbsp;</title>"), "unknown entity `&nbsp;`");
        error(
            &entry(r#"<link href="a" href="b"/>"#),
            "bad attribute in `<link>`",
        );
    }

    #[test]
    fn an_entry_without_sync_is_skipped_and_reported() {
        let feed = read(&feed_xml(&format!(
            "<entry><id>urn:plain</id><title>not synced</title></entry>\n\
             <entry><id>x</id>{SYNC}</entry>\n\
             <entry><title>no id, bad date</title><updated>never</updated></entry>"
        )));
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].id().as_str(), "urn:uuid:1");
        let reported: Vec<_> = feed
            .skipped
            .iter()
            .map(|s| (s.index, s.atom_id.as_deref()))
            .collect();
        assert_eq!(reported, [(0, Some("urn:plain")), (2, None)]);
        assert!(feed.skipped[0].reason.contains("sx:sync"));
        // The report travels in answers.
        round_trip(&feed);
    }

    #[test]
    fn namespaces_are_resolved_not_prefixes() {
        let xml = format!(
            r#"<a:feed xmlns="urn:other" xmlns:a="{ATOM_NS}" xmlns:f="{FEEDSYNC_NS}">
                 <a:entry><a:title>hi</a:title><title>not atom</title>
                   <f:sync id="urn:uuid:1" updates="1"><f:history sequence="1" by="A"/></f:sync>
                 </a:entry>
                 <a:entry xmlns:sx="urn:not-feedsync"><a:id>y</a:id>
                   <sx:sync id="urn:uuid:2" updates="1"><sx:history sequence="1" by="A"/></sx:sync>
                 </a:entry>
               </a:feed>"#
        );
        let feed = read(&xml);
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].current.body.title, Some(Text::plain("hi")));
        assert_eq!(feed.skipped.len(), 1);
        assert_eq!(feed.skipped[0].index, 1);
    }

    #[test]
    fn readers_accept_what_the_rules_allow() {
        let item = only_item(&feed_xml(
            r#"<entry>
                 <sx:sync noconflicts="true" updates="3" id="urn:uuid:1">
                   <sx:history by="B" sequence="3"/>
                   <sx:history when="2008-01-01T12:00:05+02:00" sequence="2"/>
                   <sx:unknown><sx:history sequence="9" by="Z"/></sx:unknown>
                   <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
                 </sx:sync>
                 <title>first</title>
                 <contributor><name>C</name></contributor>
                 <ext:thing xmlns:ext="urn:ext"><ext:nested/>text</ext:thing>
                 <mesh:unknown/>
                 <!-- a comment --><?pi data?>
               </entry>"#,
        ));
        let sync = &item.current.sync;
        assert_eq!(
            (sync.updates, sync.deleted, sync.noconflicts),
            (3, false, true)
        );
        let records: Vec<_> = sync.history.iter().cloned().collect();
        assert_eq!(
            records,
            [
                History {
                    sequence: 3,
                    when: None,
                    by: Some("B".into())
                },
                History {
                    sequence: 2,
                    when: Some(t(5)),
                    by: None
                },
                History::new(1, t(0), "A"),
            ]
        );
        assert_eq!(
            item.current.body,
            Body {
                title: Some(Text::plain("first")),
                ..Body::default()
            }
        );
    }

    #[test]
    fn text_constructs_keep_markup_and_unescape_text() {
        let xhtml = r#"<div xmlns="http://www.w3.org/1999/xhtml">a &amp; <b>b</b><br/></div>"#;
        let item = only_item(&feed_xml(&format!(
            r#"<entry>{SYNC}
                 <title type="html">&lt;b&gt;bold&lt;/b&gt; &#x263A;</title>
                 <summary><![CDATA[a < b]]> &amp; c</summary>
                 <content type="xhtml">{xhtml}</content>
               </entry>"#
        )));
        let body = &item.current.body;
        assert_eq!(
            body.title,
            Some(Text {
                kind: TextKind::Html,
                value: "<b>bold</b> \u{263A}".into()
            })
        );
        assert_eq!(body.summary, Some(Text::plain("a < b & c")));
        assert_eq!(
            body.content,
            Some(Content::Inline(Text {
                kind: TextKind::Xhtml,
                value: xhtml.into()
            }))
        );
        round_trip(&Feed {
            items: vec![item],
            ..Feed::default()
        });
    }

    fn sample_item() -> Item {
        let hash = Hash::of(b"hello");
        let body = Body {
            title: Some(Text::plain("a \"title\" <with> & 'quotes'\r\n\ttabs")),
            atom_id: Some("tag:example.com,2008:1".into()),
            updated: Some(t(7)),
            published: Some(t(1)),
            authors: vec![Person {
                name: "Ann <ann>".into(),
                email: Some("a&b@example.com".into()),
                uri: None,
            }],
            summary: Some(Text {
                kind: TextKind::Xhtml,
                value: "<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  x </div>".into(),
            }),
            content: Some(Content::OutOfLine {
                src: "http://example.com/?a=1&b=\"2\"".into(),
                media_type: Some("text/plain".into()),
            }),
            links: vec![
                Link {
                    href: "http://example.com/movie.mp4".into(),
                    rel: Some("enclosure".into()),
                    media_type: None,
                    hreflang: Some("en".into()),
                    title: Some("line\nbreak\ttab\rreturn".into()),
                    length: Some(12),
                },
                Link {
                    href: "urn:blake3:looks-like-content-but-is-not-first".into(),
                    rel: Some("enclosure".into()),
                    media_type: None,
                    hreflang: None,
                    title: None,
                    length: None,
                },
            ],
            categories: vec![Category {
                term: "t&c".into(),
                scheme: None,
                label: Some("<L>".into()),
            }],
            data: Some(serde_json::json!({"x": "</mesh:data>", "n": [1, 2.5, null]})),
            enclosure: Some(ContentRef {
                hash,
                length: 5,
                chunks: vec![ChunkRef { hash, size: 5 }],
            }),
        };
        let id = SyncId::parse("urn:uuid:1").unwrap();
        let mut item = Item::create(id, body, false, t(0), "A");
        item.delete(t(3), "dev\"ice<1>");
        item
    }

    #[test]
    fn everything_in_a_body_round_trips() {
        let item = sample_item();
        round_trip(&Feed {
            title: Some("a & b".into()),
            id: Some("urn:feed".into()),
            updated: Some(t(9)),
            links: vec![Link {
                href: "http://example.com/feed".into(),
                rel: Some("self".into()),
                media_type: Some("application/atom+xml".into()),
                hreflang: None,
                title: None,
                length: None,
            }],
            sharing: Some(Sharing {
                since: Some("1".into()),
                until: None,
                expires: Some(t(30)),
                related: vec![Related {
                    link: "http://example.com/all".into(),
                    kind: "complete".into(),
                    title: Some("All".into()),
                }],
            }),
            items: vec![item],
            skipped: vec![Skipped {
                index: 3,
                atom_id: None,
                reason: "no <sync>".into(),
            }],
        });
    }

    #[test]
    fn the_content_reference_is_an_enclosure_link_with_chunks() {
        let xml = write_feed(&Feed {
            items: vec![sample_item()],
            ..Feed::default()
        });
        let hash = Hash::of(b"hello");
        assert!(xml.contains(&format!(
            r#"<link rel="enclosure" href="urn:blake3:{hash}" length="5" type="application/octet-stream">"#
        )));
        assert!(xml.contains(&format!(r#"<mesh:chunk hash="{hash}" size="5"/>"#)));
        assert!(xml.contains(r#"title="line&#10;break&#9;tab&#13;return""#));
    }

    #[test]
    fn absent_title_and_updated_are_written_as_marked_stand_ins() {
        let id = SyncId::parse("urn:uuid:1").unwrap();
        let mut item = Item::create(id, Body::default(), false, t(4), "A");
        let feed = Feed {
            items: vec![item.clone()],
            ..Feed::default()
        };
        let xml = write_feed(&feed);
        assert!(
            xml.contains(r#"<title mesh:implied="true"></title>"#),
            "{xml}"
        );
        // The entry's stand-in is the newest `when`, the feed's the newest entry's.
        assert_eq!(
            xml.matches(r#"<updated mesh:implied="true">2008-01-01T10:00:04Z</updated>"#)
                .count(),
            2,
            "{xml}"
        );
        assert!(xml.contains("<id>urn:uuid:1</id>"));
        round_trip(&feed);

        // Without any `when`, the stand-in is the Unix epoch.
        item.current.sync.history = HistoryList::new(History {
            sequence: 1,
            when: None,
            by: Some("A".into()),
        });
        let xml = write_feed(&Feed {
            items: vec![item],
            ..Feed::default()
        });
        assert!(xml.contains(r#"<updated mesh:implied="true">1970-01-01T00:00:00Z</updated>"#));
    }

    #[test]
    fn an_atom_id_equal_to_the_sync_id_reads_as_none() {
        let item = only_item(&feed_xml(&format!(
            "<entry><id>urn:uuid:1</id>{SYNC}</entry>"
        )));
        assert_eq!(item.current.body.atom_id, None);
        let item = only_item(&feed_xml(&format!("<entry><id>other</id>{SYNC}</entry>")));
        assert_eq!(item.current.body.atom_id.as_deref(), Some("other"));
    }

    #[test]
    fn dates_are_read_in_any_offset_and_written_in_utc() {
        let item = only_item(&feed_xml(&format!(
            "<entry>{SYNC}<updated>2008-01-01T05:00:09.5-05:00</updated></entry>"
        )));
        let updated = t(9) + chrono::Duration::milliseconds(500);
        assert_eq!(item.current.body.updated, Some(updated));
        let xml = write_feed(&Feed {
            items: vec![item],
            ..Feed::default()
        });
        assert!(
            xml.contains("<updated>2008-01-01T10:00:09.500Z</updated>"),
            "{xml}"
        );
        assert!(xml.contains(r#"when="2008-01-01T10:00:00Z""#));
    }

    #[test]
    fn markup_that_is_not_well_formed_is_written_as_text() {
        let mut item = sample_item();
        item.current.body.title = Some(Text {
            kind: TextKind::Xhtml,
            value: "<div>unclosed & bare".into(),
        });
        let xml = write_feed(&Feed {
            items: vec![item],
            ..Feed::default()
        });
        let read = read(&xml);
        assert_eq!(
            read.items[0].current.body.title,
            Some(Text {
                kind: TextKind::Xhtml,
                value: "&lt;div&gt;unclosed &amp; bare".into()
            })
        );
    }

    #[test]
    fn the_written_feed_declares_the_namespaces() {
        let xml = write_feed(&Feed::default());
        assert!(xml.starts_with(&format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"{ATOM_NS}\" xmlns:sx=\"{FEEDSYNC_NS}\" xmlns:mesh=\"{MESH_NS}\">"
        )));
        round_trip(&Feed::default());
    }

    #[test]
    fn conflicts_round_trip_inside_sync() {
        let id = SyncId::parse("urn:uuid:1").unwrap();
        let base = Item::create(id, Body::default(), false, t(0), "A");
        let mut a = base.clone();
        a.update(Body::default(), false, t(5), "A");
        let mut b = base;
        b.update(Body::default(), true, t(9), "B");
        let item = merge(Some(&a), &b).unwrap().item;
        assert_eq!(item.conflicts.len(), 1);
        round_trip(&Feed {
            items: vec![item],
            ..Feed::default()
        });
    }
}

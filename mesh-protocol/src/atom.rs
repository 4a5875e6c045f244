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
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Position {
            offset,
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + String::from_utf8_lossy(&before[line_start..]).chars().count(),
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
    out.xml.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
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
                let element = element(&reader, &start, ns, at)?;
                if root.is_some() && open.is_empty() {
                    return Err(element.fault("a second root element; a document has one"));
                }
                open.push((element, reader.buffer_position() as usize));
                continue;
            }
            Event::Empty(start) => {
                let element = element(&reader, &start, ns, at)?;
                attach(element, &mut open, &mut root)?;
                continue;
            }
            Event::End(_) => {
                let (mut element, inner_start) =
                    open.pop().ok_or_else(|| fault_at(at, "an end tag without a start tag"))?;
                element.inner = &src[inner_start..at];
                attach(element, &mut open, &mut root)?;
                continue;
            }
            Event::Text(text) => text.xml10_content(),
            Event::CData(cdata) => cdata.xml10_content(),
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => c.to_string().into(),
                Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                    .ok_or_else(|| {
                        fault_at(at, format!("unknown entity `&{};`", &*reference))
                    })?
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
            format!("the document ends inside `<{}>`: it is cut short", element.qname),
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
        fault_at(at, format!("`<{qname}>` uses the undeclared prefix `{prefix}`"))
    })?;
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr =
            attr.map_err(|e| fault_at(at, format!("bad attribute in `<{qname}>`: {e}")))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let key = attr.key.into_inner();
        let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
        let attr_ns = Ns::of(attr_ns).map_err(|prefix| {
            fault_at(at, format!("attribute `{key}` uses the undeclared prefix `{prefix}`"))
        })?;
        let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| {
            fault_at(at, format!("bad value of `{key}` in `<{qname}>`: {e}"))
        })?;
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
        Some((_, Some(nested))) => Err(nested.fault(
            "sx:conflicts inside a conflict: a conflict cannot hold conflicts of its own",
        )),
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
    Ok(Some((Version { sync, body }, sync_el.single(Ns::Sx, "conflicts")?)))
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
        deleted: el.attr_as("deleted", "a boolean", boolean)?.unwrap_or(false),
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
        out.empty("mesh:chunk", &[("hash", Some(&hash)), ("size", Some(&size))]);
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

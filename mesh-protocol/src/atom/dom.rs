//! Reading, step 1: the document as a tree of elements — quick-xml's
//! namespace-aware events checked for well-formedness and gathered into
//! [`Element`]s, with the lookups and attribute parsing that step 2 uses.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::{ATOM_NS, FEEDSYNC_NS, MESH_NS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ns {
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
pub(super) struct Element<'a> {
    ns: Ns,
    /// Local name.
    name: String,
    /// Name as written, for messages.
    pub(super) qname: String,
    attrs: Vec<Attribute>,
    children: Vec<Element<'a>>,
    /// The character data directly inside, unescaped and concatenated.
    pub(super) text: String,
    /// Everything between the start and the end tag, as written.
    pub(super) inner: &'a str,
    /// Byte offset of the start tag.
    at: usize,
}

/// A fault found while reading, at a byte offset when known.
pub(super) struct Fault {
    pub(super) at: Option<usize>,
    pub(super) message: String,
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
pub(super) fn parse(xml: &[u8]) -> Result<Element<'_>, Fault> {
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
    pub(super) fn is(&self, ns: Ns, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub(super) fn fault(&self, message: impl fmt::Display) -> Fault {
        fault_at(self.at, message.to_string())
    }

    /// The children with this name, in order.
    pub(super) fn all<'s>(&'s self, ns: Ns, name: &str) -> impl Iterator<Item = &'s Element<'a>> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The child with this name, which may appear at most once.
    pub(super) fn single(&self, ns: Ns, name: &str) -> Result<Option<&Element<'a>>, Fault> {
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
    pub(super) fn required_child(&self, ns: Ns, name: &str) -> Result<&Element<'a>, Fault> {
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
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.ns_attr(Ns::None, name)
    }

    pub(super) fn owned_attr(&self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_owned)
    }

    fn missing(&self, name: &str) -> Fault {
        self.fault(format!("`{}` has no `{name}` attribute", self.qname))
    }

    pub(super) fn required(&self, name: &str) -> Result<&str, Fault> {
        self.attr(name).ok_or_else(|| self.missing(name))
    }

    /// An attribute read with `parse`, which answers `None` for a value that
    /// is not `kind`.
    pub(super) fn attr_as<T>(
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

    pub(super) fn required_as<T>(
        &self,
        name: &str,
        kind: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, Fault> {
        self.attr_as(name, kind, parse)?
            .ok_or_else(|| self.missing(name))
    }

    /// The element's text as a date.
    pub(super) fn date(&self) -> Result<DateTime<Utc>, Fault> {
        rfc3339(&self.text).ok_or_else(|| {
            self.fault(format!(
                "`{}` is not an RFC 3339 date: {:?}",
                self.qname, self.text
            ))
        })
    }

    /// Whether this is a stand-in for a value that is absent.
    pub(super) fn implied(&self) -> bool {
        self.ns_attr(Ns::Mesh, "implied") == Some("true")
    }
}

pub(super) const NUMBER: &str = "a whole number";
pub(super) const DATE: &str = "an RFC 3339 date";

pub(super) fn number<T: FromStr>(s: &str) -> Option<T> {
    s.trim().parse().ok()
}

pub(super) fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

pub(super) fn rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

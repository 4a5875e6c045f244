//! Reading, step 2: the tree of elements as a [`Feed`], and [`read_feed`],
//! which runs both steps.

use super::dom::{DATE, Element, Fault, NUMBER, Ns, boolean, number, parse, rfc3339};
use super::{AtomError, CONTENT_URN, Position};
use crate::ATOM_NS;
use crate::content::{ChunkRef, ContentRef, Hash};
use crate::feed::{Feed, Related, Sharing, Skipped};
use crate::feedsync::{
    Body, Category, Content, History, HistoryList, Item, Link, Person, Sync, SyncId, Text,
    TextKind, Version,
};

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

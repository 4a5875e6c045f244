//! News: durable items per object (its members read them) or per user (of
//! their mesh as a whole), each recorded with its `NewsChanged` change in
//! the caller's transaction. A folder's file changes by one person
//! coalesce: within the news window after their latest change, a further
//! change grows that item (same id, announced again) instead of starting
//! another, and an entry the item counts as added that is removed again
//! within it (a temporary file) leaves it. Scratch files are never news.

use mesh_protocol::api::{Change, DeviceId, ObjectId, UserId};
use mesh_protocol::feedsync::Item;
use mesh_protocol::folder::{EntryData, EntryKind};
use mesh_protocol::live::{NEWS_NAMES, NewsBody, NewsItem, NewsPage};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::time::Duration;

use super::changes::{self, Audience};
use super::{id_column, json_column};
use crate::auth::{Caller, Principal};
use crate::db::{from_ms, now_ms};

/// Who caused a news item: a user, on one of their devices when known (an
/// invitation answered on its web page has none).
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user: UserId,
    pub device: Option<DeviceId>,
}

impl From<Caller> for Actor {
    fn from(caller: Caller) -> Self {
        Actor {
            user: caller.user,
            device: Some(caller.device),
        }
    }
}

/// An app acts for its owner, on no device of theirs.
impl From<Principal> for Actor {
    fn from(who: Principal) -> Self {
        match who {
            Principal::Device(caller) => caller.into(),
            Principal::App(app) => Actor {
                user: app.owner,
                device: None,
            },
        }
    }
}

/// The news a page is read from.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// One object's.
    Object(ObjectId),
    /// A user's mesh: their own items and those of the objects they are a
    /// member of now.
    Mesh(UserId),
}

/// The actor's e-mail address and device name are looked up as they are
/// now; a revoked device keeps its name.
const SELECT: &str = "SELECT n.id, n.object_id, u.email, d.name, n.first, n.at, n.body
     FROM news n LEFT JOIN users u ON u.id = n.actor LEFT JOIN devices d ON d.id = n.device";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NewsItem> {
    let object = match r.get_ref(1)? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(id_column(r, 1)?),
    };
    Ok(NewsItem {
        id: r.get::<_, i64>(0)? as u64,
        object,
        actor: r.get(2)?,
        device_name: r.get(3)?,
        first: from_ms(r.get(4)?),
        at: from_ms(r.get(5)?),
        body: json_column(r, 6)?,
    })
}

/// The `kind` column: the body's tag, by which items coalesce.
fn kind(body: &NewsBody) -> &'static str {
    match body {
        NewsBody::Files { .. } => "files",
        NewsBody::MemberJoined { .. } => "member_joined",
        NewsBody::MemberLeft { .. } => "member_left",
        NewsBody::DeviceAdded { .. } => "device_added",
        NewsBody::Post { .. } => "post",
    }
}

fn encode(body: &NewsBody) -> String {
    serde_json::to_string(body).expect("a news body always encodes")
}

impl Stream {
    /// Who is told of the stream's items.
    fn audience(self) -> Audience {
        match self {
            Stream::Object(object) => Audience::Object(object),
            Stream::Mesh(user) => Audience::User(user),
        }
    }
}

/// Records a new item in `stream` and announces it.
pub fn record(
    tx: &Transaction<'_>,
    stream: Stream,
    by: Actor,
    body: &NewsBody,
) -> rusqlite::Result<NewsItem> {
    let id = insert(tx, stream, by, body)?;
    announce(tx, stream.audience(), id)
}

/// Stores a new item in `stream`; returns its id.
fn insert(
    tx: &Transaction<'_>,
    stream: Stream,
    by: Actor,
    body: &NewsBody,
) -> rusqlite::Result<i64> {
    let (object, user) = match stream {
        Stream::Object(object) => (Some(object.to_string()), None),
        Stream::Mesh(user) => (None, Some(user.to_string())),
    };
    tx.execute(
        "INSERT INTO news (object_id, user_id, actor, device, kind, body, first, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            object,
            user,
            by.user.to_string(),
            by.device.map(|d| d.to_string()),
            kind(body),
            encode(body),
            now_ms()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Records `NewsChanged` with the item as it is now.
fn announce(tx: &Transaction<'_>, audience: Audience, id: i64) -> rusqlite::Result<NewsItem> {
    let item = tx
        .prepare_cached(&format!("{SELECT} WHERE n.id = ?1"))?
        .query_row([id], row)?;
    changes::record(tx, audience, &Change::NewsChanged { item: item.clone() })?;
    Ok(item)
}

/// What one request did to a folder's entries, as people see it: each
/// entry added, changed or removed, in the order of the changes.
#[derive(Debug, Default)]
pub struct FileChanges {
    events: Vec<FileEvent>,
}

#[derive(Debug)]
struct FileEvent {
    /// The entry's sync id.
    entry: String,
    name: String,
    what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Added,
    Changed,
    Removed,
}

/// Whether `name` is an application's scratch file, never news: editor
/// swap, backup and lock files (vim's `.x.swp` and `4913`, emacs's `x~`,
/// `.#x` and `#x#`), office lock and owner files (`.~lock.x#`, `~$x`) and
/// temporary files (`*.tmp`, GNOME's `.goutputstream-*`).
pub fn is_scratch(name: &str) -> bool {
    let swap = name.starts_with('.')
        && name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && ext.len() == 3 && ext.starts_with("sw"));
    let lower = name.to_ascii_lowercase();
    swap || name == "4913"
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.len() > 2 && name.starts_with('#') && name.ends_with('#'))
        || (name.starts_with(".~lock.") && name.ends_with('#'))
        || name.starts_with("~$")
        || lower.ends_with(".tmp")
        || name.starts_with(".goutputstream-")
}

impl FileChanges {
    /// Notes a merge that changed an entry, from its stored item before
    /// (if any) and after. An entry that appears is added, one that becomes
    /// a tombstone removed; one that stays changed only if its winning
    /// version's content differs (a conflict that loses changes nothing
    /// visible) and it is not a directory (whose mtime moves with its
    /// contents). Scratch files ([`is_scratch`]) are left out.
    pub fn note(&mut self, before: Option<&Item>, after: &Item) {
        let live = |item: &&Item| !item.current.sync.deleted;
        let (before, live_after) = (before.filter(live), live(&after));
        let named = match (before, live_after) {
            (_, true) => after,
            (Some(before), false) => before,
            (None, false) => return,
        };
        let Ok(entry) = EntryData::from_body(&named.current.body) else {
            return;
        };
        let what = match before {
            None => What::Added,
            Some(_) if !live_after => What::Removed,
            Some(before)
                if before.current.body != after.current.body && entry.kind != EntryKind::Dir =>
            {
                What::Changed
            }
            Some(_) => return,
        };
        if is_scratch(&entry.name) {
            return;
        }
        self.events.push(FileEvent {
            entry: after.current.sync.id.to_string(),
            name: entry.name,
            what,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// A `files` item's counts and names, as they grow.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    added: u32,
    changed: u32,
    removed: u32,
    /// The latest distinct names, latest first.
    names: Vec<String>,
}

impl Tally {
    fn of(body: NewsBody) -> Tally {
        match body {
            NewsBody::Files {
                added,
                changed,
                removed,
                names,
            } => Tally {
                added,
                changed,
                removed,
                names,
            },
            _ => Tally::default(),
        }
    }

    fn body(&self) -> NewsBody {
        NewsBody::Files {
            added: self.added,
            changed: self.changed,
            removed: self.removed,
            names: self.names.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.added + self.changed + self.removed == 0
    }

    /// Puts `name` first.
    fn name(&mut self, name: String) {
        self.forget(&name);
        self.names.insert(0, name);
        self.names.truncate(NEWS_NAMES);
    }

    fn forget(&mut self, name: &str) {
        self.names.retain(|n| n != name);
    }

    /// Counts `event` into item `id`. An entry the item counts as added
    /// that changes again is still just added; one removed again was never
    /// there as far as news goes (a temporary file): it leaves the count
    /// and the names.
    fn count(&mut self, tx: &Transaction<'_>, id: i64, event: FileEvent) -> rusqlite::Result<()> {
        let fresh = |tx: &Transaction<'_>| -> rusqlite::Result<bool> {
            tx.prepare_cached("SELECT 1 FROM news_fresh WHERE news_id = ?1 AND sync_id = ?2")?
                .exists(params![id, event.entry])
        };
        match event.what {
            What::Added => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO news_fresh (news_id, sync_id) VALUES (?1, ?2)",
                )?
                .execute(params![id, event.entry])?;
                self.added += 1;
                self.name(event.name);
            }
            What::Changed => {
                if !fresh(tx)? {
                    self.changed += 1;
                }
                self.name(event.name);
            }
            What::Removed => {
                let taken_back = tx
                    .prepare_cached("DELETE FROM news_fresh WHERE news_id = ?1 AND sync_id = ?2")?
                    .execute(params![id, event.entry])?
                    > 0;
                if taken_back {
                    self.added = self.added.saturating_sub(1);
                    self.forget(&event.name);
                } else {
                    self.removed += 1;
                    self.name(event.name);
                }
            }
        }
        Ok(())
    }
}

/// Records file changes to a folder by `by`: into their latest `files`
/// item of the folder if its last change is at most `window` old, else as
/// a new item. An item that comes to count nothing (its files were all
/// temporary) is announced once more so, then removed.
pub fn files(
    tx: &Transaction<'_>,
    object: ObjectId,
    by: Actor,
    window: Duration,
    changes: FileChanges,
) -> rusqlite::Result<()> {
    let now = now_ms();
    let since = now.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
    let recent: Option<(i64, NewsBody)> = tx
        .prepare_cached(
            "SELECT id, body FROM news
             WHERE object_id = ?1 AND actor = ?2 AND kind = 'files' AND at >= ?3
             ORDER BY at DESC, id DESC LIMIT 1",
        )?
        .query_row(
            params![object.to_string(), by.user.to_string(), since],
            |r| Ok((r.get(0)?, json_column(r, 1)?)),
        )
        .optional()?;
    let (id, mut tally, announced) = match recent {
        Some((id, body)) => (id, Tally::of(body), true),
        None => {
            // Only a person's latest item takes entries back.
            tx.prepare_cached(
                "DELETE FROM news_fresh WHERE news_id IN
                    (SELECT id FROM news WHERE object_id = ?1 AND actor = ?2 AND kind = 'files')",
            )?
            .execute(params![object.to_string(), by.user.to_string()])?;
            let empty = Tally::default().body();
            (
                insert(tx, Stream::Object(object), by, &empty)?,
                Tally::default(),
                false,
            )
        }
    };
    for event in changes.events {
        tally.count(tx, id, event)?;
    }
    if tally.is_empty() && !announced {
        return withdraw(tx, id);
    }
    tx.prepare_cached("UPDATE news SET body = ?1, at = ?2, device = ?3 WHERE id = ?4")?
        .execute(params![
            encode(&tally.body()),
            now,
            by.device.map(|d| d.to_string()),
            id
        ])?;
    announce(tx, Audience::Object(object), id)?;
    if tally.is_empty() {
        withdraw(tx, id)?;
    }
    Ok(())
}

/// Removes item `id` and what it counts.
fn withdraw(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM news_fresh WHERE news_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM news WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Up to `limit` items of `stream` older than item `before`, newest first.
pub fn page(
    conn: &Connection,
    stream: Stream,
    before: Option<u64>,
    limit: usize,
) -> rusqlite::Result<NewsPage> {
    let (filter, key) = match stream {
        Stream::Object(object) => ("n.object_id = ?1", object.to_string()),
        Stream::Mesh(user) => (
            "(n.user_id = ?1 OR n.object_id IN (
                SELECT m.object_id FROM members m JOIN objects o ON o.id = m.object_id
                WHERE m.user_id = ?1 AND o.deleted IS NULL))",
            user.to_string(),
        ),
    };
    let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    let mut items = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE {filter} AND n.id < ?2 ORDER BY n.id DESC LIMIT ?3"
        ))?
        .query_map(params![key, before, limit as i64 + 1], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next_before = more.then(|| items.last().map(|i| i.id)).flatten();
    Ok(NewsPage { items, next_before })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use mesh_protocol::feedsync::{Body, SyncId};
    use serde_json::json;

    fn entry(name: &str, kind: &str, mode: u32) -> Body {
        let mut data = json!({"name": name, "type": kind, "mode": mode,
                              "mtime": "2026-11-27T10:00:00Z"});
        if kind == "symlink" {
            data["target"] = json!("elsewhere");
        }
        Body {
            data: Some(data),
            ..Body::default()
        }
    }

    fn created(body: Body) -> Item {
        Item::create(SyncId::generate(), body, false, Utc::now(), "dev")
    }

    fn events(c: &FileChanges) -> Vec<(What, &str)> {
        c.events.iter().map(|e| (e.what, e.name.as_str())).collect()
    }

    #[test]
    fn entries_count_as_added_changed_or_removed() {
        let mut c = FileChanges::default();
        let link = created(entry("a", "symlink", 0o777));
        c.note(None, &link);
        let mut renamed = link.clone();
        renamed.update(entry("b", "symlink", 0o777), false, Utc::now(), "dev");
        c.note(Some(&link), &renamed);
        let mut gone = renamed.clone();
        gone.delete(Utc::now(), "dev");
        c.note(Some(&renamed), &gone);
        // A tombstone that stays one, and a revived entry.
        let mut still_gone = gone.clone();
        still_gone.delete(Utc::now(), "other");
        c.note(Some(&gone), &still_gone);
        let mut revived = gone.clone();
        revived.update(entry("c", "symlink", 0o777), false, Utc::now(), "dev");
        c.note(Some(&gone), &revived);
        use What::{Added, Changed, Removed};
        assert_eq!(
            events(&c),
            [(Added, "a"), (Changed, "b"), (Removed, "b"), (Added, "c")]
        );
        assert!(
            c.events
                .iter()
                .all(|e| e.entry == link.current.sync.id.to_string())
        );
    }

    #[test]
    fn directories_only_come_and_go_and_lost_conflicts_are_no_news() {
        let mut c = FileChanges::default();
        let dir = created(entry("d", "dir", 0o755));
        let mut touched = dir.clone();
        touched.update(entry("d", "dir", 0o700), false, Utc::now(), "dev");
        c.note(Some(&dir), &touched);
        let mut same = dir.clone();
        same.conflicts.push(touched.current.clone());
        c.note(Some(&dir), &same);
        assert!(c.is_empty());
        c.note(None, &dir);
        assert_eq!(events(&c), [(What::Added, "d")]);
    }

    #[test]
    fn scratch_files_are_no_news() {
        let scratch = [
            ".notes.txt.swp",
            ".notes.txt.swx",
            "4913",
            "notes.txt~",
            ".#notes.txt",
            "#notes.txt#",
            ".~lock.report.odt#",
            "~$report.docx",
            "upload.TMP",
            ".goutputstream-X1Y2",
        ];
        for name in scratch {
            assert!(is_scratch(name), "{name}");
        }
        for name in [
            "notes.txt",
            ".bashrc",
            "swap.sw",
            ".sw",
            "#",
            "tmp",
            "report.odt",
        ] {
            assert!(!is_scratch(name), "{name}");
        }
        let mut c = FileChanges::default();
        c.note(None, &created(entry(".notes.txt.swp", "file", 0o644)));
        assert!(c.is_empty());
    }

    #[test]
    fn names_run_latest_first_distinct_and_at_most_ten() {
        let mut t = Tally::default();
        for i in 0..12 {
            t.name(format!("n{i}"));
        }
        t.name("n5".into());
        t.forget("n11");
        assert_eq!(
            t.names,
            ["n5", "n10", "n9", "n8", "n7", "n6", "n4", "n3", "n2"]
        );
    }
}

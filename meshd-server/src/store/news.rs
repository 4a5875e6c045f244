//! News: durable items per object (its members read them) or per user (of
//! their mesh as a whole), each recorded with its `NewsChanged` change in
//! the caller's transaction. A folder's file changes by one person
//! coalesce: within the news window after their latest change, a further
//! change grows that item (same id, announced again) instead of starting
//! another.

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
    announce(tx, stream.audience(), tx.last_insert_rowid())
}

/// Records `NewsChanged` with the item as it is now.
fn announce(tx: &Transaction<'_>, audience: Audience, id: i64) -> rusqlite::Result<NewsItem> {
    let item = tx
        .prepare_cached(&format!("{SELECT} WHERE n.id = ?1"))?
        .query_row([id], row)?;
    changes::record(tx, audience, &Change::NewsChanged { item: item.clone() })?;
    Ok(item)
}

/// What one request did to a folder's entries, counted as people see it.
#[derive(Debug, Default)]
pub struct FileChanges {
    added: u32,
    changed: u32,
    removed: u32,
    /// The names of the entries counted, in the order of the changes.
    names: Vec<String>,
}

impl FileChanges {
    /// Counts a merge that changed an entry, from its stored item before
    /// (if any) and after. An entry that appears is added, one that becomes
    /// a tombstone removed; one that stays changed only if its winning
    /// version's content differs (a conflict that loses changes nothing
    /// visible) and it is not a directory (whose mtime moves with its
    /// contents).
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
        let counter = match before {
            None => &mut self.added,
            Some(_) if !live_after => &mut self.removed,
            Some(before)
                if before.current.body != after.current.body && entry.kind != EntryKind::Dir =>
            {
                &mut self.changed
            }
            Some(_) => return,
        };
        *counter += 1;
        self.names.push(entry.name);
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The body telling these changes after those `older` told: counts
    /// added up, the latest distinct names first.
    fn after(self, older: Option<NewsBody>) -> NewsBody {
        let (added, changed, removed, old_names) = match older {
            Some(NewsBody::Files {
                added,
                changed,
                removed,
                names,
            }) => (added, changed, removed, names),
            _ => (0, 0, 0, Vec::new()),
        };
        let mut names: Vec<String> = Vec::with_capacity(NEWS_NAMES);
        for name in self.names.into_iter().rev().chain(old_names) {
            if names.len() == NEWS_NAMES {
                break;
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        NewsBody::Files {
            added: added + self.added,
            changed: changed + self.changed,
            removed: removed + self.removed,
            names,
        }
    }
}

/// Records file changes to a folder by `by`: into their latest `files`
/// item of the folder if its last change is at most `window` old, else as
/// a new item.
pub fn files(
    tx: &Transaction<'_>,
    object: ObjectId,
    by: Actor,
    window: Duration,
    changes: FileChanges,
) -> rusqlite::Result<NewsItem> {
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
    let Some((id, older)) = recent else {
        return record(tx, Stream::Object(object), by, &changes.after(None));
    };
    tx.execute(
        "UPDATE news SET body = ?1, at = ?2, device = ?3 WHERE id = ?4",
        params![
            encode(&changes.after(Some(older))),
            now,
            by.device.map(|d| d.to_string()),
            id
        ],
    )?;
    announce(tx, Audience::Object(object), id)
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

    fn counts(c: &FileChanges) -> (u32, u32, u32, Vec<&str>) {
        let names = c.names.iter().map(String::as_str).collect();
        (c.added, c.changed, c.removed, names)
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
        assert_eq!(counts(&c), (2, 1, 1, vec!["a", "b", "b", "c"]));
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
        assert_eq!(counts(&c), (1, 0, 0, vec!["d"]));
    }

    #[test]
    fn coalesced_counts_add_up_and_keep_the_latest_distinct_names() {
        let older = NewsBody::Files {
            added: 2,
            changed: 1,
            removed: 0,
            names: (0..NEWS_NAMES).map(|i| format!("old{i}")).collect(),
        };
        let newer = FileChanges {
            added: 1,
            changed: 2,
            removed: 1,
            names: vec!["x".into(), "old3".into(), "y".into(), "x".into()],
        };
        let NewsBody::Files {
            added,
            changed,
            removed,
            names,
        } = newer.after(Some(older))
        else {
            panic!("not a files body");
        };
        assert_eq!((added, changed, removed), (3, 3, 1));
        assert_eq!(
            names,
            [
                "x", "y", "old3", "old0", "old1", "old2", "old4", "old5", "old6", "old7"
            ]
        );
    }
}

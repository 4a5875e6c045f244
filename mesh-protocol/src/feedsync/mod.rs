//! The FeedSync 1.0.1 item model and its algorithms, exactly as
//! `shared/FEEDSYNC.md` states them: create, update, delete, merge, resolve.
//!
//! An [`Item`] is the current [`Version`] of a synced item plus the losing
//! versions kept as conflicts. A conflict is a whole version without nested
//! conflicts, so the type cannot hold a nested conflict list at all.
//!
//! Everything here is pure: time and the endpoint id are arguments, so the
//! server, the client and the offline merge tool all run the same code.

mod body;
mod history;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

pub use body::{Body, Category, Content, Link, Person, Text, TextKind};
use history::Seen;
pub use history::{History, HistoryList};

/// The `sx:sync/@id` of an item: globally unique, set by its creator, never
/// changed. Opaque; Mesh endpoints write `urn:uuid:…`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncId(String);

impl SyncId {
    /// A fresh `urn:uuid:` id.
    pub fn generate() -> Self {
        SyncId(format!("urn:uuid:{}", uuid::Uuid::new_v4()))
    }

    /// Accepts any non-empty id of reasonable length without control
    /// characters; FeedSync leaves the form to the creator.
    pub fn parse(s: &str) -> Result<Self, InvalidSyncId> {
        if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) {
            return Err(InvalidSyncId(s.chars().take(80).collect()));
        }
        Ok(SyncId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SyncId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sync id that is empty, too long (over 512 bytes) or holds control characters.
#[derive(Debug, thiserror::Error)]
#[error("invalid sync id {0:?}: it must be 1 to 512 bytes without control characters")]
pub struct InvalidSyncId(String);

/// The id of an endpoint that changes items (`sx:history/@by`); in Mesh a
/// device id.
pub type EndpointId = str;

/// The `sx:sync` metadata of one version, without its conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sync {
    pub id: SyncId,
    /// Number of versions so far; equals `history.top().sequence` for items
    /// written by conforming endpoints.
    pub updates: u32,
    pub deleted: bool,
    pub noconflicts: bool,
    pub history: HistoryList,
}

/// One version of an item: its sync metadata and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub sync: Sync,
    pub body: Body,
}

/// A synced item: the winning version and the losing versions it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub current: Version,
    /// Losing versions, in a canonical order (see [`canonical_order`]).
    pub conflicts: Vec<Version>,
}

/// Truncates a time to whole seconds, as history records are written.
pub fn history_time(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0)
}

impl Version {
    /// The newest history record.
    pub fn top(&self) -> &History {
        self.sync.history.top()
    }

    /// Whether this version has already seen `other`'s latest change: some
    /// record of this version's history subsumes `top(other)`.
    pub fn subsumes(&self, other: &Version) -> bool {
        self.sync.history.subsumes(other.top())
    }

    /// FeedSync winner picking: whether `self` beats `other`.
    pub fn beats(&self, other: &Version) -> bool {
        match self.sync.updates.cmp(&other.sync.updates) {
            Ordering::Greater => return true,
            Ordering::Less => return false,
            Ordering::Equal => {}
        }
        let (mine, theirs) = (self.top(), other.top());
        match (mine.when, theirs.when) {
            (Some(a), Some(b)) if a != b => return a > b,
            (Some(_), None) => return true,
            (None, Some(_)) => return false,
            _ => {}
        }
        match (&mine.by, &theirs.by) {
            // Rust compares strings byte by byte, which for UTF-8 is code
            // point order, as FEEDSYNC.md decides.
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

impl Item {
    /// Create by endpoint `by`: `updates = 1`, history `[(1, now, by)]`.
    pub fn create(
        id: SyncId,
        body: Body,
        noconflicts: bool,
        now: DateTime<Utc>,
        by: &EndpointId,
    ) -> Item {
        let body = without_own_id(body, &id);
        Item {
            current: Version {
                sync: Sync {
                    id,
                    updates: 1,
                    deleted: false,
                    noconflicts,
                    history: HistoryList::new(History::new(1, now, by)),
                },
                body,
            },
            conflicts: Vec::new(),
        }
    }

    pub fn id(&self) -> &SyncId {
        &self.current.sync.id
    }

    /// Update by endpoint `by` with new content (a delete is an update with
    /// `deleted = true`; an update of a tombstone with `deleted = false`
    /// revives it). An item whose count is already at `u32::MAX` (only a
    /// peer that sets it so can make one) stays there: the update still
    /// wins, by its later `when`, and has seen the version it replaces.
    pub fn update(&mut self, body: Body, deleted: bool, now: DateTime<Utc>, by: &EndpointId) {
        let sync = &mut self.current.sync;
        sync.updates = sync.updates.saturating_add(1);
        sync.history.prepend(History::new(sync.updates, now, by));
        // `by` has now seen every conflict whose latest change it made.
        self.conflicts.retain(|c| c.top().by.as_deref() != Some(by));
        sync.deleted = deleted;
        self.current.body = without_own_id(body, &sync.id);
    }

    /// Delete by endpoint `by`: an update that keeps the content and marks a
    /// tombstone.
    pub fn delete(&mut self, now: DateTime<Utc>, by: &EndpointId) {
        let body = self.current.body.clone();
        self.update(body, true, now, by);
    }

    /// Resolve: settle the conflicts for which `settles` answers true, keeping
    /// `body` (and `deleted`) as the content, then apply Update by `by`.
    /// Both old versions are subsumed everywhere afterwards, so the conflict
    /// disappears on every endpoint.
    pub fn resolve(
        &mut self,
        mut settles: impl FnMut(&Version) -> bool,
        body: Body,
        deleted: bool,
        now: DateTime<Utc>,
        by: &EndpointId,
    ) {
        let (settled, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conflicts)
            .into_iter()
            .partition(|c| settles(c));
        self.conflicts = kept;
        for conflict in settled {
            self.current.sync.history.absorb(&conflict.sync.history);
        }
        self.update(body, deleted, now, by);
    }

    /// Every version this item holds: the current one, then its conflicts.
    pub fn versions(&self) -> impl Iterator<Item = &Version> {
        std::iter::once(&self.current).chain(self.conflicts.iter())
    }
}

/// `body` without an `atom_id` equal to the item's sync id: a body keeps the
/// Atom id only when it differs (see [`Body::atom_id`]), so that both ways of
/// saying the same thing store the same body, which the Atom encoding (where
/// they look alike) then reads back unchanged.
fn without_own_id(mut body: Body, id: &SyncId) -> Body {
    if body.atom_id.as_deref() == Some(id.as_str()) {
        body.atom_id = None;
    }
    body
}

/// The outcome of merging an incoming item into a local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub item: Item,
    /// Whether the result differs from what the local side had.
    pub changed: bool,
}

/// Why two items cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot merge items with different sync ids ({local} and {incoming})")]
pub struct IdMismatch {
    pub local: SyncId,
    pub incoming: SyncId,
}

/// Merges `incoming` into `local` (items with the same sync id) by the
/// FeedSync rules. With no local item the incoming one is taken as it is
/// (its conflicts put in canonical order, stale ones dropped).
///
/// Steps 2 to 5 of FEEDSYNC.md's Merge, stated so that the result depends
/// only on the versions the two items hold, not on which side is local:
/// take every version of both items (each item's current version and its
/// conflicts), strongest first in [`canonical_order`]; keep a version unless
/// a version already kept has seen it ([`Version::subsumes`]). The first
/// kept version is the winner, and unless it has `noconflicts` the others
/// become its conflicts.
///
/// This differs from the literal steps only where they depend on the order
/// of the sides. (1) They drop a local version that any incoming version has
/// seen, even one that is itself dropped later, but check an incoming version
/// only against the local versions left. Subsumption is not transitive
/// (Y may have seen Z and Z have seen X without Y's history naming X), so
/// with X and Y on one side and Z on the other the literal steps keep X as a
/// conflict in one direction and drop it in the other; here a version is
/// dropped only by a version that is kept, in both directions. (2) Between
/// versions neither of which beats the other, "W stays" would keep whichever
/// came first; here the tie goes to the canonical order. For items written by
/// conforming endpoints a version that has seen another always beats it, so
/// a version is never dropped in favour of a stale one.
///
/// Merging is therefore commutative and idempotent, and endpoints that keep
/// exchanging settle on one item whose winner is the strongest version any
/// of them held. Which conflicts that item keeps can still depend on the
/// order of the exchanges in one case: Update drops an endpoint's own losing
/// version without keeping what that version had seen, so a version seen
/// only by it vanishes if it meets it first and stays a conflict if it meets
/// only the newer version (see the test
/// `the_exchange_order_can_decide_whether_a_version_only_a_stale_one_saw_stays_a_conflict`).
pub fn merge(local: Option<&Item>, incoming: &Item) -> Result<Merged, IdMismatch> {
    if let Some(local) = local
        && local.id() != incoming.id()
    {
        return Err(IdMismatch {
            local: local.id().clone(),
            incoming: incoming.id().clone(),
        });
    }
    let mut candidates: Vec<&Version> = local
        .into_iter()
        .flat_map(Item::versions)
        .chain(incoming.versions())
        .collect();
    candidates.sort_by(|a, b| canonical_order(a, b));
    candidates.dedup();

    // `seen` holds the histories of the versions kept so far: a candidate
    // is dropped when one of them subsumes it.
    let mut kept: Vec<&Version> = Vec::with_capacity(candidates.len());
    let mut seen = Seen::default();
    for x in candidates {
        if !seen.subsumes(x.top()) {
            seen.add(&x.sync.history);
            kept.push(x);
        }
    }
    let (winner, losers) = kept
        .split_first()
        .expect("the strongest version is always kept");
    let conflicts = if winner.sync.noconflicts {
        Vec::new()
    } else {
        losers.iter().map(|v| (*v).clone()).collect()
    };
    let item = Item {
        current: (*winner).clone(),
        conflicts,
    };
    let changed = local != Some(&item);
    Ok(Merged { item, changed })
}

/// Puts an item's conflicts in a canonical order (strongest first, ties
/// broken by content) and drops exact duplicates, so that equal merges give
/// byte-identical results whatever the order of their inputs.
pub fn canonicalize(item: &mut Item) {
    item.conflicts.sort_by(canonical_order);
    item.conflicts.dedup();
}

/// The canonical order of conflict versions: the one that would win first.
pub fn canonical_order(a: &Version, b: &Version) -> Ordering {
    if a.beats(b) {
        Ordering::Less
    } else if b.beats(a) {
        Ordering::Greater
    } else {
        crate::json::version_to_json(a)
            .to_string()
            .cmp(&crate::json::version_to_json(b).to_string())
    }
}

#[cfg(test)]
mod tests;

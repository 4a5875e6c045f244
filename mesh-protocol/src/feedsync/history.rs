//! `sx:history` records and the non-empty, newest-first list that holds them.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// One `sx:history` record: the change that made version `sequence`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct History {
    pub sequence: u32,
    pub when: Option<DateTime<Utc>>,
    pub by: Option<String>,
}

impl History {
    /// A record as Mesh writes it: both `when` (whole seconds) and `by`.
    pub fn new(sequence: u32, when: DateTime<Utc>, by: &str) -> Self {
        History {
            sequence,
            when: Some(super::history_time(when)),
            by: Some(by.to_owned()),
        }
    }

    /// Whether `self` is subsumed by `k` (FEEDSYNC.md, "History record h is
    /// subsumed by record k").
    pub fn is_subsumed_by(&self, k: &History) -> bool {
        match (&self.by, &k.by) {
            (Some(h_by), k_by) => k_by.as_ref() == Some(h_by) && k.sequence >= self.sequence,
            (None, None) => self.when == k.when && self.sequence == k.sequence,
            (None, Some(_)) => false,
        }
    }
}

/// A version's history, newest first. Never empty: every version was made
/// by at least one change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryList(Vec<History>);

/// A history list must hold at least one record.
#[derive(Debug, thiserror::Error)]
#[error("an sx:sync element needs at least one sx:history record")]
pub struct EmptyHistory;

impl HistoryList {
    pub fn new(first: History) -> Self {
        HistoryList(vec![first])
    }

    /// The newest record.
    pub fn top(&self) -> &History {
        &self.0[0]
    }

    /// Records newest first.
    pub fn iter(&self) -> std::slice::Iter<'_, History> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Adds a record as the newest.
    pub fn prepend(&mut self, record: History) {
        self.0.insert(0, record);
    }

    /// Whether some record of this history subsumes `record`.
    pub fn subsumes(&self, record: &History) -> bool {
        self.0.iter().any(|k| record.is_subsumed_by(k))
    }

    /// The records that decide what this history has seen: the newest,
    /// then each endpoint's highest sequence, and every record without
    /// `by`. A history and its compaction subsume exactly the same records
    /// (an endpoint's record is subsumed by its highest one), and winner
    /// picking reads only the newest, so an item keeps merging with every
    /// endpoint as before. The server compacts old tombstones so (meshd's
    /// `store::entries::compact`).
    pub fn compacted(&self) -> HistoryList {
        let mut highest: HashMap<&str, u32> = HashMap::new();
        for record in &self.0 {
            if let Some(by) = &record.by {
                let h = highest.entry(by).or_insert(record.sequence);
                *h = (*h).max(record.sequence);
            }
        }
        let mut kept_by: HashSet<&str> = HashSet::new();
        let mut records = vec![self.top().clone()];
        if let Some(by) = &self.top().by
            && highest[by.as_str()] == self.top().sequence
        {
            kept_by.insert(by);
        }
        for record in &self.0[1..] {
            let keep = match &record.by {
                None => true,
                Some(by) => highest[by.as_str()] == record.sequence && kept_by.insert(by),
            };
            if keep {
                records.push(record.clone());
            }
        }
        HistoryList(records)
    }

    /// The Resolve step for one settled conflict: insert its records, newest
    /// first and stopping at the first one this history already subsumes,
    /// right after the topmost record.
    ///
    /// "Already" means before the absorb: a record subsumed only by one just
    /// inserted (the conflict's own earlier change by the same endpoint) does
    /// not stop it, or the records below it — changes the conflict had seen —
    /// would be lost and their versions come back as conflicts.
    pub fn absorb(&mut self, other: &HistoryList) {
        let unseen: Vec<History> = other
            .iter()
            .take_while(|record| !self.subsumes(record))
            .cloned()
            .collect();
        self.0.splice(1..1, unseen);
    }
}

impl TryFrom<Vec<History>> for HistoryList {
    type Error = EmptyHistory;

    fn try_from(records: Vec<History>) -> Result<Self, EmptyHistory> {
        if records.is_empty() {
            Err(EmptyHistory)
        } else {
            Ok(HistoryList(records))
        }
    }
}

/// What a set of histories has seen: whether any record of any of them
/// subsumes a record ([`History::is_subsumed_by`]), answered in constant
/// time, so that merging an item of many versions stays linear.
#[derive(Debug, Default)]
pub(crate) struct Seen<'a> {
    /// Per endpoint, the highest sequence among its records.
    by: HashMap<&'a str, u32>,
    /// The records without `by`.
    anonymous: HashSet<(Option<DateTime<Utc>>, u32)>,
}

impl<'a> Seen<'a> {
    pub(crate) fn add(&mut self, history: &'a HistoryList) {
        for k in history.iter() {
            match &k.by {
                Some(by) => {
                    let highest = self.by.entry(by.as_str()).or_insert(k.sequence);
                    *highest = (*highest).max(k.sequence);
                }
                None => {
                    self.anonymous.insert((k.when, k.sequence));
                }
            }
        }
    }

    pub(crate) fn subsumes(&self, record: &History) -> bool {
        match &record.by {
            Some(by) => self
                .by
                .get(by.as_str())
                .is_some_and(|&highest| highest >= record.sequence),
            None => self.anonymous.contains(&(record.when, record.sequence)),
        }
    }
}

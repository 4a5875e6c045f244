//! One reader of the change log for every change stream. A task reads each
//! newly committed change once, encodes it once, and keeps the most recent
//! ones in memory; each stream then takes what its caller may see from
//! that window, with no database work of its own. Only a stream whose
//! cursor is older than the window reads the log itself until it catches
//! up. So a change reaches a thousand subscribers for one read of the log,
//! not a thousand.

use mesh_protocol::api::StreamMessage;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

use crate::db::Db;
use crate::notify::ChangeNotifier;
use crate::store::changes::{self, Logged};

/// How many recent changes the window holds.
const WINDOW: usize = 8192;
/// How many changes one read of the log fetches.
const BATCH: usize = 1024;

/// A logged change with its stream message encoded once for everyone.
pub struct Shared {
    pub logged: Logged,
    /// `StreamMessage::Event` as JSON: an SSE `data:` line or a WebSocket
    /// text frame.
    pub json: Arc<str>,
}

impl Shared {
    pub fn new(logged: Logged) -> Shared {
        let json = serde_json::to_string(&StreamMessage::Event(logged.event.clone()))
            .expect("an event always encodes");
        Shared {
            logged,
            json: json.into(),
        }
    }
}

struct Window {
    changes: VecDeque<Arc<Shared>>,
    /// The newest sequence number read from the log.
    last: u64,
}

/// The recent changes; cloning shares them.
#[derive(Clone)]
pub struct RecentChanges {
    window: Arc<RwLock<Window>>,
    head: watch::Sender<u64>,
}

/// What a stream gets for its cursor.
pub enum Since {
    /// Every change after the cursor (possibly none yet).
    Changes(Vec<Arc<Shared>>),
    /// The cursor is older than the window: read the log.
    TooOld,
}

impl RecentChanges {
    /// Starts the reader at `head` (the newest change now committed).
    pub fn start(
        db: Db,
        notifier: Arc<dyn ChangeNotifier>,
        head: u64,
        mut shutdown: watch::Receiver<bool>,
    ) -> RecentChanges {
        let recent = RecentChanges::new(head);
        let reader = recent.clone();
        let mut announced = notifier.subscribe();
        tokio::spawn(async move {
            loop {
                let wanted = *announced.borrow_and_update();
                while reader.last() < wanted {
                    let since = reader.last();
                    match db
                        .read(move |conn| {
                            Ok::<_, anyhow::Error>(changes::after(conn, since, BATCH)?)
                        })
                        .await
                    {
                        Ok(batch) if batch.is_empty() => break,
                        Ok(batch) => reader.append(batch),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading new changes failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                    }
                }
                tokio::select! {
                    changed = announced.changed() => if changed.is_err() { return },
                    _ = shutdown.changed() => return,
                }
            }
        });
        recent
    }

    fn new(head: u64) -> RecentChanges {
        RecentChanges {
            window: Arc::new(RwLock::new(Window {
                changes: VecDeque::new(),
                last: head,
            })),
            head: watch::Sender::new(head),
        }
    }

    fn last(&self) -> u64 {
        self.window.read().expect("window").last
    }

    fn append(&self, batch: Vec<Logged>) {
        let last = {
            let mut window = self.window.write().expect("window");
            for logged in batch {
                window.last = window.last.max(logged.event.seq);
                window.changes.push_back(Arc::new(Shared::new(logged)));
            }
            while window.changes.len() > WINDOW {
                window.changes.pop_front();
            }
            window.last
        };
        self.head.send_replace(last);
    }

    /// A receiver that changes whenever the window has new changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// The changes after `cursor`, at most `limit`, if the window still
    /// reaches back to it.
    pub fn since(&self, cursor: u64, limit: usize) -> Since {
        let window = self.window.read().expect("window");
        if cursor >= window.last {
            return Since::Changes(Vec::new());
        }
        let Some(first) = window.changes.front() else {
            return Since::TooOld;
        };
        // Sequence numbers have gaps (skipped changes), so only a cursor
        // at or after the one before the window's first is covered.
        if cursor + 1 < first.logged.event.seq {
            return Since::TooOld;
        }
        let start = window
            .changes
            .partition_point(|c| c.logged.event.seq <= cursor);
        Since::Changes(window.changes.range(start..).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::changes::Audience;
    use mesh_protocol::api::{Change, Event, ObjectId, UserId};

    fn logged(seq: u64) -> Logged {
        Logged {
            event: Event {
                seq,
                at: chrono::Utc::now(),
                change: Change::ObjectChanged {
                    object: ObjectId::generate(),
                },
            },
            audience: Audience::User(UserId::generate()),
        }
    }

    fn seqs(since: Since) -> Option<Vec<u64>> {
        match since {
            Since::Changes(c) => Some(c.iter().map(|c| c.logged.event.seq).collect()),
            Since::TooOld => None,
        }
    }

    #[test]
    fn the_window_serves_cursors_it_covers_and_sends_older_ones_to_the_log() {
        let recent = RecentChanges::new(4);
        assert_eq!(seqs(recent.since(4, 10)), Some(vec![]), "nothing new yet");
        assert_eq!(seqs(recent.since(2, 10)), None, "before the reader started");
        let mut head = recent.subscribe();
        recent.append((5..=10).map(logged).collect());
        assert!(head.has_changed().unwrap());
        assert_eq!(*head.borrow_and_update(), 10);
        assert_eq!(seqs(recent.since(4, 10)), Some(vec![5, 6, 7, 8, 9, 10]));
        assert_eq!(seqs(recent.since(7, 2)), Some(vec![8, 9]));
        assert_eq!(seqs(recent.since(10, 10)), Some(vec![]));
        assert_eq!(seqs(recent.since(3, 10)), None);

        // Only the newest WINDOW changes stay.
        recent.append((11..=(10 + WINDOW as u64)).map(logged).collect());
        assert_eq!(seqs(recent.since(4, 1)), None);
        assert_eq!(seqs(recent.since(10, 1)), Some(vec![11]));
    }
}

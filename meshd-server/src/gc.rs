//! Background collection: chunks nothing refers to any more (after the
//! grace period that protects uploads in flight), change-log entries older
//! than the retention, and tombstones older than theirs (compacted, see
//! `store::entries`).

use std::time::Duration;

use crate::state::AppState;
use crate::store::{changes, chunks, entries};

/// What one collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub chunks: usize,
    pub changes: usize,
    pub tombstones: usize,
}

/// Tombstones compacted in one transaction, so that a backlog (the first
/// run after an upgrade) never holds the writer for long.
const TOMBSTONE_BATCH: usize = 1000;

/// Runs one collection.
pub async fn collect_once(state: &AppState) -> anyhow::Result<Collected> {
    let grace = state.limits.chunk_grace;
    let retention = state.limits.event_retention;
    let tombstone_retention = state.limits.tombstone_retention;
    let now = crate::db::now_ms();
    let mut collected = Collected::default();
    loop {
        let n = state
            .db
            .write(move |tx| {
                let before = now - millis(tombstone_retention);
                Ok::<_, anyhow::Error>(entries::compact(tx, before, TOMBSTONE_BATCH)?)
            })
            .await?;
        collected.tombstones += n;
        if n < TOMBSTONE_BATCH {
            break;
        }
    }
    // After compaction: a compacted tombstone holds no chunk references,
    // and holding the gate keeps uploads out only while chunks go.
    let _gate = state.chunk_gate.write().await;
    let (doomed, pruned) = state
        .db
        .write(move |tx| {
            let doomed = chunks::collect(tx, now - millis(grace))?;
            let pruned = changes::prune(tx, now - millis(retention))?;
            Ok::<_, anyhow::Error>((doomed, pruned))
        })
        .await?;
    for hash in &doomed {
        state.blobs.delete(hash).await?;
        state.slice_trees.delete(hash).await?;
    }
    collected.chunks = doomed.len();
    collected.changes = pruned;
    Ok(collected)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Collects every `gc_interval` until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut ticks = tokio::time::interval(state.limits.gc_interval);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        match collect_once(&state).await {
            Ok(c) if c == Collected::default() => {}
            Ok(Collected {
                chunks,
                changes,
                tombstones,
            }) => tracing::info!(chunks, changes, tombstones, "collected"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "collection failed"),
        }
    }
}

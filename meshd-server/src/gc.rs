//! Background collection: chunks nothing refers to any more (after the
//! grace period that protects uploads in flight) and change-log entries
//! older than the retention.

use std::time::Duration;

use crate::state::AppState;
use crate::store::{changes, chunks};

/// Runs one collection; returns how many chunks and changes went.
pub async fn collect_once(state: &AppState) -> anyhow::Result<(usize, usize)> {
    let grace = state.limits.chunk_grace;
    let retention = state.limits.event_retention;
    let now = crate::db::now_ms();
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
    }
    Ok((doomed.len(), pruned))
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
            Ok((0, 0)) => {}
            Ok((chunks, changes)) => tracing::info!(chunks, changes, "collected"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "collection failed"),
        }
    }
}

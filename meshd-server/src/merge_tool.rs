//! `meshd feedsync merge LOCAL INCOMING`: merges two Atom feeds item by item
//! by the FeedSync rules, for anyone testing their own endpoint. The result
//! keeps LOCAL's feed metadata and item order, with items only INCOMING has
//! appended in its order.

use mesh_protocol::atom;
use mesh_protocol::feed::Feed;
use mesh_protocol::feedsync::{self, Item};
use std::collections::HashMap;
use std::path::Path;

fn read(path: &Path) -> Result<Feed, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let feed = atom::read_feed(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    for s in &feed.skipped {
        let said = format!(
            "{}: entry {} skipped: {}",
            path.display(),
            s.index,
            s.reason
        );
        eprintln!("meshd: {}", mesh_cli::display::escaped(&said));
    }
    Ok(feed)
}

/// Merges the two files and returns the merged feed as Atom.
pub fn run(local: &Path, incoming: &Path) -> Result<String, String> {
    let mut merged = read(local)?;
    let incoming = read(incoming)?;
    merged.skipped.clear();
    Ok(atom::write_feed(&merge_feeds(merged, incoming.items)?))
}

fn merge_feeds(mut local: Feed, incoming: Vec<Item>) -> Result<Feed, String> {
    let mut at: HashMap<_, usize> = HashMap::new();
    for (i, item) in local.items.iter().enumerate() {
        if at.insert(item.id().clone(), i).is_some() {
            return Err(format!("LOCAL holds item {} twice", item.id()));
        }
    }
    for item in incoming {
        match at.get(item.id()) {
            Some(&i) => {
                local.items[i] = feedsync::merge(Some(&local.items[i]), &item)
                    .map_err(|e| e.to_string())?
                    .item;
            }
            None => {
                at.insert(item.id().clone(), local.items.len());
                local.items.push(
                    feedsync::merge(None, &item)
                        .map_err(|e| e.to_string())?
                        .item,
                );
            }
        }
    }
    Ok(local)
}

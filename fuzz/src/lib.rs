//! What the fuzz targets share: the checks `mesh-protocol/tests/hostile_input.rs`
//! runs (one file, included by path, so both check the same properties), and
//! the arbitrary items the `merge` target merges.

#[path = "../../mesh-protocol/tests/common/checks.rs"]
pub mod checks;

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use mesh_protocol::feedsync::{Body, History, HistoryList, Item, Sync, SyncId, Text, Version};

/// The newest `when` an arbitrary history record holds is before this.
pub fn after_every_change() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
}

/// Endpoint ids: a few shared ones, so that histories meet, or any text.
fn endpoint(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=4)? {
        0 => "A".into(),
        1 => "B".into(),
        2 => "C".into(),
        3 => String::new(),
        _ => u.arbitrary()?,
    })
}

/// Counts near the ends of the range as often as small ones.
fn count(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u32::MAX - u.int_in_range(0..=2)?,
        1 => u.arbitrary()?,
        _ => u.int_in_range(0..=5)?,
    })
}

/// A time from 1970 to 2099, often on a few shared seconds so that ties
/// happen, sometimes with nanoseconds.
fn when(u: &mut Unstructured<'_>) -> Result<DateTime<Utc>> {
    let secs = match u.ratio(1, 2)? {
        true => 1_199_181_600 + i64::from(u.int_in_range(0u8..=5)?),
        false => u.int_in_range(0..=4_102_444_799)?,
    };
    let nanos = match u.ratio(1, 4)? {
        true => u.int_in_range(0..=999_999_999)?,
        false => 0,
    };
    Ok(Utc.timestamp_opt(secs, nanos).unwrap())
}

fn history(u: &mut Unstructured<'_>) -> Result<History> {
    let sequence = count(u)?;
    Ok(match u.int_in_range(0..=2)? {
        0 => History {
            sequence,
            when: Some(when(u)?),
            by: None,
        },
        1 => History {
            sequence,
            when: None,
            by: Some(endpoint(u)?),
        },
        _ => History {
            sequence,
            when: Some(when(u)?),
            by: Some(endpoint(u)?),
        },
    })
}

fn version(u: &mut Unstructured<'_>, id: &SyncId) -> Result<Version> {
    let records = (0..u.int_in_range(1..=4)?)
        .map(|_| history(u))
        .collect::<Result<Vec<_>>>()?;
    let title: Option<u8> = u.arbitrary()?;
    Ok(Version {
        sync: Sync {
            id: id.clone(),
            updates: count(u)?,
            deleted: u.arbitrary()?,
            noconflicts: u.ratio(1, 8)?,
            history: HistoryList::try_from(records).expect("at least one record"),
        },
        body: Body {
            title: title.map(|t| Text::plain(t.to_string())),
            ..Body::default()
        },
    })
}

fn item(u: &mut Unstructured<'_>, id: &SyncId) -> Result<Item> {
    let current = version(u, id)?;
    let conflicts = (0..u.int_in_range(0..=3)?)
        .map(|_| version(u, id))
        .collect::<Result<_>>()?;
    Ok(Item { current, conflicts })
}

/// Two arbitrary items with one sync id — any versions and histories, not
/// only ones conforming endpoints make.
pub fn item_pair(u: &mut Unstructured<'_>) -> Result<(Item, Item)> {
    let id = SyncId::parse("urn:uuid:fuzzed").expect("a valid sync id");
    Ok((item(u, &id)?, item(u, &id)?))
}

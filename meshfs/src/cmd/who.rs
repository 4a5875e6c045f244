//! `meshfs who PATH`: who is using a Live Folder now. Every device present
//! in the folder publishes which of its files it has open; this reads the
//! folder's awareness document from the server and shows each device with
//! what it has open at or below PATH (for the folder itself, every device
//! there, even with nothing open).

use anyhow::Context;
use mesh_cli::display::escaped;
use mesh_protocol::live::{AwarenessEntry, FolderAwareness};
use serde::Serialize;
use std::path::Path;

use crate::client::MeshApi;
use crate::cmd::place::{Place, place_of};
use crate::cmd::session::Session;
use crate::local::home::Home;

#[derive(Debug, Serialize)]
struct Present {
    user: String,
    device: String,
    /// Whether it is the device running this command.
    current: bool,
    open: Vec<OpenHere>,
}

#[derive(Debug, Serialize)]
struct OpenHere {
    path: String,
    writing: bool,
}

/// Whether `file` is `inside` or below it (`inside` empty: the whole folder).
fn below(file: &str, inside: &str) -> bool {
    inside.is_empty()
        || file == inside
        || file
            .strip_prefix(inside)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn present(entries: Vec<AwarenessEntry>, place: &Place, me: &str) -> Vec<Present> {
    let mut out: Vec<Present> = entries
        .into_iter()
        .filter_map(|entry| {
            let state: FolderAwareness = serde_json::from_value(entry.state).unwrap_or_default();
            let open: Vec<OpenHere> = state
                .open
                .into_iter()
                .filter(|f| below(&f.path, &place.inside))
                .map(|f| OpenHere {
                    path: f.path,
                    writing: f.writing,
                })
                .collect();
            (place.inside.is_empty() || !open.is_empty()).then(|| Present {
                user: entry.email,
                current: entry.device.to_string() == me,
                device: entry.device_name,
                open,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
    out
}

pub fn who(home: &Home, path: &Path, json: bool) -> anyhow::Result<()> {
    let place = place_of(path)?;
    let me = home.require_account()?.device_id;
    let session = Session::open(home)?;
    let doc = session
        .run(session.remote.awareness(place.object))
        .with_context(|| format!("asking who is in {}", path.display()))?;
    let present = present(doc.entries, &place, &me);
    if json {
        println!("{}", serde_json::to_string_pretty(&present)?);
        return Ok(());
    }
    if present.is_empty() {
        println!(
            "{}",
            escaped(&format!(
                "nobody has anything open in {} now",
                path.display()
            ))
        );
    }
    for p in &present {
        let this = if p.current { " (this device)" } else { "" };
        let open = if p.open.is_empty() {
            "nothing open".to_owned()
        } else {
            p.open
                .iter()
                .map(|f| {
                    let writing = if f.writing { " (writing)" } else { "" };
                    format!("{}{writing}", f.path)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{}",
            escaped(&format!("{} on {}{this}: {open}", p.user, p.device))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::api::{DeviceId, ObjectId, UserId};
    use serde_json::json;

    fn entry(email: &str, device: DeviceId, open: serde_json::Value) -> AwarenessEntry {
        AwarenessEntry {
            user: UserId::generate(),
            email: email.into(),
            device,
            device_name: format!("{email}-device"),
            state: json!({ "open": open }),
            updated: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_subfolder_shows_only_who_has_something_open_below_it() {
        let (a, b) = (DeviceId::generate(), DeviceId::generate());
        let entries = || {
            vec![
                entry("bob@x", b, json!([])),
                entry(
                    "ann@x",
                    a,
                    json!([
                        {"path": "docs/report.odt", "entry": "e1", "writing": true},
                        {"path": "docs2/x", "entry": "e2", "writing": false},
                    ]),
                ),
            ]
        };
        let place = |inside: &str| Place {
            object: ObjectId::generate(),
            inside: inside.into(),
        };
        let whole = present(entries(), &place(""), &b.to_string());
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].user, "ann@x");
        assert!(whole[1].current && whole[1].open.is_empty());

        let docs = present(entries(), &place("docs"), &b.to_string());
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].open.len(), 1, "docs2 is not below docs");
        assert_eq!(docs[0].open[0].path, "docs/report.odt");
        assert!(present(entries(), &place("music"), "").is_empty());
    }
}

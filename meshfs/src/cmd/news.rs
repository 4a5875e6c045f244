//! `meshfs news [PATH]`: what happened, newest first — in the Live Folder
//! PATH is in, or across the whole mesh — one page at a time (`--before`
//! continues where a page ended). Several changes by one person within a
//! short window arrive as one item, which the server keeps up to date.

use anyhow::Context;
use mesh_cli::display::escaped;
use mesh_protocol::api::ObjectId;
use std::collections::HashMap;
use std::path::Path;

use crate::client::MeshApi;
use crate::cmd::place::place_of;
use crate::cmd::session::Session;
use crate::local::home::Home;

pub struct NewsQuery<'a> {
    pub path: Option<&'a Path>,
    pub limit: usize,
    pub before: Option<u64>,
    pub json: bool,
}

pub fn news(home: &Home, query: NewsQuery<'_>) -> anyhow::Result<()> {
    let object = query.path.map(place_of).transpose()?.map(|p| p.object);
    let session = Session::open(home)?;
    let page = session
        .run(session.remote.news(object, query.before, query.limit))
        .context("reading the news")?;
    if query.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    if page.items.is_empty() {
        println!("no news");
        return Ok(());
    }
    // Across the mesh, each item names its folder.
    let names: HashMap<ObjectId, String> = if object.is_none() {
        session
            .run(session.remote.objects())?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect()
    } else {
        HashMap::new()
    };
    for item in &page.items {
        let at = item
            .at
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M");
        let place = match (object, item.object) {
            (None, Some(o)) => format!(
                "[{}] ",
                names
                    .get(&o)
                    .map_or("a folder no longer shared", String::as_str)
            ),
            _ => String::new(),
        };
        println!("{}", escaped(&format!("{at}  {place}{}", item.summary())));
    }
    if let Some(before) = page.next_before {
        println!("(older: meshfs news --before {before})");
    }
    Ok(())
}

//! Data feeds against the real meshd: FeedSync merge over HTTP in JSON and
//! Atom, paging by change cursor, ETags, and bad input that changes nothing.

mod common;

use common::{Server, error_code, new_item, updated};
use mesh_protocol::feed::Feed;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

#[tokio::test]
async fn items_merge_and_conflicts_reach_both_sides() {
    let server = Server::start();
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;
    let list = laptop.create_object("Todo", "list").await;

    let v1 = new_item(
        "urn:uuid:item-1",
        "buy milk",
        &laptop.device_id,
        "2026-11-27T10:00:00Z",
    );
    let r = laptop.post_items(&list, json!([v1])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["items"][0], v1,
        "a new item is stored as it is; the server adds no history"
    );

    // Both devices change it from version 1: a conflict, whatever the content.
    let by_laptop = updated(
        &v1,
        "buy milk and eggs",
        &laptop.device_id,
        "2026-11-27T10:00:05Z",
    );
    let by_phone = updated(
        &v1,
        "buy oat milk",
        &phone.device_id,
        "2026-11-27T10:00:09Z",
    );
    let a: Value = laptop
        .post_items(&list, json!([by_laptop]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["items"][0]["title"]["value"], "buy milk and eggs");
    let b: Value = phone
        .post_items(&list, json!([by_phone]))
        .await
        .json()
        .await
        .unwrap();
    let merged = &b["items"][0];
    assert_eq!(
        merged["title"]["value"], "buy oat milk",
        "the later change wins"
    );
    assert_eq!(merged["sync"]["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(
        merged["sync"]["conflicts"][0]["title"]["value"],
        "buy milk and eggs"
    );

    // The laptop reads the feed and sees the same winner and conflict.
    let feed = laptop.feed(&list).await;
    assert_eq!(feed["items"].as_array().unwrap().len(), 1);
    assert_eq!(&feed["items"][0], merged);

    // Posting the same again changes nothing (and makes no new change).
    let cursor = feed["sharing"]["until"].clone();
    let again: Value = laptop
        .post_items(&list, json!([merged]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&again["items"][0], merged);
    assert_eq!(laptop.feed(&list).await["sharing"]["until"], cursor);

    // A stale version changes nothing either.
    let stale: Value = laptop
        .post_items(&list, json!([v1]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&stale["items"][0], merged);
}

#[tokio::test]
async fn feed_pages_by_cursor_with_etags() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let list = ann.create_object("Todo", "list").await;
    let items: Vec<Value> = (0..7)
        .map(|i| {
            new_item(
                &format!("urn:uuid:item-{i}"),
                &format!("task {i}"),
                &ann.device_id,
                "2026-11-27T10:00:00Z",
            )
        })
        .collect();
    assert_eq!(
        ann.post_items(&list, json!(items)).await.status(),
        StatusCode::OK
    );

    let mut since = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = ann
            .get_json(&format!("/v1/objects/{list}/feed?since={since}&limit=3"))
            .await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["title"]["value"].as_str().unwrap().to_owned());
        }
        since = page["sharing"]["until"].as_str().unwrap().parse().unwrap();
        let next = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next");
        match next {
            Some(l) => assert_eq!(
                l["href"],
                format!("/v1/objects/{list}/feed?since={since}&limit=3")
            ),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        (0..7).map(|i| format!("task {i}")).collect::<Vec<_>>()
    );

    // Only the changed item comes after the cursor.
    let changed = updated(
        &items[4],
        "task 4 done",
        &ann.device_id,
        "2026-11-27T10:01:00Z",
    );
    ann.post_items(&list, json!([changed])).await;
    let page: Value = ann
        .get_json(&format!("/v1/objects/{list}/feed?since={since}"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["title"]["value"], "task 4 done");

    // ETag: 304 while nothing changes, 200 once something does.
    let path = format!("/v1/objects/{list}/feed");
    let r = ann.get(&path).send().await.unwrap();
    let etag = r.headers()[ETAG].to_str().unwrap().to_owned();
    let r = ann
        .get(&path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let atom = ann
        .get(&path)
        .header(IF_NONE_MATCH, &etag)
        .header(ACCEPT, "application/atom+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(
        atom.status(),
        StatusCode::OK,
        "the Atom form has its own ETag"
    );
    ann.post_items(
        &list,
        json!([new_item(
            "urn:uuid:new",
            "new",
            &ann.device_id,
            "2026-11-27T10:02:00Z"
        )]),
    )
    .await;
    let r = ann
        .get(&path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()[ETAG].to_str().unwrap(), etag);

    let r = ann.get(&format!("{path}?limit=0")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// A third-party endpoint that speaks nothing but Atom XML over HTTP.
fn atom_entry(id: &str, title: &str, history: &[(u32, &str, &str)]) -> String {
    let records: String = history
        .iter()
        .map(|(seq, by, when)| format!(r#"<sx:history sequence="{seq}" when="{when}" by="{by}"/>"#))
        .collect();
    format!(
        r#"<entry><title>{title}</title><id>{id}</id><updated>{}</updated><content type="text">{title}</content><sx:sync id="{id}" updates="{}">{records}</sx:sync></entry>"#,
        history[0].2, history[0].0
    )
}

/// Posts an Atom feed to `path`, as such an endpoint does.
fn post_atom(
    client: &common::Client,
    path: &str,
    xml: String,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
    client
        .post(path)
        .header(CONTENT_TYPE, "application/atom+xml")
        .body(xml)
        .send()
}

fn atom_feed(entries: &[String]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync"><title>Todo</title><id>urn:uuid:third-party</id><updated>2008-01-01T10:00:00Z</updated>{}</feed>"#,
        entries.concat()
    )
}

#[tokio::test]
async fn third_party_endpoints_sync_a_list_with_atom_only() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let list = ann.create_object("Todo", "list").await;
    let path = format!("/v1/objects/{list}/feed");

    // Endpoint A creates the item; both A and B have it.
    let created = atom_entry(
        "urn:uuid:item-1",
        "buy milk",
        &[(1, "A", "2008-01-01T10:00:00Z")],
    );
    let r = post_atom(&ann, &path, atom_feed(&[created])).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );

    // Each changes it while apart, then posts its version.
    let by_a = atom_entry(
        "urn:uuid:item-1",
        "buy milk and eggs",
        &[
            (2, "A", "2008-01-01T10:00:05Z"),
            (1, "A", "2008-01-01T10:00:00Z"),
        ],
    );
    let by_b = atom_entry(
        "urn:uuid:item-1",
        "buy oat milk",
        &[
            (2, "B", "2008-01-01T10:00:09Z"),
            (1, "A", "2008-01-01T10:00:00Z"),
        ],
    );
    let answer_a = post_atom(&ann, &path, atom_feed(&[by_a]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !answer_a.contains("sx:conflicts"),
        "A's change alone is a fast-forward"
    );
    let answer_b = post_atom(&ann, &path, atom_feed(&[by_b]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // B's answer carries the winner (B, later `when`) and A's version as a conflict.
    let feed = mesh_protocol::atom::read_feed(answer_b.as_bytes()).unwrap();
    let item = &feed.items[0];
    assert_eq!(
        item.current.body.title.as_ref().unwrap().value,
        "buy oat milk"
    );
    assert_eq!(item.conflicts.len(), 1);
    assert_eq!(
        item.conflicts[0].body.title.as_ref().unwrap().value,
        "buy milk and eggs"
    );
    assert!(answer_b.contains("<sx:conflicts>"), "{answer_b}");

    // A pulls the feed as Atom and gets the same conflict.
    let pulled = ann
        .get(&path)
        .header(ACCEPT, "application/atom+xml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let feed = mesh_protocol::atom::read_feed(pulled.as_bytes()).unwrap();
    assert_eq!(feed.items.len(), 1);
    assert_eq!(&feed.items[0], item);
    assert!(pulled.contains(r#"by="A""#) && pulled.contains(r#"by="B""#));
}

#[tokio::test]
async fn bad_feeds_are_refused_and_change_nothing() {
    let server = Server::start_with(&["--max-body", "65536"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let list = ann.create_object("Todo", "list").await;
    let path = format!("/v1/objects/{list}/feed");
    let good = new_item(
        "urn:uuid:ok",
        "fine",
        &ann.device_id,
        "2026-11-27T10:00:00Z",
    );
    ann.post_items(&list, json!([good])).await;
    let before = ann.feed(&list).await;

    let atom = |body: &str| {
        ann.post(&path)
            .header(CONTENT_TYPE, "application/atom+xml")
            .body(body.to_owned())
            .send()
    };
    let cases = [
        "<feed xmlns='http://www.w3.org/2005/Atom'><entry>",
        "not xml at all",
        "<rss/>",
        "<feed xmlns='http://www.w3.org/2005/Atom' xmlns:sx='http://feedsync.org/2007/feedsync'><entry><title>x</title><sx:sync updates='1'><sx:history sequence='1' by='A'/></sx:sync></entry></feed>",
        "<feed xmlns='http://www.w3.org/2005/Atom' xmlns:sx='http://feedsync.org/2007/feedsync'><entry><title>x</title><sx:sync id='i' updates='one'><sx:history sequence='1' by='A'/></sx:sync></entry></feed>",
        "<feed xmlns='http://www.w3.org/2005/Atom' xmlns:sx='http://feedsync.org/2007/feedsync'><entry><title>x</title><sx:sync id='i' updates='1'><sx:history sequence='1'/></sx:sync></entry></feed>",
    ];
    for body in cases {
        let r = atom(body).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Atom"),
            "{answer}"
        );
    }
    // Malformed JSON, a bad item, an unknown member, a mismatched conflict.
    let json_cases = [
        "{\"items\": [",
        "{\"items\": [{\"sync\": {\"id\": \"x\", \"updates\": 1, \"history\": []}}]}",
        "{\"items\": [{\"sync\": {\"id\": \"x\", \"updates\": 1, \"history\": [{\"sequence\": 1, \"by\": \"A\"}]}, \"titel\": \"typo\"}]}",
        "{\"items\": [], \"surprise\": true}",
    ];
    for body in json_cases {
        let r = ann
            .post(&path)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(r).await, "bad_request");
    }
    // Several items where the last is bad: none of them is stored.
    let mixed = json!([
        new_item("urn:uuid:new-1", "one", &ann.device_id, "2026-11-27T10:00:00Z"),
        {"sync": {"id": "urn:uuid:new-2", "updates": 1, "history": []}}
    ]);
    assert_eq!(
        ann.post_items(&list, mixed).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Wrong media type, oversize body.
    let r = ann
        .post(&path)
        .header(CONTENT_TYPE, "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!([new_item(
        "urn:uuid:big",
        &"x".repeat(100_000),
        &ann.device_id,
        "2026-11-27T10:00:00Z"
    )]);
    let r = ann.post_items(&list, huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(
        ann.feed(&list).await,
        before,
        "no bad request changed the feed"
    );
}

#[tokio::test]
async fn entries_without_sync_metadata_are_skipped_and_reported() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let list = ann.create_object("Todo", "list").await;
    let xml = atom_feed(&[
        "<entry><title>plain</title><id>urn:x:plain</id><updated>2008-01-01T10:00:00Z</updated></entry>".to_owned(),
        atom_entry("urn:uuid:synced", "synced", &[(1, "A", "2008-01-01T10:00:00Z")]),
    ]);
    let r = ann
        .post(&format!("/v1/objects/{list}/feed"))
        .header(CONTENT_TYPE, "application/atom+xml")
        .header(ACCEPT, "application/json")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["items"].as_array().unwrap().len(), 1);
    assert_eq!(answer["skipped"][0]["index"], 0);
    assert_eq!(answer["skipped"][0]["atom_id"], "urn:x:plain");
    let feed = ann.feed(&list).await;
    assert_eq!(feed["items"].as_array().unwrap().len(), 1);

    let r = ann
        .post_items(
            &list,
            json!([{"title": {"type": "text", "value": "no sync"}}]),
        )
        .await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["skipped"][0]["index"], 0);
    assert_eq!(answer["items"], json!([]));
}

#[tokio::test]
async fn live_folder_entries_with_names_no_filesystem_allows_are_refused() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let folder = ann.create_object("Photos", "folder").await;
    let entry = |name: &str| {
        let mut item = new_item(
            &format!("urn:uuid:{}", name.len()),
            "x",
            &ann.device_id,
            "2026-11-27T10:00:00Z",
        );
        item["data"] =
            json!({"name": name, "type": "dir", "mode": 0o755, "mtime": "2026-11-27T10:00:00Z"});
        item
    };
    for name in ["", ".", "..", "a/b", "nul\u{0}byte", &"x".repeat(256)] {
        let r = ann.post_items(&folder, json!([entry(name)])).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name:?}");
        assert_eq!(error_code(r).await, "bad_request");
    }
    let mut no_data = new_item(
        "urn:uuid:no-data",
        "x",
        &ann.device_id,
        "2026-11-27T10:00:00Z",
    );
    assert_eq!(
        ann.post_items(&folder, json!([no_data.clone()]))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    no_data["data"] = json!({"name": "file-without-content", "type": "file", "mode": 0o644, "mtime": "2026-11-27T10:00:00Z"});
    assert_eq!(
        ann.post_items(&folder, json!([no_data])).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert!(
        ann.feed(&folder).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let r = ann.post_items(&folder, json!([entry("Summer 2026")])).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The same payload is fine in a list, which has no such rules.
    let list = ann.create_object("Todo", "list").await;
    assert_eq!(
        ann.post_items(&list, json!([entry("..")])).await.status(),
        StatusCode::OK
    );
}

/// GETs the Atom feed from `since`; answers it read back, with its
/// `sx:sharing` cursors.
async fn atom_since(client: &common::Client, path: &str, since: u64) -> (Feed, u64, u64) {
    let r = client
        .get(&format!("{path}?since={since}"))
        .header(ACCEPT, "application/atom+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let feed = mesh_protocol::atom::read_feed(&r.bytes().await.unwrap()).unwrap();
    let sharing = feed.sharing.clone().expect("a page names its cursors");
    let cursor = |c: Option<String>| c.unwrap().parse::<u64>().unwrap();
    let (from, until) = (cursor(sharing.since), cursor(sharing.until));
    (feed, from, until)
}

fn ids(feed: &Feed) -> Vec<&str> {
    feed.items.iter().map(|i| i.id().as_str()).collect()
}

#[tokio::test]
async fn old_tombstones_are_compacted_and_a_cursor_before_them_reads_the_whole_feed() {
    let server = Server::start_with(&["--tombstone-retention", "1", "--gc-interval", "1"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let list = ann.create_object("Todo", "list").await;
    let path = format!("/v1/objects/{list}/feed");
    let history = [
        (4, "A", "2008-01-01T10:00:04Z"),
        (3, "B", "2008-01-01T10:00:03Z"),
        (2, "A", "2008-01-01T10:00:02Z"),
        (1, "A", "2008-01-01T10:00:00Z"),
    ];
    let kept = atom_entry("urn:uuid:kept", "kept", &history[3..]);
    let stale = atom_entry("urn:uuid:gone", "gone", &history);
    let r = post_atom(&ann, &path, atom_feed(&[kept, stale.clone()]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A rarely syncing endpoint reads the feed and goes quiet.
    let (_, _, quiet) = atom_since(&ann, &path, 0).await;

    // Another endpoint deletes one item; a reader that sees the deletion.
    let mut deleted = history.to_vec();
    deleted.insert(0, (5, "A", "2008-01-01T10:00:05Z"));
    let tombstone = atom_entry("urn:uuid:gone", "gone", &deleted)
        .replace(r#"updates="5">"#, r#"updates="5" deleted="true">"#);
    assert_eq!(
        post_atom(&ann, &path, atom_feed(&[tombstone]))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (delta, from, current) = atom_since(&ann, &path, quiet).await;
    assert_eq!(from, quiet);
    assert_eq!(ids(&delta), ["urn:uuid:gone"]);
    assert!(delta.items[0].current.sync.deleted);

    // Past the retention, the tombstone leaves the feed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ids(&atom_since(&ann, &path, 0).await.0).contains(&"urn:uuid:gone") {
        assert!(
            std::time::Instant::now() < deadline,
            "the tombstone was not compacted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(server.log().contains("tombstones=1"), "{}", server.log());
    // A new reader gets only what is live.
    let (whole, from, _) = atom_since(&ann, &path, 0).await;
    assert_eq!((ids(&whole), from), (vec!["urn:uuid:kept"], 0));
    // The quiet endpoint's cursor is older than the compacted tombstone:
    // not a delta that would miss the deletion, but the complete feed,
    // starting from 0 as its `sx:sharing` says.
    let (resync, from, _) = atom_since(&ann, &path, quiet).await;
    assert_eq!((ids(&resync), from), (vec!["urn:uuid:kept"], 0));
    // A reader that saw the deletion still gets a delta: nothing new.
    let (nothing, from, until) = atom_since(&ann, &path, current).await;
    assert_eq!((nothing.items.len(), from, until), (0, current, current));

    // The quiet endpoint posts its stale copy: the tombstone, kept for
    // merging with the history it needs, still wins and nothing changes.
    let answer = post_atom(&ann, &path, atom_feed(&[stale])).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer = mesh_protocol::atom::read_feed(&answer.bytes().await.unwrap()).unwrap();
    let kept_for_merging = &answer.items[0].current;
    assert!(kept_for_merging.sync.deleted);
    let records: Vec<(u32, Option<&str>)> = kept_for_merging
        .sync
        .history
        .iter()
        .map(|h| (h.sequence, h.by.as_deref()))
        .collect();
    assert_eq!(records, [(5, Some("A")), (3, Some("B"))]);
    let (same, _, until) = atom_since(&ann, &path, current).await;
    assert_eq!((same.items.len(), until), (0, current));

    // A change the deletion never saw revives the entry, the deletion
    // kept as its conflict, as FeedSync merges any concurrent versions.
    let mut edited = history.to_vec();
    edited.insert(0, (5, "B", "2008-01-01T10:00:06Z"));
    edited.insert(0, (6, "B", "2008-01-01T10:00:07Z"));
    let revived = atom_entry("urn:uuid:gone", "gone, edited", &edited);
    assert_eq!(
        post_atom(&ann, &path, atom_feed(&[revived]))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (back, _, _) = atom_since(&ann, &path, current).await;
    assert_eq!(ids(&back), ["urn:uuid:gone"]);
    assert!(!back.items[0].current.sync.deleted);
    assert_eq!(back.items[0].conflicts.len(), 1);
}

//! News against the real meshd: a folder's file changes coalescing per
//! person within the news window, members joining and leaving, devices
//! added to a mesh, items posted by applications, paging newest first, the
//! `NewsChanged` events, and that nobody reads news they may not see.

mod common;

use common::{Client, Server, error_code, new_item, replayed, updated};
use mesh_protocol::api::{Change, Role};
use mesh_protocol::content::{ContentRef, Hash};
use mesh_protocol::live::{NewsBody, NewsItem, NewsPage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";
const CAROL: &str = "carol@example.org";
const WHEN: &str = "2026-11-27T10:00:00Z";
const LATER: &str = "2026-11-27T11:00:00Z";

/// A new empty file entry called `name`, made on device `by`.
fn file(name: &str, by: &str) -> Value {
    let mut item = new_item(&format!("urn:uuid:{name}"), name, by, WHEN);
    item["data"] = json!({"name": name, "type": "file", "mode": 420, "mtime": WHEN});
    item["enclosure"] = json!(ContentRef {
        hash: Hash::of(b""),
        length: 0,
        chunks: Vec::new(),
    });
    item
}

/// `item` deleted on device `by`.
fn removed(item: &Value, by: &str) -> Value {
    let mut next = updated(item, "gone", by, LATER);
    next["sync"]["deleted"] = json!(true);
    next
}

async fn post_items(client: &Client, object: &str, items: Value) {
    let r = client.post_items(object, items).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn news(client: &Client, path: &str) -> NewsPage {
    let r = client.get(path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

async fn object_news(client: &Client, object: &str) -> Vec<NewsItem> {
    news(client, &format!("/v1/objects/{object}/news?limit=500"))
        .await
        .items
}

async fn mesh_news(client: &Client) -> Vec<NewsItem> {
    news(client, "/v1/news?limit=500").await.items
}

/// A files item's counts (added, changed, removed) and names.
fn files(item: &NewsItem) -> ((u32, u32, u32), Vec<&str>) {
    match &item.body {
        NewsBody::Files {
            added,
            changed,
            removed,
            names,
        } => (
            (*added, *changed, *removed),
            names.iter().map(String::as_str).collect(),
        ),
        other => panic!("not a files item: {other:?}"),
    }
}

async fn post_news(client: &Client, path: &str, body: Value) -> reqwest::Response {
    client.post(path).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_burst_of_file_changes_by_one_person_is_one_item() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "desktop").await;
    let folder = ann.create_object("Photos", "folder").await;
    let names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"];
    for name in names {
        post_items(&ann, &folder, json!([file(name, &ann.device_id)])).await;
    }
    let items = object_news(&ann, &folder).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let burst = &items[0];
    assert_eq!(
        files(burst),
        ((5, 0, 0), vec!["e.jpg", "d.jpg", "c.jpg", "b.jpg", "a.jpg"])
    );
    assert_eq!(burst.object.unwrap().to_string(), folder);
    assert_eq!(burst.actor.as_deref(), Some(ANN));
    assert_eq!(burst.device_name.as_deref(), Some("laptop"));

    // Bob joins; Ann's next change, in the window, still grows her item:
    // one entry changed and one removed, in one request. Both are files
    // the item counts as new: the changed one is still just new, the
    // removed one was never there as far as news goes.
    ann.add_member(&folder, &bob, BOB, "editor").await;
    let a = file("a.jpg", &ann.device_id);
    let b = file("b.jpg", &ann.device_id);
    post_items(
        &ann,
        &folder,
        json!([
            updated(&a, "a, cropped", &ann.device_id, LATER),
            removed(&b, &ann.device_id)
        ]),
    )
    .await;
    // Posting the same again changes nothing, so it is no news either.
    post_items(&ann, &folder, json!([removed(&b, &ann.device_id)])).await;
    // Bob's change in the window is his own item.
    post_items(&bob, &folder, json!([file("f.jpg", &bob.device_id)])).await;

    let items = object_news(&bob, &folder).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(files(&items[0]), ((1, 0, 0), vec!["f.jpg"]));
    assert_eq!(items[0].actor.as_deref(), Some(BOB));
    assert_eq!(
        items[1].body,
        NewsBody::MemberJoined {
            member: BOB.into(),
            role: Role::Editor
        }
    );
    let grown = &items[2];
    assert_eq!(grown.id, burst.id);
    assert_eq!(
        files(grown),
        ((4, 0, 0), vec!["a.jpg", "e.jpg", "d.jpg", "c.jpg"])
    );
    assert_eq!(grown.first, burst.first);
    assert!(grown.at >= burst.at);

    // Every version of the item was announced, the last one as it is now.
    let announced: Vec<NewsItem> = replayed(&ann, 0)
        .await
        .into_iter()
        .filter_map(|c| match c {
            Change::NewsChanged { item } if item.id == burst.id => Some(item),
            _ => None,
        })
        .collect();
    assert_eq!(announced.len(), 6, "{announced:?}");
    assert_eq!(announced.last(), Some(grown));
}

#[tokio::test]
async fn a_change_after_the_window_starts_a_new_item() {
    let server = Server::start_with(&["--news-window", "1"]);
    let ann = server.device(ANN, "laptop").await;
    let folder = ann.create_object("Notes", "folder").await;
    post_items(&ann, &folder, json!([file("one.txt", &ann.device_id)])).await;
    post_items(&ann, &folder, json!([file("two.txt", &ann.device_id)])).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    post_items(&ann, &folder, json!([file("three.txt", &ann.device_id)])).await;
    let items = object_news(&ann, &folder).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(files(&items[0]), ((1, 0, 0), vec!["three.txt"]));
    assert_eq!(files(&items[1]), ((2, 0, 0), vec!["two.txt", "one.txt"]));
}

#[tokio::test]
async fn temporary_and_scratch_files_are_no_news() {
    let server = Server::start_with(&["--news-window", "1"]);
    let ann = server.device(ANN, "laptop").await;
    let folder = ann.create_object("Work", "folder").await;
    let dev = ann.device_id.clone();
    let kept = file("report.odt", &dev);
    post_items(&ann, &folder, json!([kept.clone()])).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A save as an office suite does it: a lock file, a temporary file
    // renamed over... here written and removed again, and the document
    // changed. Only the change is news.
    let lock = file(".~lock.report.odt#", &dev);
    let journal = file("report.odt.journal", &dev);
    post_items(&ann, &folder, json!([lock.clone(), journal.clone()])).await;
    let edited = updated(&kept, "report, edited", &dev, LATER);
    post_items(
        &ann,
        &folder,
        json!([
            edited.clone(),
            removed(&journal, &dev),
            removed(&lock, &dev),
            file(".report.odt.swp", &dev),
        ]),
    )
    .await;
    let items = object_news(&ann, &folder).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(files(&items[0]), ((0, 1, 0), vec!["report.odt"]));
    assert_eq!(files(&items[1]), ((1, 0, 0), vec!["report.odt"]));
    let (session, first) = (items[0].id, items[1].id);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // An item of nothing but a temporary file is taken back: announced
    // once more with nothing in it, then gone.
    let scratch = file("download.part", &dev);
    post_items(&ann, &folder, json!([scratch.clone()])).await;
    let shown = object_news(&ann, &folder).await;
    assert_eq!(files(&shown[0]), ((1, 0, 0), vec!["download.part"]));
    let withdrawn = shown[0].id;
    post_items(&ann, &folder, json!([removed(&scratch, &dev)])).await;
    let items = object_news(&ann, &folder).await;
    assert_eq!(
        items.iter().map(|i| i.id).collect::<Vec<_>>(),
        [session, first],
        "{items:?}"
    );
    let last_told = replayed(&ann, 0)
        .await
        .into_iter()
        .filter_map(|c| match c {
            Change::NewsChanged { item } if item.id == withdrawn => Some(item),
            _ => None,
        })
        .next_back()
        .expect("the item was announced");
    assert_eq!(files(&last_told), ((0, 0, 0), vec![]));

    // A file from an earlier item that is removed now is news.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    post_items(&ann, &folder, json!([removed(&edited, &dev)])).await;
    let items = object_news(&ann, &folder).await;
    assert_eq!(files(&items[0]), ((0, 0, 1), vec!["report.odt"]));
}

#[tokio::test]
async fn members_joining_and_leaving_are_news_of_the_object() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "desktop").await;
    let carol = server.device(CAROL, "phone").await;
    let folder = ann.create_object("Team", "folder").await;
    ann.add_member(&folder, &bob, BOB, "editor").await;
    ann.add_member(&folder, &carol, CAROL, "reader").await;
    // Bob leaves; Ann removes Carol.
    for (client, who) in [(&bob, &bob), (&ann, &carol)] {
        let r = client
            .delete(&format!("/v1/objects/{folder}/members/{}", who.user_id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let told: Vec<(NewsBody, Option<String>)> = object_news(&ann, &folder)
        .await
        .into_iter()
        .map(|i| (i.body, i.actor))
        .collect();
    let joined = |member: &str, role| NewsBody::MemberJoined {
        member: member.into(),
        role,
    };
    let left = |member: &str| NewsBody::MemberLeft {
        member: member.into(),
    };
    assert_eq!(
        told,
        [
            (left(CAROL), Some(ANN.into())),
            (left(BOB), Some(BOB.into())),
            (joined(CAROL, Role::Reader), Some(CAROL.into())),
            (joined(BOB, Role::Editor), Some(BOB.into())),
        ]
    );
    // Gone members no longer read the object's news, in their mesh or by id.
    assert!(mesh_news(&bob).await.iter().all(|i| i.object.is_none()));
    let r = bob
        .get(&format!("/v1/objects/{folder}/news"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_device_is_news_of_its_users_mesh_only() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "desktop").await;
    let folder = ann.create_object("Shared", "folder").await;
    ann.add_member(&folder, &bob, BOB, "reader").await;
    let phone = server.device(ANN, "phone").await;
    // Still told by its name once revoked.
    ann.revoke(&phone).await;

    let devices = |items: Vec<NewsItem>| -> Vec<(String, Option<String>, Option<String>)> {
        items
            .into_iter()
            .filter_map(|i| match i.body {
                NewsBody::DeviceAdded { name, .. } => {
                    assert!(i.object.is_none());
                    Some((name, i.actor, i.device_name))
                }
                _ => None,
            })
            .collect()
    };
    let ann_said = |name: &str| (name.to_owned(), Some(ANN.to_owned()), Some(name.to_owned()));
    assert_eq!(
        devices(mesh_news(&ann).await),
        [ann_said("phone"), ann_said("laptop")]
    );
    assert_eq!(
        devices(mesh_news(&bob).await),
        [(
            "desktop".to_owned(),
            Some(BOB.to_owned()),
            Some("desktop".to_owned())
        )]
    );
    assert!(
        object_news(&ann, &folder)
            .await
            .iter()
            .all(|i| !matches!(i.body, NewsBody::DeviceAdded { .. }))
    );
}

#[tokio::test]
async fn pages_run_newest_first() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let folder = ann.create_object("Log", "list").await;
    for n in 0..7 {
        let r = post_news(
            &ann,
            &format!("/v1/objects/{folder}/news"),
            json!({"title": format!("entry {n}")}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let mut titles = Vec::new();
    let mut ids = Vec::new();
    let mut path = format!("/v1/objects/{folder}/news?limit=3");
    loop {
        let page = news(&ann, &path).await;
        assert!(page.items.len() <= 3);
        for item in &page.items {
            ids.push(item.id);
            if let NewsBody::Post { title, .. } = &item.body {
                titles.push(title.clone());
            }
        }
        match page.next_before {
            Some(before) => {
                assert_eq!(Some(before), ids.last().copied());
                path = format!("/v1/objects/{folder}/news?limit=3&before={before}");
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|n| format!("entry {n}")).collect();
    assert_eq!(titles, expected);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    // A page that holds the rest says so.
    let all = news(&ann, &format!("/v1/objects/{folder}/news?limit=7")).await;
    assert_eq!((all.items.len(), all.next_before), (7, None));
    // The mesh holds them too, and the laptop that joined it.
    let mesh = news(&ann, "/v1/news").await;
    assert_eq!(mesh.items.len(), 8);
    assert!(matches!(mesh.items[7].body, NewsBody::DeviceAdded { .. }));

    for query in ["limit=0", "limit=501", "limit=x", "before=-1"] {
        let r = ann.get(&format!("/v1/news?{query}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(r).await, "bad_request");
    }
}

#[tokio::test]
async fn applications_post_news_where_they_may_write() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "desktop").await;
    let carol = server.device(CAROL, "phone").await;
    let dave = server.device("dave@example.org", "tablet").await;
    let folder = ann.create_object("Project", "folder").await;
    ann.add_member(&folder, &bob, BOB, "editor").await;
    ann.add_member(&folder, &carol, CAROL, "reader").await;
    let path = format!("/v1/objects/{folder}/news");

    let r = post_news(
        &bob,
        &path,
        json!({"title": "Build passed", "text": "all green", "app": "ci"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let posted: NewsItem = r.json().await.unwrap();
    assert_eq!(
        posted.body,
        NewsBody::Post {
            title: "Build passed".into(),
            text: Some("all green".into()),
            app: Some("ci".into())
        }
    );
    assert_eq!(posted.object.unwrap().to_string(), folder);
    assert_eq!(posted.actor.as_deref(), Some(BOB));
    assert_eq!(posted.device_name.as_deref(), Some("desktop"));

    let ok = json!({"title": "Hello"});
    let r = post_news(&carol, &path, ok.clone()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_news(&dave, &path, ok.clone()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post_news(
        &ann,
        "/v1/objects/6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11/news",
        ok,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for bad in [
        json!({"title": "x".repeat(201)}),
        json!({"title": " "}),
        json!({"title": "t", "text": "x".repeat(5000)}),
        json!({"title": "t", "colour": "red"}),
        json!({"text": "no title"}),
    ] {
        let r = post_news(&ann, &path, bad.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(r).await, "bad_request");
    }
    let r = ann
        .post(&path)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Of all that, only Bob's item was recorded and announced.
    let items = object_news(&ann, &folder).await;
    assert_eq!(items.first(), Some(&posted));
    assert!(
        items
            .iter()
            .filter(|i| matches!(i.body, NewsBody::Post { .. }))
            .count()
            == 1
    );
    let announced: Vec<u64> = replayed(&ann, 0)
        .await
        .into_iter()
        .filter_map(|c| match c {
            Change::NewsChanged { item } if matches!(item.body, NewsBody::Post { .. }) => {
                Some(item.id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(announced, [posted.id]);

    // News of a mesh: any device may post it; only its user reads it.
    let r = post_news(&carol, "/v1/news", json!({"title": "Back on Monday"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let own: NewsItem = r.json().await.unwrap();
    assert_eq!(own.object, None);
    assert_eq!(mesh_news(&carol).await.first(), Some(&own));
    assert!(!mesh_news(&ann).await.contains(&own));
    let r = post_news(&carol, "/v1/news", json!({"title": ""})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn nobody_reads_news_of_objects_they_are_not_a_member_of() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "desktop").await;
    let shared = ann.create_object("Shared", "folder").await;
    let private = ann.create_object("Private", "folder").await;
    ann.add_member(&shared, &bob, BOB, "reader").await;
    post_items(&ann, &shared, json!([file("plan.txt", &ann.device_id)])).await;
    post_items(&ann, &private, json!([file("diary.txt", &ann.device_id)])).await;

    let objects_of = |items: &[NewsItem]| -> Vec<String> {
        items
            .iter()
            .filter_map(|i| i.object.map(|o| o.to_string()))
            .collect()
    };
    let ann_sees = objects_of(&mesh_news(&ann).await);
    assert!(ann_sees.contains(&private) && ann_sees.contains(&shared));
    let bob_sees = objects_of(&mesh_news(&bob).await);
    assert_eq!(bob_sees, [shared.clone(), shared.clone()]);
    let r = bob
        .get(&format!("/v1/objects/{private}/news"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let told: Vec<String> = replayed(&bob, 0)
        .await
        .into_iter()
        .filter_map(|c| match c {
            Change::NewsChanged { item } => Some(item.object.map(|o| o.to_string())),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!told.contains(&private), "{told:?}");
    assert!(told.contains(&shared));

    // A deleted object's news leaves the mesh of its members.
    let r = ann
        .delete(&format!("/v1/objects/{shared}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(objects_of(&mesh_news(&bob).await).is_empty());
}

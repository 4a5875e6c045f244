//! Apps against the real meshd (#15 item 12): an app is a principal owned
//! by a user, with a token scoped to named objects and a role on each. In
//! scope it reads and posts feed items and news (at most its role, at
//! most its owner's role now); out of scope it gets exactly what a
//! non-member gets; it never reaches a device's routes; revoked, it is
//! refused at once, also on an open event stream; and it is listed among
//! an object's members as an app.

mod common;

use common::events::Sse;
use common::{Client, Server, error_code, meshd, new_item};
use mesh_protocol::api::{AuditAction, AuditEntry, Change, StreamMessage};
use mesh_protocol::content::{ChunkRef, ContentRef, Hash};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";

/// Posts an entry whose content is one chunk, uploaded by `owner`, to
/// `object`; returns the chunk's hash.
async fn entry_with_content(owner: &Client, object: &str, text: &str) -> Hash {
    let data = text.as_bytes().to_vec();
    let chunk = Hash::of(&data);
    let r = owner
        .put(&format!("/v1/chunks/{chunk}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut item = new_item(
        &format!("urn:uuid:{}", uuid_of(text)),
        text,
        &owner.device_id,
        "2026-11-27T10:00:00Z",
    );
    item["enclosure"] = json!(ContentRef {
        hash: chunk,
        length: data.len() as u64,
        chunks: vec![ChunkRef {
            hash: chunk,
            size: data.len() as u32,
        }],
    });
    assert_eq!(
        owner.post_items(object, json!([item])).await.status(),
        StatusCode::OK
    );
    chunk
}

/// A stable UUID-shaped id for a test string.
fn uuid_of(text: &str) -> String {
    let hex = Hash::of(text.as_bytes()).to_string();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

/// The answer to `GET path` as status and body.
async fn answer(client: &Client, path: &str) -> (u16, String) {
    let r = client.get(path).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn an_app_reads_and_posts_within_its_scope_and_nothing_else() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let notes = ann.create_object("Notes", "list").await;
    let private = ann.create_object("Private", "list").await;
    let shared_chunk = entry_with_content(&ann, &notes, "in scope").await;
    let private_chunk = entry_with_content(&ann, &private, "out of scope").await;
    let bot = ann.app("SpellChecker", &[(&notes, "editor")]).await;

    // In scope: the feed, its chunks, its news; posting items and news.
    let feed: Value = bot.get_json(&format!("/v1/objects/{notes}/feed")).await;
    assert_eq!(feed["items"].as_array().unwrap().len(), 1, "{feed}");
    let r = bot
        .get(&format!("/v1/chunks/{shared_chunk}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.unwrap()[..], b"in scope");
    let item = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000001",
        "spelling fixed",
        &bot.device_id,
        "2026-11-27T11:00:00Z",
    );
    assert_eq!(
        bot.post_items(&notes, json!([item])).await.status(),
        StatusCode::OK
    );
    let feed = ann.feed(&notes).await;
    assert!(feed.to_string().contains("spelling fixed"), "{feed}");
    let r = bot
        .post(&format!("/v1/objects/{notes}/news"))
        .json(&json!({"title": "3 typos fixed", "app": "Someone Else"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let posted: Value = r.json().await.unwrap();
    assert_eq!(posted["app"], "SpellChecker", "an app posts as itself");
    assert_eq!(posted["actor"], ANN, "for its owner");
    let news: Value = bot.get_json(&format!("/v1/objects/{notes}/news")).await;
    assert!(news.to_string().contains("3 typos fixed"), "{news}");

    // Out of scope: exactly what a non-member gets, whether or not it exists.
    let unknown = "6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11";
    for path in ["/v1/objects/{}/feed", "/v1/objects/{}/news"] {
        let real = answer(&bot, &path.replace("{}", &private)).await;
        assert_eq!(real.0, 404, "{path}: {real:?}");
        assert_eq!(real, answer(&bot, &path.replace("{}", unknown)).await);
    }
    let real = answer(&bot, &format!("/v1/chunks/{private_chunk}")).await;
    assert_eq!(real.0, 404);
    let missing = Hash::of(b"no such chunk");
    assert_eq!(real, answer(&bot, &format!("/v1/chunks/{missing}")).await);
    let r = bot
        .post(&format!("/v1/objects/{private}/feed"))
        .json(&json!({"items": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Knowing a hash of content outside its scope does not let it post it.
    let mut stolen = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000002",
        "stolen",
        &bot.device_id,
        "2026-11-27T11:00:00Z",
    );
    stolen["enclosure"] = json!(ContentRef {
        hash: private_chunk,
        length: 12,
        chunks: vec![ChunkRef {
            hash: private_chunk,
            size: 12,
        }],
    });
    let r = bot.post_items(&notes, json!([stolen])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "missing_chunks");

    // A device's routes are out of its reach, in scope or not.
    for (method, path) in [
        ("GET", "/v1/objects".to_owned()),
        ("POST", "/v1/objects".to_owned()),
        ("GET", format!("/v1/objects/{notes}")),
        ("GET", format!("/v1/objects/{notes}/members")),
        ("GET", format!("/v1/objects/{notes}/awareness")),
        ("GET", "/v1/devices".to_owned()),
        ("GET", "/v1/audit".to_owned()),
        ("GET", "/v1/apps".to_owned()),
        ("GET", "/v1/news".to_owned()),
        ("POST", "/v1/presence".to_owned()),
        ("POST", "/v1/chunks/missing".to_owned()),
        ("PUT", format!("/v1/chunks/{}", Hash::of(b"x"))),
    ] {
        let r = bot
            .request(method.parse().unwrap(), &path)
            .header("content-type", "application/json")
            .body(r#"{"name":"x","kind":"list","hashes":[]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("app's token"),
            "{body}"
        );
    }

    // Listed among the object's members as an app, with its owner.
    let members: Vec<Value> = ann.get_json(&format!("/v1/objects/{notes}/members")).await;
    let app = members
        .iter()
        .find(|m| m["kind"] == "app")
        .unwrap_or_else(|| panic!("no app among {members:?}"));
    assert_eq!(app["app"], json!(bot.device_id));
    assert_eq!(app["name"], "SpellChecker");
    assert_eq!(app["email"], ANN);
    assert_eq!(app["role"], "editor");
    assert!(members.iter().any(|m| m["kind"] == "user"));
    let members: Vec<Value> = ann
        .get_json(&format!("/v1/objects/{private}/members"))
        .await;
    assert!(members.iter().all(|m| m["kind"] != "app"), "{members:?}");

    // Its owner lists it; the token is not shown again.
    let apps: Vec<Value> = ann.get_json("/v1/apps").await;
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["name"], "SpellChecker");
    assert_eq!(
        apps[0]["objects"],
        json!([{"object": notes, "role": "editor"}])
    );
    assert!(!apps[0].to_string().contains("mesh_app_"));
}

#[tokio::test]
async fn a_reader_app_cannot_post() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let notes = ann.create_object("Notes", "list").await;
    let reader = ann.app("Indexer", &[(&notes, "reader")]).await;
    assert_eq!(
        status(reader.get(&format!("/v1/objects/{notes}/feed"))).await,
        200
    );
    let item = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000003",
        "nope",
        &reader.device_id,
        "2026-11-27T11:00:00Z",
    );
    let r = reader.post_items(&notes, json!([item])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = reader
        .post(&format!("/v1/objects/{notes}/news"))
        .json(&json!({"title": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!ann.feed(&notes).await.to_string().contains("nope"));
}

#[tokio::test]
async fn an_owner_grants_at_most_their_own_role_and_bad_requests_change_nothing() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "laptop").await;
    let notes = ann.create_object("Notes", "list").await;
    let annes = ann.create_object("Ann's own", "list").await;
    ann.add_member(&notes, &bob, BOB, "editor").await;

    let r = bob.add_app("Greedy", &[(&notes, "owner")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = bob.add_app("Nosy", &[(&annes, "reader")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let unknown = bob
        .add_app(
            "Nosy",
            &[("6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11", "reader")],
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    for (name, grants) in [
        ("", vec![(notes.as_str(), "reader")]),
        ("bad\nname", vec![(notes.as_str(), "reader")]),
        ("No objects", vec![]),
        (
            "Twice",
            vec![(notes.as_str(), "reader"), (notes.as_str(), "editor")],
        ),
    ] {
        let r = bob.add_app(name, &grants).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name:?}");
    }
    let r = bob
        .post("/v1/apps")
        .json(&json!({"name": "x", "objects": [{"object": notes, "role": "boss"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let apps: Vec<Value> = bob.get_json("/v1/apps").await;
    assert!(apps.is_empty(), "{apps:?}");

    // What an editor may grant, they may.
    let bot = bob.app("Helper", &[(&notes, "editor")]).await;
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{notes}/feed"))).await,
        200
    );
    // Someone else's app is not theirs to revoke.
    let r = ann
        .delete(&format!("/v1/apps/{}", bot.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{notes}/feed"))).await,
        200
    );
}

#[tokio::test]
async fn a_revoked_app_is_refused_at_once_also_on_an_open_stream() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let notes = ann.create_object("Notes", "list").await;
    let other = ann.create_object("Other", "list").await;
    let bot = ann.app("SpellChecker", &[(&notes, "editor")]).await;
    let mut stream = Sse::open(&bot, "", None).await;

    // It is told of its objects' changes, not of the rest of its owner's mesh.
    let item = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000004",
        "other",
        &ann.device_id,
        "2026-11-27T11:00:00Z",
    );
    ann.post_items(&other, json!([item])).await;
    server.device(ANN, "phone").await;
    let item = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000005",
        "watched",
        &ann.device_id,
        "2026-11-27T11:00:00Z",
    );
    ann.post_items(&notes, json!([item])).await;
    let about_notes = |c: &Change| matches!(c, Change::EntryChanged { object, .. } if object.to_string() == notes);
    let mut told = Vec::new();
    while !told.iter().any(about_notes) {
        match stream.next_within(Duration::from_secs(10)).await {
            Some((_, StreamMessage::Event(e))) => told.push(e.change),
            other => panic!("the watched entry never came: {other:?} after {told:?}"),
        }
    }

    ann.revoke_app(&bot).await;
    // The stream ends, its revocation the last thing it is told; from the
    // start, it was told of nothing but its object and itself.
    while let Some((_, message)) = stream.next_within(Duration::from_secs(10)).await {
        match message {
            StreamMessage::Event(e) => told.push(e.change),
            StreamMessage::Resync(r) => panic!("unexpected resync {r:?}"),
        }
    }
    assert!(
        matches!(told.last(), Some(Change::AppRevoked { app }) if app.to_string() == bot.device_id),
        "{told:?}"
    );
    assert!(
        told.iter().all(|c| matches!(c, Change::AppRevoked { .. })
            || c.topic().1.is_some_and(|o| o.to_string() == notes)),
        "{told:?}"
    );
    for path in [
        format!("/v1/objects/{notes}/feed"),
        format!("/v1/objects/{notes}/news"),
        "/v1/events".to_owned(),
        "/v1/objects".to_owned(),
    ] {
        assert_eq!(status(bot.get(&path)).await, 401, "{path}");
    }
    let r = ann
        .delete(&format!("/v1/apps/{}", bot.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "revoked once");
    let apps: Vec<Value> = ann.get_json("/v1/apps").await;
    assert!(apps.is_empty());
    let members = ann.members(&notes).await;
    assert_eq!(members, vec![(ANN.to_owned(), "owner".to_owned())]);

    // Both went to the owner's audit log.
    let log: Vec<AuditEntry> = ann.get_json("/v1/audit").await;
    let apps: Vec<(AuditAction, &str)> = log
        .iter()
        .filter(|e| matches!(e.action, AuditAction::AppAdded | AuditAction::AppRevoked))
        .map(|e| (e.action, e.subject.as_str()))
        .collect();
    assert_eq!(
        apps,
        vec![
            (AuditAction::AppRevoked, "SpellChecker"),
            (AuditAction::AppAdded, "SpellChecker")
        ]
    );
    assert!(log.iter().all(|e| e.by.as_deref() == Some(ANN)));
}

#[tokio::test]
async fn an_owner_demoted_or_removed_takes_the_apps_access_down_with_them() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "laptop").await;
    let notes = ann.create_object("Notes", "list").await;
    ann.add_member(&notes, &bob, BOB, "editor").await;
    let bot = bob.app("Helper", &[(&notes, "editor")]).await;
    let mut stream = Sse::open(&bot, "", None).await;
    let post = |n: u32| {
        let bot = bot.clone();
        let notes = notes.clone();
        async move {
            let item = new_item(
                &format!("urn:uuid:0b07c0de-0000-4000-8000-00000000010{n}"),
                "by the bot",
                &bot.device_id,
                "2026-11-27T11:00:00Z",
            );
            bot.post_items(&notes, json!([item])).await.status()
        }
    };
    assert_eq!(post(1).await, StatusCode::OK);

    // Bob made a reader: so is his app.
    let r = ann
        .patch(&format!("/v1/objects/{notes}/members/{}", bob.user_id))
        .json(&json!({"role": "reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(post(2).await, StatusCode::FORBIDDEN);
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{notes}/feed"))).await,
        200
    );
    let members: Vec<Value> = ann.get_json(&format!("/v1/objects/{notes}/members")).await;
    let app = members.iter().find(|m| m["kind"] == "app").unwrap();
    assert_eq!(app["role"], "reader", "what it may do now");

    // Bob removed: the app loses the object, like a non-member.
    let r = ann
        .delete(&format!("/v1/objects/{notes}/members/{}", bob.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let unknown = "6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11";
    let real = answer(&bot, &format!("/v1/objects/{notes}/feed")).await;
    assert_eq!(real.0, 404);
    assert_eq!(
        real,
        answer(&bot, &format!("/v1/objects/{unknown}/feed")).await
    );
    assert_eq!(post(3).await, StatusCode::NOT_FOUND);
    let members: Vec<Value> = ann.get_json(&format!("/v1/objects/{notes}/members")).await;
    assert!(members.iter().all(|m| m["kind"] != "app"), "{members:?}");
    // Its stream is told nothing of the object any more.
    let _ = stream.changes_until_quiet(Duration::from_millis(300)).await;
    let item = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000199",
        "after",
        &ann.device_id,
        "2026-11-27T12:00:00Z",
    );
    ann.post_items(&notes, json!([item])).await;
    let later = stream.changes_until_quiet(Duration::from_millis(800)).await;
    assert!(later.is_empty(), "{later:?}");
    // A stream opened now names the object as unknown.
    let r = bot
        .get(&format!("/v1/events?subscribe=feed:{notes}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn meshd_app_adds_lists_and_revokes_apps() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let notes = ann.create_object("Notes", "list").await;
    let run = |args: &[&str]| {
        meshd()
            .arg("app")
            .args(args)
            .arg("--data")
            .arg(&server.data)
            .output()
            .unwrap()
    };
    let grant = format!("{notes}:reader");
    let out = run(&["add", "Indexer", "--owner", ANN, "--object", &grant]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = said
        .lines()
        .find_map(|l| l.strip_prefix("token (shown only now): "))
        .unwrap_or_else(|| panic!("no token in {said}"))
        .to_owned();
    let bot = Client {
        token: Some(token),
        ..server.anonymous()
    };
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{notes}/feed"))).await,
        200
    );

    let out = run(&["list", "--json"]);
    assert!(out.status.success());
    let apps: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["name"], "Indexer");
    assert_eq!(apps[0]["owner_email"], ANN);
    let id = apps[0]["id"].as_str().unwrap().to_owned();
    let out = run(&["list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&id) && listed.contains(&grant), "{listed}");

    // Refused input says why and changes nothing.
    for (args, why) in [
        (
            vec![
                "add",
                "X",
                "--owner",
                "nobody@example.org",
                "--object",
                &grant,
            ],
            "there is no user nobody@example.org",
        ),
        (
            vec!["add", "X", "--owner", ANN, "--object", "nonsense"],
            "is not OBJECT-ID:ROLE",
        ),
        (
            vec![
                "add",
                "X",
                "--owner",
                ANN,
                "--object",
                "6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11:reader",
            ],
            "not a member of such an object",
        ),
        (vec!["revoke", "not-an-id"], "is not an app id"),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let out = run(&["list", "--json"]);
    let apps: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(apps.len(), 1);

    let out = run(&["revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{notes}/feed"))).await,
        401
    );
    let out = run(&["revoke", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no live app"));
    let log: Vec<AuditEntry> = ann.get_json("/v1/audit").await;
    assert!(
        log.iter()
            .any(|e| e.action == AuditAction::AppRevoked && e.by.is_none()),
        "the administrator revoked it: {log:?}"
    );
}

#[tokio::test]
async fn a_bot_is_invited_like_a_person_and_its_owner_accepts() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "laptop").await;
    let carl = server.device("carl@example.org", "laptop").await;
    let team = ann.create_object("Team", "list").await;
    ann.add_member(&team, &carl, "carl@example.org", "reader")
        .await;
    let bobs = bob.create_object("Bob's", "list").await;
    let bot = bob.app("SpellChecker", &[(&bobs, "editor")]).await;
    let invite = |by: &Client, app: &str, role: &str| {
        by.post(&format!("/v1/objects/{team}/apps"))
            .json(&json!({"app": app, "role": role}))
            .send()
    };

    // Only an owner invites, an app that exists and is live.
    assert_eq!(
        invite(&carl, &bot.device_id, "reader")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        invite(&bob, &bot.device_id, "reader")
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let unknown = "6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11";
    assert_eq!(
        invite(&ann, unknown, "reader").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = invite(&ann, &bot.device_id, "editor").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let invitation: Value = r.json().await.unwrap();
    assert_eq!(invitation["email"], BOB, "it goes to the app's owner");
    assert_eq!(invitation["app"], json!(bot.device_id));
    let id = invitation["id"].as_str().unwrap().to_owned();
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{team}/feed"))).await,
        404,
        "not before it is accepted"
    );
    let mine: Vec<Value> = bob.get_json("/v1/invitations").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["app"], json!(bot.device_id));
    // Not for anyone else to accept.
    assert_eq!(
        status(carl.post(&format!("/v1/invitations/{id}/accept"))).await,
        404
    );

    let r = bob
        .post(&format!("/v1/invitations/{id}/accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let object: Value = r.json().await.unwrap();
    assert_eq!(object["role"], "editor", "the object as the app sees it");
    let item = new_item(
        "urn:uuid:0b07c0de-0000-4000-8000-000000000201",
        "checked",
        &bot.device_id,
        "2026-11-27T11:00:00Z",
    );
    assert_eq!(
        bot.post_items(&team, json!([item])).await.status(),
        StatusCode::OK
    );
    // The app is a member; its owner is not.
    assert_eq!(
        status(bob.get(&format!("/v1/objects/{team}/feed"))).await,
        404
    );
    let members: Vec<Value> = ann.get_json(&format!("/v1/objects/{team}/members")).await;
    let app = members.iter().find(|m| m["kind"] == "app").unwrap();
    assert_eq!(
        (&app["email"], &app["role"]),
        (&json!(BOB), &json!("editor"))
    );
    assert_eq!(members.len(), 3, "{members:?}");

    // An owner takes it off: gone at once, like a removed member.
    let r = ann
        .delete(&format!("/v1/objects/{team}/apps/{}", bot.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let real = answer(&bot, &format!("/v1/objects/{team}/feed")).await;
    assert_eq!(
        real,
        answer(&bot, &format!("/v1/objects/{unknown}/feed")).await
    );
    let r = ann
        .delete(&format!("/v1/objects/{team}/apps/{}", bot.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Granted by an owner who is removed since: the app loses it with them.
    let r = ann
        .patch(&format!("/v1/objects/{team}/members/{}", carl.user_id))
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = invite(&carl, &bot.device_id, "reader").await.unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        status(bob.post(&format!("/v1/invitations/{id}/accept"))).await,
        200
    );
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{team}/feed"))).await,
        200
    );
    let r = ann
        .delete(&format!("/v1/objects/{team}/members/{}", carl.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{team}/feed"))).await,
        404
    );

    // An invitation of an app revoked since cannot be accepted.
    let r = invite(&ann, &bot.device_id, "reader").await.unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.revoke_app(&bot).await;
    let r = bob
        .post(&format!("/v1/invitations/{id}/accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let members: Vec<Value> = ann.get_json(&format!("/v1/objects/{team}/members")).await;
    assert!(members.iter().all(|m| m["kind"] != "app"), "{members:?}");
    assert_eq!(
        status(bot.get(&format!("/v1/objects/{team}/feed"))).await,
        401
    );
}

//! Storage quotas against the real meshd: usage counts each distinct chunk
//! once per owner, members' writes count against the owner, a write
//! beyond the quota is refused with `507` and changes nothing, concurrent
//! writes cannot both pass the limit, usage falls when content is removed
//! and collected, and `meshd user quota` / `user list` set and show it.

mod common;

use common::{Client, Server, error_code, meshd};
use mesh_protocol::chunk_batch::{CONTENT_TYPE, encode};
use mesh_protocol::content::{ChunkRef, ContentRef, Hash};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";

async fn upload(client: &Client, data: &[u8]) {
    let r = client
        .put(&format!("/v1/chunks/{}", Hash::of(data)))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// A file entry `id` whose content is `chunks`, as device `by` makes it.
fn file_item(id: &str, by: &str, chunks: &[&[u8]]) -> Value {
    let whole: Vec<u8> = chunks.concat();
    let content = ContentRef {
        hash: Hash::of(&whole),
        length: whole.len() as u64,
        chunks: chunks
            .iter()
            .map(|c| ChunkRef {
                hash: Hash::of(c),
                size: c.len() as u32,
            })
            .collect(),
    };
    json!({
        "sync": {"id": id, "updates": 1, "history": [{"sequence": 1, "when": "2026-11-27T10:00:00Z", "by": by}]},
        "title": {"type": "text", "value": "file"},
        "data": {"name": id.trim_start_matches("urn:uuid:"), "type": "file", "mode": 420, "mtime": "2026-11-27T10:00:00Z"},
        "enclosure": content,
    })
}

/// `n` bytes no other call makes (`seed` tells them apart).
fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed ^ (i % 251) as u8).collect()
}

async fn usage(client: &Client) -> (u64, Option<u64>) {
    let u: Value = client.get_json("/v1/account/usage").await;
    (u["used"].as_u64().unwrap(), u["quota"].as_u64())
}

/// Runs `meshd user ARGS --data DATA`: its stdout, or its stderr.
fn user_command(server: &Server, args: &[&str]) -> Result<String, String> {
    let out = meshd()
        .arg("user")
        .args(args)
        .arg("--data")
        .arg(&server.data)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8(out.stderr).unwrap())
    }
}

fn entry_ids(feed: &Value) -> Vec<String> {
    let mut ids: Vec<String> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sync"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_write_beyond_the_quota_is_refused_with_507_and_changes_nothing() {
    let server = Server::start();
    let ann = server.device(ANN, "laptop").await;
    assert_eq!(usage(&ann).await, (0, None), "unlimited by default");
    let said = user_command(&server, &["quota", ANN, "10K"]).unwrap();
    assert!(said.contains("10.0 KiB"), "{said}");
    let folder = ann.create_object("Files", "folder").await;
    let first = bytes(1, 6000);
    let second = bytes(2, 6000);
    upload(&ann, &first).await;
    upload(&ann, &second).await;
    let r = ann
        .post_items(
            &folder,
            json!([file_item("urn:uuid:a", &ann.device_id, &[&first])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(usage(&ann).await, (6000, Some(10240)));

    // 12,000 bytes would be beyond 10 KiB: refused, with a sentence.
    let r = ann
        .post_items(
            &folder,
            json!([
                file_item("urn:uuid:b", &ann.device_id, &[&second]),
                file_item("urn:uuid:c", &ann.device_id, &[&first]),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "over_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("quota of 10240 bytes"), "{message}");
    // Nothing of the post is stored, not even the item within the quota.
    assert_eq!(entry_ids(&ann.feed(&folder).await), ["urn:uuid:a"]);
    assert_eq!(usage(&ann).await.0, 6000);

    // An upload that would not fit is refused before anything is stored,
    // for her own use and for her folder alike; one she stores already
    // passes.
    let third = bytes(6, 6000);
    for path in [
        format!("/v1/chunks/{}", Hash::of(&third)),
        format!("/v1/chunks/{}?object={folder}", Hash::of(&third)),
    ] {
        let r = ann.put(&path).body(third.clone()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE, "{path}");
        assert_eq!(error_code(r).await, "over_quota");
    }
    let r = ann
        .get(&format!("/v1/chunks/{}", Hash::of(&third)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "nothing stored");
    upload(&ann, &first).await;
    assert_eq!(usage(&ann).await.0, 6000);
    // So is a batch that would not fit, with nothing of it stored, not
    // even the chunk that would fit alone.
    let (small, fourth) = (bytes(7, 1000), bytes(8, 6000));
    let batch = encode([
        (&Hash::of(&small), &small[..]),
        (&Hash::of(&fourth), &fourth[..]),
    ]);
    let r = ann
        .post(&format!("/v1/chunks?object={folder}"))
        .header("content-type", CONTENT_TYPE)
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(error_code(r).await, "over_quota");
    for data in [&small, &fourth] {
        let r = ann
            .request(
                reqwest::Method::HEAD,
                &format!("/v1/chunks/{}", Hash::of(data)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "nothing of the batch stored"
        );
    }

    // The same bytes again add nothing, so they pass.
    let r = ann
        .post_items(
            &folder,
            json!([file_item("urn:uuid:c", &ann.device_id, &[&first, &first])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(usage(&ann).await.0, 6000);

    // A removal always passes, even over a lowered quota.
    user_command(&server, &["quota", ANN, "1K"]).unwrap();
    let mut gone = file_item("urn:uuid:c", &ann.device_id, &[&first, &first]);
    gone = common::updated(&gone, "file", &ann.device_id, "2026-11-27T10:01:00Z");
    gone["sync"]["deleted"] = json!(true);
    let r = ann.post_items(&folder, json!([gone])).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Lifted: the write goes through.
    user_command(&server, &["quota", ANN, "none"]).unwrap();
    let r = ann
        .post_items(
            &folder,
            json!([file_item("urn:uuid:b", &ann.device_id, &[&second])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(usage(&ann).await, (12000, None));
}

#[tokio::test]
async fn usage_counts_each_chunk_once_members_count_against_the_owner_and_falls_after_collection() {
    let server = Server::start_with(&["--chunk-grace", "1", "--gc-interval", "1"]);
    let ann = server.device(ANN, "laptop").await;
    let bob = server.device(BOB, "desktop").await;
    let photos = ann.create_object("Photos", "folder").await;
    let notes = ann.create_object("Notes", "folder").await;
    ann.add_member(&photos, &bob, BOB, "editor").await;
    let shared = bytes(3, 5000);
    let own = bytes(4, 3000);
    let bobs = bytes(5, 2000);
    upload(&ann, &shared).await;
    upload(&ann, &own).await;
    upload(&bob, &bobs).await;
    // One chunk in two files of one folder, in two folders, twice in a file.
    let doomed = file_item("urn:uuid:doomed", &ann.device_id, &[&shared, &own]);
    let r = ann
        .post_items(
            &photos,
            json!([
                doomed,
                file_item("urn:uuid:copy", &ann.device_id, &[&shared, &shared]),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = ann
        .post_items(
            &notes,
            json!([file_item("urn:uuid:note", &ann.device_id, &[&shared])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(usage(&ann).await.0, 8000);
    // Bob's file in Ann's folder is Ann's storage, not his.
    let r = bob
        .post_items(
            &photos,
            json!([file_item("urn:uuid:bobs", &bob.device_id, &[&bobs])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(usage(&ann).await.0, 10000);
    assert_eq!(usage(&bob).await.0, 0);
    let listed: Value =
        serde_json::from_str(&user_command(&server, &["list", "--json"]).unwrap()).unwrap();
    let ann_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == ANN)
        .unwrap();
    assert_eq!(ann_row["used"], 10000);
    assert_eq!(ann_row["quota"], Value::Null);
    assert_eq!(ann_row["quota_from"], "default");

    // The only file with `own` is deleted: its bytes stop counting, and
    // the collector frees them.
    let mut gone = common::updated(&doomed, "file", &ann.device_id, "2026-11-27T10:01:00Z");
    gone["sync"]["deleted"] = json!(true);
    assert_eq!(
        ann.post_items(&photos, json!([gone])).await.status(),
        StatusCode::OK
    );
    assert_eq!(usage(&ann).await.0, 7000);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r: Value = ann
            .post("/v1/chunks/missing")
            .json(&json!({"hashes": [Hash::of(&own)]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["missing"].as_array().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never collected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(usage(&ann).await.0, 7000);
    // Deleting a folder takes what only it referred to off the usage.
    let r = ann
        .delete(&format!("/v1/objects/{photos}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(usage(&ann).await.0, 5000);
}

#[tokio::test]
async fn concurrent_writes_cannot_both_pass_the_limit() {
    let server = Server::start_with(&["--default-quota", "10K"]);
    let ann = server.device(ANN, "laptop").await;
    assert_eq!(usage(&ann).await, (0, Some(10240)));
    let folder = ann.create_object("Files", "folder").await;
    // Twenty writes of 1 KiB each, all at once: ten fit.
    let chunks: Vec<Vec<u8>> = (0..20).map(|i| bytes(100 + i, 1024)).collect();
    for c in &chunks {
        upload(&ann, c).await;
    }
    let posts = chunks.iter().enumerate().map(|(i, c)| {
        let ann = ann.clone();
        let folder = folder.clone();
        let item = file_item(&format!("urn:uuid:f{i}"), &ann.device_id, &[c]);
        tokio::spawn(async move { ann.post_items(&folder, json!([item])).await.status() })
    });
    let mut passed = 0;
    for post in futures_util::future::join_all(posts).await {
        match post.unwrap() {
            StatusCode::OK => passed += 1,
            StatusCode::INSUFFICIENT_STORAGE => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(passed, 10);
    assert_eq!(usage(&ann).await.0, 10240);
    assert_eq!(entry_ids(&ann.feed(&folder).await).len(), 10);

    // A member's write is refused for the owner's quota, not his.
    let bob = server.device(BOB, "desktop").await;
    ann.add_member(&folder, &bob, BOB, "editor").await;
    user_command(&server, &["quota", BOB, "none"]).unwrap();
    let extra = bytes(7, 100);
    let r = bob
        .put(&format!("/v1/chunks/{}?object={folder}", Hash::of(&extra)))
        .body(extra.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::INSUFFICIENT_STORAGE,
        "for Ann's folder"
    );
    upload(&bob, &extra).await;
    let r = bob
        .post_items(
            &folder,
            json!([file_item("urn:uuid:extra", &bob.device_id, &[&extra])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(error_code(r).await, "over_quota");
}

#[test]
fn quota_commands_refuse_bad_input_and_change_nothing() {
    let server = Server::start();
    server.add_user(ANN, common::PASSWORD);
    let err = user_command(&server, &["quota", ANN, "lots"]).unwrap_err();
    assert!(err.contains("is not a size"), "{err}");
    let err = user_command(&server, &["quota", "nobody@example.org", "5G"]).unwrap_err();
    assert!(err.contains("there is no user nobody@example.org"), "{err}");
    let listed: Value =
        serde_json::from_str(&user_command(&server, &["list", "--json"]).unwrap()).unwrap();
    assert_eq!(listed[0]["quota"], Value::Null);
    user_command(&server, &["quota", ANN, "5G"]).unwrap();
    let text = user_command(&server, &["list"]).unwrap();
    assert!(text.contains("quota 5.0 GiB (user)"), "{text}");
    let text = user_command(&server, &["list", "--default-quota", "1G"]).unwrap();
    assert!(text.contains("quota 5.0 GiB (user)"), "{text}");
    user_command(&server, &["quota", ANN, "default"]).unwrap();
    let text = user_command(&server, &["list", "--default-quota", "1G"]).unwrap();
    assert!(text.contains("quota 1.0 GiB (default)"), "{text}");
}

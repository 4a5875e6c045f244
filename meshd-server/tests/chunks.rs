//! The chunk store against the real meshd: verified uploads, ranges, the
//! per-user scope, references from file entries, and collection.

mod common;

use common::{Client, Server, error_code};
use mesh_protocol::content::{ChunkRef, ContentRef, Hash};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use serde_json::{Value, json};
use std::time::Duration;

async fn upload(client: &Client, data: &[u8]) -> Hash {
    let hash = Hash::of(data);
    let r = client
        .put(&format!("/v1/chunks/{hash}"))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    hash
}

async fn missing(client: &Client, hashes: &[Hash]) -> Vec<Hash> {
    let r: Value = client
        .post("/v1/chunks/missing")
        .json(&json!({ "hashes": hashes }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(r["missing"].clone()).unwrap()
}

/// A file entry whose content is `chunks`.
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
        "data": {"name": "file.bin", "type": "file", "mode": 420, "mtime": "2026-11-27T10:00:00Z"},
        "enclosure": content,
    })
}

#[tokio::test]
async fn verified_slices_prove_their_bytes_and_bad_questions_get_a_clear_4xx() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let hash = upload(&ann, &data).await;
    let r = ann
        .get(&format!("/v1/chunks/{hash}?slice=1000000,4096"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-mesh-slice");
    let encoded = r.bytes().await.unwrap();
    assert!(
        encoded.len() < 2 * 4096,
        "{} bytes for 4 KiB",
        encoded.len()
    );
    let got =
        mesh_protocol::slice::verify(&hash, data.len() as u64, 1_000_000, 4096, &encoded).unwrap();
    assert_eq!(got, &data[1_000_000..1_004_096]);
    // The last bytes: the slice is clipped to the chunk.
    let r = ann
        .get(&format!("/v1/chunks/{hash}?slice=2999990,4096"))
        .send()
        .await
        .unwrap();
    let encoded = r.bytes().await.unwrap();
    let got =
        mesh_protocol::slice::verify(&hash, data.len() as u64, 2_999_990, 4096, &encoded).unwrap();
    assert_eq!(got, &data[2_999_990..]);

    let status = |path: String| {
        let ann = &ann;
        async move { ann.get(&path).send().await.unwrap().status() }
    };
    let unknown = Hash::of(b"never uploaded");
    assert_eq!(
        status(format!("/v1/chunks/{unknown}?slice=0,10")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("/v1/chunks/{hash}?slice=3000000,10")).await,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    for bad in ["10", "10,0", "a,1", "-1,5", ""] {
        assert_eq!(
            status(format!("/v1/chunks/{hash}?slice={bad}")).await,
            StatusCode::BAD_REQUEST,
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn upload_download_ranges_and_verification() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let hash = upload(&ann, &data).await;
    // Uploading again is fine and stores it once.
    upload(&ann, &data).await;

    let r = ann.get(&format!("/v1/chunks/{hash}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()[CONTENT_RANGE], "bytes 1000-1999/100000");
    assert_eq!(r.bytes().await.unwrap(), &data[1000..2000]);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[data.len() - 10..]);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = ann
        .request(reqwest::Method::HEAD, &format!("/v1/chunks/{hash}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_LENGTH], "100000");

    // A body that does not match its hash is refused and nothing is stored.
    let other = b"some other bytes".to_vec();
    let claimed = Hash::of(b"what it claims to be");
    let r = ann
        .put(&format!("/v1/chunks/{claimed}"))
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "bad_request");
    assert_eq!(missing(&ann, &[claimed]).await, vec![claimed]);
    let r = ann
        .request(reqwest::Method::HEAD, &format!("/v1/chunks/{claimed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Malformed hashes, empty and oversize chunks.
    let r = ann.put("/v1/chunks/xyz").body("x").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = ann
        .put(&format!("/v1/chunks/{}", Hash::of(b"")))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let big = vec![1u8; mesh_protocol::content::MAX_CHUNK_SIZE as usize + 1];
    let r = ann
        .put(&format!("/v1/chunks/{}", Hash::of(&big)))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = ann
        .post("/v1/chunks/missing")
        .json(&json!({"hashes": ["nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn chunks_are_scoped_to_those_who_may_read_them() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let ann_phone = server.device("ann@example.org", "phone").await;
    let bob = server.device("bob@example.org", "desk").await;
    let secret = b"ann's secret content".as_slice();
    let hash = upload(&ann, secret).await;

    // Ann's other device sees it; Bob cannot read or probe it.
    assert!(missing(&ann_phone, &[hash]).await.is_empty());
    assert_eq!(missing(&bob, &[hash]).await, vec![hash]);
    let r = bob.get(&format!("/v1/chunks/{hash}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let unknown = Hash::of(b"never stored");
    let r = bob
        .get(&format!("/v1/chunks/{unknown}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Knowing the hash does not let Bob refer to it from his own entries.
    let his = bob.create_object("Bob's files", "folder").await;
    let r = bob
        .post_items(
            &his,
            json!([file_item("urn:uuid:steal", &bob.device_id, &[secret])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "missing_chunks");
    assert!(bob.feed(&his).await["items"].as_array().unwrap().is_empty());
    assert_eq!(
        bob.get(&format!("/v1/chunks/{hash}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Having the bytes, Bob may upload them himself (stored once) and use them.
    upload(&bob, secret).await;
    let r = bob
        .post_items(
            &his,
            json!([file_item("urn:uuid:his", &bob.device_id, &[secret])]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A declared size that differs from the stored chunk is refused.
    let mut wrong = file_item("urn:uuid:wrong", &ann.device_id, &[secret]);
    wrong["enclosure"]["chunks"][0]["size"] = json!(3);
    wrong["enclosure"]["length"] = json!(3);
    let folder = ann.create_object("Ann's files", "folder").await;
    assert_eq!(
        ann.post_items(&folder, json!([wrong])).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Sizes that do not add up to the length are refused too.
    let mut bad = file_item("urn:uuid:bad", &ann.device_id, &[secret]);
    bad["enclosure"]["length"] = json!(1);
    assert_eq!(
        ann.post_items(&folder, json!([bad])).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert!(
        ann.feed(&folder).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn unreferenced_chunks_are_collected_after_the_grace_period() {
    let server = Server::start_with(&["--chunk-grace", "1", "--gc-interval", "1"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let folder = ann.create_object("Files", "folder").await;
    let kept = b"content a live file refers to".as_slice();
    let dropped = b"content of a file that gets deleted".as_slice();
    let orphan = b"uploaded but never used".as_slice();
    for c in [kept, dropped, orphan] {
        upload(&ann, c).await;
    }
    let live = file_item("urn:uuid:live", &ann.device_id, &[kept]);
    let doomed = file_item("urn:uuid:doomed", &ann.device_id, &[dropped]);
    assert_eq!(
        ann.post_items(&folder, json!([live, doomed.clone()]))
            .await
            .status(),
        StatusCode::OK
    );
    let mut tombstone = common::updated(&doomed, "file", &ann.device_id, "2026-11-27T10:01:00Z");
    tombstone["sync"]["deleted"] = json!(true);
    assert_eq!(
        ann.post_items(&folder, json!([tombstone])).await.status(),
        StatusCode::OK
    );

    let hashes = [Hash::of(kept), Hash::of(dropped), Hash::of(orphan)];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let gone = missing(&ann, &hashes).await;
        if gone.len() == 2 {
            assert_eq!(gone, vec![hashes[1], hashes[2]]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not collected: {gone:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = ann
        .get(&format!("/v1/chunks/{}", hashes[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), kept);
    // The bytes of collected chunks are gone from the disk, too.
    let on_disk: usize = walk(&server.data.join("chunks"));
    assert_eq!(on_disk, 1);
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

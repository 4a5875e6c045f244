//! The chunk store against the real meshd: verified uploads, ranges, the
//! per-user scope, references from file entries, and collection.

mod common;

use common::{Client, Server, error_code};
use mesh_protocol::chunk_batch::{CONTENT_TYPE, encode};
use mesh_protocol::content::{ChunkRef, ContentRef, Hash, MAX_CHUNK_SIZE};
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

    // A small chunk (kept in the database) slices the same way.
    let small = &data[..50_000];
    let small_hash = upload(&ann, small).await;
    let r = ann
        .get(&format!("/v1/chunks/{small_hash}?slice=10000,4096"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let encoded = r.bytes().await.unwrap();
    let got = mesh_protocol::slice::verify(&small_hash, 50_000, 10_000, 4096, &encoded).unwrap();
    assert_eq!(got, &small[10_000..14_096]);

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

/// The file meshd keeps `hash`'s slice tree in, once it is there.
async fn stored_tree(server: &Server, hash: &Hash) -> std::path::PathBuf {
    let hex = hash.to_hex();
    let path = server
        .data
        .join("slice-trees")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(&hex);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no slice tree stored for {hash}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    path
}

#[tokio::test]
async fn slice_trees_are_stored_at_upload_survive_a_restart_and_a_bad_one_is_computed_again() {
    let mut server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 13 % 241) as u8).collect();
    let hash = upload(&ann, &data).await;
    // Computed after the upload, not on the first slice asked.
    let tree = stored_tree(&server, &hash).await;
    assert_eq!(
        std::fs::read(&tree).unwrap(),
        mesh_protocol::slice::outboard(&data)
    );
    let slice_ok = |ann: Client, at: u64| {
        let data = &data;
        async move {
            let r = ann
                .get(&format!("/v1/chunks/{hash}?slice={at},4096"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let encoded = r.bytes().await.unwrap();
            let got =
                mesh_protocol::slice::verify(&hash, data.len() as u64, at, 4096, &encoded).unwrap();
            assert_eq!(got, &data[at as usize..at as usize + 4096]);
        }
    };
    slice_ok(ann.clone(), 1_500_000).await;
    // After a restart the stored tree serves; a damaged one (cut short)
    // is computed again and stored whole.
    server.restart();
    // A new connection: the old one went with the old process.
    let fresh = || Client {
        http: reqwest::Client::new(),
        ..ann.clone()
    };
    slice_ok(fresh(), 700_000).await;
    std::fs::write(&tree, b"not a tree").unwrap();
    server.restart();
    slice_ok(fresh(), 12_345).await;
    assert_eq!(
        std::fs::read(&tree).unwrap(),
        mesh_protocol::slice::outboard(&data)
    );
}

/// Whole reads, ranges and HEAD of a chunk `ann` uploads.
async fn reads_back(ann: &Client, data: &[u8]) {
    let hash = upload(ann, data).await;
    // Uploading again is fine and stores it once.
    upload(ann, data).await;
    let len = data.len();

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
    assert_eq!(r.headers()[CONTENT_RANGE], format!("bytes 1000-1999/{len}"));
    assert_eq!(r.bytes().await.unwrap(), &data[1000..2000]);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[len - 10..]);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, format!("bytes={}-{}", len - 5, len + 100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &data[len - 5..]);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, format!("bytes={len}-"))
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
    assert_eq!(r.headers()[CONTENT_LENGTH], len.to_string());
}

#[tokio::test]
async fn upload_download_ranges_and_verification() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    // One kept in the database (small), one in the blob store.
    for len in [5_000u32, 100_000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        reads_back(&ann, &data).await;
    }

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

async fn post_batch(client: &Client, path: &str, body: Vec<u8>) -> (StatusCode, String) {
    let r = client
        .post(path)
        .header("content-type", CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Whether `client` can read the chunk named `hash` (`HEAD`).
async fn stored(client: &Client, hash: &Hash) -> bool {
    let r = client
        .request(reqwest::Method::HEAD, &format!("/v1/chunks/{hash}"))
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

#[tokio::test]
async fn a_batch_upload_stores_all_its_chunks_or_none() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "laptop").await;
    let folder = ann.create_object("Files", "folder").await;
    ann.add_member(&folder, &bob, "bob@example.org", "reader")
        .await;
    let data: Vec<Vec<u8>> = [10u32, 5_000, 100_000, 5_000]
        .iter()
        .enumerate()
        .map(|(n, len)| (0..*len).map(|i| (i * 13 + n as u32) as u8).collect())
        .collect();
    let hashes: Vec<Hash> = data.iter().map(|d| Hash::of(d)).collect();
    let batch = |of: std::ops::Range<usize>| {
        encode(
            hashes[of.clone()]
                .iter()
                .zip(data[of].iter().map(|d| &d[..])),
        )
    };

    // Stored, small and large alike, and read back byte for byte.
    let (status, body) =
        post_batch(&ann, &format!("/v1/chunks?object={folder}"), batch(0..3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(missing(&ann, &hashes).await, vec![hashes[3]]);
    for (hash, data) in hashes.iter().zip(&data).take(3) {
        let r = ann.get(&format!("/v1/chunks/{hash}")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap(), &data[..]);
    }

    // One chunk of a batch that is not what it is named: nothing of it is
    // stored, not even the chunks that are.
    let fresh: Vec<Vec<u8>> = (0..3u8).map(|n| vec![n + 100; 3000]).collect();
    let mut names: Vec<Hash> = fresh.iter().map(|d| Hash::of(d)).collect();
    names[1] = Hash::of(b"what it claims to be");
    let body = encode(names.iter().zip(fresh.iter().map(|d| &d[..])));
    let (status, message) = post_batch(&ann, "/v1/chunks", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("nothing was stored"), "{message}");
    for d in &fresh {
        assert!(!stored(&ann, &Hash::of(d)).await);
    }

    // Malformed batches: cut short, empty, a chunk of nothing, a chunk too
    // large; and a body not declared a batch.
    let good = batch(3..4);
    let cut = good[..good.len() - 1].to_vec();
    let mut huge = Hash::of(b"x").as_bytes().to_vec();
    huge.extend_from_slice(&(MAX_CHUNK_SIZE + 1).to_be_bytes());
    let nothing = encode([(&Hash::of(b""), &b""[..])]);
    for (body, want) in [
        (cut, StatusCode::BAD_REQUEST),
        (Vec::new(), StatusCode::BAD_REQUEST),
        (nothing, StatusCode::BAD_REQUEST),
        (huge, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (status, message) = post_batch(&ann, "/v1/chunks", body).await;
        assert_eq!(status, want, "{message}");
    }
    let r = ann
        .post("/v1/chunks")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(!stored(&ann, &hashes[3]).await);

    // For an object one may not write to: refused, nothing stored.
    let (status, _) = post_batch(&bob, &format!("/v1/chunks?object={folder}"), good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let elsewhere = bob.create_object("Bob's", "folder").await;
    let (status, _) = post_batch(
        &ann,
        &format!("/v1/chunks?object={elsewhere}"),
        good.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!stored(&ann, &hashes[3]).await && !stored(&bob, &hashes[3]).await);
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
    // Small chunks are kept in the database, large ones in the blob store:
    // each kind is collected from where it is.
    let kept = b"content a live file refers to".as_slice();
    let kept_large = vec![7u8; 100_000];
    let dropped = b"content of a file that gets deleted".as_slice();
    let dropped_large = vec![8u8; 100_000];
    let orphan = b"uploaded but never used".as_slice();
    let orphan_large = vec![9u8; 100_000];
    for c in [
        kept,
        &kept_large,
        dropped,
        &dropped_large,
        orphan,
        &orphan_large,
    ] {
        upload(&ann, c).await;
    }
    let live = file_item("urn:uuid:live", &ann.device_id, &[kept, &kept_large]);
    let doomed = file_item(
        "urn:uuid:doomed",
        &ann.device_id,
        &[dropped, &dropped_large],
    );
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

    let hashes = [
        kept,
        &kept_large,
        dropped,
        &dropped_large,
        orphan,
        &orphan_large,
    ]
    .map(Hash::of);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let gone = missing(&ann, &hashes).await;
        if gone.len() == 4 {
            assert_eq!(gone, hashes[2..].to_vec());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not collected: {gone:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (hash, data) in [(hashes[0], kept), (hashes[1], &kept_large)] {
        let r = ann.get(&format!("/v1/chunks/{hash}")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap(), data);
    }
    // The bytes of collected chunks are gone from the disk, too: one file
    // in the blob store, one chunk's bytes in the database.
    let on_disk: usize = walk(&server.data.join("chunks"));
    assert_eq!(on_disk, 1);
    // And so are their slice trees: the live large chunk's stays.
    stored_tree(&server, &hashes[1]).await;
    assert_eq!(walk(&server.data.join("slice-trees")), 1);
    let db = rusqlite::Connection::open_with_flags(
        server.data.join("meshd.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let inline: Vec<String> = db
        .prepare("SELECT hash FROM chunk_data")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(inline, vec![hashes[0].to_hex()]);
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

#[tokio::test]
async fn small_chunks_stored_as_files_before_the_upgrade_still_read() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let data = b"a small chunk an older meshd kept as a file".as_slice();
    let hash = upload(&ann, data).await;
    // Where an older meshd kept it: a file in the blob store, no bytes in
    // the database.
    let hex = hash.to_hex();
    let dir = server.data.join("chunks").join(&hex[0..2]).join(&hex[2..4]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), data).unwrap();
    let db = rusqlite::Connection::open(server.data.join("meshd.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        db.execute("DELETE FROM chunk_data WHERE hash = ?1", [&hex])
            .unwrap(),
        1
    );
    drop(db);
    let r = ann
        .get(&format!("/v1/chunks/{hash}"))
        .header(RANGE, "bytes=2-6")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &data[2..7]);
}

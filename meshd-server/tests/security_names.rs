//! Names are hostile input (#15), against the real meshd over HTTP: a mesh
//! object's name becomes a directory in every member's mount, so the
//! server refuses any name that is not one path component, on create and
//! on rename, and changes nothing; and entry names holding control
//! characters still give an Atom feed that a standard XML 1.0 parser
//! (Python's `xml.etree`) reads, with the entry data exact.

mod common;

use common::{Server, new_item};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use std::process::Command;

/// Names no mesh object may have: not one path component, or (object
/// names only) with control characters or only white space.
fn hostile_names() -> Vec<String> {
    [
        "/",
        "..",
        ".",
        "/tmp/x",
        "../../x",
        "a/b",
        "",
        "nul\0byte",
        "esc\u{1b}]0;owned\u{7}",
        "two\nlines",
        "   ",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(["x".repeat(256)])
    .collect()
}

/// Checks a refusal: 400, `bad_request`, and a message naming the name.
async fn assert_refused(r: reqwest::Response, name: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name:?}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{name:?}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("name "), "{name:?}: {message}");
}

#[tokio::test]
async fn an_object_name_that_is_not_one_path_component_is_refused_and_changes_nothing() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let since: Value = ann.get_json("/v1/news").await;

    for name in hostile_names() {
        for kind in ["folder", "list"] {
            let r = ann
                .post("/v1/objects")
                .json(&json!({"name": name, "kind": kind}))
                .send()
                .await
                .unwrap();
            assert_refused(r, &name).await;
        }
    }
    let list: Vec<Value> = ann.get_json("/v1/objects").await;
    assert!(list.is_empty(), "{list:?}");

    let id = ann.create_object("Team", "folder").await;
    let before: Value = ann.get_json(&format!("/v1/objects/{id}")).await;
    for name in hostile_names() {
        let r = ann
            .patch(&format!("/v1/objects/{id}"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_refused(r, &name).await;
    }
    let after: Value = ann.get_json(&format!("/v1/objects/{id}")).await;
    assert_eq!(after, before, "a refused rename changes nothing");
    let list: Vec<Value> = ann.get_json("/v1/objects").await;
    assert_eq!(list.len(), 1);
    assert_eq!(ann.get_json::<Value>("/v1/news").await, since);

    // Names that only look odd are names.
    for name in [
        "...",
        ".hidden",
        "a\\b",
        "Fotos – 2026 ☺",
        "x".repeat(255).as_str(),
    ] {
        let r = ann
            .patch(&format!("/v1/objects/{id}"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name:?}");
        let o: Value = r.json().await.unwrap();
        assert_eq!(o["name"], name);
    }
}

/// Runs Python's `xml.etree` on `xml`: the titles and `mesh:data` texts of
/// its entries, in order, or what the parser said.
fn parse_with_python(xml: &str) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.xml");
    std::fs::write(&path, xml).unwrap();
    let script = r#"
import json, sys
import xml.etree.ElementTree as E
ns = {"a": "http://www.w3.org/2005/Atom", "mesh": "urn:x-mesh:feed:1"}
root = E.parse(sys.argv[1]).getroot()
print(json.dumps([
    {"title": e.findtext("a:title", namespaces=ns),
     "data": json.loads(e.findtext("mesh:data", namespaces=ns))}
    for e in root.findall("a:entry", ns)
]))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 runs (it is part of the test machines)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test]
async fn an_atom_feed_of_entries_named_with_control_characters_is_well_formed_xml() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let folder = ann.create_object("Photos", "folder").await;
    let names = [
        "esc\u{1b}]0;owned\u{7}",
        "bell\u{7}",
        "two\nlines",
        "del\u{7f} and tab\t",
    ];
    let items: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // As meshfs posts them: the name is the title and the data's.
            let mut item = new_item(
                &format!("urn:uuid:entry-{i}"),
                name,
                &ann.device_id,
                "2026-11-27T10:00:00Z",
            );
            item["data"] = json!({"name": name, "type": "dir", "mode": 0o755,
                                  "mtime": "2026-11-27T10:00:00Z"});
            item
        })
        .collect();
    let r = ann.post_items(&folder, json!(items)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    let r = ann
        .get(&format!("/v1/objects/{folder}/feed"))
        .header(ACCEPT, "application/atom+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    let entries = parse_with_python(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), names.len(), "{xml}");
    for (entry, name) in entries.iter().zip(names) {
        assert_eq!(entry["data"]["name"], name, "the entry data is exact");
        let title = entry["title"].as_str().unwrap();
        assert!(
            !title.contains(['\u{1b}', '\u{7}']),
            "a title shows what XML cannot hold escaped: {title:?}"
        );
    }
    assert_eq!(entries[0]["title"], "esc\\u{1b}]0;owned\\u{7}");
    assert_eq!(entries[2]["title"], "two\nlines", "XML holds a newline");
}

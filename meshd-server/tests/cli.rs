//! The meshd command line: `user add`, `user list`, `feedsync merge`.

mod common;

use common::{PASSWORD, add_user, meshd};
use std::process::Stdio;

#[test]
fn user_add_refuses_duplicates_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann@example.org", PASSWORD).unwrap();
    let err = add_user(dir.path(), "ANN@example.org", PASSWORD).unwrap_err();
    assert!(err.contains("already exists"), "{err}");
    let err = add_user(dir.path(), "not-an-address", PASSWORD).unwrap_err();
    assert!(err.contains("not an e-mail address"), "{err}");
    let err = add_user(dir.path(), "bob@example.org", "short").unwrap_err();
    assert!(err.contains("at least 8"), "{err}");
    let out = meshd()
        .args(["user", "add", "bob@example.org", "--data"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));

    let out = meshd()
        .args(["user", "list", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["email"], "ann@example.org");
    assert_eq!(users[0]["name"], "ann");
}

const LOCAL: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync">
  <title>Todo</title><id>urn:uuid:local</id><updated>2008-01-01T10:00:05Z</updated>
  <entry><title>buy milk and eggs</title><id>urn:uuid:item-1</id><updated>2008-01-01T10:00:05Z</updated>
    <sx:sync id="urn:uuid:item-1" updates="2">
      <sx:history sequence="2" when="2008-01-01T10:00:05Z" by="A"/>
      <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
    </sx:sync></entry>
  <entry><title>only here</title><id>urn:uuid:item-2</id><updated>2008-01-01T10:00:00Z</updated>
    <sx:sync id="urn:uuid:item-2" updates="1"><sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/></sx:sync></entry>
</feed>"#;

const INCOMING: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync">
  <title>Todo</title><id>urn:uuid:incoming</id><updated>2008-01-01T10:00:09Z</updated>
  <entry><title>buy oat milk</title><id>urn:uuid:item-1</id><updated>2008-01-01T10:00:09Z</updated>
    <sx:sync updates="2" id="urn:uuid:item-1">
      <sx:history sequence="2" when="2008-01-01T10:00:09Z" by="B"/>
      <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
    </sx:sync></entry>
  <entry><title>new there</title><id>urn:uuid:item-3</id><updated>2008-01-01T10:00:00Z</updated>
    <sx:sync id="urn:uuid:item-3" updates="1"><sx:history sequence="1" when="2008-01-01T10:00:00Z" by="B"/></sx:sync></entry>
</feed>"#;

#[test]
fn feedsync_merge_prints_the_merged_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (local, incoming) = (
        dir.path().join("local.xml"),
        dir.path().join("incoming.xml"),
    );
    std::fs::write(&local, LOCAL).unwrap();
    std::fs::write(&incoming, INCOMING).unwrap();
    let out = meshd()
        .args(["feedsync", "merge"])
        .arg(&local)
        .arg(&incoming)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let feed = mesh_protocol::atom::read_feed(&out.stdout).unwrap();
    assert_eq!(feed.id.as_deref(), Some("urn:uuid:local"));
    let titles: Vec<&str> = feed
        .items
        .iter()
        .map(|i| i.current.body.title.as_ref().unwrap().value.as_str())
        .collect();
    assert_eq!(titles, ["buy oat milk", "only here", "new there"]);
    assert_eq!(feed.items[0].conflicts.len(), 1);
    assert_eq!(
        feed.items[0].conflicts[0]
            .body
            .title
            .as_ref()
            .unwrap()
            .value,
        "buy milk and eggs"
    );
}

#[test]
fn feedsync_merge_names_the_bad_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (local, bad) = (dir.path().join("local.xml"), dir.path().join("bad.xml"));
    std::fs::write(&local, LOCAL).unwrap();
    std::fs::write(&bad, "<feed xmlns='http://www.w3.org/2005/Atom'><entry>").unwrap();
    let out = meshd()
        .args(["feedsync", "merge"])
        .arg(&local)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.xml"), "{err}");
    assert!(out.stdout.is_empty());
    let out = meshd()
        .args(["feedsync", "merge"])
        .arg(&local)
        .arg(dir.path().join("absent.xml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.xml"));
}

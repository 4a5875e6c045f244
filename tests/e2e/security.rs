//! Security end to end, with real mounts: names from the server are hostile
//! input, and what meshfs keeps on the device's disk is private to its user.
//!
//! The server refuses names that are not one path component now, so the
//! names an old server let an owner give are written into its database
//! while it is stopped, as such a server would have stored them.

use mesh_e2e::{Device, SYNC, Server, names, wait_for, wait_until};
use std::fs;
use std::io::Write;
use std::path::Path;

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";

/// A name as the mount shows it: `/` as U+FF0F, NUL and the empty name as
/// U+2400, `.` and `..` as U+FF0E (rclone's encoding).
fn shown(name: &str) -> String {
    match name {
        "" => "\u{2400}".into(),
        "." => "\u{ff0e}".into(),
        ".." => "\u{ff0e}\u{ff0e}".into(),
        _ => name.replace('/', "\u{ff0f}").replace('\0', "\u{2400}"),
    }
}

/// Ann shares each of her Live Folders `folders` with Bob as an editor, and
/// Bob's device `bob` accepts each invitation by its id.
fn share_with_bob(ann: &Device, bob: &Device, folders: &[&str]) {
    for folder in folders {
        let path = ann.path(folder);
        ann.run_meshfs(&["share", path.to_str().unwrap(), BOB, "--role", "editor"]);
    }
    let listed: serde_json::Value =
        serde_json::from_str(&bob.run_meshfs(&["invitations", "--json"])).unwrap();
    let pending = listed.as_array().unwrap();
    assert_eq!(pending.len(), folders.len(), "{listed:#}");
    for invitation in pending {
        bob.run_meshfs(&["accept", invitation["id"].as_str().unwrap()]);
    }
}

/// Stops the server, changes its database with `change`, and starts it
/// again on the same data and address.
fn with_database_stopped(server: &mut Server, change: impl FnOnce(&rusqlite::Connection)) {
    server.stop();
    let db = rusqlite::Connection::open(server.data().join("meshd.sqlite3")).unwrap();
    change(&db);
    drop(db);
    server.restart();
}

/// Names the mesh object now called `from` `to`, as an old server let an
/// owner do.
fn rename_object(db: &rusqlite::Connection, from: &str, to: &str) {
    let changed = db
        .execute(
            "UPDATE objects SET name = ?1 WHERE name = ?2",
            rusqlite::params![to, from],
        )
        .unwrap();
    assert_eq!(changed, 1, "one object is called {from:?}");
}

/// Whether `path` exists, without following a last symbolic link.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

#[test]
fn a_member_removed_from_a_folder_the_server_names_like_a_path_keeps_its_edits_inside_recovered() {
    let mut server = Server::start();
    server.add_user(ANN);
    server.add_user(BOB);
    let ann = Device::mount(&server, ANN, "ann-laptop");
    let bob = Device::mount(&server, BOB, "bob-desktop");
    let recovered = bob.status()["recovered"].as_str().unwrap().to_owned();
    let recovered = Path::new(&recovered);
    // One folder named up and out of `recovered/`, one by an absolute path
    // (inside a directory this test owns, so that it can check it stays
    // empty).
    let outside = tempfile::tempdir().unwrap();
    let absolute = outside.path().join("x").to_str().unwrap().to_owned();
    let hostile = ["../../x".to_owned(), absolute.clone()];

    fs::create_dir(ann.path("Team")).unwrap();
    fs::create_dir(ann.path("Club")).unwrap();
    share_with_bob(&ann, &bob, &["Team", "Club"]);
    wait_for(
        "Bob's mount to show both folders",
        SYNC,
        &vec!["Club".to_owned(), "Team".to_owned()],
        || names(bob.mountpoint()),
    );
    with_database_stopped(&mut server, |db| {
        rename_object(db, "Team", &hostile[0]);
        rename_object(db, "Club", &hostile[1]);
    });
    let mut expected: Vec<String> = hostile.iter().map(|n| shown(n)).collect();
    expected.sort();
    for device in [&ann, &bob] {
        wait_for(
            &format!("{}'s root to show the new names escaped", device.name()),
            SYNC,
            &expected,
            || names(device.mountpoint()),
        );
    }

    // Bob starts a change in each and keeps the files open (so they are not
    // uploaded) when Ann takes him off both folders.
    let mut open = Vec::new();
    for folder in &expected {
        let mut file = fs::File::create(bob.path(format!("{folder}/draft.txt"))).unwrap();
        file.write_all(format!("not uploaded yet, in {folder}\n").as_bytes())
            .unwrap();
        open.push(file);
    }
    for folder in &expected {
        let said = ann.run_meshfs(&["unshare", ann.path(folder).to_str().unwrap(), BOB]);
        assert!(said.contains("no longer a member"), "{said}");
    }
    wait_until("both folders to leave Bob's mount", SYNC, || {
        names(bob.mountpoint()).is_empty()
    });
    drop(open);

    // Both changes are kept, each under its folder's shown name, inside
    // `recovered/` …
    assert_eq!(bob.status()["recovered_files"], 2);
    assert_eq!(names(recovered), expected);
    for folder in &expected {
        let kept = names(&recovered.join(folder));
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(
            kept[0].starts_with("draft (conflict from bob-desktop "),
            "{kept:?}"
        );
        assert_eq!(
            fs::read_to_string(recovered.join(folder).join(&kept[0])).unwrap(),
            format!("not uploaded yet, in {folder}\n")
        );
    }
    // … and nothing where the names point.
    assert!(
        !exists(&recovered.join("../../x")),
        "written above recovered/"
    );
    assert!(!exists(Path::new(&absolute)), "written at {absolute}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn names_no_path_can_hold_list_escaped_at_every_member_s_root_and_the_folders_stay_usable() {
    let mut server = Server::start();
    server.add_user(ANN);
    server.add_user(BOB);
    let ann = Device::mount(&server, ANN, "ann-laptop");
    let bob = Device::mount(&server, BOB, "bob-desktop");
    let hostile = ["a/b", ".", "..", "", "nul\0byte"];
    let folders: Vec<String> = (0..hostile.len()).map(|i| format!("F{i}")).collect();
    for folder in &folders {
        fs::create_dir(ann.path(folder)).unwrap();
    }
    fs::create_dir(ann.path("Zed")).unwrap();
    fs::write(ann.path("Zed/good.txt"), b"good\n").unwrap();
    fs::write(ann.path("Zed/evil.txt"), b"evil\n").unwrap();
    let mut shared: Vec<&str> = folders.iter().map(String::as_str).collect();
    shared.push("Zed");
    share_with_bob(&ann, &bob, &shared);
    wait_for(
        "Bob to see Ann's files",
        SYNC,
        &vec!["evil.txt".to_owned(), "good.txt".to_owned()],
        || {
            if bob.path("Zed").exists() {
                names(&bob.path("Zed"))
            } else {
                Vec::new()
            }
        },
    );

    with_database_stopped(&mut server, |db| {
        for (folder, name) in folders.iter().zip(hostile) {
            rename_object(db, folder, name);
        }
        // And an entry whose name climbs out of its folder.
        let mut stmt = db.prepare("SELECT sync_id, item FROM entries").unwrap();
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let (id, item) = rows
            .iter()
            .find(|(_, item)| item.contains("\"evil.txt\""))
            .expect("the entry evil.txt");
        let mut item: serde_json::Value = serde_json::from_str(item).unwrap();
        item["data"]["name"] = "../evil.txt".into();
        db.execute(
            "UPDATE entries SET item = ?1 WHERE sync_id = ?2",
            rusqlite::params![item.to_string(), id],
        )
        .unwrap();
    });

    let mut expected: Vec<String> = hostile.iter().map(|n| shown(n)).collect();
    expected.push("Zed".into());
    expected.sort();
    for device in [&ann, &bob] {
        wait_for(
            &format!("{}'s root to list every folder", device.name()),
            SYNC,
            &expected,
            || names(device.mountpoint()),
        );
    }
    // A new device of Bob's reads everything from the server as it is now:
    // every folder lists, and the entry no path can hold is left out of
    // its folder's listing (with a warning) instead of failing it.
    let phone = Device::mount(&server, BOB, "bob-phone");
    wait_for(
        "the new device to list every folder",
        SYNC,
        &expected,
        || names(phone.mountpoint()),
    );
    wait_for(
        "Zed to list its good entry",
        SYNC,
        &vec!["good.txt".to_owned()],
        || names(&phone.path("Zed")),
    );
    assert_eq!(fs::read(phone.path("Zed/good.txt")).unwrap(), b"good\n");
    assert!(
        phone
            .log()
            .contains("ignoring an entry this device cannot show"),
        "{}",
        phone.log()
    );
    assert!(!exists(&phone.mountpoint().join("../evil.txt")));

    // The escaped folders are usable, by owner and member alike.
    let slash = shown("a/b");
    fs::write(phone.path(format!("{slash}/from-bob.txt")), b"hello\n").unwrap();
    wait_for(
        "Bob's file to reach Ann through the escaped folder",
        SYNC,
        &Some(b"hello\n".to_vec()),
        || fs::read(ann.path(format!("{slash}/from-bob.txt"))).ok(),
    );
    let dots = shown("..");
    fs::write(ann.path(format!("{dots}/from-ann.txt")), b"hi\n").unwrap();
    wait_for(
        "Ann's file to reach Bob in the folder named '..'",
        SYNC,
        &Some(b"hi\n".to_vec()),
        || fs::read(bob.path(format!("{dots}/from-ann.txt"))).ok(),
    );
}

#[test]
fn news_of_names_with_control_characters_prints_them_escaped() {
    let server = Server::start();
    server.add_user(ANN);
    let ann = Device::mount(&server, ANN, "ann-laptop");
    fs::create_dir(ann.path("Team")).unwrap();
    let hostile = ["title\u{1b}]0;owned\u{7}", "two\nforged line", "bell\u{7}"];
    for name in hostile {
        fs::write(ann.path(format!("Team/{name}")), b"x").unwrap();
    }
    // `--json` is exact JSON: the names as they are.
    let named = || -> Vec<String> {
        let news: serde_json::Value =
            serde_json::from_str(&ann.run_meshfs(&["news", "--json"])).unwrap();
        news["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|item| item["names"].as_array().cloned().unwrap_or_default())
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    wait_until("the news to name every file as it is", SYNC, || {
        let names = named();
        hostile.iter().all(|h| names.iter().any(|n| n == h))
    });

    for args in [
        &["news"][..],
        &["news", ann.path("Team").to_str().unwrap()][..],
    ] {
        let printed = ann.run_meshfs(args);
        assert!(
            !printed.chars().any(|c| c.is_control() && c != '\n'),
            "{printed:?}"
        );
        assert!(
            printed.lines().all(|line| !line.starts_with("forged")),
            "{printed}"
        );
        assert!(printed.contains("title\\u{1b}]0;owned\\u{7}"), "{printed}");
        assert!(printed.contains("two\\nforged line"), "{printed}");
    }
}

//! The living mesh with real mounts: a file open on one device shows in
//! `meshfs who` and in `user.mesh.users` on the other, and goes when it is
//! closed or when the first device's mount dies; a burst of edits reads as
//! one news item. Nothing here polls the server for it: the mounts hear
//! it on their change streams (`who` and `news` ask the server once).

use mesh_e2e::{Device, Entry, Pair, SYNC, wait_for, wait_for_entry, wait_until};
use serde_json::Value;
use std::fs::File;
use std::io::Write;

/// `meshfs who PATH --json` on `device`, as (device name, open files as
/// "path" or "path (writing)").
fn who(device: &Device, rel: &str) -> Vec<(String, Vec<String>)> {
    let path = device.path(rel);
    let list: Vec<Value> = serde_json::from_str(&device.run_meshfs(&[
        "who".as_ref(),
        path.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    list.iter()
        .map(|p| {
            let open = p["open"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let writing = if f["writing"] == true {
                        " (writing)"
                    } else {
                        ""
                    };
                    format!("{}{writing}", f["path"].as_str().unwrap())
                })
                .collect();
            (p["device"].as_str().unwrap().to_owned(), open)
        })
        .collect()
}

fn users(device: &Device, rel: &str) -> String {
    let value = meshfs::local::xattr::get(&device.path(rel), "user.mesh.users")
        .unwrap_or_else(|e| panic!("user.mesh.users of {rel}: {e}"));
    String::from_utf8(value).unwrap()
}

#[test]
fn files_open_on_one_device_show_on_the_other_until_closed_or_killed() {
    let mut mesh = Pair::start();
    mesh.live_folder("Team");
    std::fs::create_dir(mesh.a.path("Team/docs")).unwrap();
    std::fs::write(mesh.a.path("Team/docs/report.txt"), "draft\n").unwrap();
    std::fs::write(mesh.a.path("Team/todo.txt"), "milk\n").unwrap();
    wait_for_entry(
        &mesh.b,
        "Team/docs/report.txt",
        Some(Entry::File(b"draft\n".to_vec())),
    );
    wait_for_entry(
        &mesh.b,
        "Team/todo.txt",
        Some(Entry::File(b"milk\n".to_vec())),
    );

    // Both devices are in the folder, with nothing open.
    wait_for(
        "both devices in Team",
        SYNC,
        &vec![("desktop".into(), vec![]), ("laptop".into(), vec![])],
        || who(&mesh.b, "Team"),
    );

    // The laptop opens the report to write it.
    let mut report = File::options()
        .append(true)
        .open(mesh.a.path("Team/docs/report.txt"))
        .unwrap();
    report.write_all(b"more\n").unwrap();
    wait_for(
        "the laptop's open report",
        SYNC,
        &vec![
            ("desktop".into(), vec![]),
            ("laptop".into(), vec!["docs/report.txt (writing)".into()]),
        ],
        || who(&mesh.b, "Team"),
    );
    // Below a subfolder, only who has something open there.
    assert_eq!(
        who(&mesh.b, "Team/docs"),
        [(
            "laptop".to_string(),
            vec!["docs/report.txt (writing)".to_string()]
        )]
    );
    assert_eq!(who(&mesh.b, "Team/todo.txt"), []);
    wait_for(
        "user.mesh.users of the report",
        SYNC,
        &"ann@example.org on laptop (writing)\n".to_string(),
        || users(&mesh.b, "Team/docs/report.txt"),
    );
    assert_eq!(users(&mesh.b, "Team/todo.txt"), "");
    // The laptop does not list itself.
    assert_eq!(users(&mesh.a, "Team/docs/report.txt"), "");
    let human = mesh
        .b
        .run_meshfs(&["who".as_ref(), mesh.b.path("Team").as_os_str()]);
    assert!(
        human.contains("ann@example.org on laptop: docs/report.txt (writing)"),
        "{human}"
    );

    // Closed: gone from the other device.
    drop(report);
    wait_for("the report closed", SYNC, &String::new(), || {
        users(&mesh.b, "Team/docs/report.txt")
    });
    assert_eq!(who(&mesh.b, "Team/docs"), []);

    // Open for reading, then the laptop's mount dies: the laptop leaves
    // the folder altogether.
    let todo = File::open(mesh.a.path("Team/todo.txt")).unwrap();
    wait_for(
        "the laptop reading todo",
        SYNC,
        &"ann@example.org on laptop\n".to_string(),
        || users(&mesh.b, "Team/todo.txt"),
    );
    mesh.a.kill();
    drop(todo);
    wait_for(
        "the killed laptop gone",
        SYNC,
        &vec![("desktop".into(), vec![])],
        || who(&mesh.b, "Team"),
    );
    wait_for(
        "the killed laptop's file closed",
        SYNC,
        &String::new(),
        || users(&mesh.b, "Team/todo.txt"),
    );
}

#[test]
fn a_burst_of_edits_is_one_news_item_without_its_temporary_files() {
    let mesh = Pair::start();
    mesh.live_folder("Notes");
    for i in 0..5 {
        std::fs::write(
            mesh.a.path(format!("Notes/n{i}.txt")),
            format!("note {i}\n"),
        )
        .unwrap();
    }
    for i in 0..5 {
        wait_for_entry(
            &mesh.b,
            &format!("Notes/n{i}.txt"),
            Some(Entry::File(format!("note {i}\n").into_bytes())),
        );
    }
    // Within the window: a new file edited is still just new, one removed
    // again was temporary, and an editor's swap file is never news.
    std::fs::write(mesh.a.path("Notes/.n1.txt.swp"), "swap\n").unwrap();
    std::fs::write(mesh.a.path("Notes/n0.txt"), "note 0, edited\n").unwrap();
    std::fs::remove_file(mesh.a.path("Notes/n4.txt")).unwrap();
    wait_for_entry(&mesh.b, "Notes/n4.txt", None);
    wait_for_entry(
        &mesh.b,
        "Notes/.n1.txt.swp",
        Some(Entry::File(b"swap\n".to_vec())),
    );

    let files_items = || -> Vec<Value> {
        let page: Value = serde_json::from_str(&mesh.b.run_meshfs(&[
            "news".as_ref(),
            mesh.b.path("Notes").as_os_str(),
            "--json".as_ref(),
        ]))
        .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "files")
            .cloned()
            .collect()
    };
    wait_until("the removal in the news", SYNC, || {
        files_items().first().is_some_and(|i| i["added"] == 4)
    });
    let items = files_items();
    assert_eq!(items.len(), 1, "one item for the whole burst: {items:#?}");
    assert_eq!(
        (&items[0]["changed"], &items[0]["removed"]),
        (&0.into(), &0.into())
    );
    assert_eq!(
        items[0]["names"],
        serde_json::json!(["n0.txt", "n3.txt", "n2.txt", "n1.txt"])
    );
    assert_eq!(items[0]["actor"], "ann@example.org");
    assert_eq!(items[0]["device_name"], "laptop");

    // Read by people: in the folder, and across the mesh with its name.
    let human = mesh
        .b
        .run_meshfs(&["news".as_ref(), mesh.b.path("Notes").as_os_str()]);
    assert!(
        human.contains("ann@example.org added 4 files (n0.txt, n3.txt, n2.txt, n1.txt)"),
        "{human}"
    );
    let mesh_news = mesh.b.run_meshfs(&["news"]);
    assert!(
        mesh_news.contains("[Notes] ann@example.org added 4 files"),
        "{mesh_news}"
    );
    assert!(
        mesh_news.contains("added device \"desktop\""),
        "{mesh_news}"
    );
}

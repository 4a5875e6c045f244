//! Sharing between two people, end to end: an owner shares a Live Folder
//! by e-mail, the invitation arrives over real SMTP, the invitee accepts
//! with the link and the folder appears in their mount, edits flow both
//! ways, a reader cannot write, and removal takes the folder away without
//! losing what the invitee had not uploaded yet.

use mesh_e2e::smtp::{SmtpReceiver, mail_to};
use mesh_e2e::{Device, Entry, SYNC, Server, errno_of, names, wait_for_entry, wait_until};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";

fn file(bytes: &[u8]) -> Option<Entry> {
    Some(Entry::File(bytes.to_vec()))
}

/// `meshfs share` of Ann's Live Folder `folder` with Bob as `role`.
fn share(ann: &Device, folder: &str, role: &str) -> String {
    let path = ann.path(folder);
    ann.run_meshfs(&["share", path.to_str().unwrap(), BOB, "--role", role])
}

/// `meshd app add NAME --owner ANN --object ID:ROLE` on Ann's object
/// `object`.
fn add_app(server: &Server, name: &str, object: &str, role: &str) {
    let db = rusqlite::Connection::open_with_flags(
        server.data().join("meshd.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let id: String = db
        .query_row(
            "SELECT o.id FROM objects o JOIN users u ON u.id = o.owner
             WHERE o.name = ?1 AND u.email = ?2",
            [object, ANN],
            |r| r.get(0),
        )
        .unwrap();
    let out = mesh_testkit::meshd_command(&mesh_e2e::meshd_bin())
        .args(["app", "add", name, "--owner", ANN, "--object"])
        .arg(format!("{id}:{role}"))
        .arg("--data")
        .arg(server.data())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET url` over plain HTTP/1.1: the status line, headers and body.
fn http_get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http link");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connecting to meshd");
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.to_owned(), body.to_owned())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_folder_shared_by_email_is_accepted_edited_made_read_only_and_taken_away() {
    let smtp = SmtpReceiver::start();
    let port = smtp.port.to_string();
    let server = Server::start_with(&[
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port,
        "--smtp-tls",
        "none",
        "--smtp-from",
        "mesh@example.org",
    ]);
    server.add_user(ANN);
    server.add_user(BOB);
    let ann = Device::mount(&server, ANN, "ann-laptop");
    let bob = Device::mount(&server, BOB, "bob-desktop");
    fs::create_dir(ann.path("Photos")).unwrap();
    fs::write(ann.path("Photos/a.txt"), b"from ann\n").unwrap();
    // Bob has a folder of that name himself.
    fs::create_dir(bob.path("Photos")).unwrap();
    fs::write(bob.path("Photos/mine.txt"), b"bob's own\n").unwrap();

    let said = share(&ann, "Photos", "editor");
    assert!(said.contains("invited"), "{said}");

    // A real e-mail, with a link to the confirmation page.
    let mail = mail_to(&smtp, BOB, SYNC);
    let subject = mail.header("Subject").unwrap_or_default();
    assert!(
        subject.contains("Photos") || subject.contains("=?"),
        "{subject}"
    );
    let body = mail.body();
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/invite/"))
        .unwrap_or_else(|| panic!("no link in the e-mail:\n{body}"))
        .trim_end_matches(['.', ',', ')', '>'])
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/invite/", server.url())),
        "{link}"
    );
    let (head, page) = http_get(&link);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("referrer-policy: no-referrer"),
        "{head}"
    );
    assert!(page.contains("Photos"), "{page}");
    let token = link.rsplit('/').next().unwrap();
    assert!(
        !server.log().contains(token),
        "the token appears in the server's log"
    );

    // Accepted with the CLI, by the link: the folder appears in Bob's
    // mount beside his own, telling whose it is.
    let said = bob.run_meshfs(&["accept", &link]);
    assert!(said.contains("accepted"), "{said}");
    let shared = "Photos (from ann@example.org)";
    wait_for_entry(&bob, &format!("{shared}/a.txt"), file(b"from ann\n"));
    assert_eq!(
        fs::read(bob.path("Photos/mine.txt")).unwrap(),
        b"bob's own\n"
    );
    let members = ann.run_meshfs(&["members", ann.path("Photos").to_str().unwrap(), "--json"]);
    let members: serde_json::Value = serde_json::from_str(&members).unwrap();
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(roles.contains(&(BOB.into(), "editor".into())), "{roles:?}");
    assert!(roles.contains(&(ANN.into(), "owner".into())), "{roles:?}");
    // An app of Ann's on the folder is listed as an app, and as hers.
    add_app(&server, "SpellChecker", "Photos", "reader");
    let listed = ann.run_meshfs(&["members", ann.path("Photos").to_str().unwrap()]);
    assert!(
        listed.contains("reader  app \"SpellChecker\" of ann@example.org"),
        "{listed}"
    );

    // Edits flow both ways.
    fs::write(bob.path(format!("{shared}/a.txt")), b"edited by bob\n").unwrap();
    fs::write(bob.path(format!("{shared}/b.txt")), b"new from bob\n").unwrap();
    wait_for_entry(&ann, "Photos/a.txt", file(b"edited by bob\n"));
    wait_for_entry(&ann, "Photos/b.txt", file(b"new from bob\n"));
    fs::write(ann.path("Photos/c.txt"), b"more from ann\n").unwrap();
    wait_for_entry(&bob, &format!("{shared}/c.txt"), file(b"more from ann\n"));

    // A second invitation, declined by its id: nothing appears.
    fs::create_dir(ann.path("Taxes")).unwrap();
    share(&ann, "Taxes", "reader");
    let listed: serde_json::Value =
        serde_json::from_str(&bob.run_meshfs(&["invitations", "--json"])).unwrap();
    let pending = listed.as_array().unwrap();
    assert_eq!(pending.len(), 1, "{listed:#}");
    assert_eq!(pending[0]["object_name"], "Taxes");
    assert_eq!(pending[0]["invited_by"], ANN);
    bob.run_meshfs(&["decline", pending[0]["id"].as_str().unwrap()]);
    let listed: serde_json::Value =
        serde_json::from_str(&bob.run_meshfs(&["invitations", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed:#}");

    // Made a reader: the folder turns read-only and writes fail.
    share(&ann, "Photos", "reader");
    wait_until("Bob's copy of Photos to turn read-only", SYNC, || {
        mode(&bob.path(shared)) & 0o222 == 0
    });
    assert_eq!(
        errno_of(fs::write(bob.path(format!("{shared}/d.txt")), b"no")),
        Some(libc::EACCES)
    );
    assert_eq!(
        errno_of(fs::write(bob.path(format!("{shared}/a.txt")), b"no")),
        Some(libc::EACCES)
    );
    assert_eq!(
        fs::read(bob.path(format!("{shared}/c.txt"))).unwrap(),
        b"more from ann\n",
        "a reader still reads"
    );

    // Made an editor again, Bob starts a change and keeps the file open
    // (so it is not uploaded yet) when Ann takes him off the folder.
    share(&ann, "Photos", "editor");
    wait_until("Bob's copy of Photos to be writable again", SYNC, || {
        mode(&bob.path(shared)) & 0o200 != 0
    });
    let mut open = fs::File::create(bob.path(format!("{shared}/draft.txt"))).unwrap();
    open.write_all(b"not uploaded yet\n").unwrap();
    let said = ann.run_meshfs(&["unshare", ann.path("Photos").to_str().unwrap(), BOB]);
    assert!(said.contains("no longer a member"), "{said}");
    wait_until("the shared folder to leave Bob's mount", SYNC, || {
        !names(bob.mountpoint()).contains(&shared.to_owned())
    });
    drop(open);
    assert_eq!(names(bob.mountpoint()), ["Photos"]);
    assert_eq!(
        fs::read(bob.path("Photos/mine.txt")).unwrap(),
        b"bob's own\n"
    );
    // Bob's unfinished change is kept on his device, not lost.
    let status = bob.status();
    assert_eq!(status["recovered_files"], 1, "{status:#}");
    let recovered = Path::new(status["recovered"].as_str().unwrap()).join(shared);
    let kept: Vec<_> = fs::read_dir(&recovered)
        .unwrap_or_else(|e| panic!("{}: {e}", recovered.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("draft (conflict from bob-desktop "),
        "{kept:?}"
    );
    assert_eq!(fs::read(&kept[0]).unwrap(), b"not uploaded yet\n");
    // Ann's folder is whole, without Bob's draft.
    assert_eq!(names(&ann.path("Photos")), ["a.txt", "b.txt", "c.txt"]);
}

/// Ann shares `folder` with Bob as an editor and Bob accepts it by the
/// invitation's id; returns its name in Bob's mount.
fn shared_with_bob(ann: &Device, bob: &Device, folder: &str) -> String {
    fs::create_dir(ann.path(folder)).unwrap();
    share(ann, folder, "editor");
    let listed: serde_json::Value =
        serde_json::from_str(&bob.run_meshfs(&["invitations", "--json"])).unwrap();
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["object_name"] == folder)
        .unwrap_or_else(|| panic!("no invitation to {folder}: {listed:#}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.run_meshfs(&["accept", &id]);
    wait_until(&format!("{folder} to appear in Bob's mount"), SYNC, || {
        names(bob.mountpoint()).contains(&folder.to_owned())
    });
    folder.to_owned()
}

/// Closes `file` as an application does, with the result `close` gives.
fn close(file: fs::File) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    // SAFETY: the descriptor was just taken from `file`, which owned it.
    match unsafe { libc::close(file.into_raw_fd()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The one file kept in Bob's `recovered/` for `folder`: its name and bytes.
fn kept_copy(bob: &Device, folder: &str) -> (String, Vec<u8>) {
    let status = bob.status();
    let dir = Path::new(status["recovered"].as_str().unwrap()).join(folder);
    let kept: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    (
        kept[0].file_name().unwrap().to_string_lossy().into_owned(),
        fs::read(&kept[0]).unwrap(),
    )
}

#[test]
fn a_file_open_for_writing_when_its_folder_leaves_or_turns_read_only_keeps_every_byte() {
    let server = Server::start();
    server.add_user(ANN);
    server.add_user(BOB);
    let ann = Device::mount(&server, ANN, "ann-laptop");
    let bob = Device::mount(&server, BOB, "bob-desktop");

    // Removed from the folder while writing: the handle keeps working.
    let notes = shared_with_bob(&ann, &bob, "Notes");
    let mut open = fs::File::create(bob.path(format!("{notes}/draft.txt"))).unwrap();
    open.write_all(b"before removal\n").unwrap();
    ann.run_meshfs(&["unshare", ann.path("Notes").to_str().unwrap(), BOB]);
    wait_until("Notes to leave Bob's mount", SYNC, || {
        !names(bob.mountpoint()).contains(&notes)
    });
    open.write_all(b"after removal\n").unwrap();
    open.sync_all()
        .expect("fsync of a file whose folder left the mount");
    assert_eq!(open.metadata().unwrap().len(), 29, "fstat sees every byte");
    close(open).expect("closing a file whose folder left the mount");
    let (name, bytes) = kept_copy(&bob, &notes);
    assert!(
        name.starts_with("draft (conflict from bob-desktop "),
        "{name}"
    );
    assert_eq!(bytes, b"before removal\nafter removal\n");
    assert_eq!(bob.status()["recovered_files"], 1);
    assert!(
        bob.log().contains("can no longer reach the server"),
        "the log says where the change went"
    );

    // Made a reader while writing: the same.
    let drafts = shared_with_bob(&ann, &bob, "Drafts");
    fs::write(bob.path(format!("{drafts}/other.txt")), b"pushed\n").unwrap();
    wait_for_entry(&ann, "Drafts/other.txt", file(b"pushed\n"));
    let mut open = fs::File::create(bob.path(format!("{drafts}/draft.txt"))).unwrap();
    open.write_all(b"before demotion\n").unwrap();
    share(&ann, "Drafts", "reader");
    wait_until("Drafts to turn read-only for Bob", SYNC, || {
        mode(&bob.path(&drafts)) & 0o222 == 0
    });
    open.write_all(b"after demotion\n").unwrap();
    close(open).expect("closing a file whose folder turned read-only");
    wait_until("the change to be taken back", SYNC, || {
        bob.status()["recovered_files"] == 2
    });
    let (name, bytes) = kept_copy(&bob, &drafts);
    assert!(
        name.starts_with("draft (conflict from bob-desktop "),
        "{name}"
    );
    assert_eq!(bytes, b"before demotion\nafter demotion\n");
    assert_eq!(names(&bob.path(&drafts)), ["other.txt"]);
    assert_eq!(names(&ann.path("Drafts")), ["other.txt"]);
}

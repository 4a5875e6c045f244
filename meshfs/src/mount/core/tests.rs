//! The filesystem core driven directly, without a kernel: its server is
//! the in-memory one taken away by a fault, so anything that would need
//! the network fails, and everything local-first must still work. (Sync
//! with the server present is tested in `mount::sync::tests`.)

use chrono::{TimeZone, Utc};
use mesh_protocol::api::{MeshObject, ObjectId, Role, UserId};
use mesh_protocol::content::ContentRef;
use mesh_protocol::feedsync::{Body, Item, SyncId};
use mesh_protocol::folder::{EntryData, EntryKind};
use std::sync::Arc;

use super::attrs::SetIdBits;
use super::namespace::NewNode;
use super::testing::{core_in, new_node};
use super::*;
use crate::client::MeshApi;
use crate::client::faulty::FaultyApi;
use crate::client::memory::MemoryServer;
use crate::mount::error::FsError;
use crate::mount::meta;

/// The fixture device's id.
const THIS_DEVICE: &str = "0000000a-0000-4000-8000-00000000000a";

struct Fixture {
    core: Core,
    folder: u64,
    object: ObjectId,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn fixture(role: Role) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let device = THIS_DEVICE.parse().unwrap();
    let (api, faults) =
        FaultyApi::new(MemoryServer::new().sign_in(UserId::generate(), device, "laptop"));
    faults.set_offline(true);
    let api: Arc<dyn MeshApi> = Arc::new(api);
    let core = core_in(
        dir.path(),
        api,
        runtime.handle().clone(),
        Settings {
            user: "user-a".into(),
            device: THIS_DEVICE.into(),
            device_name: "laptop".into(),
            uid: 1000,
            gid: 1000,
        },
    );
    let object = ObjectId::generate();
    let folder = core
        .transact(|tx| {
            let mut root = core.folder_root(
                tx,
                &MeshObject {
                    id: object,
                    kind: "folder".into(),
                    name: "Docs".into(),
                    owner: UserId::generate(),
                    owner_email: "ann@example.org".into(),
                    role,
                    created: Utc::now(),
                    updated: Utc::now(),
                },
            )?;
            meta::save(tx, &mut root)?;
            Ok(root.ino)
        })
        .unwrap();
    Fixture {
        core,
        folder,
        object,
        _runtime: runtime,
        _dir: dir,
    }
}

fn names(core: &Core, dir: u64) -> Vec<String> {
    let mut names: Vec<String> = core
        .list_all(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

#[test]
fn files_are_created_written_read_renamed_and_removed_locally() {
    let f = fixture(Role::Owner);
    let c = &f.core;
    assert_eq!(names(c, meta::ROOT), ["Docs"]);
    let (attr, fh) = c.create(f.folder, "a.txt", 0o644, 1000, 1000).unwrap();
    assert_eq!(c.write(fh, 0, b"hello world", SetIdBits::Keep).unwrap(), 11);
    assert_eq!(c.write(fh, 6, b"there", SetIdBits::Keep).unwrap(), 5);
    assert_eq!(&c.read(fh, 0, 100).unwrap()[..], b"hello there");
    assert_eq!(&c.read(fh, 6, 3).unwrap()[..], b"the");
    assert_eq!(&c.read(fh, 100, 3).unwrap()[..], b"");
    c.release(fh).unwrap();
    assert_eq!(c.getattr(attr.ino).unwrap().size, 11);
    assert_eq!(c.lookup(f.folder, "a.txt").unwrap().ino, attr.ino);

    let sub = c
        .make_node(f.folder, "sub", new_node(EntryKind::Dir))
        .unwrap();
    c.rename(f.folder, "a.txt", sub.ino, "b.txt", false)
        .unwrap();
    assert_eq!(names(c, f.folder), ["sub"]);
    assert_eq!(names(c, sub.ino), ["b.txt"]);
    assert_eq!(
        c.lookup(sub.ino, "b.txt").unwrap().ino,
        attr.ino,
        "a rename keeps the inode"
    );
    assert_eq!(c.getattr(f.folder).unwrap().nlink, 3);

    // Every change is in the outbox, in order, nothing pushed yet.
    let outbox = c.query(|conn| Ok(meta::outbox(conn, 100)?)).unwrap();
    let order: Vec<&str> = outbox.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order, ["sub", "b.txt"]);

    // Unlinking a file the server never saw forgets it at once.
    c.unlink(sub.ino, "b.txt").unwrap();
    assert!(matches!(c.lookup(sub.ino, "b.txt"), Err(FsError::NotFound)));
    assert!(matches!(c.getattr(attr.ino), Err(FsError::NotFound)));
    c.rmdir(f.folder, "sub").unwrap();
    assert!(names(c, f.folder).is_empty());
}

/// A listing read in replies that hold `per_reply` entries, as the kernel
/// reads it: each reply goes on from the offset of the last entry taken.
fn listed_in_replies(c: &Core, dir: u64, per_reply: usize, between: impl Fn(usize)) -> Vec<String> {
    let (mut names, mut offset, mut reply) = (Vec::new(), 0, 0);
    loop {
        let mut taken = Vec::new();
        c.readdir(dir, offset, |e| {
            if taken.len() == per_reply {
                return std::ops::ControlFlow::Break(());
            }
            taken.push(e);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        let Some(last) = taken.last() else {
            return names;
        };
        offset = last.offset;
        names.extend(taken.into_iter().map(|e| e.name));
        between(reply);
        reply += 1;
    }
}

#[test]
fn a_listing_in_many_replies_shows_each_entry_once() {
    let f = fixture(Role::Owner);
    let c = &f.core;
    let mut made: Vec<String> = (0..300).map(|i| format!("f{i:03}")).collect();
    for name in &made {
        c.make_node(f.folder, name, new_node(EntryKind::File))
            .unwrap();
    }
    let mut expected = vec![".".to_owned(), "..".to_owned()];
    expected.extend(made.iter().cloned());
    for per_reply in [1, 7, 200, 1000] {
        assert_eq!(listed_in_replies(c, f.folder, per_reply, |_| {}), expected);
    }
    // Changes between two replies: an entry not listed yet that is removed
    // is not shown, one made is (it has the newest inode), and nothing
    // already listed comes again.
    let listed = listed_in_replies(c, f.folder, 50, |reply| {
        if reply == 0 {
            c.unlink(f.folder, "f299").unwrap();
            c.make_node(f.folder, "new", new_node(EntryKind::File))
                .unwrap();
        }
    });
    made.retain(|n| n != "f299");
    made.push("new".into());
    assert_eq!(listed[2..], made[..]);
    let file = c.lookup(f.folder, "new").unwrap().ino;
    assert!(matches!(
        c.readdir(file, 0, |_| std::ops::ControlFlow::Continue(())),
        Err(FsError::NotDir)
    ));
}

fn errno<T>(r: Result<T, FsError>) -> Option<i32> {
    r.err().map(|e| e.errno())
}

#[test]
fn errors_are_the_ones_posix_asks_for() {
    let f = fixture(Role::Owner);
    let c = &f.core;
    let dir = c
        .make_node(f.folder, "d", new_node(EntryKind::Dir))
        .unwrap();
    let inner = c
        .make_node(dir.ino, "inner", new_node(EntryKind::Dir))
        .unwrap();
    c.make_node(dir.ino, "file", new_node(EntryKind::File))
        .unwrap();
    assert_eq!(
        errno(c.make_node(f.folder, "d", new_node(EntryKind::File))),
        Some(libc::EEXIST)
    );
    assert_eq!(
        errno(c.make_node(f.folder, &"x".repeat(256), new_node(EntryKind::File))),
        Some(libc::ENAMETOOLONG)
    );
    assert_eq!(errno(c.rmdir(f.folder, "d")), Some(libc::ENOTEMPTY));
    assert_eq!(errno(c.unlink(f.folder, "d")), Some(libc::EISDIR));
    assert_eq!(errno(c.rmdir(dir.ino, "file")), Some(libc::ENOTDIR));
    assert_eq!(
        errno(c.rename(f.folder, "d", inner.ino, "loop", false)),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(c.rename(dir.ino, "file", f.folder, "d", false)),
        Some(libc::EISDIR)
    );
    assert_eq!(
        errno(c.rename(dir.ino, "inner", dir.ino, "file", false)),
        Some(libc::ENOTDIR)
    );
    assert_eq!(
        errno(c.rename(dir.ino, "file", dir.ino, "inner", true)),
        Some(libc::EEXIST)
    );
    assert_eq!(errno(c.lookup(f.folder, "missing")), Some(libc::ENOENT));
    assert_eq!(
        errno(c.make_node(meta::ROOT, "plain", new_node(EntryKind::File))),
        Some(libc::EACCES)
    );
    assert_eq!(
        errno(c.rename(dir.ino, "file", meta::ROOT, "file", false)),
        Some(libc::EXDEV)
    );
    // Creating a Live Folder needs the server, which is not there: a clear
    // error, and nothing changes.
    assert_eq!(
        errno(c.make_node(meta::ROOT, "New", new_node(EntryKind::Dir))),
        Some(libc::EIO)
    );
    assert_eq!(names(c, meta::ROOT), ["Docs"]);
    assert_eq!(names(c, dir.ino), ["file", "inner"]);
}

#[test]
fn rename_over_a_file_replaces_it_as_editors_expect() {
    let f = fixture(Role::Owner);
    let c = &f.core;
    for (name, text) in [("doc.txt", "old"), (".doc.txt.swp", "new")] {
        let (_, fh) = c.create(f.folder, name, 0o644, 1000, 1000).unwrap();
        c.write(fh, 0, text.as_bytes(), SetIdBits::Keep).unwrap();
        c.release(fh).unwrap();
    }
    c.rename(f.folder, ".doc.txt.swp", f.folder, "doc.txt", false)
        .unwrap();
    assert_eq!(names(c, f.folder), ["doc.txt"]);
    let ino = c.lookup(f.folder, "doc.txt").unwrap().ino;
    let fh = c.open(ino, false, false).unwrap();
    assert_eq!(&c.read(fh, 0, 10).unwrap()[..], b"new");
}

#[test]
fn set_id_bits_go_when_the_kernel_says_as_linux_drops_them() {
    let f = fixture(Role::Owner);
    let c = &f.core;
    let set = |ino, set| c.setattr(ino, set).unwrap();
    let chmod = |ino, mode| {
        set(
            ino,
            attrs::SetAttr {
                mode: Some(mode),
                ..Default::default()
            },
        )
    };
    let perm = |ino| c.getattr(ino).unwrap().perm;
    let (a, fh) = c.create(f.folder, "a", 0o644, 1000, 1000).unwrap();
    chmod(a.ino, 0o6755);
    c.write(fh, 0, b"x", SetIdBits::Keep).unwrap();
    assert_eq!(perm(a.ino), 0o6755, "a writer with CAP_FSETID keeps them");
    c.write(fh, 1, b"y", SetIdBits::Drop).unwrap();
    assert_eq!(perm(a.ino), 0o755);
    // Set-group-ID without group execute marks mandatory locking: it stays.
    chmod(a.ino, 0o6644);
    c.append(fh, b"z", SetIdBits::Drop).unwrap();
    assert_eq!(perm(a.ino), 0o2644);
    c.release(fh).unwrap();
    chmod(a.ino, 0o4755);
    let truncated = attrs::SetAttr {
        size: Some(1),
        set_id: SetIdBits::Drop,
        ..Default::default()
    };
    assert_eq!(set(a.ino, truncated).perm, 0o755);
    chmod(a.ino, 0o4755);
    let given_away = attrs::SetAttr {
        uid: Some(4321),
        set_id: SetIdBits::Drop,
        ..Default::default()
    };
    let after = set(a.ino, given_away);
    assert_eq!((after.perm, after.uid), (0o755, 4321));
    // Directories keep theirs.
    let d = c
        .make_node(f.folder, "d", new_node(EntryKind::Dir))
        .unwrap();
    chmod(d.ino, 0o2775);
    let regrouped = attrs::SetAttr {
        gid: Some(5),
        set_id: SetIdBits::Drop,
        ..Default::default()
    };
    assert_eq!(set(d.ino, regrouped).perm, 0o2775);
}

#[test]
fn attributes_and_extended_attributes() {
    let f = fixture(Role::Owner);
    let c = &f.core;
    let a = c
        .make_node(f.folder, "f", new_node(EntryKind::File))
        .unwrap();
    let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
    let set = attrs::SetAttr {
        mode: Some(0o600),
        mtime: Some(attrs::TimeSet::At(at)),
        size: Some(5),
        ..Default::default()
    };
    let after = c.setattr(a.ino, set).unwrap();
    assert_eq!(after.perm, 0o600);
    assert_eq!(after.mtime, at, "nanoseconds are kept");
    assert_eq!(after.size, 5);
    c.setxattr(a.ino, "user.colour", b"blue", true, false)
        .unwrap();
    assert_eq!(c.getxattr(a.ino, "user.colour").unwrap(), b"blue");
    assert_eq!(c.listxattr(a.ino).unwrap(), b"user.colour\0");
    assert!(matches!(
        c.setxattr(a.ino, "user.colour", b"red", true, false),
        Err(FsError::Exists)
    ));
    assert!(matches!(
        c.setxattr(a.ino, "trusted.x", b"1", false, false),
        Err(FsError::NotSupported(_))
    ));
    for name in ["security.selinux", "system.posix_acl_access", "trusted.x"] {
        assert!(matches!(
            c.getxattr(a.ino, name),
            Err(FsError::OtherNamespace)
        ));
    }
    c.removexattr(a.ino, "user.colour").unwrap();
    assert!(matches!(
        c.getxattr(a.ino, "user.colour"),
        Err(FsError::NoAttribute)
    ));
    let l = c
        .make_node(
            f.folder,
            "l",
            NewNode {
                target: Some("f"),
                ..new_node(EntryKind::Symlink)
            },
        )
        .unwrap();
    assert_eq!(c.readlink(l.ino).unwrap(), "f");
    assert_eq!(l.size, 1);
}

#[test]
fn a_reader_cannot_change_anything() {
    let f = fixture(Role::Reader);
    let c = &f.core;
    assert_eq!(c.getattr(f.folder).unwrap().perm, 0o555);
    let e = c
        .make_node(f.folder, "x", new_node(EntryKind::File))
        .unwrap_err();
    assert_eq!(e.errno(), libc::EACCES);
}

/// An item as another device would post it.
fn remote_item(id: &str, name: &str, parent: Option<&str>, kind: EntryKind) -> Item {
    let data = EntryData {
        name: name.into(),
        parent: parent.map(str::to_owned),
        kind,
        mode: 0o644,
        mtime: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        target: None,
        rdev: 0,
        xattrs: Default::default(),
        conflict_of: None,
    };
    let body = Body {
        data: Some(serde_json::to_value(&data).unwrap()),
        enclosure: (kind == EntryKind::File).then(ContentRef::empty),
        ..Body::default()
    };
    Item::create(
        SyncId::parse(id).unwrap(),
        body,
        false,
        Utc::now(),
        "device-b",
    )
}

fn apply_all(f: &Fixture, items: &[Item]) {
    f.core
        .transact(|tx| {
            let mut invalidations = Vec::new();
            let root = meta::by_entry(tx, f.object, "")?.expect("the folder's root");
            for item in items {
                f.core.apply(tx, &root, item, &mut invalidations)?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn name_clashes_resolve_the_same_way_in_any_order() {
    let a = remote_item("urn:uuid:a", "same.txt", None, EntryKind::File);
    let b = remote_item("urn:uuid:b", "same.txt", None, EntryKind::File);
    for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let f = fixture(Role::Owner);
        apply_all(&f, &order);
        assert_eq!(names(&f.core, f.folder), ["same (2).txt", "same.txt"]);
        let first = f.core.lookup(f.folder, "same.txt").unwrap().ino;
        let node = f.core.query(|c| Ok(meta::get(c, first)?)).unwrap().unwrap();
        assert_eq!(
            node.sync_id, "urn:uuid:a",
            "the smaller sync id keeps the name"
        );
    }
}

#[test]
fn orphans_show_at_the_top_until_their_parent_arrives_and_cycles_are_broken() {
    let f = fixture(Role::Owner);
    let child = remote_item(
        "urn:uuid:child",
        "child.txt",
        Some("urn:uuid:dir"),
        EntryKind::File,
    );
    let dir = remote_item("urn:uuid:dir", "dir", None, EntryKind::Dir);
    apply_all(&f, std::slice::from_ref(&child));
    assert_eq!(names(&f.core, f.folder), ["child.txt"]);
    apply_all(&f, std::slice::from_ref(&dir));
    assert_eq!(names(&f.core, f.folder), ["dir"]);
    let d = f.core.lookup(f.folder, "dir").unwrap().ino;
    assert_eq!(names(&f.core, d), ["child.txt"]);

    // Two directories each inside the other: neither is lost.
    let x = remote_item("urn:uuid:x", "x", Some("urn:uuid:y"), EntryKind::Dir);
    let y = remote_item("urn:uuid:y", "y", Some("urn:uuid:x"), EntryKind::Dir);
    apply_all(&f, &[x, y]);
    let all = names(&f.core, f.folder);
    assert!(
        all.contains(&"x".to_owned()) || all.contains(&"y".to_owned()),
        "{all:?}"
    );

    // A directory deleted elsewhere: its children stay visible.
    let mut gone = dir.clone();
    gone.delete(Utc::now(), "device-b");
    apply_all(&f, &[gone]);
    assert!(names(&f.core, f.folder).contains(&"child.txt".to_owned()));
}

/// `item` as another device changed it: moved under `parent` (a sync id).
fn moved(item: &Item, name: &str, parent: Option<&str>) -> Item {
    let mut item = item.clone();
    let body = remote_item(item.id().as_str(), name, parent, EntryKind::Dir)
        .current
        .body;
    item.update(body, false, Utc::now(), "device-b");
    item
}

#[test]
fn an_entry_put_aside_by_a_cycle_goes_back_once_a_later_move_undoes_it() {
    let f = fixture(Role::Owner);
    // a, b in a, c in b.
    let a = remote_item("urn:uuid:a", "a", None, EntryKind::Dir);
    let b = remote_item("urn:uuid:b", "b", Some("urn:uuid:a"), EntryKind::Dir);
    let c = remote_item("urn:uuid:c", "c", Some("urn:uuid:b"), EntryKind::Dir);
    apply_all(&f, &[a.clone(), b.clone(), c]);
    // Elsewhere: b moved to the top, then a into c, then b renamed: the
    // feed has a's latest state before b's, so a's new parent chain runs
    // through the b still inside a, a cycle until b's state is applied.
    let a2 = moved(&a, "a", Some("urn:uuid:c"));
    let b2 = moved(&b, "b2", None);
    apply_all(&f, &[a2, b2]);
    assert_eq!(names(&f.core, f.folder), ["b2"]);
    let b = f.core.lookup(f.folder, "b2").unwrap().ino;
    let c = f.core.lookup(b, "c").unwrap().ino;
    assert_eq!(names(&f.core, c), ["a"]);
}

#[test]
fn a_version_of_this_device_that_lost_is_kept_as_a_visible_copy() {
    let f = fixture(Role::Owner);
    // The entry as both devices had it, then each changed it.
    let base = remote_item("urn:uuid:doc", "doc.txt", None, EntryKind::File);
    apply_all(&f, std::slice::from_ref(&base));
    let mut ours = base.clone();
    let mut edited = base.current.body.clone();
    edited.enclosure = Some(
        mesh_protocol::content::content_of(&b"our words"[..])
            .unwrap()
            .0,
    );
    ours.update(
        edited,
        false,
        Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        THIS_DEVICE,
    );
    let mut theirs = base.clone();
    theirs.update(
        base.current.body.clone(),
        false,
        Utc.timestamp_opt(1_800_000_009, 0).unwrap(),
        "device-b",
    );
    let merged = mesh_protocol::feedsync::merge(Some(&ours), &theirs)
        .unwrap()
        .item;
    assert_eq!(
        merged.current.top().by.as_deref(),
        Some("device-b"),
        "the later change wins"
    );
    apply_all(&f, &[merged]);

    let mut all = names(&f.core, f.folder);
    all.sort();
    assert_eq!(
        all,
        ["doc (conflict from laptop 2027-01-15).txt", "doc.txt"]
    );
    // Both the copy and the settling update of the original are queued.
    let outbox = f.core.query(|c| Ok(meta::outbox(c, 10)?)).unwrap();
    assert_eq!(outbox.len(), 2);
}

/// Two concurrent versions of `base`, by this device and another; the
/// other's is later, so it wins.
fn lost_and_won(base: &Item, ours: Body, theirs: Body) -> Item {
    let mut mine = base.clone();
    mine.update(
        ours,
        false,
        Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        THIS_DEVICE,
    );
    let mut other = base.clone();
    other.update(
        theirs,
        false,
        Utc.timestamp_opt(1_800_000_009, 0).unwrap(),
        "device-b",
    );
    mesh_protocol::feedsync::merge(Some(&mine), &other)
        .unwrap()
        .item
}

fn renamed(body: &Body, name: &str) -> Body {
    let mut data = EntryData::from_body(body).unwrap();
    data.name = name.into();
    let mut body = body.clone();
    body.data = Some(serde_json::to_value(&data).unwrap());
    body
}

#[test]
fn a_lost_rename_keeps_no_copy_since_no_content_is_lost() {
    let f = fixture(Role::Owner);
    for (id, name, kind) in [
        ("urn:uuid:doc", "doc.txt", EntryKind::File),
        ("urn:uuid:dir", "dir", EntryKind::Dir),
    ] {
        let base = remote_item(id, name, None, kind);
        apply_all(&f, std::slice::from_ref(&base));
        let body = &base.current.body;
        let merged = lost_and_won(
            &base,
            renamed(body, &format!("ours-{name}")),
            renamed(body, &format!("theirs-{name}")),
        );
        apply_all(&f, &[merged]);
    }
    let mut all = names(&f.core, f.folder);
    all.sort();
    assert_eq!(all, ["theirs-dir", "theirs-doc.txt"]);
    // Only the updates that settle the two conflicts are queued.
    let outbox = f.core.query(|c| Ok(meta::outbox(c, 10)?)).unwrap();
    assert_eq!(outbox.len(), 2);
    assert!(outbox.iter().all(|n| n.conflict_of.is_none()));
}

#[test]
fn pins_are_inherited_and_a_nodes_own_setting_wins() {
    let f = fixture(Role::Owner);
    let dir = f
        .core
        .make_node(f.folder, "Photos", new_node(EntryKind::Dir))
        .unwrap()
        .ino;
    let (a, fh) = f.core.create(dir, "a.jpg", 0o644, 1000, 1000).unwrap();
    f.core.release(fh).unwrap();
    let (b, fh) = f.core.create(dir, "b.jpg", 0o644, 1000, 1000).unwrap();
    f.core.release(fh).unwrap();
    assert!(!f.core.pinned(a.ino).unwrap());

    f.core.set_pinned(dir, true).unwrap();
    assert!(f.core.pinned(a.ino).unwrap() && f.core.pinned(b.ino).unwrap());
    f.core.set_pinned(b.ino, false).unwrap();
    assert!(f.core.pinned(a.ino).unwrap() && !f.core.pinned(b.ino).unwrap());
    // Files added later are pinned too.
    let (c, fh) = f.core.create(dir, "c.jpg", 0o644, 1000, 1000).unwrap();
    f.core.release(fh).unwrap();
    assert!(f.core.pinned(c.ino).unwrap());
    // Pinning the folder again pins everything below it.
    f.core.set_pinned(dir, true).unwrap();
    assert!(f.core.pinned(b.ino).unwrap());
    // The whole mount.
    f.core.set_pinned(dir, false).unwrap();
    assert!(!f.core.pinned(a.ino).unwrap());
    f.core.set_pinned(ROOT, true).unwrap();
    assert!(f.core.pinned(a.ino).unwrap() && f.core.pinned(f.folder).unwrap());
    assert_eq!(
        f.core.getxattr(a.ino, "user.mesh.pinned").unwrap(),
        b"1".to_vec()
    );
    f.core.removexattr(f.folder, "user.mesh.pinned").unwrap();
    assert!(!f.core.pinned(a.ino).unwrap());
    assert!(matches!(
        f.core
            .setxattr(a.ino, "user.mesh.pinned", b"maybe", false, false),
        Err(FsError::Invalid(_))
    ));
    // Computed attributes are never listed, so copies do not carry them.
    assert!(f.core.listxattr(a.ino).unwrap().is_empty());
}

#[test]
fn file_states_tell_pending_from_synced_content() {
    let f = fixture(Role::Owner);
    let (a, fh) = f
        .core
        .create(f.folder, "new.txt", 0o644, 1000, 1000)
        .unwrap();
    f.core.write(fh, 0, b"hello", SetIdBits::Keep).unwrap();
    f.core.release(fh).unwrap();
    let state = |ino| f.core.getxattr(ino, "user.mesh.state").unwrap();
    assert_eq!(state(a.ino), b"pending".to_vec());
    // From the server, with content not on this device.
    let mut item = remote_item("urn:uuid:far", "far.bin", None, EntryKind::File);
    item.current.body.enclosure = Some(
        mesh_protocol::content::content_of(&b"far away"[..])
            .unwrap()
            .0,
    );
    apply_all(&f, &[item]);
    let far = f.core.lookup(f.folder, "far.bin").unwrap().ino;
    assert_eq!(state(far), b"cloud".to_vec());
    f.core.set_pinned(far, true).unwrap();
    assert_eq!(state(far), b"pinned".to_vec());
    assert!(matches!(
        f.core
            .setxattr(far, "user.mesh.state", b"cached", false, false),
        Err(FsError::NotPermitted(_))
    ));
    // The outbox, as `meshfs status` reads it.
    let outbox = f.core.query(|c| Ok(status::Outbox::read(c)?)).unwrap();
    assert_eq!(outbox.pending_changes, 1);
    assert!(outbox.oldest_pending.is_some());
}

#[test]
fn a_folder_made_read_only_takes_back_unpushed_changes_and_keeps_their_content() {
    let f = fixture(Role::Editor);
    let base = remote_item("urn:uuid:doc", "doc.txt", None, EntryKind::File);
    apply_all(&f, std::slice::from_ref(&base));
    let doc = f.core.lookup(f.folder, "doc.txt").unwrap().ino;
    f.core
        .rename(f.folder, "doc.txt", f.folder, "renamed.txt", false)
        .unwrap();
    let (new, fh) = f
        .core
        .create(f.folder, "new.txt", 0o644, 1000, 1000)
        .unwrap();
    f.core
        .write(fh, 0, b"written here", SetIdBits::Keep)
        .unwrap();
    f.core.release(fh).unwrap();

    // The user's role became reader.
    f.core
        .transact(|tx| {
            let mut root = Core::node(tx, f.folder)?;
            root.role = Some(Role::Reader);
            meta::save(tx, &mut root)?;
            Ok(())
        })
        .unwrap();
    f.core.forget_roles();
    assert_eq!(
        f.core.getattr(doc).unwrap().perm & 0o222,
        0,
        "read-only modes"
    );
    f.core.revert_unwritable(f.object).unwrap();

    assert_eq!(names(&f.core, f.folder), ["doc.txt"]);
    assert!(f.core.getattr(new.ino).is_err());
    let outbox = f.core.query(|c| Ok(meta::outbox(c, 10)?)).unwrap();
    assert!(outbox.is_empty(), "{outbox:?}");
    let kept = f.core.recovered.join("Docs");
    let files: Vec<_> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with("new (conflict from laptop "),
        "{files:?}"
    );
    assert_eq!(
        std::fs::read(kept.join(&files[0])).unwrap(),
        b"written here"
    );
}

/// The one file in the fixture's `recovered/Docs`: its name and bytes.
fn kept_in_docs(f: &Fixture) -> (String, Vec<u8>) {
    let dir = f.core.recovered.join("Docs");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    (
        files[0].file_name().unwrap().to_string_lossy().into_owned(),
        std::fs::read(&files[0]).unwrap(),
    )
}

#[test]
fn a_file_open_for_writing_when_its_folder_turns_read_only_goes_on_in_its_kept_copy() {
    let f = fixture(Role::Editor);
    let c = &f.core;
    let (new, fh) = c.create(f.folder, "draft.txt", 0o644, 1000, 1000).unwrap();
    c.write(fh, 0, b"before ", SetIdBits::Keep).unwrap();
    let reader = c.open(new.ino, false, false).unwrap();
    c.transact(|tx| {
        let mut root = Core::node(tx, f.folder)?;
        root.role = Some(Role::Reader);
        meta::save(tx, &mut root)?;
        Ok(())
    })
    .unwrap();
    c.forget_roles();
    c.revert_unwritable(f.object).unwrap();
    assert!(c.getattr(new.ino).is_err(), "made here, so taken back");

    // The handle goes on: writes, appends, reads, fstat, fsync, close.
    c.write(fh, 7, b"after", SetIdBits::Keep).unwrap();
    c.append(fh, b"!", SetIdBits::Keep).unwrap();
    assert_eq!(&c.read(fh, 0, 100).unwrap()[..], b"before after!");
    assert_eq!(c.getattr_open(new.ino, Some(fh)).unwrap().size, 13);
    c.fsync(fh).unwrap();
    let truncate = attrs::SetAttr {
        size: Some(14),
        ..Default::default()
    };
    assert_eq!(
        c.setattr_open(new.ino, Some(fh), truncate).unwrap().size,
        14
    );
    c.release(fh).unwrap();
    c.release(reader).unwrap();
    let (name, bytes) = kept_in_docs(&f);
    assert!(name.starts_with("draft (conflict from laptop "), "{name}");
    assert_eq!(bytes, b"before after!\0");
    let outbox = c.query(|conn| Ok(meta::outbox(conn, 10)?)).unwrap();
    assert!(outbox.is_empty(), "{outbox:?}");
    let recovered = c.query(|conn| Ok(status::Outbox::read(conn)?)).unwrap();
    assert_eq!(recovered.recovered_files, 1);
}

#[test]
fn a_file_open_for_writing_when_its_folder_leaves_the_mount_goes_on_in_its_kept_copy() {
    let f = fixture(Role::Editor);
    let c = &f.core;
    let base = remote_item("urn:uuid:doc", "doc.txt", None, EntryKind::File);
    apply_all(&f, std::slice::from_ref(&base));
    let doc = c.lookup(f.folder, "doc.txt").unwrap().ino;
    // Open for writing, nothing written yet: kept all the same.
    let fh = c.open(doc, true, false).unwrap();
    c.apply_folders(Vec::new(), c.folders_made()).unwrap();
    assert_eq!(names(c, meta::ROOT), Vec::<String>::new());
    c.write(fh, 0, b"written after", SetIdBits::Keep).unwrap();
    assert_eq!(&c.read(fh, 0, 100).unwrap()[..], b"written after");
    assert_eq!(c.getattr_open(doc, None).unwrap().size, 13, "fstat");
    c.release(fh).unwrap();
    let (name, bytes) = kept_in_docs(&f);
    assert!(name.starts_with("doc (conflict from laptop "), "{name}");
    assert_eq!(bytes, b"written after");
}

#[test]
fn open_files_are_published_by_path_and_others_show_in_user_mesh_users() {
    use mesh_protocol::api::DeviceId;
    use mesh_protocol::live::{AwarenessEntry, FolderAwareness, OpenFile};
    let f = fixture(Role::Editor);
    let c = &f.core;
    let sub = c
        .make_node(f.folder, "sub", new_node(EntryKind::Dir))
        .unwrap();
    let (file, writer) = c.create(sub.ino, "a.txt", 0o644, 1000, 1000).unwrap();
    let (other, fh) = c.create(f.folder, "b.txt", 0o644, 1000, 1000).unwrap();
    c.release(fh).unwrap();
    let reader = c.open(other.ino, false, false).unwrap();
    let sync_id = |ino| c.query(|conn| Ok(Core::node(conn, ino)?.sync_id)).unwrap();

    let open = c.open_files().unwrap();
    assert_eq!(
        open[&f.object],
        FolderAwareness {
            open: vec![
                OpenFile {
                    path: "b.txt".into(),
                    entry: sync_id(other.ino),
                    writing: false
                },
                OpenFile {
                    path: "sub/a.txt".into(),
                    entry: sync_id(file.ino),
                    writing: true
                },
            ]
        }
    );
    c.release(writer).unwrap();
    c.release(reader).unwrap();
    assert!(
        c.open_files().unwrap()[&f.object].open.is_empty(),
        "present, nothing open"
    );

    // Another device has a.txt open; this device's own entry never shows.
    let state = |entry: String| serde_json::json!({"open": [{"path": "sub/a.txt", "entry": entry, "writing": true}]});
    let entry = |device: DeviceId, email: &str, name: &str| AwarenessEntry {
        user: UserId::generate(),
        email: email.into(),
        device,
        device_name: name.into(),
        state: state(sync_id(file.ino)),
        updated: Utc::now(),
    };
    c.set_awareness(
        f.object,
        vec![
            entry(DeviceId::generate(), "bob@example.org", "desk"),
            entry(THIS_DEVICE.parse().unwrap(), "me@example.org", "laptop"),
        ],
    );
    assert_eq!(
        c.getxattr(file.ino, "user.mesh.users").unwrap(),
        b"bob@example.org on desk (writing)\n"
    );
    assert_eq!(c.getxattr(other.ino, "user.mesh.users").unwrap(), b"");
    assert_eq!(
        errno(c.setxattr(file.ino, "user.mesh.users", b"x", false, false)),
        Some(libc::EPERM)
    );
    c.set_awareness(f.object, Vec::new());
    assert_eq!(c.getxattr(file.ino, "user.mesh.users").unwrap(), b"");
}

#[test]
fn a_version_older_than_the_one_shown_changes_nothing() {
    let f = fixture(Role::Owner);
    let v1 = remote_item("urn:uuid:doc", "doc.txt", None, EntryKind::File);
    let mut v2 = v1.clone();
    let renamed = renamed(&v1.current.body, "report.txt");
    v2.update(renamed, false, Utc::now(), "device-b");
    apply_all(&f, &[v2]);
    // A page read before v2 arrived brings v1 late.
    apply_all(&f, &[v1]);
    assert_eq!(names(&f.core, f.folder), ["report.txt"]);
}

#[test]
fn a_name_given_up_goes_back_to_the_entry_that_wanted_it() {
    let f = fixture(Role::Owner);
    // Another device's entry arrives while one of this device's holds its
    // name, so it shows with a suffix.
    let ours = f
        .core
        .create(f.folder, "same.txt", 0o644, 1000, 1000)
        .unwrap();
    f.core.release(ours.1).unwrap();
    let theirs = remote_item("urn:uuid:zzzz", "same.txt", None, EntryKind::File);
    apply_all(&f, std::slice::from_ref(&theirs));
    assert_eq!(names(&f.core, f.folder), ["same (2).txt", "same.txt"]);
    // Once this device's entry goes, theirs shows under its own name, as
    // it does everywhere else.
    f.core.unlink(f.folder, "same.txt").unwrap();
    assert_eq!(names(&f.core, f.folder), ["same.txt"]);

    // The same when a clashing entry moves away on another device.
    let dir = remote_item("urn:uuid:dir", "dir", None, EntryKind::Dir);
    let a = remote_item("urn:uuid:a", "x", None, EntryKind::File);
    let b = remote_item("urn:uuid:b", "x", None, EntryKind::File);
    apply_all(&f, &[dir, a.clone(), b]);
    assert!(names(&f.core, f.folder).contains(&"x (2)".to_owned()));
    let mut moved = a.clone();
    let mut body = a.current.body.clone();
    let mut data = EntryData::from_body(&body).unwrap();
    data.parent = Some("urn:uuid:dir".into());
    body.data = Some(serde_json::to_value(&data).unwrap());
    moved.update(body, false, Utc::now(), "device-b");
    apply_all(&f, &[moved]);
    let top = names(&f.core, f.folder);
    assert!(
        top.contains(&"x".to_owned()) && !top.contains(&"x (2)".to_owned()),
        "{top:?}"
    );
}

#[test]
fn a_set_group_id_directory_hands_down_its_group_and_its_bit() {
    let f = fixture(Role::Owner);
    let d = f
        .core
        .make_node(f.folder, "d", new_node(EntryKind::Dir))
        .unwrap();
    let set = attrs::SetAttr {
        mode: Some(0o2775),
        gid: Some(4242),
        ..attrs::SetAttr::default()
    };
    f.core.setattr(d.ino, set).unwrap();
    let sub = f
        .core
        .make_node(d.ino, "x", new_node(EntryKind::Dir))
        .unwrap();
    assert_eq!((sub.perm, sub.gid), (0o2755, 4242));
    let (file, fh) = f.core.create(d.ino, "f", 0o644, 1000, 1000).unwrap();
    f.core.release(fh).unwrap();
    assert_eq!((file.perm, file.gid), (0o644, 4242));
}

#[test]
fn folder_names_no_path_can_hold_list_escaped_and_are_refused_when_given_here() {
    let f = fixture(Role::Owner);
    let hostile = ["a/b", ".", "..", "", "x\0y", "/tmp/x"];
    f.core
        .transact(|tx| {
            for name in hostile {
                let object = MeshObject {
                    id: ObjectId::generate(),
                    kind: "folder".into(),
                    name: name.into(),
                    owner: UserId::generate(),
                    owner_email: "ann@example.org".into(),
                    role: Role::Editor,
                    created: Utc::now(),
                    updated: Utc::now(),
                };
                let mut root = f.core.folder_root(tx, &object)?;
                meta::save(tx, &mut root)?;
            }
            Ok(())
        })
        .unwrap();
    let mut shown = vec![
        "a\u{ff0f}b",
        "\u{ff0e}",
        "\u{ff0e}\u{ff0e}",
        "\u{2400}",
        "x\u{2400}y",
        "\u{ff0f}tmp\u{ff0f}x",
        "Docs",
    ];
    shown.sort();
    assert_eq!(names(&f.core, ROOT), shown);
    let slash = f.core.lookup(ROOT, "a\u{ff0f}b").unwrap();
    assert!(f.core.list_all(slash.ino).is_ok());

    // A name the server would refuse is refused here, before asking it
    // (the fixture's server is unreachable, which would be EIO).
    for name in ["bell\u{7}", "esc\u{1b}[2J", "   "] {
        assert_eq!(
            errno(f.core.make_node(ROOT, name, new_node(EntryKind::Dir))),
            Some(libc::EINVAL),
            "{name:?}"
        );
        assert_eq!(
            errno(f.core.rename(ROOT, "Docs", ROOT, name, false)),
            Some(libc::EINVAL),
            "{name:?}"
        );
    }
}

//! Sync driven without a kernel or a process: several devices, each a
//! core and a syncer with a metadata cache and a chunk cache of its own,
//! against one in-memory server, with faults injected in front of each
//! device. Push, pull, the change stream, conflicts, offline work and a
//! dropped stream, checked by what each device then shows.

use mesh_protocol::api::{DeviceId, ObjectId, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Syncer;
use crate::client::MeshApi;
use crate::client::faulty::{Call, Fault, Faults, FaultyApi};
use crate::client::memory::MemoryServer;
use crate::mount::core::attrs::SetIdBits;
use crate::mount::core::status::Outbox;
use crate::mount::core::testing::{READER_WAIT, core_in, new_node};
use crate::mount::core::{Core, Settings};
use crate::mount::error::FsError;
use crate::mount::meta::{self, ROOT};
use mesh_protocol::folder::EntryKind;

/// One user's mesh: the server and the runtime the devices sync on.
struct Mesh {
    server: Arc<MemoryServer>,
    user: UserId,
    runtime: tokio::runtime::Runtime,
}

/// One device: its core, its syncer, and the faults in front of it.
struct Device {
    core: Arc<Core>,
    syncer: Arc<Syncer>,
    faults: Arc<Faults>,
    _dir: tempfile::TempDir,
}

impl Mesh {
    fn new() -> Mesh {
        Mesh {
            server: MemoryServer::new(),
            user: UserId::generate(),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn device(&self, name: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let id = DeviceId::generate();
        let (api, faults) = FaultyApi::new(self.server.sign_in(self.user, id, name));
        let api: Arc<dyn MeshApi> = Arc::new(api);
        let core = Arc::new(core_in(
            dir.path(),
            api,
            self.runtime.handle().clone(),
            Settings {
                user: self.user.to_string(),
                device: id.to_string(),
                device_name: name.to_owned(),
                uid: 1000,
                gid: 1000,
            },
        ));
        Device {
            syncer: Syncer::new(core.clone()),
            core,
            faults,
            _dir: dir,
        }
    }

    /// Pushes everything `device` has, then brings it up to date; returns
    /// how many changes it pushed.
    fn sync(&self, device: &Device) -> usize {
        self.runtime.block_on(async {
            let mut pushed = 0;
            loop {
                match device.syncer.push_once().await.unwrap() {
                    0 => break,
                    n => pushed += n,
                }
            }
            device.syncer.catch_up().await.unwrap();
            pushed
        })
    }

    /// Syncs `devices` in turn until a whole round pushes nothing and
    /// leaves nothing to push: each has then heard of everything.
    fn settle(&self, devices: &[&Device]) {
        for _ in 0..10 {
            let pushed: usize = devices.iter().map(|d| self.sync(d)).sum();
            if pushed == 0 && devices.iter().all(|d| d.outbox_len() == 0) {
                return;
            }
        }
        panic!("the devices do not settle");
    }

    /// Starts `device`'s syncing tasks, as a mount does.
    fn start(&self, device: &Device) {
        let _in_runtime = self.runtime.enter();
        device.syncer.start();
    }
}

impl Device {
    /// The inode of `path` (`/`-separated, the Live Folder first).
    fn ino(&self, path: &str) -> Result<u64, FsError> {
        let mut ino = ROOT;
        for name in path.split('/') {
            ino = self.core.lookup(ino, name)?.ino;
        }
        Ok(ino)
    }

    fn mkdir(&self, parent: u64, name: &str) -> u64 {
        let dir = new_node(EntryKind::Dir);
        self.core.make_node(parent, name, dir).unwrap().ino
    }

    /// Creates or replaces the file `name` in `dir`, as an editor saves.
    fn write(&self, dir: u64, name: &str, content: &[u8]) {
        let fh = match self.core.lookup(dir, name) {
            Ok(attr) => self.core.open(attr.ino, true, true).unwrap(),
            Err(_) => self.core.create(dir, name, 0o644, 1000, 1000).unwrap().1,
        };
        assert_eq!(
            self.core.write(fh, 0, content, SetIdBits::Keep).unwrap() as usize,
            content.len()
        );
        self.core.release(fh).unwrap();
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let ino = self.ino(path)?;
        let fh = self.core.open(ino, false, false)?;
        let read = self.core.read(fh, 0, 1 << 20);
        self.core.release(fh)?;
        read.map(Vec::from)
    }

    /// Every file below `dir` with its content, by path.
    fn files(&self, dir: u64, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in self.core.list_all(dir).unwrap() {
            if entry.name == "." || entry.name == ".." {
                continue;
            }
            let path = format!("{prefix}{}", entry.name);
            match entry.attr.kind {
                EntryKind::Dir => self.files(entry.attr.ino, &format!("{path}/"), out),
                _ => {
                    out.insert(path.clone(), self.read(&path).unwrap());
                }
            }
        }
    }

    /// What the whole mount shows: every file and its content.
    fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        self.files(ROOT, "", &mut out);
        out
    }

    fn outbox(&self) -> Outbox {
        self.core.query(|conn| Ok(Outbox::read(conn)?)).unwrap()
    }

    fn outbox_len(&self) -> usize {
        self.core
            .query(|conn| Ok(meta::outbox(conn, 1000)?))
            .unwrap()
            .len()
    }

    /// The mesh object the node `ino` belongs to.
    fn object_of(&self, ino: u64) -> ObjectId {
        self.core
            .query(|conn| Ok(meta::get(conn, ino)?))
            .unwrap()
            .expect("the node")
            .object
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tree_of(files: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(path, content)| (path.to_string(), content.to_vec()))
        .collect()
}

#[test]
fn what_one_device_writes_another_reads_after_a_push_and_a_pull() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    let notes = laptop.mkdir(docs, "notes");
    laptop.write(docs, "a.txt", b"hello");
    laptop.write(notes, "b.txt", &vec![7u8; 300_000]);
    assert_eq!(laptop.outbox_len(), 3);
    mesh.sync(&laptop);
    assert_eq!(laptop.outbox_len(), 0, "everything pushed is settled");

    mesh.sync(&phone);
    let expected = tree_of(&[
        ("Docs/a.txt", b"hello"),
        ("Docs/notes/b.txt", &vec![7u8; 300_000]),
    ]);
    assert_eq!(phone.tree(), expected);
    assert_eq!(laptop.tree(), expected);

    // A rename and a removal travel the same way.
    laptop
        .core
        .rename(docs, "a.txt", notes, "c.txt", false)
        .unwrap();
    laptop.core.unlink(notes, "b.txt").unwrap();
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.tree(), tree_of(&[("Docs/notes/c.txt", b"hello")]));
}

#[test]
fn a_read_the_server_is_slow_to_serve_fails_in_time_and_the_download_goes_on() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    let content = vec![3u8; 100_000];
    laptop.write(docs, "slow.bin", &content);
    mesh.settle(&[&laptop, &phone]);

    // The phone's link stalls for longer than a reader waits.
    let stall = READER_WAIT * 5;
    phone.faults.inject(Call::GetChunk, Fault::Delay(stall), 1);
    let asked = Instant::now();
    let first = phone.read("Docs/slow.bin");
    assert!(
        matches!(first, Err(FsError::TimedOut)),
        "a read the network cannot serve in time fails: {first:?}"
    );
    assert_eq!(first.unwrap_err().errno(), libc::EIO);
    assert!(
        asked.elapsed() < stall,
        "the read answered before the stalled download ended"
    );

    // The download went on: a later read gets the content, and it was
    // downloaded once.
    wait_until("the stalled download has arrived", || {
        phone.read("Docs/slow.bin").is_ok()
    });
    assert_eq!(phone.read("Docs/slow.bin").unwrap(), content);
    assert_eq!(phone.faults.calls(Call::GetChunk), 1);
}

#[test]
fn the_change_stream_brings_changes_unasked_and_a_cut_stream_misses_nothing() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    mesh.sync(&laptop);
    mesh.start(&phone);
    wait_until("the phone is online", || phone.core.health.is_online());
    laptop.write(docs, "first.txt", b"1");
    mesh.sync(&laptop);
    wait_until("the phone shows first.txt", || {
        phone.read("Docs/first.txt").is_ok()
    });

    // The phone's connection drops, and stays down while the laptop
    // changes something; once it is back the phone catches up.
    phone.faults.set_offline(true);
    wait_until("the phone knows it is offline", || {
        !phone.core.health.is_online()
    });
    laptop.write(docs, "second.txt", b"2");
    mesh.sync(&laptop);
    phone.faults.set_offline(false);
    wait_until("the phone shows second.txt", || {
        phone.read("Docs/second.txt").is_ok()
    });
    assert!(phone.core.health.is_online());

    // A stream cut without the server going away reconnects at once.
    let opened = phone.faults.calls(Call::Events);
    phone.faults.cut_streams();
    laptop.write(docs, "third.txt", b"3");
    mesh.sync(&laptop);
    wait_until("the phone shows third.txt", || {
        phone.read("Docs/third.txt").is_ok()
    });
    assert!(phone.faults.calls(Call::Events) > opened, "it reconnected");
    assert_eq!(
        phone.tree(),
        tree_of(&[
            ("Docs/first.txt", b"1"),
            ("Docs/second.txt", b"2"),
            ("Docs/third.txt", b"3"),
        ])
    );
}

#[test]
fn concurrent_edits_on_two_devices_keep_both_versions_everywhere() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "doc.txt", b"base");
    mesh.settle(&[&laptop, &phone]);

    // Both edit the same file without hearing of the other's edit.
    let phone_docs = phone.ino("Docs").unwrap();
    laptop.write(docs, "doc.txt", b"the laptop's words");
    phone.write(phone_docs, "doc.txt", b"the phone's words");
    mesh.settle(&[&laptop, &phone]);

    let seen = phone.tree();
    assert_eq!(laptop.tree(), seen, "both devices show the same");
    let mut contents: Vec<&[u8]> = seen.values().map(Vec::as_slice).collect();
    contents.sort();
    assert_eq!(
        contents,
        [&b"the laptop's words"[..], &b"the phone's words"[..]],
        "neither version is lost: {seen:?}"
    );
    assert!(seen.contains_key("Docs/doc.txt"));
    assert!(
        seen.keys().any(|k| k.contains("(conflict from ")),
        "the losing version is a visible copy: {seen:?}"
    );
    // One device kept its version as a copy; its own change never counts
    // as someone else's, so the other device made none.
    let copies: usize = [&laptop, &phone]
        .iter()
        .map(|d| d.outbox().conflicts_created as usize)
        .sum();
    assert_eq!(copies, 1);
}

#[test]
fn offline_changes_wait_in_the_outbox_and_go_when_the_server_returns() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "big.bin", &vec![1u8; 100_000]);
    mesh.settle(&[&laptop, &phone]);

    laptop.faults.set_offline(true);
    phone.faults.set_offline(true);
    laptop.write(docs, "draft.txt", b"written offline");
    let pushed = mesh.runtime.block_on(laptop.syncer.push_once());
    assert!(
        matches!(&pushed, Err(e) if super::is_offline(e)),
        "{pushed:?}"
    );
    assert_eq!(laptop.outbox_len(), 1, "the change waits");
    assert_eq!(
        laptop.read("Docs/draft.txt").unwrap(),
        b"written offline",
        "and reads back at once"
    );
    // Content never fetched fails fast, with the errno a reader expects.
    let started = Instant::now();
    let read = phone.read("Docs/big.bin");
    assert_eq!(read.unwrap_err().errno(), libc::EIO);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Creating a Live Folder needs the server.
    let made = phone.core.make_node(ROOT, "New", new_node(EntryKind::Dir));
    assert_eq!(made.unwrap_err().errno(), libc::EIO);

    laptop.faults.set_offline(false);
    phone.faults.set_offline(false);
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(laptop.outbox_len(), 0);
    assert_eq!(phone.read("Docs/draft.txt").unwrap(), b"written offline");
    assert_eq!(phone.read("Docs/big.bin").unwrap(), vec![1u8; 100_000]);
}

#[test]
fn a_push_whose_answer_was_lost_is_sent_again_without_a_conflict() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "a.txt", b"v1");
    mesh.sync(&laptop);
    laptop.write(docs, "a.txt", b"v2");
    laptop.faults.inject(Call::PostItems, Fault::LoseAnswer, 1);
    let lost = mesh.runtime.block_on(laptop.syncer.push_once());
    assert!(lost.is_err(), "the answer never came");
    assert_eq!(laptop.outbox_len(), 1);
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.tree(), tree_of(&[("Docs/a.txt", b"v2")]));
    assert_eq!(laptop.tree(), phone.tree());
    assert_eq!(laptop.outbox().conflicts_created, 0);
}

#[test]
fn a_failed_chunk_upload_leaves_the_change_queued_and_nothing_half_posted() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    mesh.sync(&laptop);
    laptop.write(docs, "photo.jpg", &vec![9u8; 200_000]);
    laptop.faults.inject(
        Call::PutChunks,
        Fault::Fail(crate::client::RemoteError::Offline("dropped".into())),
        1,
    );
    assert!(mesh.runtime.block_on(laptop.syncer.push_once()).is_err());
    mesh.sync(&phone);
    assert!(phone.tree().is_empty(), "no entry without its content");
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(
        phone.tree(),
        tree_of(&[("Docs/photo.jpg", &vec![9u8; 200_000])])
    );
}

#[test]
fn an_edit_after_an_unanswered_push_builds_on_what_reached_the_server() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "a.txt", b"v1");
    mesh.sync(&laptop);
    laptop.write(docs, "a.txt", b"v2");
    laptop.faults.inject(Call::PostItems, Fault::LoseAnswer, 1);
    assert!(mesh.runtime.block_on(laptop.syncer.push_once()).is_err());
    // v2 is on the server, but the laptop never heard; its next edit
    // must not make a second version numbered like v2.
    laptop.write(docs, "a.txt", b"v3");
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.tree(), tree_of(&[("Docs/a.txt", b"v3")]));
    assert_eq!(laptop.tree(), phone.tree());
    assert_eq!(laptop.outbox().conflicts_created, 0);
}

#[test]
fn an_edit_after_an_unanswered_push_that_another_device_built_on_keeps_both_versions() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "log.txt", b"base\n");
    mesh.settle(&[&laptop, &phone]);
    // The laptop's push reaches the server, but its answer is lost...
    laptop.write(docs, "log.txt", b"base\nlaptop 1\n");
    laptop.faults.inject(Call::PostItems, Fault::LoseAnswer, 1);
    assert!(mesh.runtime.block_on(laptop.syncer.push_once()).is_err());
    // ... the phone builds on it ...
    mesh.sync(&phone);
    let phone_docs = phone.ino("Docs").unwrap();
    phone.write(phone_docs, "log.txt", b"base\nlaptop 1\nphone 1\n");
    mesh.sync(&phone);
    // ... and the laptop, not having heard of either, edits again: its
    // new version and the phone's are concurrent, and both must survive.
    laptop.write(docs, "log.txt", b"base\nlaptop 1\nlaptop 2\n");
    mesh.settle(&[&laptop, &phone]);

    let seen = phone.tree();
    assert_eq!(laptop.tree(), seen, "both devices show the same");
    let mut contents: Vec<&[u8]> = seen.values().map(Vec::as_slice).collect();
    contents.sort();
    assert_eq!(
        contents,
        [
            &b"base\nlaptop 1\nlaptop 2\n"[..],
            &b"base\nlaptop 1\nphone 1\n"[..]
        ],
        "both versions survive, as winner and conflicted copy: {seen:?}"
    );
}

#[test]
fn an_append_goes_at_the_end_of_a_version_that_just_arrived() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "log.txt", b"a\n");
    mesh.settle(&[&laptop, &phone]);
    let phone_docs = phone.ino("Docs").unwrap();
    phone.write(phone_docs, "log.txt", b"a\nphone\n");
    mesh.sync(&phone);
    mesh.sync(&laptop);
    // The laptop's kernel still thinks the file is 2 bytes long; an
    // O_APPEND write goes at the end of what the file is now.
    let fh = laptop
        .core
        .open(laptop.ino("Docs/log.txt").unwrap(), true, false);
    let fh = fh.unwrap();
    assert_eq!(
        laptop
            .core
            .append(fh, b"laptop\n", SetIdBits::Keep)
            .unwrap(),
        7
    );
    laptop.core.release(fh).unwrap();
    assert_eq!(laptop.read("Docs/log.txt").unwrap(), b"a\nphone\nlaptop\n");
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.read("Docs/log.txt").unwrap(), b"a\nphone\nlaptop\n");
}

#[test]
fn a_version_that_arrives_while_a_file_is_copied_for_writing_is_the_one_written_to() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "log.txt", b"old\n");
    mesh.settle(&[&laptop, &phone]);
    laptop.write(docs, "log.txt", b"old\nnew from the laptop\n");
    mesh.sync(&laptop);
    // The phone opens the file to append while its content is still on
    // its way; the laptop's version arrives meanwhile.
    phone
        .faults
        .inject(Call::GetChunk, Fault::Delay(READER_WAIT / 2), 1);
    let ino = phone.ino("Docs/log.txt").unwrap();
    let core = phone.core.clone();
    let writer = std::thread::spawn(move || -> Result<(), FsError> {
        let fh = core.open(ino, true, false)?;
        core.append(fh, b"phone\n", SetIdBits::Keep)?;
        core.release(fh)
    });
    std::thread::sleep(READER_WAIT / 10);
    mesh.sync(&phone);
    writer.join().unwrap().unwrap();
    assert_eq!(
        phone.read("Docs/log.txt").unwrap(),
        b"old\nnew from the laptop\nphone\n"
    );
}

#[test]
fn an_edit_made_while_a_losing_push_is_in_flight_loses_nobody_s_version() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "doc.txt", b"base");
    mesh.settle(&[&laptop, &phone]);
    // The phone saves twice, so its version has more updates and wins.
    let phone_docs = phone.ino("Docs").unwrap();
    phone.write(phone_docs, "doc.txt", b"phone 1");
    mesh.sync(&phone);
    phone.write(phone_docs, "doc.txt", b"phone 2");
    mesh.sync(&phone);
    // The laptop, not having heard, saves; while that push is on its way
    // (and about to lose), it saves again.
    laptop.write(docs, "doc.txt", b"laptop 1");
    laptop
        .faults
        .inject(Call::PostItems, Fault::Delay(Duration::from_millis(300)), 1);
    let syncer = laptop.syncer.clone();
    let push = mesh.runtime.spawn(async move { syncer.push_once().await });
    std::thread::sleep(Duration::from_millis(100));
    laptop.write(docs, "doc.txt", b"laptop 2");
    mesh.runtime.block_on(push).unwrap().unwrap();
    mesh.settle(&[&laptop, &phone]);

    let seen = phone.tree();
    assert_eq!(laptop.tree(), seen, "both devices show the same");
    let mut contents: Vec<&[u8]> = seen.values().map(Vec::as_slice).collect();
    contents.sort();
    assert_eq!(
        contents,
        [&b"laptop 2"[..], &b"phone 2"[..]],
        "each device's last version survives: {seen:?}"
    );
}

#[test]
fn chunks_uploaded_for_a_version_overwritten_before_its_post_leave_the_cache() {
    let mesh = Mesh::new();
    let laptop = mesh.device("laptop");
    let docs = laptop.mkdir(ROOT, "Docs");
    // The file is saved again while the chunks of its first save upload:
    // that version is never posted, and its chunks are no file's content.
    laptop.write(docs, "db", &[1u8; 200_000]);
    laptop
        .faults
        .inject(Call::PutChunks, Fault::Delay(Duration::from_millis(300)), 1);
    let syncer = laptop.syncer.clone();
    let push = mesh.runtime.spawn(async move { syncer.push_once().await });
    std::thread::sleep(Duration::from_millis(100));
    laptop.write(docs, "db", &[2u8; 150_000]);
    assert_eq!(mesh.runtime.block_on(push).unwrap().unwrap(), 0);
    mesh.sync(&laptop);
    assert_eq!(laptop.read("Docs/db").unwrap(), [2u8; 150_000]);
    assert_eq!(laptop.core.fetcher.cache.used(), 150_000);
}

#[test]
fn a_devices_own_changes_are_not_read_back_but_another_devices_are() {
    let mesh = Mesh::new();
    let laptop = mesh.device("laptop");
    let phone = mesh.device("phone");
    let docs = laptop.mkdir(ROOT, "Docs");
    mesh.sync(&laptop);
    mesh.sync(&phone);
    let pulls = laptop.faults.calls(Call::Feed);
    mesh.start(&laptop);
    for i in 0..20 {
        laptop.write(docs, &format!("f{i}.txt"), b"mine");
    }
    laptop.core.unlink(docs, "f3.txt").unwrap();
    wait_until("the laptop pushed everything", || laptop.outbox_len() == 0);
    // The stream tells of changes in order: once the phone's shows, every
    // word of the laptop's own has come and gone.
    phone.write(phone.ino("Docs").unwrap(), "theirs.txt", b"theirs");
    mesh.sync(&phone);
    wait_until("the laptop shows the phone's file", || {
        laptop.read("Docs/theirs.txt").is_ok()
    });
    assert_eq!(
        laptop.faults.calls(Call::Feed) - pulls,
        2,
        "two reads of the feed: catching up at the start, and the phone's change"
    );
    // Nothing of the removed file is left behind, here or for the phone.
    let tombstones = laptop
        .core
        .query(|conn| Ok(meta::children(conn, docs, 0, 100)?.len()))
        .unwrap();
    assert_eq!(tombstones, 20);
    let hidden: i64 = laptop
        .core
        .query(|conn| {
            Ok(
                conn.query_row("SELECT count(*) FROM nodes WHERE removed = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(hidden, 0, "removed nodes kept");
    mesh.sync(&phone);
    assert_eq!(phone.tree(), laptop.tree());
}

#[test]
fn a_pull_whose_page_was_read_before_its_own_post_settled_reads_again() {
    let mesh = Mesh::new();
    let laptop = mesh.device("laptop");
    let phone = mesh.device("phone");
    let docs = laptop.mkdir(ROOT, "Docs");
    mesh.sync(&laptop);
    mesh.sync(&phone);
    let object = laptop.object_of(docs);
    laptop.write(docs, "mine.txt", b"mine");
    // The laptop's pull reads the feed late: by then its own post has
    // settled, moving its cursor, and the phone has posted after it.
    laptop
        .faults
        .inject(Call::Feed, Fault::Delay(Duration::from_millis(300)), 1);
    let syncer = laptop.syncer.clone();
    let pull = mesh.runtime.spawn(async move { syncer.pull(object).await });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(mesh.runtime.block_on(laptop.syncer.push_once()).unwrap(), 1);
    phone.write(phone.ino("Docs").unwrap(), "theirs.txt", b"theirs");
    assert_eq!(mesh.runtime.block_on(phone.syncer.push_once()).unwrap(), 1);
    mesh.runtime.block_on(pull).unwrap().unwrap();
    assert!(
        laptop.faults.calls(Call::Feed) >= 2,
        "the stale page was read again"
    );
    assert_eq!(laptop.read("Docs/theirs.txt").unwrap(), b"theirs");
    assert_eq!(laptop.read("Docs/mine.txt").unwrap(), b"mine");
}

#[test]
fn a_removed_entry_stays_removed_when_a_page_read_before_its_removal_arrives() {
    let mesh = Mesh::new();
    let laptop = mesh.device("laptop");
    let docs = laptop.mkdir(ROOT, "Docs");
    laptop.write(docs, "a.txt", b"v1");
    mesh.sync(&laptop);
    let object = laptop.object_of(docs);
    let stale = mesh.server.items(object);
    let read_from = laptop
        .core
        .query(|conn| Ok(meta::cursor(conn, object)?))
        .unwrap();
    laptop.core.unlink(docs, "a.txt").unwrap();
    assert_eq!(mesh.runtime.block_on(laptop.syncer.push_once()).unwrap(), 1);
    // A pull that read its page before the removal merged applies it now:
    // the cursor has moved past it, so it is dropped.
    let applied = laptop
        .core
        .apply_page(
            object,
            read_from,
            &crate::client::FeedPage {
                items: stale.clone(),
                since: read_from,
                until: read_from,
                more: false,
            },
        )
        .unwrap();
    assert_eq!(applied, crate::mount::core::PageApplied::Stale);
    assert!(matches!(
        laptop.core.lookup(docs, "a.txt"),
        Err(FsError::NotFound)
    ));
    // The server's word of the removal lets the tombstone go.
    mesh.sync(&laptop);
    let kept = laptop
        .core
        .query(|conn| Ok(meta::by_entry(conn, object, stale[0].id().as_str())?))
        .unwrap();
    assert!(kept.is_none(), "{kept:?}");
}

mod differential;

#[test]
fn a_device_whose_cursor_predates_compacted_deletions_reads_the_whole_feed_and_drops_them() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    let old = laptop.mkdir(docs, "Old");
    for name in ["a.txt", "b.txt", "c.txt"] {
        laptop.write(docs, name, name.as_bytes());
    }
    laptop.write(old, "inner.txt", b"inner");
    mesh.settle(&[&laptop, &phone]);
    let object = laptop.object_of(docs);

    // While the phone is away, the laptop deletes two files and a folder,
    // and the server compacts their tombstones (its retention passed).
    laptop.core.unlink(docs, "a.txt").unwrap();
    laptop.core.unlink(docs, "b.txt").unwrap();
    laptop.core.unlink(old, "inner.txt").unwrap();
    laptop.core.rmdir(docs, "Old").unwrap();
    laptop.write(docs, "d.txt", b"d");
    mesh.sync(&laptop);
    mesh.server.compact_tombstones(object);
    assert!(
        mesh.server.items(object).len() > laptop.tree().len(),
        "the compacted tombstones are kept for merging"
    );
    // The phone edits one of the deleted files before it hears of it.
    let phone_docs = phone.ino("Docs").unwrap();
    phone.write(phone_docs, "b.txt", b"the phone's b");
    mesh.settle(&[&laptop, &phone]);

    let seen = phone.tree();
    assert_eq!(seen, laptop.tree(), "both devices show the same");
    assert!(!seen.contains_key("Docs/a.txt"), "{seen:?}");
    assert!(matches!(phone.ino("Docs/Old"), Err(FsError::NotFound)));
    assert_eq!(seen["Docs/c.txt"], b"c.txt");
    assert_eq!(seen["Docs/d.txt"], b"d");
    assert!(
        seen.values().any(|c| c == b"the phone's b"),
        "the phone's edit of a deleted file is not lost: {seen:?}"
    );
    let resyncing = phone
        .core
        .query(|conn| Ok(meta::resyncing(conn, object)?))
        .unwrap();
    assert!(!resyncing, "the complete read ended");
}

#[test]
fn superseded_content_leaves_both_chunk_caches_unless_another_file_holds_it() {
    let mesh = Mesh::new();
    let (laptop, phone) = (mesh.device("laptop"), mesh.device("phone"));
    let docs = laptop.mkdir(ROOT, "Docs");
    let (old, copy, new) = (vec![1u8; 200_000], vec![1u8; 200_000], vec![2u8; 200_000]);
    laptop.write(docs, "db", &old);
    laptop.write(docs, "copy", &copy);
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.read("Docs/db").unwrap(), old);
    // Counted once written to disk, just after the reads.
    let cached = |d: &Device| {
        mesh.runtime.block_on(d.core.fetcher.stored());
        d.core.fetcher.cache.used()
    };
    assert_eq!((cached(&laptop), cached(&phone)), (200_000, 200_000));

    // A new version: the old chunks go from the writer's cache and the
    // reader's, except those another file still refers to.
    laptop.write(docs, "db", &new);
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.read("Docs/db").unwrap(), new);
    assert_eq!((cached(&laptop), cached(&phone)), (400_000, 400_000));
    assert_eq!(phone.read("Docs/copy").unwrap(), copy);

    // Once the copy goes too, only the current version stays.
    laptop.core.unlink(docs, "copy").unwrap();
    laptop.write(docs, "db", &old[..100_000]);
    mesh.settle(&[&laptop, &phone]);
    assert_eq!(phone.read("Docs/db").unwrap(), old[..100_000]);
    assert_eq!((cached(&laptop), cached(&phone)), (100_000, 100_000));
}

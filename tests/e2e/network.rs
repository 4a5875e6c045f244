//! A bad network between a device and meshd: a TCP proxy ([`FaultProxy`])
//! that delays, stalls and cuts the device's connections. Applications on
//! that device get their answers within a bound whatever the link does —
//! data, or `EIO` for content that cannot be had — and two devices editing
//! the same files while pushes are in flight end with identical trees and
//! every line either appended kept, in the file or in a conflicted copy.

use mesh_e2e::{
    Device, EMAIL, Entry, FaultProxy, Link, Rng, SYNC, Server, errno_of, pseudo_random_vec,
    snapshot, wait_for_entry, wait_until,
};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The longest a read waits for the network (meshfs's reader wait is
/// 10 s), with room for a loaded machine.
const READ_BOUND: Duration = Duration::from_secs(20);
/// What never needs the network must answer about as fast as a disk.
const LOCAL_BOUND: Duration = Duration::from_secs(3);

/// One server; `desk` talks to it directly, `laptop` through `proxy`.
struct Cast {
    laptop: Device,
    desk: Device,
    proxy: FaultProxy,
    _server: Server,
}

fn cast() -> Cast {
    let server = Server::start();
    server.add_user(EMAIL);
    let proxy = FaultProxy::start(server.url());
    let desk = Device::mount(&server, EMAIL, "desk");
    let laptop = Device::mount_via(&proxy.url(), EMAIL, "laptop");
    Cast {
        laptop,
        desk,
        proxy,
        _server: server,
    }
}

/// Runs `call`, returning its result and how long it took.
fn timed<T>(call: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let result = call();
    (result, started.elapsed())
}

#[test]
fn a_stalled_link_never_holds_an_application_for_long() {
    let c = cast();
    fs::create_dir(c.desk.path("Docs")).unwrap();
    let big = pseudo_random_vec(7, 0, 3 << 20);
    fs::write(c.desk.path("Docs/big.bin"), &big).unwrap();
    fs::write(c.desk.path("Docs/note.txt"), b"hello").unwrap();
    wait_for_entry(
        &c.laptop,
        "Docs/note.txt",
        Some(Entry::File(b"hello".to_vec())),
    );

    // The link stalls: connections stay open and carry nothing.
    c.proxy.set(Link::Stall);
    let (read, took) = timed(|| fs::read(c.laptop.path("Docs/big.bin")));
    assert_eq!(
        errno_of(read),
        Some(libc::EIO),
        "content the stalled link cannot bring is EIO"
    );
    assert!(took < READ_BOUND, "the read waited {took:?}");

    // What the device has answers at once: listings, what is cached, and
    // changes, which wait in the outbox.
    let (local, took) = timed(|| -> std::io::Result<()> {
        assert_eq!(fs::read(c.laptop.path("Docs/note.txt"))?, b"hello");
        fs::read_dir(c.laptop.path("Docs"))?.count();
        fs::metadata(c.laptop.path("Docs/big.bin"))?;
        fs::write(c.laptop.path("Docs/offline.txt"), b"written while stalled")?;
        fs::create_dir(c.laptop.path("Docs/sub"))?;
        fs::rename(
            c.laptop.path("Docs/offline.txt"),
            c.laptop.path("Docs/sub/moved.txt"),
        )?;
        fs::OpenOptions::new()
            .write(true)
            .open(c.laptop.path("Docs/sub/moved.txt"))?
            .sync_all()
    });
    local.expect("what needs no network works while the link stalls");
    assert!(took < LOCAL_BOUND, "local work waited {took:?}");

    // Making a Live Folder needs the server: an answer in time, either way.
    let (made, took) = timed(|| fs::create_dir(c.laptop.path("Made while stalled")));
    assert!(took < READ_BOUND, "mkdir at the root waited {took:?}");

    // Healed, everything arrives: the content, the changes made meanwhile,
    // and both devices agree on the Live Folders (the mkdir may have
    // reached the server after its answer; then both list it).
    c.proxy.set(Link::Pass);
    wait_until("the big file reads on the laptop", SYNC, || {
        fs::read(c.laptop.path("Docs/big.bin")).is_ok_and(|b| b == big)
    });
    wait_for_entry(
        &c.desk,
        "Docs/sub/moved.txt",
        Some(Entry::File(b"written while stalled".to_vec())),
    );
    wait_until("both devices list the same Live Folders", SYNC, || {
        mesh_e2e::names(c.laptop.mountpoint()) == mesh_e2e::names(c.desk.mountpoint())
    });
    if made.is_ok() {
        wait_for_entry(&c.desk, "Made while stalled", Some(Entry::Dir));
    }
}

const FILES: usize = 3;

/// Every line in the files of `dir` whose names start with `stem` (the
/// file and its conflicted copies).
fn lines_of(dir: &std::path::Path, stem: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(stem) {
            let text = fs::read_to_string(entry.path()).unwrap();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines
}

/// Each file of `dir` with its text, for a failure's message.
fn contents(dir: &std::path::Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = fs::read(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                text.escape_ascii().to_string(),
            )
        })
        .collect()
}

#[test]
fn two_devices_appending_through_a_flaky_link_keep_every_line() {
    let c = cast();
    let (mut rng, _) = Rng::from_env("network faults");
    fs::create_dir(c.desk.path("Shared")).unwrap();
    for f in 0..FILES {
        fs::write(c.desk.path(format!("Shared/f{f}.txt")), b"").unwrap();
    }
    for f in 0..FILES {
        wait_for_entry(
            &c.laptop,
            &format!("Shared/f{f}.txt"),
            Some(Entry::File(Vec::new())),
        );
    }

    // Both devices append to the same files while the laptop's link
    // changes every few hundred milliseconds.
    let links = [
        Link::Pass,
        Link::Delay(Duration::from_millis(150)),
        Link::Stall,
        Link::Cut,
    ];
    let mut written: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut refused = 0;
    for round in 0..40 {
        if round % 4 == 0 {
            c.proxy.set(*rng.pick(&links));
        }
        for device in [&c.laptop, &c.desk] {
            let f = rng.below(FILES as u64) as usize;
            let line = format!("{} {round}", device.name());
            let appended = fs::OpenOptions::new()
                .append(true)
                .open(device.path(format!("Shared/f{f}.txt")))
                .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
            match appended {
                Ok(()) => written.entry(f).or_default().push(line),
                // The laptop may not have the desk's latest content and
                // cannot fetch it while the link is down: EIO, nothing
                // appended. Anything else is a failure.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => refused += 1,
                Err(e) => panic!("appending {line:?} to f{f}: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(60)));
    }
    c.proxy.set(Link::Pass);
    eprintln!("{refused} appends refused while the link was down");

    let shared = |d: &Device| -> PathBuf { d.path("Shared") };
    wait_until("both devices settle with identical trees", SYNC * 3, || {
        c.laptop.status()["pending_changes"] == 0
            && c.desk.status()["pending_changes"] == 0
            && snapshot(&shared(&c.laptop)).ok() == snapshot(&shared(&c.desk)).ok()
    });
    for device in [&c.laptop, &c.desk] {
        for (f, lines) in &written {
            let kept = lines_of(&shared(device), &format!("f{f}"));
            let lost: Vec<&String> = lines.iter().filter(|l| !kept.contains(l)).collect();
            assert!(
                lost.is_empty(),
                "{} lost lines of f{f}: {lost:?}\nthe folder holds: {:#?}",
                device.name(),
                contents(&shared(device))
            );
        }
    }
}

//! `docs/SEMANTICS.md`, checked: every statement of that page about where
//! a Mesh mount differs from a local disk has one check here, named after
//! its id (`names_utf8` checks `[names-utf8]`), on real mounts of a real
//! meshd. The checks that need the server share one [`Pair`]; those about
//! devices apart share one server and two devices that reach it through
//! [`FaultProxy`]s, which cut them off and let them back. Each check works
//! in a directory of its own inside one Live Folder (and at the root where
//! it is about the root), and a failing check does not stop the others:
//! the test names every statement that did not hold.
//!
//! The page is read here, so the two cannot drift:
//! `every_statement_has_a_check_and_every_check_a_statement` fails when a
//! statement has no check, a check no statement, or a reference on the
//! page names no statement.

use mesh_e2e::{
    Device, EMAIL, Entry, FaultProxy, Link, Pair, SYNC, Server, check_pseudo_random, df, errno_of,
    names, snapshot, statvfs, wait_for, wait_for_entry, wait_for_tree, wait_until,
    write_pseudo_random,
};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The page this test checks.
const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SEMANTICS.md");

/// The Live Folder the checks work in.
const FOLDER: &str = "Semantics";

const MIB: u64 = 1 << 20;

/// One check: its function's name (the statement's id with `_` for `-`)
/// and the function, given the cast and its own directory (relative to
/// the mountpoints, made on both devices).
type Check<T> = (&'static str, fn(&T, &str));

/// The table of checks, each named by its function.
macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        &[$((stringify!($check), $check)),*]
    };
}

/// The checks on one server and two devices that reach it.
const TOGETHER: &[Check<Pair>] = checks![
    names_utf8,
    names_length,
    names_any,
    root_folders_only,
    root_folder_names,
    root_folder_clash,
    root_fixed_modes,
    root_rename_rmdir,
    rename_across_folders,
    rename_within_folder,
    rename_flags,
    hard_links_local,
    hard_links_original_removed,
    symlinks,
    special_files_synced,
    special_files_local,
    nosuid_nodev,
    changes_on_close,
    fsync_upload,
    sparse,
    fallocate,
    o_tmpfile,
    o_direct,
    mmap,
    ioctl,
    inotify_local,
    owners_per_device,
    modes_synced,
    set_id_dropped,
    permissions_readers,
    folder_taken_away,
    mtime_synced,
    mtime_directories,
    ctime_local,
    no_birth_time,
    atime_local,
    xattrs_user,
    xattrs_other_namespaces,
    xattrs_mesh,
    locks_per_device,
    statfs_quota,
];

/// The checks that take devices away from the server.
const APART: &[Check<Apart>] = checks![
    names_clash,
    fsync_local,
    offline_reads,
    offline_changes,
    offline_live_folders,
    conflict_copies,
    conflict_renames,
    conflict_removed_directory,
    conflict_edit_delete,
];

/// The statement a check is named after.
fn id_of(check: &str) -> String {
    check.replace('_', "-")
}

/// Runs each check in a directory of its own in [`FOLDER`], made on `a`
/// and seen on `b`; `reset` runs after each (restoring links a failed check
/// may have left cut). Panics at the end naming the statements that did
/// not hold; each failure's own message is printed as it happens.
fn run<T>(cast: &T, a: &Device, b: &Device, checks: &[Check<T>], reset: impl Fn(&T)) {
    let mut failed = Vec::new();
    for (name, check) in checks {
        let id = id_of(name);
        let dir = format!("{FOLDER}/{id}");
        fs::create_dir(a.path(&dir)).unwrap_or_else(|e| panic!("mkdir {dir}: {e}"));
        wait_for_entry(b, &dir, Some(Entry::Dir));
        let started = Instant::now();
        let held = catch_unwind(AssertUnwindSafe(|| check(cast, &dir))).is_ok();
        reset(cast);
        eprintln!(
            "[{id}] {} ({:.1?})",
            if held { "holds" } else { "DOES NOT HOLD" },
            started.elapsed()
        );
        if !held {
            failed.push(id);
        }
    }
    assert!(
        failed.is_empty(),
        "statements of docs/SEMANTICS.md that do not hold: {failed:?}"
    );
}

#[test]
fn every_statement_has_a_check_and_every_check_a_statement() {
    let page = fs::read_to_string(PAGE).unwrap_or_else(|e| panic!("reading {PAGE}: {e}"));
    let stated = statements(&page);
    let mut checked = BTreeSet::new();
    for name in TOGETHER
        .iter()
        .map(|(name, _)| name)
        .chain(APART.iter().map(|(name, _)| name))
    {
        assert!(
            checked.insert(id_of(name)),
            "two checks of [{}]",
            id_of(name)
        );
    }
    let unchecked: Vec<_> = stated.difference(&checked).collect();
    let unstated: Vec<_> = checked.difference(&stated).collect();
    assert!(
        unchecked.is_empty() && unstated.is_empty(),
        "docs/SEMANTICS.md and tests/e2e/semantics.rs disagree:\n  statements without a check: {unchecked:?}\n  checks without a statement: {unstated:?}"
    );
    for reference in references(&page) {
        assert!(
            stated.contains(&reference),
            "docs/SEMANTICS.md refers to [{reference}], which is no statement"
        );
    }
}

/// Whether `s` is an id: lowercase letters, digits and single hyphens.
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The ids of the statements of the page: each statement starts with its
/// id in bold brackets, `**[names-utf8]**`. Panics on a malformed or
/// repeated one.
fn statements(page: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (at, _) in page.match_indices("**[") {
        let rest = &page[at + 3..];
        let end = rest
            .find("]**")
            .unwrap_or_else(|| panic!("an unclosed **[ at byte {at} of the page"));
        let id = &rest[..end];
        assert!(is_id(id), "[{id}] is not an id (a-z, 0-9 and -)");
        assert!(ids.insert(id.to_owned()), "[{id}] is stated twice");
    }
    assert!(!ids.is_empty(), "the page states nothing");
    ids
}

/// The ids the page refers to in plain brackets, `see [names-utf8]` (not
/// links, `[text](url)`, nor the statements' own bold ids).
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in page.match_indices('[') {
        if page[..at].ends_with("**") {
            continue;
        }
        let rest = &page[at + 1..];
        let Some(end) = rest.find(']') else { continue };
        let id = &rest[..end];
        if is_id(id) && !rest[end + 1..].starts_with('(') {
            found.push(id.to_owned());
        }
    }
    found
}

#[test]
fn statements_that_hold_with_the_server_there() {
    let mesh = Pair::start();
    mesh.live_folder(FOLDER);
    run(&mesh, &mesh.a, &mesh.b, TOGETHER, |_| {});
}

#[test]
fn statements_about_devices_apart() {
    let apart = Apart::start();
    fs::create_dir(apart.a.path(FOLDER)).unwrap();
    wait_for_entry(&apart.b, FOLDER, Some(Entry::Dir));
    run(&apart, &apart.a, &apart.b, APART, |apart| {
        for (device, proxy) in [(&apart.a, &apart.to_a), (&apart.b, &apart.to_b)] {
            proxy.set(Link::Pass);
            wait_online(device, true);
        }
    });
}

/// One server and two devices of one user, `laptop` (a) and `desktop`
/// (b), each reaching it through a proxy that can cut it off. Fields drop
/// in order: the devices unmount before their links and the server go.
struct Apart {
    a: Device,
    b: Device,
    to_a: FaultProxy,
    to_b: FaultProxy,
    _server: Server,
}

impl Apart {
    fn start() -> Apart {
        let server = Server::start();
        server.add_user(EMAIL);
        let to_a = FaultProxy::start(server.url());
        let to_b = FaultProxy::start(server.url());
        let a = Device::mount_via(&to_a.url(), EMAIL, "laptop");
        let b = Device::mount_via(&to_b.url(), EMAIL, "desktop");
        Apart {
            a,
            b,
            to_a,
            to_b,
            _server: server,
        }
    }

    /// Cuts both devices off and waits until both say they are offline.
    fn both_offline(&self) {
        offline(&self.a, &self.to_a);
        offline(&self.b, &self.to_b);
    }

    /// Lets both devices back, one after the other, and waits until
    /// neither has anything left to push and both show the same `dir`.
    fn both_back(&self, dir: &str) {
        online(&self.a, &self.to_a);
        settled(&self.a);
        online(&self.b, &self.to_b);
        wait_until(
            &format!("{dir} to settle alike on both devices"),
            SYNC,
            || {
                pending(&self.a) == 0
                    && pending(&self.b) == 0
                    && snapshot(&self.a.path(dir)).ok() == snapshot(&self.b.path(dir)).ok()
            },
        );
    }
}

// ----- helpers -----

fn file(bytes: &[u8]) -> Option<Entry> {
    Some(Entry::File(bytes.to_vec()))
}

/// Asserts that `result` failed with `errno`.
#[track_caller]
fn fails<T>(errno: i32, what: &str, result: io::Result<T>) {
    let name = |e: i32| io::Error::from_raw_os_error(e).to_string();
    match errno_of(result) {
        Some(got) => assert_eq!(
            got,
            errno,
            "{what}: expected {}, got {}",
            name(errno),
            name(got)
        ),
        None => panic!("{what}: expected {}, but it succeeded", name(errno)),
    }
}

/// A system call's `-1` as the error of `errno`.
fn sys(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("a path without NUL")
}

fn meta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    meta(p).mode() & 0o7777
}

type Time = (i64, i64);

fn mtime(p: &Path) -> Time {
    let m = meta(p);
    (m.mtime(), m.mtime_nsec())
}

fn atime(p: &Path) -> Time {
    let m = meta(p);
    (m.atime(), m.atime_nsec())
}

fn ctime(p: &Path) -> Time {
    let m = meta(p);
    (m.ctime(), m.ctime_nsec())
}

fn now() -> Time {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
}

/// `utimensat` of `p` itself (a symbolic link, not its target): each time
/// given is set, the other left as it is.
fn set_times(p: &Path, atime: Option<Time>, mtime: Option<Time>) {
    let spec = |t: Option<Time>| match t {
        Some((sec, nsec)) => libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    };
    let times = [spec(atime), spec(mtime)];
    let c = cpath(p);
    // SAFETY: a NUL-terminated path and two timespecs.
    sys(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .unwrap_or_else(|e| panic!("utimensat {}: {e}", p.display()));
}

fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: a NUL-terminated path.
    sys(unsafe { libc::mknod(c.as_ptr(), mode, dev) }).map(drop)
}

fn mkfifo(p: &Path) -> io::Result<()> {
    mknod(p, libc::S_IFIFO | 0o644, 0)
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (from, to) = (cpath(from), cpath(to));
    // SAFETY: NUL-terminated paths.
    sys(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

fn xattr_get(p: &Path, name: &str) -> io::Result<Vec<u8>> {
    meshfs::local::xattr::get(p, name)
}

fn xattr_set(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    meshfs::local::xattr::set(p, name, value)
}

fn xattr_remove(p: &Path, name: &str) -> io::Result<()> {
    let (c, n) = (cpath(p), CString::new(name).unwrap());
    // SAFETY: NUL-terminated path and name.
    sys(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) }).map(drop)
}

/// The attribute names `listxattr` gives for `p`, sorted.
fn xattr_list(p: &Path) -> Vec<String> {
    let c = cpath(p);
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: a NUL-terminated path and a buffer valid for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(
        n >= 0,
        "listxattr {}: {}",
        p.display(),
        io::Error::last_os_error()
    );
    let mut names: Vec<String> = buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    names
}

/// The options `/proc/mounts` lists for the mount at `p`.
fn mount_options(p: &Path) -> Vec<String> {
    let target = p.to_string_lossy().replace(' ', "\\040");
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(target.as_str()))
        .unwrap_or_else(|| panic!("{} is not in /proc/mounts", p.display()));
    let options = line.split(' ').nth(3).expect("a mount's options");
    options.split(',').map(str::to_owned).collect()
}

/// Waits until `rel` on `device` is a node that `is` says it is (for
/// fifos, sockets and device nodes, which [`Entry`] would try to read).
fn wait_for_node(device: &Device, rel: &str, is: impl Fn(&fs::Metadata) -> bool) {
    wait_until(&format!("{rel} on device {}", device.name()), SYNC, || {
        fs::symlink_metadata(device.path(rel)).is_ok_and(|m| is(&m))
    });
}

fn pending(device: &Device) -> u64 {
    device.status()["pending_changes"]
        .as_u64()
        .expect("pending_changes")
}

/// Waits until `device` has pushed everything.
fn settled(device: &Device) {
    wait_until(
        &format!("device {} to push everything", device.name()),
        SYNC,
        || pending(device) == 0,
    );
}

fn wait_online(device: &Device, online: bool) {
    wait_until(
        &format!(
            "device {} to say it is {}",
            device.name(),
            if online { "online" } else { "offline" }
        ),
        SYNC * 2,
        || device.status()["online"].as_bool() == Some(online),
    );
}

/// Cuts `device`'s link and waits until it says it is offline.
fn offline(device: &Device, link: &FaultProxy) {
    link.set(Link::Cut);
    wait_online(device, false);
}

/// Lets `device` back and waits until it says it is online.
fn online(device: &Device, link: &FaultProxy) {
    link.set(Link::Pass);
    wait_online(device, true);
}

/// Runs `child` in a child process (forked, so with other credentials or
/// lock ownership than this one) and returns its exit status: `child`
/// must only make system calls, and returns the status to exit with.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only makes system calls and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = child();
        // SAFETY: leaves the child at once, running nothing of the parent's.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
    libc::WEXITSTATUS(status)
}

// ----- Names -----

fn names_utf8(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let d = a.path(dir);
    fs::write(d.join("plain"), b"plain\n").unwrap();
    // Each attempt has a marker of its own, for the log to name it.
    let bytes = |what: &str| [&b"caf\xe9-"[..], what.as_bytes()].concat();
    let bad = |what: &str| d.join(OsStr::from_bytes(&bytes(what)));
    let plain = d.join("plain");
    let made: [(&str, io::Result<()>); 8] = [
        ("create", File::create(bad("names-utf8-create")).map(drop)),
        ("mknod", mkfifo(&bad("names-utf8-mknod"))),
        ("mkdir", fs::create_dir(bad("names-utf8-mkdir"))),
        (
            "symlink",
            std::os::unix::fs::symlink("plain", bad("names-utf8-symlink")),
        ),
        (
            "symlink to such a target",
            std::os::unix::fs::symlink(
                OsStr::from_bytes(&bytes("names-utf8-target")),
                d.join("link"),
            ),
        ),
        ("link", fs::hard_link(&plain, bad("names-utf8-link"))),
        ("rename", fs::rename(&plain, bad("names-utf8-rename"))),
        ("setxattr", {
            let (path, name) = (
                cpath(&plain),
                [&b"user."[..], &bytes("names-utf8-xattr"), b"\0"].concat(),
            );
            // SAFETY: a NUL-terminated path and name, and an empty value.
            sys(unsafe {
                libc::setxattr(path.as_ptr(), name.as_ptr().cast(), std::ptr::null(), 0, 0)
            })
            .map(drop)
        }),
    ];
    for (what, result) in made {
        fails(libc::EILSEQ, what, result);
    }
    for what in ["names-utf8-create", "names-utf8-mkdir", "names-utf8-rename"] {
        fails(libc::ENOENT, "lookup", fs::symlink_metadata(bad(what)));
    }
    fails(
        libc::ENOENT,
        "unlink",
        fs::remove_file(bad("names-utf8-create")),
    );
    assert_eq!(names(&d), ["plain"], "nothing was made");
    assert_eq!(xattr_list(&plain), Vec::<String>::new());
    wait_for_entry(b, &format!("{dir}/plain"), file(b"plain\n"));
    assert_eq!(names(&b.path(dir)), ["plain"]);
    for what in [
        "create", "mknod", "mkdir", "symlink", "target", "link", "rename", "xattr",
    ] {
        let marker = format!("names-utf8-{what}");
        wait_until(
            &format!("a warning in the log naming {marker}"),
            SYNC,
            || {
                a.log()
                    .lines()
                    .any(|l| l.contains("WARN") && l.contains(&marker))
            },
        );
    }
}

fn names_length(mesh: &Pair, dir: &str) {
    let d = mesh.a.path(dir);
    // 255 bytes in 128 characters; one more byte is too long.
    let longest = format!("{}x", "é".repeat(127));
    let too_long = format!("{longest}y");
    assert_eq!((longest.len(), too_long.len()), (255, 256));
    fs::write(d.join(&longest), b"255 bytes\n").unwrap();
    fails(
        libc::ENAMETOOLONG,
        "creating",
        File::create(d.join(&too_long)),
    );
    fails(
        libc::ENAMETOOLONG,
        "mkdir",
        fs::create_dir(d.join(&too_long)),
    );
    fails(
        libc::ENAMETOOLONG,
        "rename",
        fs::rename(d.join(&longest), d.join(&too_long)),
    );
    assert_eq!(statvfs(mesh.a.mountpoint()).f_namemax, 255);
    wait_for_entry(&mesh.b, &format!("{dir}/{longest}"), file(b"255 bytes\n"));
    assert_eq!(names(&mesh.b.path(dir)), [longest]);
}

fn names_any(mesh: &Pair, dir: &str) {
    let wanted = [
        "tab\tin it",
        "bell\u{7}",
        "new\nline",
        " leading space",
        "trailing space ",
        "trailing dot.",
        "..three dots",
        "CON",
        "a:b?*<>|\"\\",
        "Report.txt",
        "report.txt",
        "日本語.txt",
        "🎉",
        "caf\u{e9}",
        "cafe\u{301}",
        "notes (2).txt",
        "report (conflict from laptop 2026-01-01).txt",
    ];
    for name in wanted {
        fs::write(mesh.a.path(dir).join(name), name.as_bytes())
            .unwrap_or_else(|e| panic!("creating {name:?}: {e}"));
    }
    for name in wanted {
        wait_for_entry(&mesh.b, &format!("{dir}/{name}"), file(name.as_bytes()));
    }
    let mut sorted: Vec<String> = wanted.iter().map(|n| n.to_string()).collect();
    sorted.sort();
    assert_eq!(names(&mesh.b.path(dir)), sorted);
    assert_eq!(names(&mesh.a.path(dir)), sorted);
}

fn names_clash(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    apart.both_offline();
    fs::write(a.path(dir).join("notes.txt"), b"from laptop\n").unwrap();
    fs::write(b.path(dir).join("notes.txt"), b"from desktop\n").unwrap();
    apart.both_back(dir);
    let shown = snapshot(&a.path(dir)).unwrap();
    let names: Vec<_> = shown
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["notes (2).txt", "notes.txt"], "{shown:?}");
    for written in [&b"from laptop\n"[..], b"from desktop\n"] {
        assert!(
            shown.values().any(|e| *e == Entry::File(written.to_vec())),
            "both are kept: {shown:?}"
        );
    }
    assert_eq!(snapshot(&b.path(dir)).unwrap(), shown, "the same on both");
    // The one under the name goes: the other takes it back, everywhere.
    let second = shown[Path::new("notes (2).txt")].clone();
    fs::remove_file(a.path(dir).join("notes.txt")).unwrap();
    let expected: BTreeMap<PathBuf, Entry> = [(PathBuf::from("notes.txt"), second)].into();
    for device in [a, b] {
        wait_for(
            &format!("the name taken back on {}", device.name()),
            SYNC,
            &Some(expected.clone()),
            || snapshot(&device.path(dir)).ok(),
        );
    }
}

// ----- The root of the mount -----

fn root_folders_only(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let root = a.mountpoint();
    let before = names(root);
    let folder = "Made at the root";
    fs::create_dir(root.join(folder)).unwrap();
    wait_for_entry(b, folder, Some(Entry::Dir));
    let object = xattr_get(&b.path(folder), "user.mesh.object").expect("a mesh object's id");
    assert!(!object.is_empty(), "the new folder is a mesh object");
    fs::write(a.path(dir).join("a file"), b"x").unwrap();
    fails(libc::EACCES, "a file", File::create(root.join("file")));
    fails(
        libc::EACCES,
        "a symlink",
        std::os::unix::fs::symlink("x", root.join("link")),
    );
    fails(libc::EACCES, "a fifo", mkfifo(&root.join("fifo")));
    fails(
        libc::EACCES,
        "a hard link",
        fs::hard_link(a.path(dir).join("a file"), root.join("hard")),
    );
    fails(
        libc::EISDIR,
        "unlink of a Live Folder",
        fs::remove_file(root.join(folder)),
    );
    let mut expected = before;
    expected.push(folder.to_owned());
    expected.sort();
    assert_eq!(names(root), expected, "nothing else was made at the root");
}

fn root_folder_names(mesh: &Pair, dir: &str) {
    let root = mesh.a.mountpoint();
    let before = names(root);
    for name in ["bell\u{7}", "two\nlines", "   "] {
        fails(
            libc::EINVAL,
            &format!("mkdir {name:?} at the root"),
            fs::create_dir(root.join(name)),
        );
        fails(
            libc::EINVAL,
            &format!("renaming a Live Folder to {name:?}"),
            fs::rename(root.join(FOLDER), root.join(name)),
        );
        fs::create_dir(mesh.a.path(dir).join(name))
            .unwrap_or_else(|e| panic!("mkdir {name:?} inside a Live Folder: {e}"));
        wait_for_entry(&mesh.b, &format!("{dir}/{name}"), Some(Entry::Dir));
    }
    assert_eq!(names(root), before);
}

fn root_fixed_modes(mesh: &Pair, _dir: &str) {
    let root = mesh.a.mountpoint();
    let folder = mesh.a.path(FOLDER);
    let chmod = |p: &Path| fs::set_permissions(p, fs::Permissions::from_mode(0o700));
    fails(libc::EPERM, "chmod of the root", chmod(root));
    fails(libc::EPERM, "chmod of a Live Folder", chmod(&folder));
    assert_eq!(mode(&folder), 0o755);
    assert_eq!(mode(&mesh.b.path(FOLDER)), 0o755);
    fails(
        libc::EOPNOTSUPP,
        "an attribute on a Live Folder",
        xattr_set(&folder, "user.note", b"x"),
    );
    assert_eq!(xattr_list(&folder), Vec::<String>::new());
}

fn root_rename_rmdir(mesh: &Pair, _dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let root = a.mountpoint();
    fs::create_dir(root.join("Rename me")).unwrap();
    fs::write(root.join("Rename me/kept.txt"), b"kept\n").unwrap();
    fs::create_dir(root.join("Occupied")).unwrap();
    wait_for_entry(b, "Rename me/kept.txt", file(b"kept\n"));
    wait_for_entry(b, "Occupied", Some(Entry::Dir));

    fs::rename(root.join("Rename me"), root.join("Renamed")).unwrap();
    wait_for_entry(b, "Renamed/kept.txt", file(b"kept\n"));
    wait_for_entry(b, "Rename me", None);

    fails(
        libc::ENOTEMPTY,
        "renaming over an empty Live Folder",
        fs::rename(root.join("Renamed"), root.join("Occupied")),
    );
    fails(
        libc::EEXIST,
        "the same with RENAME_NOREPLACE",
        renameat2(
            &root.join("Renamed"),
            &root.join("Occupied"),
            libc::RENAME_NOREPLACE,
        ),
    );
    fails(
        libc::ENOTEMPTY,
        "rmdir of a Live Folder with a file",
        fs::remove_dir(root.join("Renamed")),
    );
    fs::remove_dir(root.join("Occupied")).unwrap();
    wait_for_entry(b, "Occupied", None);
    assert_eq!(
        fs::read(b.path("Renamed/kept.txt")).unwrap(),
        b"kept\n",
        "the other folder is untouched"
    );
}

fn rename_across_folders(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let other = "Another folder";
    fs::create_dir(a.path(other)).unwrap();
    let from = format!("{dir}/moving.txt");
    let to = format!("{other}/moving.txt");
    fs::write(a.path(&from), b"moving\n").unwrap();
    wait_for_entry(b, &from, file(b"moving\n"));
    let ino_before = meta(&b.path(&from)).ino();
    fails(
        libc::EXDEV,
        "rename between Live Folders",
        fs::rename(a.path(&from), a.path(&to)),
    );
    fails(
        libc::EXDEV,
        "link between Live Folders",
        fs::hard_link(a.path(&from), a.path(&to)),
    );
    fails(
        libc::EXDEV,
        "rename from a folder to the root",
        fs::rename(a.path(&from), a.path("moving.txt")),
    );
    fails(
        libc::EXDEV,
        "rename of a Live Folder into another",
        fs::rename(a.path(other), a.path(dir).join("inside")),
    );
    let mv = std::process::Command::new("mv")
        .arg(a.path(&from))
        .arg(a.path(&to))
        .status()
        .expect("running mv");
    assert!(mv.success(), "mv between Live Folders: {mv}");
    wait_for_entry(b, &to, file(b"moving\n"));
    wait_for_entry(b, &from, None);
    assert_ne!(
        meta(&b.path(&to)).ino(),
        ino_before,
        "another device sees a new file, not a move"
    );
}

fn rename_within_folder(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let p = |rel: &str| format!("{dir}/{rel}");
    fs::create_dir(a.path(p("old dir"))).unwrap();
    fs::write(a.path(p("old dir/inner.txt")), b"inner\n").unwrap();
    fs::write(a.path(p("file.txt")), b"file\n").unwrap();
    fs::write(a.path(p("target.txt")), b"to be replaced\n").unwrap();
    fs::write(a.path(p("replacement.txt")), b"replacement\n").unwrap();
    for (rel, bytes) in [
        ("old dir/inner.txt", &b"inner\n"[..]),
        ("file.txt", b"file\n"),
        ("target.txt", b"to be replaced\n"),
        ("replacement.txt", b"replacement\n"),
    ] {
        wait_for_entry(b, &p(rel), file(bytes));
    }
    let ino = |rel: &str| meta(&b.path(p(rel))).ino();
    let (dir_ino, inner_ino, file_ino, replacement_ino) = (
        ino("old dir"),
        ino("old dir/inner.txt"),
        ino("file.txt"),
        ino("replacement.txt"),
    );
    let mut open_on_b = File::open(b.path(p("file.txt"))).unwrap();

    fs::rename(a.path(p("old dir")), a.path(p("new dir"))).unwrap();
    fs::rename(a.path(p("file.txt")), a.path(p("renamed.txt"))).unwrap();
    fs::rename(a.path(p("replacement.txt")), a.path(p("target.txt"))).unwrap();

    wait_for_entry(b, &p("new dir/inner.txt"), file(b"inner\n"));
    wait_for_entry(b, &p("renamed.txt"), file(b"file\n"));
    wait_for_entry(b, &p("target.txt"), file(b"replacement\n"));
    assert_eq!(
        names(&b.path(dir)),
        ["new dir", "renamed.txt", "target.txt"]
    );
    assert_eq!(ino("new dir"), dir_ino);
    assert_eq!(ino("new dir/inner.txt"), inner_ino);
    assert_eq!(ino("renamed.txt"), file_ino);
    assert_eq!(ino("target.txt"), replacement_ino);
    let mut read = String::new();
    open_on_b.read_to_string(&mut read).unwrap();
    assert_eq!(read, "file\n", "a file open on the other device reads on");
}

fn rename_flags(mesh: &Pair, dir: &str) {
    let d = mesh.a.path(dir);
    fs::write(d.join("one"), b"one\n").unwrap();
    fs::write(d.join("two"), b"two\n").unwrap();
    fails(
        libc::EINVAL,
        "RENAME_EXCHANGE",
        renameat2(&d.join("one"), &d.join("two"), libc::RENAME_EXCHANGE),
    );
    fails(
        libc::EINVAL,
        "RENAME_WHITEOUT",
        renameat2(&d.join("one"), &d.join("three"), libc::RENAME_WHITEOUT),
    );
    fails(
        libc::EEXIST,
        "RENAME_NOREPLACE over a file",
        renameat2(&d.join("one"), &d.join("two"), libc::RENAME_NOREPLACE),
    );
    renameat2(&d.join("one"), &d.join("three"), libc::RENAME_NOREPLACE)
        .expect("RENAME_NOREPLACE to a free name");
    assert_eq!(fs::read(d.join("two")).unwrap(), b"two\n");
    wait_for_entry(&mesh.b, &format!("{dir}/three"), file(b"one\n"));
    wait_for_entry(&mesh.b, &format!("{dir}/one"), None);
    assert_eq!(fs::read(mesh.b.path(dir).join("two")).unwrap(), b"two\n");
}

// ----- Kinds of files -----

fn hard_links_local(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let original = a.path(dir).join("original.txt");
    let extra = a.path(dir).join("extra.txt");
    fs::write(&original, b"shared\n").unwrap();
    wait_for_entry(b, &format!("{dir}/original.txt"), file(b"shared\n"));
    fs::hard_link(&original, &extra).unwrap();
    assert_eq!(meta(&original).ino(), meta(&extra).ino(), "one inode");
    assert_eq!((meta(&original).nlink(), meta(&extra).nlink()), (2, 2));
    fs::write(&extra, b"shared\nwritten through the extra name\n").unwrap();
    assert_eq!(
        fs::read(&original).unwrap(),
        b"shared\nwritten through the extra name\n"
    );
    fs::set_permissions(&extra, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(mode(&original), 0o600, "shared attributes");
    wait_for_entry(
        b,
        &format!("{dir}/original.txt"),
        file(b"shared\nwritten through the extra name\n"),
    );
    wait_for("the mode on b", SYNC, &0o600, || {
        mode(&b.path(dir).join("original.txt"))
    });
    assert_eq!(names(&b.path(dir)), ["original.txt"], "no extra name there");
    assert_eq!(meta(&b.path(dir).join("original.txt")).nlink(), 1);
    assert_eq!(names(&a.path(dir)), ["extra.txt", "original.txt"]);
}

fn hard_links_original_removed(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let first = a.path(dir).join("first.txt");
    fs::write(&first, b"kept\n").unwrap();
    wait_for_entry(b, &format!("{dir}/first.txt"), file(b"kept\n"));
    let ino_on_b = meta(&b.path(dir).join("first.txt")).ino();
    fs::hard_link(&first, a.path(dir).join("second.txt")).unwrap();
    fs::remove_file(&first).unwrap();
    assert_eq!(meta(&a.path(dir).join("second.txt")).nlink(), 1);
    wait_for_entry(b, &format!("{dir}/second.txt"), file(b"kept\n"));
    wait_for_entry(b, &format!("{dir}/first.txt"), None);
    assert_eq!(
        meta(&b.path(dir).join("second.txt")).ino(),
        ino_on_b,
        "a rename on the other device"
    );
}

fn symlinks(mesh: &Pair, dir: &str) {
    let targets = [
        ("absolute", "/etc/hostname"),
        ("relative", "../elsewhere/x"),
        ("dangling", "missing"),
    ];
    for (name, target) in targets {
        std::os::unix::fs::symlink(target, mesh.a.path(dir).join(name)).unwrap();
    }
    for (name, target) in targets {
        let rel = format!("{dir}/{name}");
        wait_for_entry(&mesh.b, &rel, Some(Entry::Symlink(target.into())));
        assert_eq!(mode(&mesh.b.path(&rel)), 0o777);
    }
    fails(
        libc::ENOENT,
        "following a dangling link",
        fs::metadata(mesh.b.path(dir).join("dangling")),
    );
}

fn special_files_synced(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let d = a.path(dir);
    mkfifo(&d.join("fifo")).unwrap();
    mknod(&d.join("null"), libc::S_IFCHR | 0o620, libc::makedev(1, 3)).unwrap();
    mknod(&d.join("loop"), libc::S_IFBLK | 0o600, libc::makedev(7, 0)).unwrap();
    drop(UnixListener::bind(d.join("socket")).unwrap());
    type IsKind = fn(&fs::FileType) -> bool;
    let kinds: [(&str, IsKind); 4] = [
        ("fifo", |t| t.is_fifo()),
        ("null", |t| t.is_char_device()),
        ("loop", |t| t.is_block_device()),
        ("socket", |t| t.is_socket()),
    ];
    for (name, is) in kinds {
        let rel = format!("{dir}/{name}");
        wait_for_node(b, &rel, |m| is(&m.file_type()));
        let (here, there) = (meta(&a.path(&rel)), meta(&b.path(&rel)));
        assert_eq!(
            (there.mode(), there.rdev()),
            (here.mode(), here.rdev()),
            "{name}: kind, mode and device number"
        );
    }
    assert_eq!(meta(&b.path(dir).join("null")).rdev(), libc::makedev(1, 3));
}

fn special_files_local(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let pipe = format!("{dir}/pipe");
    let socket = format!("{dir}/socket");
    mkfifo(&a.path(&pipe)).unwrap();
    let listener = UnixListener::bind(a.path(&socket)).unwrap();
    wait_for_node(b, &pipe, |m| m.file_type().is_fifo());
    wait_for_node(b, &socket, |m| m.file_type().is_socket());

    // Non-blocking, so that opening a fifo waits for no other end.
    let open = |p: PathBuf, write: bool| {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_NONBLOCK)
            .open(p)
            .unwrap()
    };
    let mut writer = open(a.path(&pipe), true);
    writer.write_all(b"piped").unwrap();
    let mut buf = [0u8; 16];
    let there = open(b.path(&pipe), false).read(&mut buf);
    assert!(
        matches!(there, Ok(0)) || errno_of(there) == Some(libc::EAGAIN),
        "the other device's fifo has no data"
    );
    let n = open(a.path(&pipe), false).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"piped", "the fifo works on its device");

    UnixStream::connect(a.path(&socket)).expect("connecting on the device that listens");
    fails(
        libc::ECONNREFUSED,
        "connecting on the other device",
        UnixStream::connect(b.path(&socket)),
    );
    drop(listener);
}

fn nosuid_nodev(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    for device in [a, b] {
        let options = mount_options(device.mountpoint());
        for wanted in ["nosuid", "nodev"] {
            assert!(
                options.iter().any(|o| o == wanted),
                "{} is mounted {options:?}",
                device.name()
            );
        }
    }
    let zero = format!("{dir}/zero");
    mknod(&a.path(&zero), libc::S_IFCHR | 0o666, libc::makedev(1, 5)).unwrap();
    wait_for_node(b, &zero, |m| m.file_type().is_char_device());
    for device in [a, b] {
        fails(
            libc::EACCES,
            &format!("opening a device node on {}", device.name()),
            File::open(device.path(&zero)),
        );
    }
    let setuid = format!("{dir}/setuid");
    fs::write(a.path(&setuid), b"#!/bin/sh\nid -u\n").unwrap();
    fs::set_permissions(a.path(&setuid), fs::Permissions::from_mode(0o4755)).unwrap();
    wait_for_entry(b, &setuid, file(b"#!/bin/sh\nid -u\n"));
    wait_for("the set-user-ID bit on b", SYNC, &0o4755, || {
        mode(&b.path(&setuid))
    });
}

// ----- Content -----

fn changes_on_close(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let p = |rel: &str| format!("{dir}/{rel}");
    fs::write(a.path(p("doc.txt")), b"v1\n").unwrap();
    wait_for_entry(b, &p("doc.txt"), file(b"v1\n"));

    let mut edited = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(a.path(p("doc.txt")))
        .unwrap();
    edited.write_all(b"v2, first half\n").unwrap();
    let mut created = File::create(a.path(p("new.txt"))).unwrap();
    created.write_all(b"new, still open\n").unwrap();
    // Something closed after them arrives; they do not.
    fs::write(a.path(p("marker")), b"closed\n").unwrap();
    wait_for_entry(b, &p("marker"), file(b"closed\n"));
    assert_eq!(
        fs::read(b.path(p("doc.txt"))).unwrap(),
        b"v1\n",
        "the previous version while it is open"
    );
    assert!(
        !b.path(p("new.txt")).exists(),
        "a file created and still open is not there yet"
    );
    edited.write_all(b"v2, second half\n").unwrap();
    drop(edited);
    drop(created);
    wait_for_entry(b, &p("doc.txt"), file(b"v2, first half\nv2, second half\n"));
    wait_for_entry(b, &p("new.txt"), file(b"new, still open\n"));
}

fn fsync_upload(mesh: &Pair, dir: &str) {
    let rel = format!("{dir}/log.txt");
    let mut log = File::create(mesh.a.path(&rel)).unwrap();
    log.write_all(b"line 1\n").unwrap();
    log.sync_all().unwrap();
    wait_for_entry(&mesh.b, &rel, file(b"line 1\n"));
    log.write_all(b"line 2\n").unwrap();
    log.sync_all().unwrap();
    wait_for_entry(&mesh.b, &rel, file(b"line 1\nline 2\n"));
    drop(log);
}

fn fsync_local(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    let rel = format!("{dir}/durable.txt");
    offline(a, &apart.to_a);
    let mut f = File::create(a.path(&rel)).unwrap();
    f.write_all(b"made durable offline\n").unwrap();
    f.sync_all().expect("fsync while offline");
    assert_eq!(
        xattr_get(&a.path(&rel), "user.mesh.state").unwrap(),
        b"pending"
    );
    drop(f);
    online(a, &apart.to_a);
    wait_for_entry(b, &rel, file(b"made durable offline\n"));
    wait_until("the file to be on the server", SYNC, || {
        xattr_get(&a.path(&rel), "user.mesh.state").unwrap() != b"pending"
    });
}

fn sparse(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let rel = format!("{dir}/sparse.bin");
    // 16 MiB of which only the last byte was written.
    let size = 16 * MIB;
    let stored = |p: &Path| meta(p).blocks() * 512;
    let seek = |f: &File, whence| {
        // SAFETY: lseek on a descriptor `f` owns.
        unsafe { libc::lseek(f.as_raw_fd(), 0, whence) }
    };
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(a.path(&rel))
        .unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(b"x", size - 1).unwrap();
    // While written here: the local copy's holes and blocks.
    assert_eq!(seek(&f, libc::SEEK_HOLE), 0, "a hole at the start");
    assert!(seek(&f, libc::SEEK_DATA) >= (size - MIB) as i64);
    assert!(stored(&a.path(&rel)) < MIB, "du while written");
    drop(f);
    settled(a);
    wait_until("the sparse file listed on b", SYNC, || {
        fs::metadata(b.path(&rel)).is_ok_and(|m| m.len() == size)
    });
    for device in [a, b] {
        let path = device.path(&rel);
        let counted = stored(&path);
        assert!(
            (512..=8 * MIB + 512).contains(&counted),
            "du counts {counted} bytes on {}: the data and at most 4 MiB on each side",
            device.name()
        );
        let f = File::open(&path).unwrap();
        assert_eq!(
            seek(&f, libc::SEEK_HOLE),
            size as i64,
            "the only hole is the end"
        );
        assert_eq!(seek(&f, libc::SEEK_DATA), 0, "all data");
    }
    let bytes = fs::read(b.path(&rel)).unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert!(bytes[..bytes.len() - 1].iter().all(|&b| b == 0));
    assert_eq!(bytes[bytes.len() - 1], b'x');
}

fn fallocate(mesh: &Pair, dir: &str) {
    let rel = format!("{dir}/allocated.bin");
    let f = File::create(mesh.a.path(&rel)).unwrap();
    let fd = f.as_raw_fd();
    // SAFETY: fallocate on a descriptor `f` owns.
    fails(
        libc::EOPNOTSUPP,
        "fallocate",
        sys(unsafe { libc::fallocate(fd, 0, 0, MIB as i64) }),
    );
    fails(
        libc::EOPNOTSUPP,
        "punching a hole",
        // SAFETY: as above.
        sys(unsafe {
            libc::fallocate(
                fd,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                4096,
            )
        }),
    );
    // SAFETY: as above.
    assert_eq!(unsafe { libc::posix_fallocate(fd, 0, MIB as i64) }, 0);
    assert_eq!(f.metadata().unwrap().len(), MIB);
    drop(f);
    wait_for_entry(&mesh.b, &rel, file(&vec![0; MIB as usize]));
}

fn o_tmpfile(mesh: &Pair, dir: &str) {
    fails(
        libc::EOPNOTSUPP,
        "O_TMPFILE",
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(mesh.a.path(dir)),
    );
    assert_eq!(names(&mesh.a.path(dir)), Vec::<String>::new());
}

fn o_direct(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let rel = format!("{dir}/direct.bin");
    fs::write(a.path(&rel), b"before\n").unwrap();
    wait_for_entry(b, &rel, file(b"before\n"));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(a.path(&rel))
        .expect("opening with O_DIRECT");
    f.write_all_at(b"written directly\n", 3)
        .expect("an unaligned O_DIRECT write");
    let mut buf = [0u8; 9];
    f.read_exact_at(&mut buf, 1)
        .expect("an unaligned O_DIRECT read");
    assert_eq!(&buf, b"efwritten");
    fs::write(a.path(dir).join("marker"), b"closed\n").unwrap();
    wait_for_entry(b, &format!("{dir}/marker"), file(b"closed\n"));
    assert_eq!(
        fs::read(b.path(&rel)).unwrap(),
        b"before\n",
        "not on the server before close"
    );
    drop(f);
    wait_for_entry(b, &rel, file(b"befwritten directly\n"));
}

fn mmap(mesh: &Pair, dir: &str) {
    let rel = format!("{dir}/mapped.bin");
    let len = 4096;
    let written = b"written through a shared mapping";
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(mesh.a.path(&rel))
        .unwrap();
    f.set_len(len as u64).unwrap();
    // SAFETY: a new shared mapping of `len` bytes of the file `f` owns,
    // written within its length and unmapped before `f` closes.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
        std::ptr::copy_nonoverlapping(written.as_ptr(), p.cast::<u8>(), written.len());
        assert_eq!(libc::msync(p, len, libc::MS_SYNC), 0, "msync");
        assert_eq!(libc::munmap(p, len), 0, "munmap");
    }
    drop(f);
    let mut expected = written.to_vec();
    expected.resize(len, 0);
    wait_for_entry(&mesh.b, &rel, file(&expected));
    let there = File::open(mesh.b.path(&rel)).unwrap();
    // SAFETY: a read-only mapping of the whole file, read within its
    // length and unmapped before the file closes.
    let mapped = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            there.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec();
        libc::munmap(p, len);
        bytes
    };
    assert_eq!(mapped, expected);
}

fn ioctl(mesh: &Pair, dir: &str) {
    let rel = format!("{dir}/file");
    fs::write(mesh.a.path(&rel), b"x").unwrap();
    let f = File::open(mesh.a.path(&rel)).unwrap();
    for (name, request) in [
        ("FS_IOC_GETFLAGS", libc::FS_IOC_GETFLAGS),
        ("FS_IOC_GETVERSION", libc::FS_IOC_GETVERSION),
    ] {
        let mut out: libc::c_long = 0;
        fails(
            libc::ENOTTY,
            name,
            // SAFETY: both requests write one long to the pointer given.
            sys(unsafe { libc::ioctl(f.as_raw_fd(), request, &mut out) }),
        );
    }
}

fn inotify_local(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    // SAFETY: no preconditions; the descriptor is owned from here on.
    let fd = sys(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })
        .expect("inotify_init1");
    // SAFETY: a descriptor just made, owned by nothing else.
    let mut events = File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let watched = cpath(&b.path(dir));
    // SAFETY: a NUL-terminated path.
    sys(unsafe { libc::inotify_add_watch(fd, watched.as_ptr(), libc::IN_ALL_EVENTS) })
        .expect("inotify_add_watch");
    let mut buf = [0u8; 4096];

    fs::write(a.path(dir).join("from a.txt"), b"from a\n").unwrap();
    // Looked up, not read: reading it would be an event of b's own.
    wait_until("the file from a listed on b", SYNC, || {
        b.path(dir).join("from a.txt").exists()
    });
    fails(
        libc::EAGAIN,
        "an event for a change from the other device",
        events.read(&mut buf),
    );

    fs::write(b.path(dir).join("made on b.txt"), b"here\n").unwrap();
    let n = events
        .read(&mut buf)
        .expect("events for a change made here");
    let name = b"made on b.txt";
    assert!(
        buf[..n].windows(name.len()).any(|w| w == name),
        "an event names the file made here"
    );
}

// ----- Owners, modes and permissions -----

fn owners_per_device(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let d = a.path(dir);
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    // Another user on this device makes a file: it is theirs here.
    let made = d.join("made by 1234");
    let c = cpath(&made);
    let status = in_child(|| {
        // SAFETY: system calls on a NUL-terminated path made before the fork.
        unsafe {
            if libc::setgid(5678) != 0 || libc::setuid(1234) != 0 {
                return 1;
            }
            let fd = libc::open(c.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
            if fd < 0 {
                return 2;
            }
            libc::close(fd);
        }
        0
    });
    assert_eq!(status, 0, "the child could not make the file");
    assert_eq!((meta(&made).uid(), meta(&made).gid()), (1234, 5678));
    // chown changes this device's view only.
    let chowned = d.join("chowned");
    fs::write(&chowned, b"x").unwrap();
    std::os::unix::fs::chown(&chowned, Some(4321), Some(8765)).unwrap();
    fs::set_permissions(&chowned, fs::Permissions::from_mode(0o640)).unwrap();
    let there = b.path(dir).join("chowned");
    wait_for("the mode change on b", SYNC, &Some(0o640), || {
        fs::symlink_metadata(&there).ok().map(|m| m.mode() & 0o7777)
    });
    wait_for_entry(b, &format!("{dir}/made by 1234"), file(b""));
    for rel in ["made by 1234", "chowned"] {
        let m = meta(&b.path(dir).join(rel));
        assert_eq!(
            (m.uid(), m.gid()),
            (uid, gid),
            "{rel} on b belongs to who mounted b"
        );
    }
    settled(a);
    assert_eq!((meta(&chowned).uid(), meta(&chowned).gid()), (4321, 8765));
    assert_eq!((meta(&made).uid(), meta(&made).gid()), (1234, 5678));
}

fn modes_synced(mesh: &Pair, dir: &str) {
    let wanted = [
        ("setuid", 0o4755),
        ("setgid", 0o2711),
        ("private", 0o600),
        ("sticky dir", 0o1777),
    ];
    for (name, m) in wanted {
        let p = mesh.a.path(dir).join(name);
        if name.ends_with("dir") {
            fs::create_dir(&p).unwrap();
        } else {
            fs::write(&p, b"x").unwrap();
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
    }
    for (name, m) in wanted {
        let there = mesh.b.path(dir).join(name);
        wait_for(&format!("the mode of {name} on b"), SYNC, &Some(m), || {
            fs::symlink_metadata(&there).ok().map(|m| m.mode() & 0o7777)
        });
    }
}

fn set_id_dropped(mesh: &Pair, dir: &str) {
    let d = mesh.a.path(dir);
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    let chmod = |p: &Path, m| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    let mode_of = |p: &Path| fs::symlink_metadata(p).ok().map(|m| m.mode() & 0o7777);
    // Files of user 1234, who writes to two of them and truncates one.
    let written = d.join("written");
    let locking = d.join("locking");
    let truncated = d.join("truncated");
    for (p, m) in [(&written, 0o6755), (&locking, 0o2644), (&truncated, 0o4755)] {
        fs::write(p, b"x").unwrap();
        std::os::unix::fs::chown(p, Some(1234), Some(5678)).unwrap();
        chmod(p, m);
    }
    let (w, l, t) = (cpath(&written), cpath(&locking), cpath(&truncated));
    let status = in_child(|| {
        // SAFETY: system calls on NUL-terminated paths made before the fork.
        unsafe {
            if libc::setgid(5678) != 0 || libc::setuid(1234) != 0 {
                return 1;
            }
            for c in [&w, &l] {
                let fd = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_APPEND);
                if fd < 0 {
                    return 2;
                }
                if libc::write(fd, b"y".as_ptr().cast(), 1) != 1 {
                    return 3;
                }
                libc::close(fd);
            }
            if libc::truncate(t.as_ptr(), 0) != 0 {
                return 4;
            }
        }
        0
    });
    assert_eq!(status, 0, "user 1234 could not write or truncate");
    // Root writes with CAP_FSETID and keeps them; giving the file away
    // drops them.
    let roots = d.join("root's");
    fs::write(&roots, b"x").unwrap();
    chmod(&roots, 0o4755);
    let mut f = OpenOptions::new().append(true).open(&roots).unwrap();
    f.write_all(b"y").unwrap();
    drop(f);
    assert_eq!(mode_of(&roots), Some(0o4755), "root's write keeps the bits");
    std::os::unix::fs::chown(&roots, Some(4321), None).unwrap();
    assert_eq!(mode_of(&roots), Some(0o755), "a change of owner drops them");
    assert_eq!(mode_of(&truncated), Some(0o755), "a truncation drops them");
    let wanted = [
        ("written", 0o755),
        ("locking", 0o2644),
        ("truncated", 0o755),
        ("root's", 0o755),
    ];
    for (device, on) in [(&mesh.a, "a"), (&mesh.b, "b")] {
        for (rel, m) in wanted {
            let p = device.path(dir).join(rel);
            wait_for(
                &format!("the mode of {rel} on {on}"),
                SYNC,
                &Some(m),
                || mode_of(&p),
            );
        }
    }
}

/// A new user `email` with a device of their own (`NAMEs-laptop`).
fn new_user(mesh: &Pair, email: &str) -> Device {
    mesh.server.add_user(email);
    let device_name = format!("{}s-laptop", email.split('@').next().unwrap());
    Device::mount(&mesh.server, email, &device_name)
}

/// A new user `email` with a device of their own, with whom device a
/// shares its Live Folder `folder` as `role`; once they have accepted and
/// their mount lists it.
fn shared_with(mesh: &Pair, email: &str, folder: &str, role: &str) -> Device {
    let other = new_user(mesh, email);
    share_and_accept(mesh, (&other, email), folder, role, folder);
    other
}

/// Device a shares its Live Folder `folder` as `role` with `email`, who
/// accepts on `other`; returns once `other`'s mount lists it as `shown`.
fn share_and_accept(
    mesh: &Pair,
    (other, email): (&Device, &str),
    folder: &str,
    role: &str,
    shown: &str,
) {
    let a = &mesh.a;
    a.run_meshfs(&[
        "share",
        a.path(folder).to_str().unwrap(),
        email,
        "--role",
        role,
    ]);
    let invitations: serde_json::Value =
        serde_json::from_str(&other.run_meshfs(&["invitations", "--json"])).unwrap();
    other.run_meshfs(&["accept", invitations[0]["id"].as_str().unwrap()]);
    wait_until(&format!("{shown} in {email}'s mount"), SYNC, || {
        names(other.mountpoint()).contains(&shown.to_owned())
    });
}

fn permissions_readers(mesh: &Pair, _dir: &str) {
    let a = &mesh.a;
    let folder = "Shared to read";
    fs::create_dir(a.path(folder)).unwrap();
    fs::write(a.path(folder).join("notes.txt"), b"for reading\n").unwrap();
    fs::create_dir(a.path(folder).join("sub")).unwrap();
    let bob = shared_with(mesh, "bob@example.org", folder, "reader");
    let p = |rel: &str| bob.path(folder).join(rel);
    wait_for_entry(&bob, &format!("{folder}/notes.txt"), file(b"for reading\n"));
    wait_for_entry(&bob, &format!("{folder}/sub"), Some(Entry::Dir));
    assert_eq!(mode(&p("notes.txt")), 0o444, "no write bits");
    assert_eq!(mode(&p("sub")), 0o555, "no write bits");
    fails(libc::EACCES, "creating", File::create(p("new.txt")));
    fails(
        libc::EACCES,
        "opening for writing",
        OpenOptions::new().write(true).open(p("notes.txt")),
    );
    fails(libc::EACCES, "removing", fs::remove_file(p("notes.txt")));
    fails(
        libc::EACCES,
        "chmod",
        fs::set_permissions(p("notes.txt"), fs::Permissions::from_mode(0o666)),
    );
    fails(libc::EACCES, "mkdir", fs::create_dir(p("new dir")));
    fails(
        libc::EACCES,
        "renaming the folder",
        fs::rename(bob.path(folder), bob.path("Renamed by Bob")),
    );
    // The owner's modes arrive, still without write bits.
    fs::set_permissions(
        a.path(folder).join("notes.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    wait_for("the owner's chmod on Bob's device", SYNC, &0o440, || {
        mode(&p("notes.txt"))
    });
    assert_eq!(fs::read(p("notes.txt")).unwrap(), b"for reading\n");
}

fn root_folder_clash(mesh: &Pair, _dir: &str) {
    const DAVE: &str = "dave@example.org";
    let folder = "Same name";
    fs::create_dir(mesh.a.path(folder)).unwrap();
    fs::write(mesh.a.path(folder).join("ann.txt"), b"ann's\n").unwrap();
    let dave = new_user(mesh, DAVE);
    fs::create_dir(dave.path(folder)).unwrap();
    fs::write(dave.path(folder).join("dave.txt"), b"dave's\n").unwrap();
    let shown = format!("{folder} (from {EMAIL})");
    share_and_accept(mesh, (&dave, DAVE), folder, "editor", &shown);
    wait_for_entry(&dave, &format!("{shown}/ann.txt"), file(b"ann's\n"));
    assert_eq!(
        names(&dave.path(folder)),
        ["dave.txt"],
        "his own keeps the name"
    );
    assert!(names(mesh.a.mountpoint()).contains(&folder.to_owned()));
    assert!(
        !names(mesh.a.mountpoint()).contains(&shown),
        "the owner's devices show its own name"
    );
}

fn folder_taken_away(mesh: &Pair, _dir: &str) {
    const CAROL: &str = "carol@example.org";
    let a = &mesh.a;
    let folder = "Lent";
    fs::create_dir(a.path(folder)).unwrap();
    fs::write(a.path(folder).join("owners.txt"), b"the owner's\n").unwrap();
    let carol = shared_with(mesh, CAROL, folder, "editor");
    wait_for_entry(
        &carol,
        &format!("{folder}/owners.txt"),
        file(b"the owner's\n"),
    );
    // Open for writing, so not uploaded yet, when the owner takes her off.
    let mut open = File::create(carol.path(folder).join("draft.txt")).unwrap();
    open.write_all(b"not uploaded yet\n").unwrap();
    a.run_meshfs(&["unshare", a.path(folder).to_str().unwrap(), CAROL]);
    wait_until("the folder to leave Carol's mount", SYNC, || {
        !names(carol.mountpoint()).contains(&folder.to_owned())
    });
    open.write_all(b"written after\n")
        .expect("the open file goes on with its kept copy");
    drop(open);
    let status = carol.status();
    assert_eq!(status["recovered_files"], 1, "{status:#}");
    let dir = Path::new(status["recovered"].as_str().unwrap()).join(folder);
    let kept = names(&dir);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].starts_with("draft (conflict from carols-laptop "),
        "{kept:?}"
    );
    assert_eq!(
        fs::read(dir.join(&kept[0])).unwrap(),
        b"not uploaded yet\nwritten after\n"
    );
    assert_eq!(
        names(&a.path(folder)),
        ["owners.txt"],
        "the owner's is whole"
    );
}

// ----- Times -----

/// 2001-01-01, 2002-02-02 and 2003-03-03, as seconds since the epoch.
const Y2001: i64 = 978_307_200;
const Y2002: i64 = 1_012_608_000;
const Y2003: i64 = 1_046_649_600;

fn mtime_synced(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let p = |rel: &str| format!("{dir}/{rel}");
    fs::write(a.path(p("written.txt")), b"written\n").unwrap();
    let written_at = mtime(&a.path(p("written.txt")));
    assert!(written_at >= (now().0 - 60, 0), "the time of the write");
    wait_for_entry(b, &p("written.txt"), file(b"written\n"));
    assert_eq!(mtime(&b.path(p("written.txt"))), written_at);

    std::os::unix::fs::symlink("written.txt", a.path(p("link"))).unwrap();
    fs::create_dir(a.path(p("dir"))).unwrap();
    let set = [
        ("written.txt", (Y2001, 987_654_321)),
        ("link", (Y2002, 123_456_789)),
        ("dir", (Y2003, 5)),
    ];
    for (rel, t) in set {
        set_times(&a.path(p(rel)), None, Some(t));
    }
    for (rel, t) in set {
        let there = b.path(p(rel));
        wait_for(&format!("the mtime of {rel} on b"), SYNC, &Some(t), || {
            fs::symlink_metadata(&there)
                .ok()
                .map(|m| (m.mtime(), m.mtime_nsec()))
        });
    }
}

fn mtime_directories(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let watched = format!("{dir}/watched");
    fs::create_dir(a.path(&watched)).unwrap();
    set_times(&a.path(&watched), None, Some((Y2003, 0)));
    wait_for(
        "the directory's mtime on b",
        SYNC,
        &Some((Y2003, 0)),
        || {
            fs::symlink_metadata(b.path(&watched))
                .ok()
                .map(|m| (m.mtime(), m.mtime_nsec()))
        },
    );
    fs::write(a.path(&watched).join("from a.txt"), b"a\n").unwrap();
    assert!(
        mtime(&a.path(&watched)).0 > Y2003,
        "a new name changes the directory's mtime where it was made"
    );
    wait_for_entry(b, &format!("{watched}/from a.txt"), file(b"a\n"));
    assert_eq!(
        mtime(&b.path(&watched)),
        (Y2003, 0),
        "but not where it arrives"
    );
    // And the other way round.
    let on_a = mtime(&a.path(&watched));
    fs::write(b.path(&watched).join("from b.txt"), b"b\n").unwrap();
    assert!(mtime(&b.path(&watched)).0 > Y2003);
    wait_for_entry(a, &format!("{watched}/from b.txt"), file(b"b\n"));
    assert_eq!(mtime(&a.path(&watched)), on_a);
    // A change of the directory itself carries the mtime it has here.
    fs::set_permissions(a.path(&watched), fs::Permissions::from_mode(0o750)).unwrap();
    wait_for("the chmod on b", SYNC, &0o750, || mode(&b.path(&watched)));
    assert_eq!(mtime(&b.path(&watched)), on_a);
}

fn ctime_local(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let rel = format!("{dir}/changed.txt");
    fs::write(a.path(&rel), b"x\n").unwrap();
    wait_for_entry(b, &rel, file(b"x\n"));
    fs::set_permissions(a.path(&rel), fs::Permissions::from_mode(0o600)).unwrap();
    let changed_here = ctime(&a.path(&rel));
    wait_for("the chmod on b", SYNC, &0o600, || mode(&b.path(&rel)));
    let applied_there = ctime(&b.path(&rel));
    assert!(
        applied_there > changed_here,
        "b's ctime {applied_there:?} is when b applied the change, after a made it at {changed_here:?}"
    );
    assert_eq!(
        mtime(&b.path(&rel)),
        mtime(&a.path(&rel)),
        "while the mtime is the same"
    );
}

fn no_birth_time(mesh: &Pair, dir: &str) {
    let rel = format!("{dir}/born.txt");
    fs::write(mesh.a.path(&rel), b"x\n").unwrap();
    wait_for_entry(&mesh.b, &rel, file(b"x\n"));
    for device in [&mesh.a, &mesh.b] {
        let c = cpath(&device.path(&rel));
        // SAFETY: zeroes are a valid statx to fill.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a statx to fill.
        sys(unsafe {
            libc::statx(
                libc::AT_FDCWD,
                c.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
                libc::STATX_BASIC_STATS | libc::STATX_BTIME,
                &mut st,
            )
        })
        .expect("statx");
        assert_eq!(
            st.stx_mask & libc::STATX_BTIME,
            0,
            "a birth time on {}",
            device.name()
        );
        assert_ne!(
            st.stx_mask & libc::STATX_MTIME,
            0,
            "the other times are there"
        );
    }
}

fn atime_local(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let rel = format!("{dir}/read.txt");
    let started = now();
    fs::write(a.path(&rel), b"read me\n").unwrap();
    // Older than the mtime and than a day: relatime would update it.
    set_times(&a.path(&rel), Some((Y2001, 0)), None);
    assert_eq!(fs::read(a.path(&rel)).unwrap(), b"read me\n");
    assert_eq!(atime(&a.path(&rel)), (Y2001, 0), "reading left it");
    wait_for_entry(b, &rel, file(b"read me\n"));
    // A change that is synced carries no atime.
    set_times(&a.path(&rel), None, Some((Y2002, 0)));
    wait_for("the mtime on b", SYNC, &(Y2002, 0), || mtime(&b.path(&rel)));
    let there = atime(&b.path(&rel));
    assert!(
        there >= started,
        "b's atime {there:?} is when the file arrived there"
    );
    assert_eq!(fs::read(b.path(&rel)).unwrap(), b"read me\n");
    assert_eq!(atime(&b.path(&rel)), there, "reading left it on b too");
    assert_eq!(atime(&a.path(&rel)), (Y2001, 0));
}

// ----- Extended attributes -----

fn xattrs_user(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let rel = format!("{dir}/tagged.txt");
    fs::write(a.path(&rel), b"x\n").unwrap();
    let binary = [0u8, 1, 2, 0xff, 0];
    xattr_set(&a.path(&rel), "user.colour", b"blue").unwrap();
    xattr_set(&a.path(&rel), "user.binary", &binary).unwrap();
    let both = vec!["user.binary".to_owned(), "user.colour".to_owned()];
    wait_for("the attributes on b", SYNC, &both, || {
        if b.path(&rel).exists() {
            xattr_list(&b.path(&rel))
        } else {
            Vec::new()
        }
    });
    assert_eq!(xattr_get(&b.path(&rel), "user.colour").unwrap(), b"blue");
    assert_eq!(xattr_get(&b.path(&rel), "user.binary").unwrap(), binary);
    xattr_remove(&a.path(&rel), "user.colour").unwrap();
    wait_for(
        "the removal on b",
        SYNC,
        &vec!["user.binary".to_owned()],
        || xattr_list(&b.path(&rel)),
    );
    fails(
        libc::ENODATA,
        "a removed attribute",
        xattr_get(&b.path(&rel), "user.colour"),
    );
}

/// A POSIX ACL giving user 1234 read access, as `setfacl -m u:1234:r`
/// stores it in `system.posix_acl_access`.
fn acl_for_user_1234() -> Vec<u8> {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 6u16, u32::MAX), // user::rw-
        (0x02, 4, 1234),           // user:1234:r--
        (0x04, 4, u32::MAX),       // group::r--
        (0x10, 4, u32::MAX),       // mask::r--
        (0x20, 4, u32::MAX),       // other::r--
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    acl
}

fn xattrs_other_namespaces(mesh: &Pair, dir: &str) {
    let p = mesh.a.path(dir).join("plain.txt");
    fs::write(&p, b"x\n").unwrap();
    for name in ["trusted.note", "security.note", "system.note"] {
        fails(libc::EOPNOTSUPP, name, xattr_set(&p, name, b"x"));
    }
    fails(
        libc::EOPNOTSUPP,
        "a POSIX ACL",
        xattr_set(&p, "system.posix_acl_access", &acl_for_user_1234()),
    );
    for name in [
        "trusted.note",
        "security.selinux",
        "security.capability",
        "system.posix_acl_access",
    ] {
        fails(libc::EOPNOTSUPP, name, xattr_get(&p, name));
    }
    assert_eq!(xattr_list(&p), Vec::<String>::new());
    // As on a file system without ACLs: the mode bits, and no error.
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    let acl = std::process::Command::new("getfacl")
        .args(["--omit-header"])
        .arg(&p)
        .output()
        .expect("getfacl runs (package acl)");
    assert!(acl.status.success(), "getfacl: {acl:?}");
    assert_eq!(
        String::from_utf8_lossy(&acl.stdout),
        "user::rw-\ngroup::r--\nother::---\n\n"
    );
}

fn xattrs_mesh(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    let rel = format!("{dir}/file.txt");
    fs::write(a.path(&rel), b"x\n").unwrap();
    wait_for_entry(b, &rel, file(b"x\n"));
    let here = a.path(&rel);
    let state = xattr_get(&here, "user.mesh.state").unwrap();
    assert!(
        ["cloud", "cached", "pinned", "pending", "conflict"]
            .contains(&String::from_utf8_lossy(&state).as_ref()),
        "user.mesh.state is {state:?}"
    );
    assert!(xattr_get(&here, "user.mesh.users").is_ok());
    assert_eq!(xattr_list(&here), Vec::<String>::new(), "none is listed");
    for name in ["user.mesh.state", "user.mesh.users"] {
        fails(libc::EPERM, name, xattr_set(&here, name, b"x"));
    }
    fails(
        libc::EOPNOTSUPP,
        "a name of its own under user.mesh.",
        xattr_set(&here, "user.mesh.colour", b"blue"),
    );
    xattr_set(&here, "user.mesh.pinned", b"1").unwrap();
    assert_eq!(xattr_get(&here, "user.mesh.pinned").unwrap(), b"1");
    assert_eq!(xattr_list(&here), Vec::<String>::new());
    // Never synced: a change that is synced leaves b's pin as it was.
    fs::set_permissions(&here, fs::Permissions::from_mode(0o600)).unwrap();
    wait_for("the chmod on b", SYNC, &0o600, || mode(&b.path(&rel)));
    assert_eq!(xattr_get(&b.path(&rel), "user.mesh.pinned").unwrap(), b"0");
    assert_eq!(xattr_list(&b.path(&rel)), Vec::<String>::new());
}

// ----- Locks -----

fn locks_per_device(mesh: &Pair, dir: &str) {
    let (a, b) = (&mesh.a, &mesh.b);
    for name in ["flock", "ofd", "posix"] {
        fs::write(a.path(dir).join(name), b"").unwrap();
        wait_for_entry(b, &format!("{dir}/{name}"), file(b""));
    }
    let open = |device: &Device, name: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(device.path(dir).join(name))
            .unwrap()
    };

    // flock(2)
    let (held, other_here, there) = (open(a, "flock"), open(a, "flock"), open(b, "flock"));
    let flock = |f: &File| {
        // SAFETY: flock on a descriptor `f` owns.
        sys(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) })
    };
    flock(&held).expect("flock");
    fails(
        libc::EWOULDBLOCK,
        "flock by another open file here",
        flock(&other_here),
    );
    flock(&there).expect("flock of the same file on the other device");

    // fcntl locks of open file descriptions (F_OFD_SETLK)
    // SAFETY: zeroes are a valid flock.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as i16;
    lock.l_whence = libc::SEEK_SET as i16;
    let fcntl = |f: &File, cmd: i32| {
        // SAFETY: fcntl with a flock that lives across the call.
        sys(unsafe { libc::fcntl(f.as_raw_fd(), cmd, &lock) })
    };
    let (held, other_here, there) = (open(a, "ofd"), open(a, "ofd"), open(b, "ofd"));
    fcntl(&held, libc::F_OFD_SETLK).expect("an OFD lock");
    fails(
        libc::EAGAIN,
        "an OFD lock by another open file here",
        fcntl(&other_here, libc::F_OFD_SETLK),
    );
    fcntl(&there, libc::F_OFD_SETLK).expect("an OFD lock of the same file on the other device");

    // Classic fcntl locks, which belong to a process: another process
    // here cannot take the lock, and can on the other device.
    let held = open(a, "posix");
    fcntl(&held, libc::F_SETLK).expect("a classic fcntl lock");
    let (here, there) = (
        cpath(&a.path(dir).join("posix")),
        cpath(&b.path(dir).join("posix")),
    );
    let status = in_child(|| {
        let try_lock = |path: &CString| {
            // SAFETY: system calls on a path and a flock made before the fork.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDWR);
                if fd < 0 {
                    return -1;
                }
                let r = libc::fcntl(fd, libc::F_SETLK, &lock);
                libc::close(fd);
                r
            }
        };
        match (try_lock(&here), try_lock(&there)) {
            (-1, 0) => 0,
            (0, _) => 1,
            _ => 2,
        }
    });
    assert_eq!(
        status, 0,
        "another process: refused here (not 1), granted on the other device (not 2)"
    );
    drop(held);
}

// ----- Space -----

fn statfs_quota(mesh: &Pair, dir: &str) {
    let a = &mesh.a;
    let unlimited = (1u64 << 32) * 4096;
    assert_eq!(
        df(a.mountpoint()),
        (unlimited, unlimited),
        "no quota: 16 TiB"
    );
    let st = statvfs(a.mountpoint());
    assert_eq!((st.f_files, st.f_ffree), (1 << 24, 1 << 24), "df -i");
    let gib = 1u64 << 30;
    mesh.server.run_meshd(&["user", "quota", EMAIL, "1G"]);
    // The mount hears of the account's storage when it pushes.
    fs::write(a.path(dir).join("some.bin"), vec![7u8; 100_000]).unwrap();
    wait_until("df to show the quota and what is left of it", SYNC, || {
        let used = a.status()["storage_used"].as_u64().unwrap_or(0);
        used >= 100_000 && df(a.mountpoint()) == (gib, (gib - used) / 4096 * 4096)
    });
    mesh.server.run_meshd(&["user", "quota", EMAIL, "default"]);
    fs::write(a.path(dir).join("more.bin"), vec![8u8; 1000]).unwrap();
    wait_until("df to show no quota again", SYNC, || {
        df(a.mountpoint()) == (unlimited, unlimited)
    });
}

// ----- Offline and conflicts -----

fn offline_reads(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    let near = format!("{dir}/near.txt");
    let far = format!("{dir}/far.bin");
    fs::write(a.path(&near), b"read before\n").unwrap();
    write_pseudo_random(&a.path(&far), 3, MIB);
    wait_for_entry(b, &near, file(b"read before\n"));
    wait_until("far.bin listed on b", SYNC, || {
        fs::metadata(b.path(&far)).is_ok_and(|m| m.len() == MIB)
    });
    offline(b, &apart.to_b);
    assert_eq!(names(&b.path(dir)), ["far.bin", "near.txt"]);
    assert_eq!(fs::read(b.path(&near)).unwrap(), b"read before\n");
    fails(
        libc::EIO,
        "reading content not on the device",
        fs::read(b.path(&far)),
    );
    online(b, &apart.to_b);
    wait_until("far.bin to read once the server is back", SYNC, || {
        check_pseudo_random(&b.path(&far), 3, MIB).is_ok()
    });
}

fn offline_changes(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    let p = |rel: &str| a.path(dir).join(rel);
    fs::write(p("edited.txt"), b"v1\n").unwrap();
    fs::write(p("removed.txt"), b"removed\n").unwrap();
    fs::create_dir(p("moved")).unwrap();
    fs::write(p("moved/inner.txt"), b"inner\n").unwrap();
    wait_for_entry(b, &format!("{dir}/moved/inner.txt"), file(b"inner\n"));
    wait_for_entry(b, &format!("{dir}/removed.txt"), file(b"removed\n"));
    wait_for_entry(b, &format!("{dir}/edited.txt"), file(b"v1\n"));

    offline(a, &apart.to_a);
    fs::write(p("edited.txt"), b"v2, offline\n").unwrap();
    fs::write(p("new.txt"), b"new, offline\n").unwrap();
    fs::set_permissions(p("new.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(p("new dir")).unwrap();
    fs::write(p("new dir/deep.txt"), b"deep\n").unwrap();
    fs::rename(p("moved"), p("renamed")).unwrap();
    fs::remove_file(p("removed.txt")).unwrap();
    let expected = snapshot(&a.path(dir)).unwrap();
    assert!(pending(a) >= 6, "the changes wait in the outbox");
    assert_eq!(
        names(&a.path(dir)),
        ["edited.txt", "new dir", "new.txt", "renamed"]
    );

    online(a, &apart.to_a);
    wait_for_tree("the offline changes on b", SYNC, &b.path(dir), &expected);
    assert_eq!(mode(&b.path(dir).join("new.txt")), 0o600);
    settled(a);
}

fn offline_live_folders(apart: &Apart, _dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    let root = a.mountpoint();
    fs::create_dir(root.join("Kept")).unwrap();
    wait_for_entry(b, "Kept", Some(Entry::Dir));
    let before = names(root);
    offline(a, &apart.to_a);
    fails(
        libc::EIO,
        "making a Live Folder",
        fs::create_dir(root.join("Made offline")),
    );
    fails(
        libc::EIO,
        "renaming a Live Folder",
        fs::rename(root.join("Kept"), root.join("Renamed offline")),
    );
    fails(
        libc::EIO,
        "removing a Live Folder",
        fs::remove_dir(root.join("Kept")),
    );
    assert_eq!(names(root), before);
    online(a, &apart.to_a);
    settled(a);
    assert_eq!(names(root), before, "nothing changed on the server");
    assert_eq!(names(b.mountpoint()), before);
}

/// `NAME (conflict from DEVICE YYYY-MM-DD).EXT` → DEVICE, if `name` is
/// such a name of `stem`.`ext`.
fn conflict_device<'n>(name: &'n str, stem: &str, ext: &str) -> Option<&'n str> {
    let rest = name
        .strip_prefix(stem)?
        .strip_prefix(" (conflict from ")?
        .strip_suffix(ext)?
        .strip_suffix(')')?;
    let (device, date) = rest.rsplit_once(' ')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<_> = date.split('-').collect();
    (parts.len() == 3 && digits(parts[0], 4) && digits(parts[1], 2) && digits(parts[2], 2))
        .then_some(device)
}

fn conflict_copies(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    let rel = format!("{dir}/report.txt");
    fs::write(a.path(&rel), b"v0\n").unwrap();
    wait_for_entry(b, &rel, file(b"v0\n"));
    apart.both_offline();
    let written = [
        (a.name(), &b"laptop's version\n"[..]),
        (b.name(), &b"desktop's version\n"[..]),
    ];
    fs::write(a.path(&rel), written[0].1).unwrap();
    fs::write(b.path(&rel), written[1].1).unwrap();
    apart.both_back(dir);
    wait_until("a conflicted copy beside the file", SYNC, || {
        names(&a.path(dir)).len() == 2
    });
    apart.both_back(dir);
    let shown = snapshot(&a.path(dir)).unwrap();
    assert_eq!(snapshot(&b.path(dir)).unwrap(), shown, "the same on both");
    let copy = shown
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .find(|n| n != "report.txt")
        .unwrap();
    let loser = conflict_device(&copy, "report", ".txt")
        .unwrap_or_else(|| panic!("{copy:?} is no conflicted copy's name"));
    let content = |who: &str| {
        written
            .iter()
            .find(|(name, _)| *name == who)
            .map(|(_, bytes)| Entry::File(bytes.to_vec()))
            .unwrap_or_else(|| panic!("{who} is not one of the devices"))
    };
    let winner = if loser == a.name() {
        b.name()
    } else {
        a.name()
    };
    assert_eq!(
        shown[Path::new(&copy)],
        content(loser),
        "the losing content"
    );
    assert_eq!(
        shown[Path::new("report.txt")],
        content(winner),
        "the winner under the name"
    );
}

fn conflict_renames(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    fs::write(a.path(dir).join("draft.txt"), b"draft\n").unwrap();
    wait_for_entry(b, &format!("{dir}/draft.txt"), file(b"draft\n"));
    apart.both_offline();
    let rename = |device: &Device, to: &str| {
        fs::rename(
            device.path(dir).join("draft.txt"),
            device.path(dir).join(to),
        )
        .unwrap();
    };
    rename(a, "named on laptop.txt");
    rename(b, "named on desktop.txt");
    apart.both_back(dir);
    let shown = snapshot(&a.path(dir)).unwrap();
    assert_eq!(shown.len(), 1, "once, with no copy: {shown:?}");
    let (name, content) = shown.iter().next().unwrap();
    assert!(
        ["named on laptop.txt", "named on desktop.txt"].contains(&name.to_str().unwrap()),
        "one of the names: {name:?}"
    );
    assert_eq!(*content, Entry::File(b"draft\n".to_vec()));
    assert_eq!(snapshot(&b.path(dir)).unwrap(), shown);
}

fn conflict_removed_directory(apart: &Apart, _dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    // A Live Folder of its own, whose top level the file goes to.
    let folder = "Orphans";
    fs::create_dir(a.path(folder)).unwrap();
    fs::create_dir(a.path(folder).join("old")).unwrap();
    wait_for_entry(b, &format!("{folder}/old"), Some(Entry::Dir));
    apart.both_offline();
    fs::remove_dir(a.path(folder).join("old")).unwrap();
    let written = b"written in a removed directory\n";
    fs::write(b.path(folder).join("old/new.txt"), written).unwrap();
    apart.both_back(folder);
    let expected: BTreeMap<PathBuf, Entry> =
        [(PathBuf::from("new.txt"), Entry::File(written.to_vec()))].into();
    assert_eq!(snapshot(&a.path(folder)).unwrap(), expected);
    assert_eq!(snapshot(&b.path(folder)).unwrap(), expected);
}

fn conflict_edit_delete(apart: &Apart, dir: &str) {
    let (a, b) = (&apart.a, &apart.b);
    let rel = format!("{dir}/plan.txt");
    fs::write(a.path(&rel), b"v0\n").unwrap();
    wait_for_entry(b, &rel, file(b"v0\n"));
    apart.both_offline();
    fs::remove_file(a.path(&rel)).unwrap();
    fs::write(b.path(&rel), b"edited apart\n").unwrap();
    apart.both_back(dir);
    let shown = snapshot(&a.path(dir)).unwrap();
    assert_eq!(snapshot(&b.path(dir)).unwrap(), shown, "the same on both");
    assert_eq!(shown.len(), 1, "{shown:?}");
    let (name, content) = shown.iter().next().unwrap();
    assert_eq!(*content, Entry::File(b"edited apart\n".to_vec()));
    let name = name.to_string_lossy();
    assert!(
        name == "plan.txt" || conflict_device(&name, "plan", ".txt") == Some(b.name()),
        "under its name or as the editor's conflicted copy: {name:?}"
    );
}

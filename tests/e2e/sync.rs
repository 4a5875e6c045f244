//! Everyday file operations on one device reach the other device of the
//! same user: small files, editors' saves, whole trees — and refused names
//! change nothing anywhere.

use mesh_e2e::{
    Entry, Pair, SYNC, count_files, errno_of, names, pseudo_random_vec, snapshot, wait_for,
    wait_for_entry, wait_for_tree,
};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

fn file(bytes: &[u8]) -> Option<Entry> {
    Some(Entry::File(bytes.to_vec()))
}

#[test]
fn small_file_changes_reach_the_other_device() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Docs");

    // Create.
    fs::write(a.path("Docs/hello.txt"), b"hello\n").unwrap();
    wait_for_entry(b, "Docs/hello.txt", file(b"hello\n"));

    // Append.
    OpenOptions::new()
        .append(true)
        .open(a.path("Docs/hello.txt"))
        .unwrap()
        .write_all(b"world\n")
        .unwrap();
    wait_for_entry(b, "Docs/hello.txt", file(b"hello\nworld\n"));

    // Overwrite with shorter content (O_TRUNC).
    fs::write(a.path("Docs/hello.txt"), b"bye\n").unwrap();
    wait_for_entry(b, "Docs/hello.txt", file(b"bye\n"));

    // Overwrite in place, same size: b has read the old bytes already.
    OpenOptions::new()
        .write(true)
        .open(a.path("Docs/hello.txt"))
        .unwrap()
        .write_all_at(b"BYE", 0)
        .unwrap();
    wait_for_entry(b, "Docs/hello.txt", file(b"BYE\n"));

    // Rename.
    fs::rename(a.path("Docs/hello.txt"), a.path("Docs/greeting.txt")).unwrap();
    wait_for_entry(b, "Docs/greeting.txt", file(b"BYE\n"));
    wait_for_entry(b, "Docs/hello.txt", None);

    // Rename over an existing file, the way editors save.
    fs::write(a.path("Docs/notes.md"), b"draft 1\n").unwrap();
    wait_for_entry(b, "Docs/notes.md", file(b"draft 1\n"));
    fs::write(a.path("Docs/.notes.md.new"), b"draft 2, longer\n").unwrap();
    fs::rename(a.path("Docs/.notes.md.new"), a.path("Docs/notes.md")).unwrap();
    wait_for_entry(b, "Docs/notes.md", file(b"draft 2, longer\n"));
    wait_for_entry(b, "Docs/.notes.md.new", None);

    // Directories and a file deep inside them.
    fs::create_dir_all(a.path("Docs/sub/deeper")).unwrap();
    fs::write(a.path("Docs/sub/deeper/leaf.txt"), b"leaf\n").unwrap();
    wait_for_entry(b, "Docs/sub/deeper/leaf.txt", file(b"leaf\n"));

    // Delete a file.
    fs::remove_file(a.path("Docs/greeting.txt")).unwrap();
    wait_for_entry(b, "Docs/greeting.txt", None);

    // Empty a directory and remove it.
    fs::remove_file(a.path("Docs/sub/deeper/leaf.txt")).unwrap();
    fs::remove_dir(a.path("Docs/sub/deeper")).unwrap();
    wait_for_entry(b, "Docs/sub/deeper", None);
    wait_for_entry(b, "Docs/sub", Some(Entry::Dir));

    // Symlink: the link itself and reading through it.
    std::os::unix::fs::symlink("notes.md", a.path("Docs/link")).unwrap();
    wait_for_entry(b, "Docs/link", Some(Entry::Symlink("notes.md".into())));
    assert_eq!(
        fs::read(b.path("Docs/link")).unwrap(),
        b"draft 2, longer\n",
        "reading through the symlink on device b"
    );

    // And the other way round, from b to a.
    fs::write(b.path("Docs/from-b.txt"), b"written on the desktop\n").unwrap();
    wait_for_entry(a, "Docs/from-b.txt", file(b"written on the desktop\n"));

    // In the end both devices hold exactly the same tree.
    let expected: BTreeMap<PathBuf, Entry> = [
        ("notes.md", Entry::File(b"draft 2, longer\n".to_vec())),
        ("sub", Entry::Dir),
        ("link", Entry::Symlink("notes.md".into())),
        (
            "from-b.txt",
            Entry::File(b"written on the desktop\n".to_vec()),
        ),
    ]
    .into_iter()
    .map(|(p, e)| (PathBuf::from(p), e))
    .collect();
    wait_for_tree("Docs on device a", SYNC, &a.path("Docs"), &expected);
    wait_for_tree("Docs on device b", SYNC, &b.path("Docs"), &expected);
}

#[test]
fn an_editor_style_save_leaves_only_the_new_content() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Notes");
    fs::write(a.path("Notes/file.txt"), b"first version\n").unwrap();
    wait_for_entry(b, "Notes/file.txt", file(b"first version\n"));

    // What vim does on `:w`: a swap file while editing, a probe file named
    // 4913 to test that the directory is writable, the new content written
    // to a temporary name and fsynced, renamed over the original, and the
    // swap file removed on quit.
    fs::write(a.path("Notes/.file.txt.swp"), vec![0u8; 4096]).unwrap();
    fs::write(a.path("Notes/4913"), b"").unwrap();
    fs::remove_file(a.path("Notes/4913")).unwrap();
    {
        let mut tmp = fs::File::create(a.path("Notes/.file.txt.tmp")).unwrap();
        tmp.write_all(b"second version, edited\n").unwrap();
        tmp.sync_all().unwrap();
    }
    fs::rename(a.path("Notes/.file.txt.tmp"), a.path("Notes/file.txt")).unwrap();
    fs::remove_file(a.path("Notes/.file.txt.swp")).unwrap();

    wait_for_entry(b, "Notes/file.txt", file(b"second version, edited\n"));
    let expected: BTreeMap<PathBuf, Entry> = [(
        PathBuf::from("file.txt"),
        Entry::File(b"second version, edited\n".to_vec()),
    )]
    .into();
    wait_for_tree(
        "Notes on device b to hold only file.txt",
        SYNC,
        &b.path("Notes"),
        &expected,
    );
    assert_eq!(
        snapshot(&a.path("Notes")).unwrap(),
        expected,
        "Notes on device a"
    );
}

#[test]
fn files_deleted_right_after_they_are_written_stay_deleted() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Scratch");

    // Short-lived files, as editors and build tools leave behind: each is
    // written, closed and removed a few milliseconds later.
    for i in 0..40u64 {
        fs::write(a.path(format!("Scratch/tmp-{i:02}")), vec![b'x'; 4096]).unwrap();
        std::thread::sleep(Duration::from_millis(i % 20));
        fs::remove_file(a.path(format!("Scratch/tmp-{i:02}"))).unwrap();
    }
    fs::write(a.path("Scratch/kept.txt"), b"kept\n").unwrap();

    let expected: BTreeMap<PathBuf, Entry> =
        [(PathBuf::from("kept.txt"), Entry::File(b"kept\n".to_vec()))].into();
    wait_for_tree(
        "Scratch on device b to hold only kept.txt",
        SYNC,
        &b.path("Scratch"),
        &expected,
    );
    wait_for_tree(
        "Scratch on device a to hold only kept.txt",
        SYNC,
        &a.path("Scratch"),
        &expected,
    );
}

#[test]
fn a_tree_of_2000_small_files_arrives_whole() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Tree");

    // 4 groups × 5 directories × 100 files, of 0 to ~3 KiB each.
    let mut expected = BTreeMap::new();
    for group in 0..4 {
        let group_dir = PathBuf::from(format!("group-{group}"));
        fs::create_dir(a.path("Tree").join(&group_dir)).unwrap();
        expected.insert(group_dir.clone(), Entry::Dir);
        for d in 0..5 {
            let dir = group_dir.join(format!("dir-{d:02}"));
            fs::create_dir(a.path("Tree").join(&dir)).unwrap();
            expected.insert(dir.clone(), Entry::Dir);
            for f in 0..100u64 {
                let n = (group * 5 + d) * 100 + f;
                let mut bytes = format!("file {f} in {}\n", dir.display()).into_bytes();
                bytes.extend(pseudo_random_vec(n, 0, ((n * 7919) % 3000) as usize));
                let path = dir.join(format!("file-{f:03}.dat"));
                fs::write(a.path("Tree").join(&path), &bytes).unwrap();
                expected.insert(path, Entry::File(bytes));
            }
        }
    }
    assert_eq!(count_files(&a.path("Tree")), 2000, "files on device a");

    // A deadline, not a speed requirement: 2,000 files take a while.
    let deadline = Duration::from_secs(120);
    wait_for(
        "all 2000 files to be listed on device b",
        deadline,
        &2000,
        || count_files(&b.path("Tree")),
    );
    wait_for_tree(
        "the tree on device b to match device a",
        SYNC,
        &b.path("Tree"),
        &expected,
    );
}

#[test]
fn refused_names_fail_with_an_errno_and_change_nothing() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Box");

    // A 256-byte name in a Live Folder.
    let long = "x".repeat(256);
    let result = fs::File::create(a.path("Box").join(&long));
    assert_eq!(
        errno_of(result),
        Some(libc::ENAMETOOLONG),
        "creating a file with a 256-byte name"
    );
    let result = fs::create_dir(a.path("Box").join(&long));
    assert_eq!(
        errno_of(result),
        Some(libc::ENAMETOOLONG),
        "mkdir with a 256-byte name"
    );

    // A Live Folder that already exists.
    assert_eq!(
        errno_of(fs::create_dir(a.path("Box"))),
        Some(libc::EEXIST),
        "mkdir of an existing Live Folder at the mount root"
    );

    // A regular file at the mount root, which holds only Live Folders.
    assert_eq!(
        errno_of(fs::File::create(a.path("notes.txt"))),
        Some(libc::EACCES),
        "creating a regular file at the mount root"
    );

    // Nothing changed on a; and once a later change has reached b, b shows
    // nothing new either.
    assert_eq!(names(a.mountpoint()), ["Box"], "mount root on device a");
    assert_eq!(
        names(&a.path("Box")),
        Vec::<String>::new(),
        "Box on device a"
    );
    fs::write(a.path("Box/after.txt"), b"a later change\n").unwrap();
    wait_for_entry(b, "Box/after.txt", file(b"a later change\n"));
    assert_eq!(names(b.mountpoint()), ["Box"], "mount root on device b");
    assert_eq!(names(&b.path("Box")), ["after.txt"], "Box on device b");
}

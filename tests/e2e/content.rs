//! File content: large files arrive intact, content is fetched on demand
//! (a random read fetches only what it needs), and a device keeps listing
//! and reading what it has cached while the server is gone.

use mesh_e2e::{
    Entry, Pair, SYNC, check_pseudo_random, cmp, names, pseudo_random_vec, wait_for,
    wait_for_entry, wait_until, write_pseudo_random,
};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// The size of `path` as `stat` reports it, or `None`.
fn size(path: &std::path::Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

#[test]
fn a_200_mib_file_arrives_byte_identical() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Big");
    let len = 200 * MIB;
    write_pseudo_random(&a.path("Big/data.bin"), 1, len);

    // A deadline, not a speed requirement.
    wait_for(
        "the 200 MiB file to be listed on device b with its full size",
        Duration::from_secs(120),
        &Some(len),
        || size(&b.path("Big/data.bin")),
    );
    // Streamed, like `cmp`: b's copy against a's, and a's against what was
    // written.
    if let Err(difference) = cmp(&a.path("Big/data.bin"), &b.path("Big/data.bin")) {
        panic!("device b's copy is not a's: {difference}");
    }
    if let Err(difference) = check_pseudo_random(&b.path("Big/data.bin"), 1, len) {
        panic!("{difference}");
    }
}

#[test]
fn a_random_read_fetches_only_the_chunks_it_needs() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Media");
    let len = 64 * MIB;
    write_pseudo_random(&a.path("Media/video.bin"), 2, len);
    wait_for(
        "the 64 MiB file to be listed on device b with its full size",
        Duration::from_secs(60),
        &Some(len),
        || size(&b.path("Media/video.bin")),
    );
    let before = b.cached_chunks().len();

    let file = fs::File::open(b.path("Media/video.bin")).unwrap();
    // SAFETY: the descriptor is open for the duration of the call.
    let advice = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
    assert_eq!(advice, 0, "posix_fadvise(POSIX_FADV_RANDOM)");
    // Random 4 KiB reads across the file (never at 0, which starts a
    // sequential read) come as verified slices, not whole chunks.
    let mut buf = vec![0u8; 4096];
    for i in 1..=16u64 {
        let offset = (len / 17 * i + i * 12_345) & !511;
        file.read_exact_at(&mut buf, offset).unwrap();
        assert!(
            buf == pseudo_random_vec(2, offset, buf.len()),
            "the 4 KiB read at {offset} on device b differ from what device a wrote"
        );
    }
    drop(file);

    let chunks = b.cached_chunks();
    assert!(
        chunks.len() <= 3,
        "16 random 4 KiB reads of a 64 MiB file left {} chunk files in device b's cache \
         ({before} before the read); at most 3 were expected:\n{}",
        chunks.len(),
        chunks
            .iter()
            .map(|p| format!("  {} ({} bytes)", p.display(), size(p).unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_remount_lists_and_reads_from_the_cache_while_the_server_is_down() {
    let mut mesh = Pair::start();
    mesh.live_folder("Keep");
    let a = &mesh.a;
    fs::create_dir(a.path("Keep/sub")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("Keep/empty", Vec::new()),
        (
            "Keep/read-me.txt",
            b"read on the desktop before going offline\n".to_vec(),
        ),
        ("Keep/never-read.txt", b"listed, not read\n".to_vec()),
        ("Keep/sub/nested.txt", b"nested\n".to_vec()),
        // Several chunks.
        ("Keep/photo.raw", pseudo_random_vec(3, 0, 3 * MIB as usize)),
    ];
    for (path, bytes) in &files {
        fs::write(a.path(path), bytes).unwrap();
    }
    let b = &mesh.b;
    for (path, bytes) in &files {
        wait_for(
            &format!("{path} to be listed on device b with its size"),
            SYNC,
            &Some(bytes.len() as u64),
            || size(&b.path(path)),
        );
    }
    // Read two of them on b, which caches their content.
    wait_for_entry(b, "Keep/read-me.txt", Some(Entry::File(files[1].1.clone())));
    wait_for_entry(b, "Keep/photo.raw", Some(Entry::File(files[4].1.clone())));

    mesh.server.stop();
    mesh.b.unmount();
    mesh.b.mount_again();
    let b = &mesh.b;

    // `ls -l`: every name with its size, from the metadata cache.
    assert_eq!(names(b.mountpoint()), ["Keep"], "mount root on device b");
    assert_eq!(
        names(&b.path("Keep")),
        ["empty", "never-read.txt", "photo.raw", "read-me.txt", "sub"],
        "Keep on device b after remounting without the server"
    );
    assert_eq!(names(&b.path("Keep/sub")), ["nested.txt"]);
    for (path, bytes) in &files {
        assert_eq!(
            size(&b.path(path)),
            Some(bytes.len() as u64),
            "size of {path} on device b after remounting without the server"
        );
    }
    assert!(fs::metadata(b.path("Keep/sub")).unwrap().is_dir());

    // What was read before is still readable.
    assert!(
        fs::read(b.path("Keep/read-me.txt")).unwrap() == files[1].1,
        "Keep/read-me.txt on device b after remounting without the server"
    );
    assert!(
        fs::read(b.path("Keep/photo.raw")).unwrap() == files[4].1,
        "Keep/photo.raw on device b after remounting without the server"
    );
}

#[test]
fn requests_meshfs_does_not_handle_are_answered_as_a_local_disk_or_the_kernel_answers_them() {
    let mesh = Pair::start();
    let a = &mesh.a;
    mesh.live_folder("Io");
    let path = a.path("Io/plain.txt");
    fs::write(&path, b"text").unwrap();
    // TCGETS, which Python and many C libraries ask of every file they
    // open to learn whether it is a terminal.
    let file = fs::File::open(&path).unwrap();
    let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
    let answer = unsafe { libc::ioctl(file.as_raw_fd(), libc::TCGETS, termios.as_mut_ptr()) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!((answer, errno), (-1, Some(libc::ENOTTY)));

    // What the kernel does itself once meshfs says so: copy_file_range
    // (cp's first try) copies through reads and writes, poll is ready,
    // fallocate is refused as unsupported (posix_fallocate then writes).
    let copy = a.path("Io/copy.txt");
    let out = fs::File::create(&copy).unwrap();
    let copied = unsafe {
        libc::copy_file_range(
            file.as_raw_fd(),
            std::ptr::null_mut(),
            out.as_raw_fd(),
            std::ptr::null_mut(),
            4,
            0,
        )
    };
    assert_eq!(copied, 4, "{}", std::io::Error::last_os_error());
    drop(out);
    assert_eq!(fs::read(&copy).unwrap(), b"text");
    let mut ready = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    assert_eq!(unsafe { libc::poll(&mut ready, 1, 1000) }, 1);
    assert_ne!(ready.revents & libc::POLLIN, 0);
    let grow = fs::OpenOptions::new().write(true).open(&copy).unwrap();
    let answer = unsafe { libc::fallocate(grow.as_raw_fd(), 0, 0, 1 << 20) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!((answer, errno), (-1, Some(libc::EOPNOTSUPP)));
    assert_eq!(
        unsafe { libc::posix_fallocate(grow.as_raw_fd(), 0, 1 << 20) },
        0
    );
    assert_eq!(fs::metadata(&copy).unwrap().len(), 1 << 20);
    assert!(
        !a.log().contains("Not Implemented"),
        "the request left a warning in the log:\n{}",
        a.log()
    );
}

/// `lseek(SEEK_DATA | SEEK_HOLE)` on `file` from `offset`: the offset, or
/// the errno.
fn seek(file: &fs::File, offset: i64, whence: i32) -> Result<i64, i32> {
    match unsafe { libc::lseek(file.as_raw_fd(), offset, whence) } {
        -1 => Err(std::io::Error::last_os_error().raw_os_error().unwrap()),
        at => Ok(at),
    }
}

/// What `du` counts of a file: its 512-byte blocks, in bytes.
fn stored(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn a_sparse_file_takes_its_data_on_disk_and_shows_its_holes_as_a_local_disk_does() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Sparse");
    // 1 GiB with 1 MiB of data in the middle, as `truncate` and a database
    // or disk image make it.
    let path = a.path("Sparse/disk.img");
    let data = pseudo_random_vec(5, 0, MIB as usize);
    let file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .read(true)
        .open(&path)
        .unwrap();
    file.set_len(1 << 30).unwrap();
    file.write_all_at(&data, 512 * MIB).unwrap();

    // While the file is written, its holes are the local copy's.
    assert_eq!(seek(&file, 0, libc::SEEK_DATA), Ok(512 * MIB as i64));
    assert_eq!(
        seek(&file, 512 * MIB as i64, libc::SEEK_HOLE),
        Ok(513 * MIB as i64)
    );
    assert_eq!(seek(&file, 1 << 30, libc::SEEK_DATA), Err(libc::ENXIO));
    assert!(
        stored(&path) < 2 * MIB,
        "du counts {} bytes for 1 MiB of data while it is written",
        stored(&path)
    );
    drop(file);
    wait_until("the sparse file is on the server", SYNC, || {
        a.status()["pending_changes"] == 0
    });

    // Stored as chunks, on this device and on one that never had it, a
    // file counts its data, not its holes (up to the chunks around the
    // data, at most 4 MiB on each side).
    let bound = 10 * MIB;
    for (device, rel) in [(a, "Sparse/disk.img"), (b, "Sparse/disk.img")] {
        wait_for(
            &format!("device {} to list the file with its size", device.name()),
            SYNC,
            &Some(1 << 30),
            || size(&device.path(rel)),
        );
        let counted = stored(&device.path(rel));
        assert!(
            counted < bound,
            "du counts {counted} bytes of a 1 GiB file with 1 MiB of data on device {}",
            device.name()
        );
        // Content from chunks is all data, as on a filesystem without hole
        // tracking: SEEK_DATA stays put and the one hole is the end.
        let file = fs::File::open(device.path(rel)).unwrap();
        assert_eq!(seek(&file, 4096, libc::SEEK_DATA), Ok(4096));
        assert_eq!(seek(&file, 4096, libc::SEEK_HOLE), Ok(1 << 30));
        let mut back = vec![0; MIB as usize];
        file.read_exact_at(&mut back, 512 * MIB).unwrap();
        assert!(
            back == data,
            "the data in the middle on device {}",
            device.name()
        );
    }

    // A file of data counts all of it.
    let dense = a.path("Sparse/dense.bin");
    write_pseudo_random(&dense, 6, 3 * MIB);
    assert!(
        stored(&dense) >= 3 * MIB,
        "du of 3 MiB of data: {}",
        stored(&dense)
    );
    for device in [a, b] {
        assert!(
            !device.log().contains("Not Implemented"),
            "seeking left a warning in device {}'s log:\n{}",
            device.name(),
            device.log()
        );
    }
}

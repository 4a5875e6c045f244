//! Running a mount: builds the core from one device's home, mounts it with
//! fuser, starts syncing, tells the kernel about remote changes from one
//! dedicated thread, and on SIGTERM/SIGINT (or an external unmount) pushes
//! what it can and unmounts cleanly.

use anyhow::Context;
use fuser::{Config, INodeNo, MountOption, SessionACL};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::client::MeshApi;
use crate::client::http::HttpApi;
use crate::local::credentials;
use crate::local::home::Home;
use crate::mount::chunk_cache::ChunkCache;
use crate::mount::core::{Core, Invalidation, LocalDirs, Settings};
use crate::mount::fetch::Fetcher;
use crate::mount::fuse::MeshFs;
use crate::mount::meta;
use crate::mount::sync::Syncer;

/// How long an unmount waits for the outbox to drain.
const FLUSH_LIMIT: Duration = Duration::from_secs(20);

pub struct MountOptions {
    pub mountpoint: PathBuf,
    pub cache_size: u64,
}

/// Whether the `fusermount3` helper is installed (needed for auto-unmount).
fn has_fusermount3() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("fusermount3").is_file()))
}

/// Whether /etc/fuse.conf lets users other than root share their mounts.
fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|conf| {
        conf.lines()
            .any(|line| line.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// Mounts and serves until unmounted; calls `ready` once the mount is up.
pub fn run(home: &Home, options: MountOptions, ready: impl FnOnce()) -> anyhow::Result<()> {
    let account = home.require_account()?;
    let token = credentials::load(home, &account)?;
    let mountpoint = std::path::absolute(&options.mountpoint)?;
    if !mountpoint.is_dir() {
        anyhow::bail!("{} is not a directory", mountpoint.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("meshfs-sync")
        .build()?;
    let db = meta::open(&home.database())?;
    // No file operation waits for a checkpoint of the cache's log.
    let _checkpointer =
        mesh_cli::sqlite::Checkpointer::start(&db).context("checkpointing the metadata cache")?;
    let api: Arc<dyn MeshApi> = Arc::new(HttpApi::new(&account.server, token, account.pin()?));
    let kept = meta::kept_chunks(&db).context("reading which files are pinned")?;
    let cache = ChunkCache::open(&home.chunks(), options.cache_size, kept)
        .context("opening the chunk cache")?;
    let (inval_tx, inval_rx) = std::sync::mpsc::channel();
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let core = Arc::new(Core::new(
        db,
        Arc::new(Fetcher::new(cache, api.clone())),
        LocalDirs {
            staging: home.staging(),
            recovered: home.recovered(),
        },
        api,
        runtime.handle().clone(),
        Settings {
            user: account.user_id.clone(),
            device: account.device_id.clone(),
            device_name: account.device_name.clone(),
            uid,
            gid,
        },
        inval_tx,
    )?);

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("meshfs".into()),
        MountOption::Subtype("meshfs".into()),
        MountOption::DefaultPermissions,
    ];
    // Others (pjdfstest switches users; services run as other users) may
    // use the mount where FUSE allows it: always for root, for others only
    // with `user_allow_other` in /etc/fuse.conf. Auto-unmount needs that too.
    let shared = uid == 0 || user_allow_other();
    if shared && has_fusermount3() {
        config.mount_options.push(MountOption::AutoUnmount);
    }
    config.acl = if shared {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(4);
    let session = fuser::spawn_mount(MeshFs::new(core.clone()), &mountpoint, &config)
        .with_context(|| format!("mounting at {}", mountpoint.display()))?;
    let notifier = session.notifier();
    std::thread::Builder::new()
        .name("meshfs-inval".into())
        .spawn(move || {
            for what in inval_rx {
                let result = match &what {
                    Invalidation::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
                    Invalidation::Entry { parent, name } => {
                        notifier.inval_entry(INodeNo(*parent), OsStr::new(name))
                    }
                };
                if let Err(e) = result
                    && e.raw_os_error() != Some(libc::ENOENT)
                {
                    tracing::debug!(?what, error = %e, "kernel invalidation failed");
                }
            }
        })?;
    raise_readahead(&mountpoint);
    let syncer = Syncer::new(core.clone());
    let fetcher = core.fetcher.clone();
    runtime.block_on(async { syncer.start() });
    tracing::info!(mountpoint = %mountpoint.display(), device = %account.device_name, "mounted");
    ready();

    // Wait for a signal, or for someone else to unmount us.
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = session.join();
        let _ = ended_tx.send(result);
    });
    let mut ended = ended_rx;
    let signalled = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => true,
            _ = &mut ended => false,
        }
    });
    if signalled {
        tracing::info!("unmounting");
        runtime.block_on(syncer.finish(FLUSH_LIMIT));
        unmount(&mountpoint)?;
        let _ =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), ended).await });
    } else {
        tracing::info!("unmounted from outside; pushing what is left");
        runtime.block_on(syncer.finish(FLUSH_LIMIT));
    }
    // Chunks read before the unmount are on disk after it.
    let _ = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), fetcher.stored()).await });
    tracing::info!("unmounted");
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// Unmounts `mountpoint` (root unmounts directly; others use fusermount3).
pub fn unmount(mountpoint: &Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())?;
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // fusermount3's own words go to the log, not to the user's terminal.
    let output = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mountpoint)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running fusermount3 -u")?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        tracing::debug!(status = %output.status, fusermount3 = %said.trim_end(), "fusermount3 -u failed");
        anyhow::bail!(
            "could not unmount {}; is a program still using it? (`--log debug` shows why)",
            mountpoint.display()
        );
    }
    Ok(())
}

/// Gives the mount 8 MiB of kernel readahead instead of 128 KiB, which
/// lets sequential reads arrive in 1 MiB requests. Best effort.
fn raise_readahead(mountpoint: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let target = mountpoint.to_string_lossy().replace(' ', "\\040");
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() > 4 && fields[4] == target {
            let path = format!("/sys/class/bdi/{}/read_ahead_kb", fields[2]);
            if let Err(e) = std::fs::write(&path, "8192") {
                tracing::debug!(error = %e, "could not raise readahead");
            }
            return;
        }
    }
}

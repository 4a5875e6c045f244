//! The FUSE layer: a thin translation of kernel requests into calls on the
//! filesystem core, and of its answers (or its errors, each one errno) back
//! into replies. No filesystem logic lives here.
//!
//! Each request runs in a debug-level span named after its operation, with
//! the request's id, the caller's pid, and the inode (parent and name, file
//! handle, offset and size where the request has them), so that a log line
//! from the core says which call it belongs to. The fields are plain
//! numbers and names, and a span costs nothing while debug is filtered out.

use fuser::{
    CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, PollEvents,
    PollFlags, PollNotifier, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use mesh_protocol::folder::EntryKind;
use std::ffi::OsStr;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::instrument;

use crate::mount::core::attrs::{SetAttr, SetIdBits, TimeSet};
use crate::mount::core::namespace::NewNode;
use crate::mount::core::{Attr, Core, Seek};
use crate::mount::error::{FsError, Severity};

/// How long the kernel may trust names and attributes without asking;
/// changes from other devices invalidate them sooner.
const TTL: Duration = Duration::from_secs(10);

pub struct MeshFs {
    core: Arc<Core>,
}

impl MeshFs {
    pub fn new(core: Arc<Core>) -> MeshFs {
        MeshFs { core }
    }
}

fn file_type(kind: EntryKind) -> FileType {
    match kind {
        EntryKind::File => FileType::RegularFile,
        EntryKind::Dir => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Fifo => FileType::NamedPipe,
        EntryKind::Socket => FileType::Socket,
        EntryKind::Char => FileType::CharDevice,
        EntryKind::Block => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: SystemTime::UNIX_EPOCH,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}

/// The errno for an error of the core, logged once: a debug line for an
/// everyday answer, a warning for a fault.
fn errno(op: &str, e: FsError) -> Errno {
    let (errno, severity) = e.answer();
    match severity {
        Severity::Expected => tracing::debug!(op, error = %e),
        Severity::Fault => tracing::warn!(op, error = %e, "request failed"),
    }
    Errno::from_i32(errno)
}

/// The errno for a request this layer refuses before asking the core (a
/// name that is not UTF-8, a flag or kind it does not handle, a buffer too
/// small): the same mapping, without a log line.
fn refuse(e: FsError) -> Errno {
    Errno::from_i32(e.errno())
}

/// A name that is not UTF-8, escaped for a log line and a message.
fn not_utf8(n: &OsStr) -> FsError {
    FsError::NotUtf8(n.as_bytes().escape_ascii().to_string())
}

/// The name of something that may exist (an entry, an attribute), as
/// UTF-8. Nothing has a name that is not UTF-8, so such a name is answered
/// as `$absent`.
macro_rules! existing_name_or_reply {
    ($n:expr, $reply:expr, $absent:expr) => {
        match $n.to_str() {
            Some(n) => n,
            None => return $reply.error(refuse($absent)),
        }
    };
}

/// The name of something to be made (created, linked, renamed to), as
/// UTF-8. Another name is refused with `EILSEQ` and a warning naming it.
macro_rules! new_name_or_reply {
    ($op:expr, $n:expr, $reply:expr) => {
        match $n.to_str() {
            Some(n) => n,
            None => return $reply.error(errno($op, not_utf8($n))),
        }
    };
}

fn time_set(t: TimeOrNow) -> TimeSet {
    match t {
        TimeOrNow::SpecificTime(t) => TimeSet::At(t),
        TimeOrNow::Now => TimeSet::Now,
    }
}

impl MeshFs {
    fn reply_entry(&self, op: &str, result: Result<Attr, FsError>, reply: ReplyEntry) {
        match result {
            Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
            Err(e) => reply.error(errno(op, e)),
        }
    }

    fn reply_empty(op: &str, result: Result<(), FsError>, reply: ReplyEmpty) {
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(op, e)),
        }
    }

    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &str,
        new: NewNode<'_>,
        reply: ReplyEntry,
    ) {
        let _ = req;
        self.reply_entry("create", self.core.make_node(parent.0, name, new), reply);
    }
}

fn kind_of_mode(mode: u32) -> Option<EntryKind> {
    Some(match mode & libc::S_IFMT {
        libc::S_IFREG | 0 => EntryKind::File,
        libc::S_IFIFO => EntryKind::Fifo,
        libc::S_IFSOCK => EntryKind::Socket,
        libc::S_IFCHR => EntryKind::Char,
        libc::S_IFBLK => EntryKind::Block,
        _ => return None,
    })
}

impl Filesystem for MeshFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // No POSIX_ACL: there are no ACLs (system.* attributes are
        // refused), so the kernel checks the mode bits alone, and reading
        // an ACL or a security label answers EOPNOTSUPP, on which `ls -l`
        // stops asking each file of the mount for them.
        //
        // HANDLE_KILLPRIV_V2: set-ID bits are dropped here (see
        // `SetIdBits`), so the kernel stops asking for a file's
        // `security.capability` before each write and its attributes
        // before each `chown`.
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_HANDLE_KILLPRIV_V2;
        let _ = config.add_capabilities(wanted & config.capabilities());
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?name)
    )]
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = existing_name_or_reply!(name, reply, FsError::NotFound);
        self.reply_entry("lookup", self.core.lookup(parent.0, name), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.map(|fh| fh.0))
    )]
    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.core.getattr_open(ino.0, fh.map(|fh| fh.0)) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno("getattr", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.map(|fh| fh.0))
    )]
    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // A change of owner or group drops set-ID bits for anyone; a
        // truncation for a caller without CAP_FSETID, which the request
        // does not say (fuser passes no FATTR_KILL_SUIDGID): a caller
        // other than root stands for that.
        let set_id = if uid.is_some() || gid.is_some() || (size.is_some() && req.uid() != 0) {
            SetIdBits::Drop
        } else {
            SetIdBits::Keep
        };
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time_set),
            mtime: mtime.map(time_set),
            set_id,
        };
        match self.core.setattr_open(ino.0, fh.map(|fh| fh.0), set) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno("setattr", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0)
    )]
    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.core.readlink(ino.0) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno("readlink", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?name)
    )]
    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let name = new_name_or_reply!("mknod", name, reply);
        let Some(kind) = kind_of_mode(mode) else {
            return reply.error(refuse(FsError::UnsupportedKind));
        };
        let new = NewNode {
            kind,
            mode: mode & !umask & 0o7777,
            uid: req.uid(),
            gid: req.gid(),
            rdev: u64::from(rdev),
            target: None,
        };
        self.make(req, parent, name, new, reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?name)
    )]
    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let name = new_name_or_reply!("mkdir", name, reply);
        let new = NewNode {
            kind: EntryKind::Dir,
            mode: mode & !umask & 0o7777,
            uid: req.uid(),
            gid: req.gid(),
            rdev: 0,
            target: None,
        };
        self.make(req, parent, name, new, reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?name)
    )]
    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = existing_name_or_reply!(name, reply, FsError::NotFound);
        Self::reply_empty("unlink", self.core.unlink(parent.0, name), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?name)
    )]
    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = existing_name_or_reply!(name, reply, FsError::NotFound);
        Self::reply_empty("rmdir", self.core.rmdir(parent.0, name), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?link_name)
    )]
    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let name = new_name_or_reply!("symlink", link_name, reply);
        let Some(target) = target.to_str() else {
            return reply.error(errno("symlink", not_utf8(target.as_os_str())));
        };
        let new = NewNode {
            kind: EntryKind::Symlink,
            mode: 0o777,
            uid: req.uid(),
            gid: req.gid(),
            rdev: 0,
            target: Some(target),
        };
        self.make(req, parent, name, new, reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(
            req = req.unique().0,
            pid = req.pid(),
            parent = parent.0,
            name = ?name,
            newparent = newparent.0,
            newname = ?newname
        )
    )]
    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let name = existing_name_or_reply!(name, reply, FsError::NotFound);
        let newname = new_name_or_reply!("rename", newname, reply);
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(refuse(FsError::Invalid(
                "RENAME_EXCHANGE and RENAME_WHITEOUT are not supported".into(),
            )));
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        Self::reply_empty(
            "rename",
            self.core
                .rename(parent.0, name, newparent.0, newname, no_replace),
            reply,
        );
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(
            req = req.unique().0,
            pid = req.pid(),
            ino = ino.0,
            newparent = newparent.0,
            newname = ?newname
        )
    )]
    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let newname = new_name_or_reply!("link", newname, reply);
        self.reply_entry("link", self.core.link(ino.0, newparent.0, newname), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0)
    )]
    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let writable = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        match self.core.open(ino.0, writable, truncate) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno("open", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), parent = parent.0, name = ?name)
    )]
    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let name = new_name_or_reply!("create", name, reply);
        if kind_of_mode(mode) != Some(EntryKind::File) {
            return reply.error(refuse(FsError::UnsupportedKind));
        }
        match self
            .core
            .create(parent.0, name, mode & !umask & 0o7777, req.uid(), req.gid())
        {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &file_attr(&attr),
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(errno("create", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0, offset, size)
    )]
    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.core.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno("read", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(
            req = req.unique().0,
            pid = req.pid(),
            ino = ino.0,
            fh = fh.0,
            offset,
            size = data.len()
        )
    )]
    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let set_id = if write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID) {
            SetIdBits::Drop
        } else {
            SetIdBits::Keep
        };
        let written = if flags.0 & libc::O_APPEND != 0 {
            self.core.append(fh.0, data, set_id)
        } else {
            self.core.write(fh.0, offset, data, set_id)
        };
        match written {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno("write", e)),
        }
    }

    /// Nothing waits for a close here (writes are kept as they come, and
    /// pushed on release), and locks are the kernel's: told so once, the
    /// kernel stops sending a request, and a wait, with every `close`.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(refuse(FsError::LeftToKernel("flush")));
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0)
    )]
    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty("release", self.core.release(fh.0), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0)
    )]
    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty("fsync", self.core.fsync(fh.0), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0)
    )]
    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.core.getattr(ino.0) {
            // The kernel keeps listings; a change here resets them, and a
            // change from elsewhere invalidates the directory's inode.
            Ok(a) if a.kind == EntryKind::Dir => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Ok(_) => reply.error(refuse(FsError::NotDir)),
            Err(e) => reply.error(errno("opendir", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0, offset)
    )]
    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        // Entries are read until the reply is full (its size is the
        // kernel's, from the program's buffer: 32 KiB for glibc's readdir).
        let listed = self.core.readdir(ino.0, offset, |e| {
            let full = reply.add(
                INodeNo(e.attr.ino),
                e.offset,
                file_type(e.attr.kind),
                &e.name,
            );
            until_full(full)
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("readdir", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0, offset)
    )]
    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let listed = self.core.readdir(ino.0, offset, |e| {
            let full = reply.add(
                INodeNo(e.attr.ino),
                e.offset,
                &e.name,
                &TTL,
                &file_attr(&e.attr),
                Generation(0),
            );
            until_full(full)
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("readdirplus", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0)
    )]
    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0)
    )]
    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let c = self.core.capacity();
        let block = crate::mount::core::storage::BLOCK as u32;
        reply.statfs(
            c.blocks,
            c.free,
            c.free,
            1 << 24,
            1 << 24,
            block,
            255,
            block,
        );
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, name = ?name)
    )]
    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let name = new_name_or_reply!("setxattr", name, reply);
        let create = flags & libc::XATTR_CREATE != 0;
        let replace = flags & libc::XATTR_REPLACE != 0;
        Self::reply_empty(
            "setxattr",
            self.core.setxattr(ino.0, name, value, create, replace),
            reply,
        );
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, name = ?name)
    )]
    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = existing_name_or_reply!(name, reply, FsError::NoAttribute);
        match self.core.getxattr(ino.0, name) {
            Ok(value) => xattr_reply(&value, size, reply),
            Err(e) => reply.error(errno("getxattr", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0)
    )]
    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.core.listxattr(ino.0) {
            Ok(names) => xattr_reply(&names, size, reply),
            Err(e) => reply.error(errno("listxattr", e)),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, name = ?name)
    )]
    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = existing_name_or_reply!(name, reply, FsError::NoAttribute);
        Self::reply_empty("removexattr", self.core.removexattr(ino.0, name), reply);
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0, cmd = cmd)
    )]
    #[allow(clippy::too_many_arguments)] // the trait's signature
    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(errno("ioctl", FsError::NoIoctl));
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        reply.error(refuse(FsError::LeftToKernel("poll")));
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(refuse(FsError::LeftToKernel("fallocate")));
    }

    #[allow(clippy::too_many_arguments)] // the trait's signature
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(refuse(FsError::LeftToKernel("copy_file_range")));
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(req = req.unique().0, pid = req.pid(), ino = ino.0, fh = fh.0, offset, whence)
    )]
    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let seek = match whence {
            libc::SEEK_DATA => Seek::Data,
            libc::SEEK_HOLE => Seek::Hole,
            _ => return reply.error(refuse(FsError::Invalid(format!("lseek whence {whence}")))),
        };
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(refuse(FsError::Invalid("a negative offset".into())));
        };
        match self.core.seek(fh.0, offset, seek) {
            Ok(at) => reply.offset(at as i64),
            Err(e) => reply.error(errno("lseek", e)),
        }
    }
}

/// Whether a listing goes on after an entry: not once the reply is full
/// (`add` answered true, the entry not taken; the kernel asks again from
/// the last entry it got).
fn until_full(full: bool) -> ControlFlow<()> {
    if full {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

/// Answers an xattr query: the size when asked for it (size 0), the value
/// when it fits, ERANGE when it does not.
fn xattr_reply(value: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() <= size as usize {
        reply.data(value);
    } else {
        reply.error(refuse(FsError::Range));
    }
}

//! Descriptor-relative traversal of a rootfs tree.
//!
//! Every directory is opened with `openat(parent, name, O_DIRECTORY|O_NOFOLLOW)` and every
//! entry is examined with `fstatat(parent, name, AT_SYMLINK_NOFOLLOW)`, so a symlink inside
//! the tree is reported as a symlink and never followed, and a directory swapped for a
//! symlink while we walk makes the open fail instead of leading us out of the rootfs. The
//! rootfs directory itself is opened normally (OCI allows `root.path` to be anywhere).
//!
//! Entries are visited depth-first, parents before children, names sorted bytewise, so the
//! order (and therefore the archive and its digest) is deterministic.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::TemplateError;

/// Version tag of the metadata fingerprint; bump when the fields hashed change.
const FINGERPRINT_TAG: &[u8] = b"nexcage-rootfs-fingerprint-v1\0";

/// File type of a tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl Kind {
    fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFCHR => Kind::Char,
            libc::S_IFBLK => Kind::Block,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Dir => b'd',
            Kind::File => b'f',
            Kind::Symlink => b'l',
            Kind::Char => b'c',
            Kind::Block => b'b',
            Kind::Fifo => b'p',
            Kind::Socket => b's',
        }
    }
}

/// The `lstat` facts of one entry that the archiver and the fingerprint use.
#[derive(Clone, Debug)]
pub(crate) struct Stat {
    pub kind: Kind,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
    pub ctime: i64,
    pub ctime_ns: i64,
}

impl Stat {
    pub(crate) fn from_libc(st: &libc::stat) -> Stat {
        Stat {
            kind: Kind::from_mode(st.st_mode),
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_ns: st.st_mtime_nsec,
            ctime: st.st_ctime,
            ctime_ns: st.st_ctime_nsec,
        }
    }

    /// ctime as nanoseconds since the epoch.
    pub(crate) fn ctime_total_ns(&self) -> i128 {
        self.ctime as i128 * 1_000_000_000 + self.ctime_ns as i128
    }

    /// Permission bits (including setuid/setgid/sticky) without the file type.
    pub(crate) fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// One entry handed to the visitor.
pub(crate) struct Entry<'a> {
    /// Archive path without trailing slash: `.` for the root, else `./a/b`.
    pub path: &'a [u8],
    /// Descriptor of the parent directory (`None` for the root).
    pub parent: Option<RawFd>,
    /// Name inside the parent (`.` for the root).
    pub name: &'a CStr,
    /// Open descriptor of the entry when it is a directory.
    pub dir_fd: Option<RawFd>,
    pub st: &'a Stat,
}

/// What a complete walk observed.
#[derive(Clone, Debug)]
pub(crate) struct WalkSummary {
    /// sha256 over every entry's path and lstat facts (see `hash_entry`).
    pub fingerprint: [u8; 32],
    pub entries: u64,
    /// Sum of regular file sizes.
    pub file_bytes: u64,
    /// Newest ctime (ns since epoch) of any entry.
    pub max_ctime_ns: i128,
}

pub(crate) type Visitor<'v> = dyn FnMut(&Entry<'_>) -> Result<(), TemplateError> + 'v;

/// Builds the host path of an entry for error messages.
pub(crate) fn host_path(root: &Path, rel: &[u8]) -> PathBuf {
    let rel = rel.strip_prefix(b".").unwrap_or(rel);
    let rel = rel.strip_prefix(b"/").unwrap_or(rel);
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}

pub(crate) fn io_err(root: &Path, rel: &[u8], op: &'static str, err: io::Error) -> TemplateError {
    TemplateError::Io { op, path: host_path(root, rel), err }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn lstat_at(dirfd: RawFd, name: &CStr) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid NUL-terminated name and a writable stat buffer.
    cvt(unsafe { libc::fstatat(dirfd, name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: fstatat succeeded and filled the buffer.
    Ok(Stat::from_libc(unsafe { &st.assume_init() }))
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: RawFd) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: writable stat buffer.
    cvt(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(Stat::from_libc(unsafe { &st.assume_init() }))
}

/// `openat(dirfd, name, flags|O_CLOEXEC|O_NOFOLLOW)`.
pub(crate) fn open_at(dirfd: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: valid NUL-terminated name; the returned descriptor is owned by us.
    let fd = cvt(unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) })?;
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads the entries of a directory (without `.` and `..`) with raw `getdents64` on our
/// own descriptor (no dup/fdopendir: this is the hot path of a cache hit), sorted by name.
/// Returns (name, d_type).
fn read_names(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<Vec<(CString, u8)>> {
    // struct linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, char d_name[].
    const NAME_OFF: usize = 19;
    if buf.len() < 32 * 1024 {
        buf.resize(32 * 1024, 0);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: buf is writable for buf.len() bytes; fd is an open directory.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        let mut off = 0usize;
        while off < n as usize {
            let rec = &buf[off..n as usize];
            let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
            let d_type = rec[18];
            let name_bytes = &rec[NAME_OFF..reclen];
            let len = name_bytes.iter().position(|&c| c == 0).unwrap_or(name_bytes.len());
            let name = &name_bytes[..len];
            if name != b"." && name != b".." {
                names.push((CString::new(name).expect("NUL-free by construction"), d_type));
            }
            off += reclen;
        }
    }
    names.sort_unstable_by(|a, b| a.0.to_bytes().cmp(b.0.to_bytes()));
    Ok(names)
}

fn hash_entry(h: &mut Sha256, path: &[u8], st: &Stat) {
    // st_dev is deliberately left out: see the module docs of `template` (an overlay mount
    // of the same image layers gets a new st_dev per container while inode numbers and
    // ctimes stay those of the layer files).
    h.update((path.len() as u64).to_le_bytes());
    h.update(path);
    h.update([st.kind.code()]);
    for v in [
        st.ino,
        st.mode as u64,
        st.nlink,
        st.uid as u64,
        st.gid as u64,
        st.rdev,
        st.size,
        st.mtime as u64,
        st.mtime_ns as u64,
        st.ctime as u64,
        st.ctime_ns as u64,
    ] {
        h.update(v.to_le_bytes());
    }
}

/// Opens the rootfs directory (following a symlink for the rootfs itself only).
pub(crate) fn open_root(root: &Path) -> Result<(OwnedFd, Stat), TemplateError> {
    let c = CString::new(root.as_os_str().as_bytes()).map_err(|_| TemplateError::Io {
        op: "open rootfs",
        path: root.to_path_buf(),
        err: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })?;
    // SAFETY: valid path; we own the returned descriptor.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTDIR) {
            return Err(TemplateError::NotADirectory(root.to_path_buf()));
        }
        return Err(TemplateError::Io { op: "open rootfs", path: root.to_path_buf(), err: e });
    }
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = fstat(fd.as_raw_fd()).map_err(|e| io_err(root, b".", "stat", e))?;
    Ok((fd, st))
}

/// Walks the tree under `root`, calling `visit` for every entry (sockets included; the
/// visitor decides what to skip) and returns the summary with the metadata fingerprint.
pub(crate) fn walk(root: &Path, visit: &mut Visitor<'_>) -> Result<WalkSummary, TemplateError> {
    let (fd, st) = open_root(root)?;
    let mut w = Walker {
        root,
        hasher: Sha256::new(),
        path: b".".to_vec(),
        dirbuf: Vec::new(),
        entries: 0,
        file_bytes: 0,
        max_ctime_ns: i128::MIN,
    };
    w.hasher.update(FINGERPRINT_TAG);
    w.account(&st);
    let dot = c".";
    visit(&Entry { path: b".", parent: None, name: dot, dir_fd: Some(fd.as_raw_fd()), st: &st })?;
    w.dir(&fd, visit)?;
    Ok(WalkSummary {
        fingerprint: w.hasher.finalize().into(),
        entries: w.entries,
        file_bytes: w.file_bytes,
        max_ctime_ns: w.max_ctime_ns,
    })
}

struct Walker<'r> {
    root: &'r Path,
    hasher: Sha256,
    path: Vec<u8>,
    dirbuf: Vec<u8>,
    entries: u64,
    file_bytes: u64,
    max_ctime_ns: i128,
}

impl Walker<'_> {
    fn account(&mut self, st: &Stat) {
        hash_entry(&mut self.hasher, &self.path, st);
        self.entries += 1;
        if st.kind == Kind::File {
            self.file_bytes += st.size;
        }
        self.max_ctime_ns = self.max_ctime_ns.max(st.ctime_total_ns());
    }

    fn dir(&mut self, fd: &OwnedFd, visit: &mut Visitor<'_>) -> Result<(), TemplateError> {
        let mut buf = std::mem::take(&mut self.dirbuf);
        let names = read_names(fd, &mut buf);
        self.dirbuf = buf;
        let names = names.map_err(|e| io_err(self.root, &self.path, "read directory", e))?;
        let dirfd = fd.as_raw_fd();
        for (name, d_type) in &names {
            let base = self.path.len();
            self.path.push(b'/');
            self.path.extend_from_slice(name.to_bytes());
            let r = self.entry(dirfd, name, *d_type, visit);
            self.path.truncate(base);
            r?;
        }
        Ok(())
    }

    fn entry(&mut self, dirfd: RawFd, name: &CStr, d_type: u8, visit: &mut Visitor<'_>) -> Result<(), TemplateError> {
        // Directories (by d_type) are opened directly (O_NOFOLLOW|O_DIRECTORY: a symlink or
        // anything else swapped in makes the open fail) and fstat'ed: one stat per directory.
        let st = if d_type == libc::DT_DIR {
            None
        } else {
            Some(lstat_at(dirfd, name).map_err(|e| io_err(self.root, &self.path, "lstat", e))?)
        };
        if st.as_ref().is_none_or(|st| st.kind == Kind::Dir) {
            let child = open_at(dirfd, name, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| io_err(self.root, &self.path, "open directory", e))?;
            // Use the facts of what we actually opened (it may have been swapped).
            let st = fstat(child.as_raw_fd()).map_err(|e| io_err(self.root, &self.path, "stat", e))?;
            self.account(&st);
            visit(&Entry { path: &self.path, parent: Some(dirfd), name, dir_fd: Some(child.as_raw_fd()), st: &st })?;
            self.dir(&child, visit)
        } else {
            let st = st.expect("non-directory was stat'ed");
            self.account(&st);
            visit(&Entry { path: &self.path, parent: Some(dirfd), name, dir_fd: None, st: &st })
        }
    }
}

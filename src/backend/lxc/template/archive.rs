//! Streaming tar (POSIX pax) + zstd writer and the content digest.
//!
//! One pass over the tree reads every regular file once; each chunk goes both into the
//! sha256 content digest and into the tar stream, which flows through a 256 KiB
//! `BufWriter` (to batch the many small header writes) into a multithreaded zstd encoder
//! writing the output file. Nothing but one read buffer and zstd's job buffers is held in
//! memory.
//!
//! Archive layout, as in Proxmox templates: entries named `./...` (directories with a
//! trailing slash, the root as `./`), numeric uid/gid only (no user/group names), modes
//! incl. setuid/setgid/sticky, mtimes (seconds), symlinks as symlinks, hardlinks as link
//! entries to the first path of the inode, character/block devices, fifos. Extended
//! attributes go into a pax extended header as `SCHILY.xattr.<name>` records (what GNU tar
//! and bsdtar write and read). Sockets are skipped, as GNU tar does.
//!
//! Digest: sha256 over a versioned, length-prefixed serialisation of every archived entry
//! (path, type, permission bits, uid, gid, mtime in ns, size, link target or hardlink
//! target, device numbers, sorted xattrs) followed, for regular files, by the content.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::walk::{self, io_err, Entry, Kind, WalkSummary};
use super::TemplateError;

const DIGEST_TAG: &[u8] = b"nexcage-template-v1\0";
const BLOCK: usize = 512;
const READ_BUF: usize = 1 << 20;
const WRITE_BUF: usize = 256 << 10;
/// zstd level, the same default as the `zstd` command line tool.
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// Result of one archive build.
pub(crate) struct Built {
    pub digest: [u8; 32],
    pub walk: WalkSummary,
    /// Bytes of file content read (and hashed).
    pub content_read: u64,
    pub file: File,
}

/// Progress reporting on stderr (only when enabled, i.e. stderr is a terminal).
pub(crate) struct Progress {
    total_bytes: u64,
    total_entries: u64,
    bytes: u64,
    entries: u64,
    started: Instant,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(total_bytes: u64, total_entries: u64) -> Progress {
        Progress { total_bytes, total_entries, bytes: 0, entries: 0, started: Instant::now(), last: None, shown: false }
    }

    fn tick(&mut self, bytes: u64, entries: u64) {
        self.bytes += bytes;
        self.entries += entries;
        let now = Instant::now();
        // Quiet for short archives; then at most five updates a second.
        if now.duration_since(self.started) < Duration::from_millis(500) {
            return;
        }
        if let Some(last) = self.last {
            if now.duration_since(last) < Duration::from_millis(200) {
                return;
            }
        }
        self.last = Some(now);
        self.shown = true;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let pct = (self.bytes.min(self.total_bytes) * 100).checked_div(self.total_bytes).unwrap_or(100);
        let mut err = io::stderr().lock();
        let _ = write!(
            err,
            "\rnexcage: building template {:>3}%  {:.1}/{:.1} MiB  {}/{} files ",
            pct,
            mib(self.bytes),
            mib(self.total_bytes),
            self.entries,
            self.total_entries
        );
        let _ = err.flush();
    }

    fn done(&mut self) {
        if self.shown {
            let mut err = io::stderr().lock();
            let _ = writeln!(
                err,
                "\rnexcage: built template: {} files, {:.1} MiB in {:.1}s{:20}",
                self.entries,
                self.bytes as f64 / (1024.0 * 1024.0),
                self.started.elapsed().as_secs_f64(),
                ""
            );
        }
    }
}

/// Archives `root` into `out` (a fresh, empty file). Returns the digest and the file
/// (flushed and fsync'd).
pub(crate) fn build(root: &Path, out: File, workers: u32, progress: Option<Progress>) -> Result<Built, TemplateError> {
    let out_err = |op: &'static str| {
        move |e: io::Error| TemplateError::Io { op, path: Path::new("<template temp file>").to_path_buf(), err: e }
    };
    let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(out_err("init zstd"))?;
    if workers > 1 {
        enc.multithread(workers).map_err(out_err("enable zstd workers"))?;
    }
    enc.include_checksum(true).map_err(out_err("init zstd"))?;
    let mut ar = Archiver {
        root,
        w: BufWriter::with_capacity(WRITE_BUF, enc),
        buf: vec![0u8; READ_BUF],
        digest: Sha256::new(),
        hardlinks: HashMap::new(),
        content_read: 0,
        progress,
        pax: Vec::new(),
        name_buf: Vec::new(),
    };
    ar.digest.update(DIGEST_TAG);
    let summary = walk::walk(root, &mut |e: &Entry<'_>| ar.entry(e))?;
    // End of archive: two zero blocks.
    ar.w.write_all(&[0u8; 2 * BLOCK]).map_err(out_err("write template"))?;
    let enc = ar.w.into_inner().map_err(|e| out_err("write template")(e.into_error()))?;
    let file = enc.finish().map_err(out_err("finish zstd stream"))?;
    file.sync_all().map_err(out_err("fsync template"))?;
    if let Some(p) = ar.progress.as_mut() {
        p.done();
    }
    Ok(Built { digest: ar.digest.finalize().into(), walk: summary, content_read: ar.content_read, file })
}

struct Archiver<'r, W: Write> {
    root: &'r Path,
    w: W,
    buf: Vec<u8>,
    digest: Sha256,
    /// (dev, ino) of multiply-linked non-directories -> archive path of the first one.
    hardlinks: HashMap<(u64, u64), Vec<u8>>,
    content_read: u64,
    progress: Option<Progress>,
    pax: Vec<u8>,
    name_buf: Vec<u8>,
}

/// Lists the xattrs of an entry, sorted by name: through the open descriptor when there is
/// one (`flistxattr`), else through `/proc/self/fd/<parent>/<name>` with the
/// non-following `llistxattr`, so a symlink's own xattrs are read, never its target's.
fn read_xattrs(fd: Option<RawFd>, parent: Option<RawFd>, name: &CStr) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let target = match (fd, parent) {
        (Some(fd), _) => XattrTarget::Fd(fd),
        (None, Some(parent)) => {
            let mut p = format!("/proc/self/fd/{parent}/").into_bytes();
            p.extend_from_slice(name.to_bytes());
            XattrTarget::Path(CString::new(p).expect("no NUL in a file name"))
        }
        (None, None) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    let mut list = vec![0u8; 1024];
    let n = loop {
        let n = match &target {
            // SAFETY: list is writable for list.len() bytes; names are NUL-terminated.
            XattrTarget::Fd(fd) => unsafe { libc::flistxattr(*fd, list.as_mut_ptr().cast(), list.len()) },
            XattrTarget::Path(p) => unsafe { libc::llistxattr(p.as_ptr(), list.as_mut_ptr().cast(), list.len()) },
        };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => list.resize(list.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(out),
            _ => return Err(e),
        }
    };
    let mut value = vec![0u8; 256];
    for key in list[..n].split(|&c| c == 0).filter(|k| !k.is_empty()) {
        let ckey = CString::new(key).expect("split at NUL");
        loop {
            let r = match &target {
                // SAFETY: value is writable for value.len() bytes; names are NUL-terminated.
                XattrTarget::Fd(fd) => unsafe {
                    libc::fgetxattr(*fd, ckey.as_ptr(), value.as_mut_ptr().cast(), value.len())
                },
                XattrTarget::Path(p) => unsafe {
                    libc::lgetxattr(p.as_ptr(), ckey.as_ptr(), value.as_mut_ptr().cast(), value.len())
                },
            };
            if r >= 0 {
                out.push((key.to_vec(), value[..r as usize].to_vec()));
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => value.resize(value.len() * 4, 0),
                Some(libc::ENODATA) => break, // removed meanwhile
                _ => return Err(e),
            }
        }
    }
    out.sort();
    Ok(out)
}

enum XattrTarget {
    Fd(RawFd),
    Path(CString),
}

/// Appends one pax record `"<len> key=value\n"` where len counts the whole record.
fn pax_record(dst: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1; // ' ' key '=' value '\n'
    let mut len = rest + 1;
    loop {
        let digits = len.to_string().len();
        if digits + rest == len {
            break;
        }
        len = digits + rest;
    }
    dst.extend_from_slice(len.to_string().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(key);
    dst.push(b'=');
    dst.extend_from_slice(value);
    dst.push(b'\n');
}

/// Stores `path` in the ustar name/prefix fields; false when it does not fit.
fn set_ustar_path(h: &mut Header, path: &[u8]) -> bool {
    let u = h.as_ustar_mut().expect("ustar header");
    if path.len() <= u.name.len() {
        u.name[..path.len()].copy_from_slice(path);
        return true;
    }
    // Split at a '/' so that prefix <= 155 and name <= 100 bytes.
    for (i, &c) in path.iter().enumerate() {
        if c != b'/' || i == 0 {
            continue;
        }
        let (pre, name) = (&path[..i], &path[i + 1..]);
        if pre.len() <= u.prefix.len() && name.len() <= u.name.len() && !name.is_empty() {
            u.prefix[..pre.len()].copy_from_slice(pre);
            u.name[..name.len()].copy_from_slice(name);
            return true;
        }
    }
    let n = u.name.len();
    u.name.copy_from_slice(&path[..n]);
    false
}

const OCTAL_7: u64 = 0o7777777;
const OCTAL_11: u64 = 0o77777777777;

fn hash_bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

impl<W: Write> Archiver<'_, W> {
    fn werr(&self, rel: &[u8]) -> impl Fn(io::Error) -> TemplateError + '_ {
        let p = rel.to_vec();
        move |e| io_err(self.root, &p, "write template entry for", e)
    }

    fn entry(&mut self, e: &Entry<'_>) -> Result<(), TemplateError> {
        let st = e.st;
        if st.kind == Kind::Socket {
            return Ok(());
        }
        let rel = e.path;
        // Hardlink to an inode archived earlier?
        let mut link_to: Option<Vec<u8>> = None;
        if st.kind != Kind::Dir && st.nlink > 1 {
            match self.hardlinks.get(&(st.dev, st.ino)) {
                Some(first) => link_to = Some(first.clone()),
                None => {
                    self.hardlinks.insert((st.dev, st.ino), rel.to_vec());
                }
            }
        }

        // Open regular files first: their xattrs and contents come from the descriptor.
        let mut file: Option<File> = None;
        if st.kind == Kind::File && link_to.is_none() {
            let parent = e.parent.expect("regular file has a parent");
            let fd = walk::open_at(parent, e.name, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
                .map_err(|err| io_err(self.root, rel, "open", err))?;
            let now = walk::fstat(fd.as_raw_fd()).map_err(|err| io_err(self.root, rel, "stat", err))?;
            if now.ino != st.ino || now.dev != st.dev || now.kind != Kind::File {
                return Err(TemplateError::Changed {
                    path: walk::host_path(self.root, rel),
                    what: "replaced while being archived",
                });
            }
            file = Some(File::from(fd));
        }
        let xattr_fd = file.as_ref().map(|f| f.as_raw_fd()).or(e.dir_fd);
        let xattrs = if link_to.is_some() {
            Vec::new() // a hardlink shares the xattrs of the first entry
        } else {
            read_xattrs(xattr_fd, e.parent, e.name).map_err(|err| io_err(self.root, rel, "read xattrs of", err))?
        };
        let target = if st.kind == Kind::Symlink && link_to.is_none() {
            let parent = e.parent.expect("symlink has a parent");
            Some(readlink_at(parent, e.name).map_err(|err| io_err(self.root, rel, "readlink", err))?)
        } else {
            None
        };

        // Archive name.
        self.name_buf.clear();
        self.name_buf.extend_from_slice(rel);
        if st.kind == Kind::Dir {
            self.name_buf.push(b'/');
        }
        let name = std::mem::take(&mut self.name_buf);

        // Digest record.
        let size = if st.kind == Kind::File && link_to.is_none() { st.size } else { 0 };
        {
            let h = &mut self.digest;
            h.update([if link_to.is_some() { b'h' } else { st.kind.code() }]);
            hash_bytes(h, rel);
            for v in [st.perm() as u64, st.uid as u64, st.gid as u64, st.mtime as u64, st.mtime_ns as u64, size] {
                h.update(v.to_le_bytes());
            }
            if let Some(t) = link_to.as_deref().or(target.as_deref()) {
                hash_bytes(h, t);
            }
            if matches!(st.kind, Kind::Char | Kind::Block) {
                h.update(st.rdev.to_le_bytes());
            }
            h.update((xattrs.len() as u64).to_le_bytes());
            for (k, v) in &xattrs {
                hash_bytes(h, k);
                hash_bytes(h, v);
            }
        }

        // Header and pax extensions.
        let mut hd = Header::new_ustar();
        let ty = match (link_to.is_some(), st.kind) {
            (true, _) => EntryType::Link,
            (_, Kind::Dir) => EntryType::Directory,
            (_, Kind::File) => EntryType::Regular,
            (_, Kind::Symlink) => EntryType::Symlink,
            (_, Kind::Char) => EntryType::Char,
            (_, Kind::Block) => EntryType::Block,
            (_, Kind::Fifo) => EntryType::Fifo,
            (_, Kind::Socket) => unreachable!(),
        };
        hd.set_entry_type(ty);
        hd.set_mode(st.perm());
        hd.set_uid(st.uid as u64);
        hd.set_gid(st.gid as u64);
        hd.set_size(size);
        hd.set_mtime(st.mtime.max(0) as u64);
        let mut pax = std::mem::take(&mut self.pax);
        pax.clear();
        if !set_ustar_path(&mut hd, &name) {
            pax_record(&mut pax, b"path", &name);
        }
        if let Some(t) = link_to.as_deref().or(target.as_deref()) {
            let u = hd.as_ustar_mut().expect("ustar");
            if t.len() <= u.linkname.len() {
                u.linkname[..t.len()].copy_from_slice(t);
            } else {
                let n = u.linkname.len();
                u.linkname.copy_from_slice(&t[..n]);
                pax_record(&mut pax, b"linkpath", t);
            }
        }
        if st.uid as u64 > OCTAL_7 {
            pax_record(&mut pax, b"uid", st.uid.to_string().as_bytes());
        }
        if st.gid as u64 > OCTAL_7 {
            pax_record(&mut pax, b"gid", st.gid.to_string().as_bytes());
        }
        if size > OCTAL_11 {
            pax_record(&mut pax, b"size", size.to_string().as_bytes());
        }
        if st.mtime < 0 || st.mtime as u64 > OCTAL_11 {
            pax_record(&mut pax, b"mtime", st.mtime.to_string().as_bytes());
        }
        if matches!(st.kind, Kind::Char | Kind::Block) && link_to.is_none() {
            let (maj, min) = (libc::major(st.rdev), libc::minor(st.rdev));
            hd.set_device_major(maj).map_err(self.werr(rel))?;
            hd.set_device_minor(min).map_err(self.werr(rel))?;
        }
        for (k, v) in &xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax_record(&mut pax, &key, v);
        }
        hd.set_cksum();
        if !pax.is_empty() {
            let mut ph = Header::new_ustar();
            let base = rel.rsplit(|&c| c == b'/').next().unwrap_or(b"x");
            let mut pname = b"./PaxHeaders/".to_vec();
            pname.extend_from_slice(&base[..base.len().min(80)]);
            set_ustar_path(&mut ph, &pname);
            ph.set_entry_type(EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_size(pax.len() as u64);
            ph.set_mtime(st.mtime.max(0) as u64);
            ph.set_cksum();
            let r = self
                .w
                .write_all(ph.as_bytes())
                .and_then(|_| self.w.write_all(&pax))
                .and_then(|_| pad(&mut self.w, pax.len() as u64));
            r.map_err(self.werr(rel))?;
        }
        self.pax = pax;
        self.name_buf = name;
        self.w.write_all(hd.as_bytes()).map_err(self.werr(rel))?;

        if let Some(mut f) = file {
            self.copy_contents(&mut f, rel, size)?;
        }
        if let Some(p) = self.progress.as_mut() {
            p.tick(0, 1);
        }
        Ok(())
    }

    fn copy_contents(&mut self, f: &mut File, rel: &[u8], size: u64) -> Result<(), TemplateError> {
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(TemplateError::Changed {
                        path: walk::host_path(self.root, rel),
                        what: "shrank while being archived",
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(self.root, rel, "read", e)),
            };
            self.digest.update(&self.buf[..n]);
            if let Err(e) = self.w.write_all(&self.buf[..n]) {
                return Err(io_err(self.root, rel, "write template entry for", e));
            }
            left -= n as u64;
            self.content_read += n as u64;
            if let Some(p) = self.progress.as_mut() {
                p.tick(n as u64, 0);
            }
        }
        pad(&mut self.w, size).map_err(|e| io_err(self.root, rel, "write template entry for", e))
    }
}

fn pad<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

fn readlink_at(dirfd: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: buf is writable for buf.len() bytes.
        let n = unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        let val = vec![b'x'; 95];
        pax_record(&mut v, b"path", &val);
        let len: usize =
            std::str::from_utf8(&v[..v.iter().position(|&c| c == b' ').unwrap()]).unwrap().parse().unwrap();
        assert_eq!(len, v.len());
    }

    #[test]
    fn ustar_path_split() {
        let mut h = Header::new_ustar();
        let long = format!("./{}/{}", "d".repeat(120), "f".repeat(50));
        assert!(set_ustar_path(&mut h, long.as_bytes()));
        let mut h = Header::new_ustar();
        let too_long = format!("./{}", "f".repeat(300));
        assert!(!set_ustar_path(&mut h, too_long.as_bytes()));
    }
}

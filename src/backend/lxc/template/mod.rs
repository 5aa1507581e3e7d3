//! Rootfs templates for the proxmox-lxc backend.
//!
//! An OCI bundle's rootfs directory becomes a Proxmox container template
//! `nexcage-<digest>.tar.zst` in the template cache directory (on Proxmox
//! `/var/lib/vz/template/cache`, i.e. `<storage>:vztmpl/...`), which `pct create` then
//! unpacks. See [`TemplateCache::ensure`].
//!
//! # Naming
//! `<digest>` is the first 32 hex digits of a sha256 over the tree's content *and*
//! metadata: every path, type, permission bits, uid/gid, mtime (ns), size, symlink target,
//! hardlink structure, device numbers, xattrs and file contents (see `archive.rs`). Equal
//! trees give equal names; any change gives a new name, so a template file, once renamed
//! into place, is immutable and can be shared by every container created from that tree.
//!
//! # Cache hits without reading contents
//! Computing the digest means reading every byte. To avoid that on a repeated create,
//! each build records an index entry keyed by a *metadata fingerprint*: a sha256 over every
//! entry's path and lstat facts (inode number, mode, nlink, uid, gid, rdev, size, mtime and
//! ctime in ns). A later create walks the tree with `lstat` only (no `open`, no `read`),
//! and if the fingerprint has an index entry whose template file exists, reuses it.
//!
//! Why this proves the tree unchanged: any change to a file's contents, mode, owner, xattrs
//! or link count updates its ctime, which a process cannot set back (utimensat can restore
//! mtime, not ctime), and creating, removing or renaming entries changes the path list and
//! the parent directories' ctimes. The inode number ties each path to the same file object,
//! so replacing a file by a copy with identical times still differs.
//!
//! `st_dev` is deliberately *not* part of the fingerprint. Container engines hand us a
//! fresh overlay mount per container; overlayfs reports the layer files' inode numbers and
//! ctimes but a per-mount `st_dev`. Without `st_dev` the second container created from the
//! same image hits the cache. Two different file systems agreeing on inode number *and*
//! ns-ctime *and* size/mtime/mode/owner for every entry of a tree happens only when they are
//! views of the same files (overlay, bind mount, snapshot clone); an edit on either side
//! sets a new ctime there.
//!
//! Racy entries (as in git's "racily clean" index): timestamps come from a coarse clock
//! (a kernel tick, or whole seconds on some file systems), so a write landing in the same
//! tick as the previous change, right after we read the file, would leave ctime unchanged.
//! An index entry therefore records the newest ctime in the tree and the time the build
//! started; when the newest ctime is within `racy_window` (default 2 s) of that start, the
//! entry is trusted only by creates that started before the entry was written (the ones
//! that waited on the lock during that very build: they are concurrent with it anyway), and
//! later creates rebuild (which then records a non-racy entry).
//!
//! # Atomicity and concurrency
//! A build writes `.nexcage-tmp-<pid>-<rand>.tar.zst` in the cache directory, fsyncs it,
//! renames it to its final name and fsyncs the directory; on any error (or panic) the temp
//! file is removed. Creates of the same tree serialise on an `flock` of
//! `<index_dir>/locks/<fingerprint>.lock` taken after the metadata walk, so of two
//! concurrent creates of a new rootfs one builds and the other waits and reuses the result.
//! Different trees that happen to have equal contents may build concurrently; both renames
//! produce the same bytes under the same name, so the outcome is the same.

mod archive;
mod walk;

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Hex digits of the digest used in the template file name.
pub const NAME_DIGEST_LEN: usize = 32;
const PREFIX: &str = "nexcage-";
const SUFFIX: &str = ".tar.zst";
const TMP_PREFIX: &str = ".nexcage-tmp-";

/// Errors of the template cache; every variant names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    // The message includes the io error's: `err` is not a `#[source]`, so that
    // anyhow's `{:#}` (how nexcage prints errors) does not print it twice.
    #[error("{op} {path}: {err}")]
    Io { op: &'static str, path: PathBuf, err: io::Error },
    #[error("rootfs {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("rootfs entry {path} {what}; retry once the rootfs is no longer being modified")]
    Changed { path: PathBuf, what: &'static str },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TemplateError + 'a {
    move |err| TemplateError::Io { op, path: path.to_path_buf(), err }
}

/// A template ready for `pct create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// `nexcage-<digest32>.tar.zst`
    pub file_name: String,
    pub path: PathBuf,
    /// Full sha256 digest of the tree (64 hex digits).
    pub digest: String,
    /// True when an existing template was used (this call wrote none).
    pub reused: bool,
    /// Size of the template file.
    pub bytes: u64,
    /// Bytes of rootfs file contents this call read (0 on a metadata cache hit).
    pub contents_read: u64,
}

impl Template {
    /// The volume id for `pct create`, e.g. `local:vztmpl/nexcage-....tar.zst`.
    pub fn volid(&self, storage: &str) -> String {
        format!("{storage}:vztmpl/{}", self.file_name)
    }
}

/// A template file found in the cache directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    pub file_name: String,
    pub path: PathBuf,
    /// The digest part of the name (32 hex digits).
    pub digest: String,
    pub bytes: u64,
    pub modified: SystemTime,
}

/// Index record, `<index_dir>/<fingerprint>.json`.
#[derive(Serialize, Deserialize)]
struct IndexEntry {
    digest: String,
    file_name: String,
    /// The rootfs this was built from (informational).
    rootfs: PathBuf,
    /// Newest ctime in the tree, ns since the epoch.
    max_ctime_ns: i128,
    /// When the build's metadata walk started, ns since the epoch.
    walk_started_ns: i128,
    /// When this record was written, ns since the epoch.
    written_ns: i128,
}

/// Resolves OCI `root.path` against the bundle directory (absolute paths are taken as they
/// are, as runc does) and checks that it is a directory. Symlinks on the way to the rootfs
/// are allowed; symlinks *inside* the tree are never followed by the archiver.
pub fn resolve_rootfs(bundle: &Path, root_path: &Path) -> Result<PathBuf, TemplateError> {
    let p = if root_path.is_absolute() { root_path.to_path_buf() } else { bundle.join(root_path) };
    let md = fs::metadata(&p).map_err(io_err("rootfs (root.path)", &p))?;
    if !md.is_dir() {
        return Err(TemplateError::NotADirectory(p));
    }
    Ok(p)
}

/// The template cache: template files in `dir`, metadata index and locks in `index_dir`.
#[derive(Clone, Debug)]
pub struct TemplateCache {
    dir: PathBuf,
    index_dir: PathBuf,
    racy_window: Duration,
    progress: bool,
    workers: u32,
}

fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &c in b {
        s.push(H[(c >> 4) as usize] as char);
        s.push(H[(c & 15) as usize] as char);
    }
    s
}

/// Removes a path on drop unless disarmed (the temp file of a build).
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Exclusive `flock` held until drop.
struct FileLock(#[allow(dead_code)] Flock<File>);

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock, TemplateError> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("open lock file", path))?;
        loop {
            match Flock::lock(f, FlockArg::LockExclusive) {
                Ok(locked) => return Ok(FileLock(locked)),
                Err((back, Errno::EINTR)) => f = back,
                Err((_, e)) => return Err(io_err("lock", path)(e.into())),
            }
        }
    }
}

fn parse_template_name(name: &str) -> Option<&str> {
    let d = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (d.len() == NAME_DIGEST_LEN && d.bytes().all(|c| c.is_ascii_hexdigit())).then_some(d)
}

impl TemplateCache {
    /// Templates go to `dir`; the metadata index and lock files to `index_dir` (e.g.
    /// `/var/lib/nexcage/template-index`). Both are created on first use.
    pub fn new(dir: impl Into<PathBuf>, index_dir: impl Into<PathBuf>) -> TemplateCache {
        let workers = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        TemplateCache {
            dir: dir.into(),
            index_dir: index_dir.into(),
            racy_window: Duration::from_secs(2),
            progress: io::stderr().is_terminal(),
            workers,
        }
    }

    /// Overrides whether progress is shown on stderr (default: when stderr is a terminal).
    pub fn with_progress(mut self, on: bool) -> TemplateCache {
        self.progress = on;
        self
    }

    /// Overrides the racy window (see the module docs); default 2 s.
    pub fn with_racy_window(mut self, w: Duration) -> TemplateCache {
        self.racy_window = w;
        self
    }

    /// Overrides the number of zstd worker threads (default: available cores).
    pub fn with_workers(mut self, n: u32) -> TemplateCache {
        self.workers = n.max(1);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the template for the tree at `rootfs`, building it if needed.
    pub fn ensure(&self, rootfs: &Path) -> Result<Template, TemplateError> {
        let started = now_ns();
        // Metadata-only walk: the fingerprint (and totals for progress).
        let pre = walk::walk(rootfs, &mut |_| Ok(()))?;
        fs::create_dir_all(&self.dir).map_err(io_err("create template directory", &self.dir))?;
        let locks = self.index_dir.join("locks");
        fs::create_dir_all(&locks).map_err(io_err("create template index directory", &locks))?;
        let fp = hex(&pre.fingerprint);
        let _lock = FileLock::acquire(&locks.join(format!("{fp}.lock")))?;

        let index_path = self.index_dir.join(format!("{fp}.json"));
        if let Some(t) = self.lookup(&index_path, started)? {
            return Ok(t);
        }

        // Build under a temp name.
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}-{:016x}{SUFFIX}", std::process::id(), rand_u64()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err("create template temp file", &tmp))?;
        let mut guard = RemoveOnDrop(Some(tmp.clone()));
        let progress = self.progress.then(|| archive::Progress::new(pre.file_bytes, pre.entries));
        let built = archive::build(rootfs, file, self.workers, progress).map_err(|e| match e {
            TemplateError::Io { op, path, err } if path.as_os_str() == "<template temp file>" => {
                TemplateError::Io { op, path: tmp.clone(), err }
            }
            e => e,
        })?;
        let bytes = built.file.metadata().map_err(io_err("stat", &tmp))?.len();
        drop(built.file);
        let digest = hex(&built.digest);
        let file_name = format!("{PREFIX}{}{SUFFIX}", &digest[..NAME_DIGEST_LEN]);
        let path = self.dir.join(&file_name);
        let reused = path.exists();
        crate::fault::point("lxc:template-built");
        if !reused {
            fs::rename(&tmp, &path).map_err(io_err("rename template into place", &path))?;
            guard.0 = None;
            sync_dir(&self.dir)?;
        }
        drop(guard);
        let bytes = if reused { fs::metadata(&path).map(|m| m.len()).unwrap_or(bytes) } else { bytes };

        // Record the fingerprint only if the tree did not change while we read it.
        if built.walk.fingerprint == pre.fingerprint {
            let entry = IndexEntry {
                digest: digest.clone(),
                file_name: file_name.clone(),
                rootfs: rootfs.to_path_buf(),
                max_ctime_ns: pre.max_ctime_ns,
                walk_started_ns: started,
                written_ns: 0,
            };
            self.write_index(&index_path, entry)?;
        }
        Ok(Template { file_name, path, digest, reused, bytes, contents_read: built.content_read })
    }

    /// The empty template: a tar archive with no entries, for a CT whose root is the
    /// bundle's rootfs in place (`root.rs`): `pct create` must extract *a* template and
    /// this one writes nothing. Named like the others (digest of its tar stream), so
    /// `list`, `prune` and the in-use checks treat it alike.
    pub fn ensure_empty(&self) -> Result<Template, TemplateError> {
        // End of archive: two zero blocks.
        let tar = [0u8; 1024];
        let digest = hex(&Sha256::digest(tar));
        let file_name = format!("{PREFIX}{}{SUFFIX}", &digest[..NAME_DIGEST_LEN]);
        let path = self.dir.join(&file_name);
        if let Ok(md) = fs::metadata(&path) {
            if md.is_file() {
                return Ok(Template { file_name, path, digest, reused: true, bytes: md.len(), contents_read: 0 });
            }
        }
        fs::create_dir_all(&self.dir).map_err(io_err("create template directory", &self.dir))?;
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}-{:016x}{SUFFIX}", std::process::id(), rand_u64()));
        let mut guard = RemoveOnDrop(Some(tmp.clone()));
        let bytes = zstd::encode_all(&tar[..], 3).map_err(io_err("compress empty template", &tmp))?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err("create template temp file", &tmp))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io_err("write template", &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err("rename template into place", &path))?;
        guard.0 = None;
        sync_dir(&self.dir)?;
        Ok(Template { file_name, path, digest, reused: false, bytes: bytes.len() as u64, contents_read: 0 })
    }

    fn lookup(&self, index_path: &Path, started: i128) -> Result<Option<Template>, TemplateError> {
        let data = match fs::read(index_path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read template index", index_path)(e)),
        };
        // A damaged record is only a lost cache hit.
        let Ok(entry) = serde_json::from_slice::<IndexEntry>(&data) else {
            return Ok(None);
        };
        let racy = entry.max_ctime_ns >= entry.walk_started_ns - self.racy_window.as_nanos() as i128;
        if racy && started >= entry.written_ns {
            return Ok(None);
        }
        if parse_template_name(&entry.file_name).is_none()
            || !entry.digest.starts_with(&entry.file_name[PREFIX.len()..PREFIX.len() + NAME_DIGEST_LEN])
        {
            return Ok(None);
        }
        let path = self.dir.join(&entry.file_name);
        match fs::metadata(&path) {
            Ok(md) if md.is_file() => Ok(Some(Template {
                file_name: entry.file_name,
                path,
                digest: entry.digest,
                reused: true,
                bytes: md.len(),
                contents_read: 0,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat template", &path)(e)),
        }
    }

    fn write_index(&self, index_path: &Path, mut entry: IndexEntry) -> Result<(), TemplateError> {
        entry.written_ns = now_ns();
        let tmp = index_path.with_extension(format!("json.tmp-{}", std::process::id()));
        let guard = RemoveOnDrop(Some(tmp.clone()));
        let data = serde_json::to_vec(&entry).expect("index entry serialises");
        let mut f = File::create(&tmp).map_err(io_err("create template index", &tmp))?;
        f.write_all(&data).map_err(io_err("write template index", &tmp))?;
        drop(f);
        fs::rename(&tmp, index_path).map_err(io_err("rename template index", index_path))?;
        std::mem::forget(guard);
        Ok(())
    }

    /// Lists the `nexcage-*.tar.zst` templates in the cache directory, sorted by name.
    pub fn list(&self) -> Result<Vec<TemplateInfo>, TemplateError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read template directory", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io_err("read template directory", &self.dir))?;
            let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(digest) = parse_template_name(&name).map(str::to_owned) else {
                continue;
            };
            let path = ent.path();
            let md = match fs::symlink_metadata(&path) {
                Ok(md) if md.is_file() => md,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat template", &path)(e)),
            };
            out.push(TemplateInfo {
                file_name: name,
                path,
                digest,
                bytes: md.len(),
                modified: md.modified().unwrap_or(UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(out)
    }

    /// Removes every `nexcage-*.tar.zst` template whose file name is not in `in_use`
    /// (entries may be bare file names or volids like `local:vztmpl/<name>`), its index
    /// records, and temp files left by builds whose process is gone. Returns the removed
    /// template file names.
    ///
    /// The caller must make sure no create is between `ensure` and `pct create` for a
    /// template it does not list as in use (e.g. hold the host-wide create lock).
    pub fn prune(&self, in_use: &HashSet<String>) -> Result<Vec<String>, TemplateError> {
        let used: HashSet<&str> = in_use.iter().map(|s| s.rsplit('/').next().unwrap_or(s)).collect();
        let mut removed = Vec::new();
        for t in self.list()? {
            if used.contains(t.file_name.as_str()) {
                continue;
            }
            match fs::remove_file(&t.path) {
                Ok(()) => removed.push(t.file_name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove template", &t.path)(e)),
            }
        }
        // Index records pointing at templates that no longer exist.
        if let Ok(rd) = fs::read_dir(&self.index_dir) {
            for ent in rd.flatten() {
                let p = ent.path();
                if p.extension().is_some_and(|e| e == "json") {
                    let stale = fs::read(&p)
                        .ok()
                        .and_then(|d| serde_json::from_slice::<IndexEntry>(&d).ok())
                        .is_none_or(|e| !self.dir.join(&e.file_name).exists());
                    if stale {
                        let _ = fs::remove_file(&p);
                    }
                }
            }
        }
        // Temp files of builds killed before they could clean up.
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
                    continue;
                };
                let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                    continue;
                };
                // SAFETY: signal 0 only checks for existence.
                let alive = unsafe { libc::kill(pid, 0) } == 0
                    || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                if !alive {
                    let _ = fs::remove_file(ent.path());
                }
            }
        }
        Ok(removed)
    }
}

fn sync_dir(dir: &Path) -> Result<(), TemplateError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err("fsync template directory", dir))
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: b is writable for 8 bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        (now_ns() as u64) ^ ((std::process::id() as u64) << 32)
    }
}

#[cfg(test)]
mod tests;

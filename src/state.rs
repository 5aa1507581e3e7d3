//! Per-container records under `--root`.
//!
//! Layout: `<root>/<id>/record.json` for each container; `<root>/@<backend>/` is the
//! `--root` given to a passthrough runtime (`@` cannot appear in an id, so the two never
//! collide). A record directory is prepared under a temporary name, locked, and renamed
//! into place with `RENAME_NOREPLACE`: two creates of one id cannot both win, and a
//! crash never leaves a directory that looks like a finished record.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::backend::lxc::data::LxcState;

pub const DEFAULT_ROOT: &str = "/run/nexcage";
const RECORD_FILE: &str = "record.json";

/// What callers of the store branch on. The messages are runc's (engines match them).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with id exists: {0}")]
    Exists(String),
}

impl StateError {
    /// Is `e` (or what it wraps) "container does not exist"?
    pub fn is_not_exist(e: &anyhow::Error) -> bool {
        matches!(e.downcast_ref::<StateError>(), Some(StateError::NotExist))
    }
}

/// runc's id rule: letters, digits, `_ + - .`; not `.` or `..`. Checked before any path is
/// built from an id. The length cap keeps the id a valid file name.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container id: the id is empty");
    }
    if id == "." || id == ".." {
        bail!("invalid container id {id:?}: must not be \".\" or \"..\"");
    }
    if id.len() > 200 {
        bail!("invalid container id: {} bytes long, at most 200 allowed", id.len());
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))) {
        bail!(
            "invalid container id {:?}: character {c:?} not allowed (use letters, digits, '_', '+', '-', '.')",
            printable(id)
        );
    }
    Ok(())
}

fn printable(s: &str) -> String {
    if s.len() > 64 {
        format!("{}...", &s[..s.char_indices().nth(60).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s.to_string()
    }
}

/// Lifecycle phase of the record itself (not of the container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The backend's create has not finished; a record left in this phase after a crash
    /// is cleaned by `delete`.
    Creating,
    /// The backend holds the container.
    Created,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Oci,
    ProxmoxLxc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Backend name from the configuration.
    pub backend: String,
    pub kind: BackendKind,
    /// For `oci` backends: the runtime binary, resolved at create, so that later commands
    /// need no configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<PathBuf>,
    pub bundle: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub phase: Phase,
    /// Backend-specific data (e.g. the VMID of a Proxmox container).
    #[serde(default, skip_serializing_if = "BackendData::is_none")]
    pub data: BackendData,
}

/// The `data` of a record as it is on disk: an object keyed by the backend kind.
type RawData = BTreeMap<String, serde_json::Value>;

/// A record's backend data, typed. On disk an object keyed by the backend kind
/// (`{"proxmox-lxc": {"state": "pending" | "placed", ...}}`), absent when there is none.
/// Records written before this type (`{"lxc": ..., "lxc-pending": ...}`) are read too
/// (`LxcState::from_legacy`) and written back in the new form when next saved. Data this
/// nexcage cannot read is kept as it was ([`BackendData::Unreadable`]), so the record still
/// loads: the backend reports the problem where it needs the data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "RawData", into = "RawData")]
pub enum BackendData {
    /// Nothing (passthrough backends; a proxmox-lxc record before its create saved any).
    #[default]
    None,
    ProxmoxLxc(LxcState),
    /// Data that does not parse: kept verbatim, with the reason.
    Unreadable {
        raw: RawData,
        error: String,
    },
}

const PROXMOX_LXC: &str = "proxmox-lxc";

impl BackendData {
    pub fn is_none(&self) -> bool {
        matches!(self, BackendData::None)
    }
}

impl From<RawData> for BackendData {
    fn from(raw: RawData) -> BackendData {
        if raw.is_empty() {
            return BackendData::None;
        }
        let parsed = match raw.get(PROXMOX_LXC) {
            Some(v) if raw.len() == 1 => serde_json::from_value(v.clone()).map_err(|e| e.to_string()),
            _ => LxcState::from_legacy(&raw).unwrap_or_else(|| Err("no data of a known backend".to_string())),
        };
        match parsed {
            Ok(s) => BackendData::ProxmoxLxc(s),
            Err(error) => BackendData::Unreadable { raw, error },
        }
    }
}

impl From<BackendData> for RawData {
    fn from(d: BackendData) -> RawData {
        match d {
            BackendData::None => RawData::new(),
            BackendData::ProxmoxLxc(s) => {
                RawData::from([(PROXMOX_LXC.to_string(), serde_json::to_value(s).expect("serializable"))])
            }
            BackendData::Unreadable { raw, .. } => raw,
        }
    }
}

/// An exclusive flock on a container's record directory, released on drop.
#[derive(Debug)]
pub struct Lock {
    _dir: Flock<File>,
}

fn lock_dir(path: &Path) -> io::Result<Lock> {
    let dir = File::open(path)?;
    // Blocking: other commands on the same id finish quickly.
    let dir = Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
    Ok(Lock { _dir: dir })
}

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The `--root` handed to a passthrough runtime.
    pub fn runtime_root(&self, backend: &str) -> PathBuf {
        self.root.join(format!("@{backend}"))
    }

    fn ensure_root(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("cannot create state root {}", self.root.display()))
    }

    /// Atomically claim `id` with a record in phase `Creating`. Fails if the id exists.
    /// The returned lock is held until the caller drops it.
    pub fn claim(&self, record: &Record) -> Result<Lock> {
        self.ensure_root()?;
        let tmp = self.root.join(format!("@new-{}-{}", std::process::id(), nanos()));
        fs::DirBuilder::new().mode(0o700).create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let prepared = (|| -> Result<Lock> {
            let lock = lock_dir(&tmp)?;
            write_atomic(&tmp.join(RECORD_FILE), &serde_json::to_vec_pretty(record)?, 0o600)?;
            Ok(lock)
        })();
        let lock = match prepared {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e.context("cannot write container record"));
            }
        };
        let target = self.dir(&record.id);
        if let Err(e) = rename_noreplace(&tmp, &target) {
            let _ = fs::remove_dir_all(&tmp);
            if e.raw_os_error() == Some(libc::EEXIST) || e.raw_os_error() == Some(libc::ENOTEMPTY) {
                return Err(StateError::Exists(record.id.clone()).into());
            }
            return Err(anyhow!(e).context(format!("cannot create {}", target.display())));
        }
        Ok(lock)
    }

    /// Rewrite a record (the caller holds its lock).
    pub fn save(&self, record: &Record) -> Result<()> {
        let path = self.dir(&record.id).join(RECORD_FILE);
        write_atomic(&path, &serde_json::to_vec_pretty(record)?, 0o600)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Read a record without locking (commands that only forward use this).
    pub fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let path = self.dir(id).join(RECORD_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotExist.into()),
            Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
        };
        serde_json::from_slice(&bytes).with_context(|| format!("corrupt container record {}", path.display()))
    }

    /// Lock and read a record.
    pub fn load_locked(&self, id: &str) -> Result<(Record, Lock)> {
        validate_id(id)?;
        let lock = match lock_dir(&self.dir(id)) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotExist.into()),
            Err(e) => return Err(anyhow!(e).context(format!("cannot lock {}", self.dir(id).display()))),
        };
        Ok((self.load(id)?, lock))
    }

    /// Lock and read a record unless another command holds its lock (`Ok(None)`).
    pub fn try_load_locked(&self, id: &str) -> Result<Option<(Record, Lock)>> {
        validate_id(id)?;
        let dir = match File::open(self.dir(id)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotExist.into()),
            Err(e) => return Err(anyhow!(e).context(format!("cannot lock {}", self.dir(id).display()))),
        };
        let Ok(dir) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else { return Ok(None) };
        Ok(Some((self.load(id)?, Lock { _dir: dir })))
    }

    /// Does a command hold this record's lock right now? A record in phase `Creating`
    /// that nobody holds was left by a create that died (its lock died with it).
    pub fn is_busy(&self, id: &str) -> bool {
        let Ok(dir) = File::open(self.dir(id)) else { return false };
        // A lock taken here is released at once (dropped).
        Flock::lock(dir, FlockArg::LockExclusiveNonblock).is_err()
    }

    /// Temporary claim directories (`@new-<pid>-<n>`) whose creator is gone.
    pub fn stale_claims(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.root) else { return out };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("@new-"))
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: signal 0 only checks for existence.
            let alive =
                unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                out.push(e.path());
            }
        }
        out.sort();
        out
    }

    /// Remove a record directory and everything in it (the caller holds its lock).
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove {}", dir.display()))),
        }
    }

    /// Ids of all records, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", self.root.display()))),
        };
        for entry in entries {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                if validate_id(name).is_ok() && entry.path().join(RECORD_FILE).exists() {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    nix::fcntl::renameat2(None, from, None, to, nix::fcntl::RenameFlags::RENAME_NOREPLACE).map_err(io::Error::from)
}

/// Current time in RFC 3339 with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            backend: "crun".into(),
            kind: BackendKind::Oci,
            runtime: Some("/usr/bin/crun".into()),
            bundle: "/b".into(),
            created: now_rfc3339(),
            phase: Phase::Creating,
            data: BackendData::None,
        }
    }

    #[test]
    fn id_rules_follow_runc() {
        for ok in ["a", "abc-DEF_1.2+3", "0123456789abcdef", "..a", ".hidden"] {
            validate_id(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("", "empty"),
            (".", "\".\""),
            ("..", "\"..\""),
            ("a/b", "'/'"),
            ("a b", "' '"),
            ("a\0b", "'\\0'"),
            ("é", "'é'"),
            ("a@b", "'@'"),
        ] {
            let e = validate_id(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid container id") && e.contains(why), "{bad:?}: {e}");
        }
        let long = "a".repeat(1 << 20);
        let e = validate_id(&long).unwrap_err().to_string();
        assert!(e.contains("1048576 bytes long"), "{e}");
        assert!(e.len() < 200, "message must not echo a huge id");
    }

    #[test]
    fn claim_then_duplicate_is_refused_and_load_roundtrips() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(&t.path().join("root"));
        let lock = s.claim(&record("c1")).unwrap();
        drop(lock);
        let e = s.claim(&record("c1")).unwrap_err().to_string();
        assert_eq!(e, "container with id exists: c1");
        let r = s.load("c1").unwrap();
        assert_eq!(r.backend, "crun");
        assert_eq!(r.phase, Phase::Creating);
        // No temporary directories left behind.
        let names: Vec<_> = fs::read_dir(s.root()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c1")]);
        assert_eq!(s.ids().unwrap(), vec!["c1".to_string()]);
    }

    #[test]
    fn state_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(&t.path().join("root"));
        drop(s.claim(&record("p")).unwrap());
        for p in [s.root().to_path_buf(), s.dir("p")] {
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700, "{}", p.display());
        }
        assert_eq!(fs::metadata(s.dir("p").join(RECORD_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn unknown_id_says_does_not_exist() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path());
        assert_eq!(s.load("nope").unwrap_err().to_string(), "container does not exist");
        assert!(StateError::is_not_exist(&s.load("nope").unwrap_err()));
        assert!(StateError::is_not_exist(&s.load_locked("nope").err().unwrap()));
        assert!(StateError::is_not_exist(&s.try_load_locked("nope").err().unwrap()));
    }

    #[test]
    fn save_and_remove() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path());
        let mut r = record("x");
        let _l = s.claim(&r).unwrap();
        r.phase = Phase::Created;
        r.data = BackendData::Unreadable {
            raw: RawData::from([("other".to_string(), serde_json::json!({"vmid": 9000}))]),
            error: String::new(),
        };
        s.save(&r).unwrap();
        let back = s.load("x").unwrap();
        assert_eq!(back.phase, Phase::Created);
        // Data this nexcage cannot read is kept as it was.
        match back.data {
            BackendData::Unreadable { raw, .. } => assert_eq!(raw["other"]["vmid"], 9000),
            d => panic!("{d:?}"),
        }
        s.remove("x").unwrap();
        assert!(s.ids().unwrap().is_empty());
    }

    #[test]
    fn concurrent_claims_have_one_winner() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || Store::new(&root).claim(&record("dup")).map(drop).is_ok())
            })
            .collect();
        let wins = handles.into_iter().map(|h| h.join().unwrap()).filter(|w| *w).count();
        assert_eq!(wins, 1);
    }

    #[test]
    fn created_is_rfc3339() {
        let t = now_rfc3339();
        humantime::parse_rfc3339(&t).unwrap();
        assert!(t.ends_with('Z'));
    }
}

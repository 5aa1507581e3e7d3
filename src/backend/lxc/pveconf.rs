//! Proxmox VE container config files `<pve_root>/etc/pve/lxc/<vmid>.conf`
//! (pct-contract.md §3, §4): parse and write them without losing a byte, append raw
//! `lxc.*` lines under pct's per-VMID flock, and find the containers nexcage made.
//!
//! File layout (PVE's): `#` description lines (each line of the description encoded
//! like PVE's `encode_text`: bytes outside 0x20..0x7e and `:` as `%XX`), `key: value`
//! lines sorted by key, raw `lxc.*` lines in file order, then `[pve:pending]` and
//! snapshot sections. [`PveConfig`] keeps every line's text, so `parse` then `render`
//! gives the input back unchanged; edits only add or replace the lines they touch.
//!
//! ## The description nexcage writes
//! ```text
//! nexcage OCI container: the nexcage-* lines below are read by nexcage, keep them
//! nexcage-id: <OCI container id>
//! nexcage-bundle: <bundle path>
//! nexcage-root: <nexcage --root of the container's state>   (optional)
//! ```
//! Values are escaped by nexcage first (bytes outside 0x21..0x7e, `%` and `\` as
//! `\xHH`), so ids and paths with spaces, newlines, `:`, `%` or non-UTF-8 bytes survive;
//! no `%` is left because PVE URL-decodes description lines when it reads a config but
//! does not escape `%` when it writes them. PVE then applies its own `encode_text` when
//! storing the lines as `#` comments (so `:` appears as `%3A` in the file), and
//! `pct config` URL-encodes the whole text.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// How long [`append_raw_lxc`] waits for the per-VMID flock, as pct does.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The tag every container nexcage creates carries.
pub const NEXCAGE_TAG: &str = "nexcage";

#[derive(Debug, thiserror::Error)]
pub enum PveConfError {
    #[error("PVE config {} does not exist", path.display())]
    NotFound { path: PathBuf },
    // The message includes the io error's: `err` is not a `#[source]`, so that
    // anyhow's `{:#}` (how nexcage prints errors) does not print it twice.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: io::Error },
    #[error("can't lock file '{}' - got timeout (held by a pct command on this container?)", path.display())]
    LockTimeout { path: PathBuf },
    #[error("raw LXC line {key:?}: {problem}")]
    InvalidRaw { key: String, problem: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PveConfError + '_ {
    move |err| PveConfError::Io { path: path.to_path_buf(), err }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `#<encoded description line>`
    Comment(String),
    /// `key: value`
    Key(String, String),
    /// `lxc.key: value` or `lxc.key = value`
    Raw(String, String),
    /// Blank or unrecognised line, kept verbatim.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    text: String,
    kind: Kind,
}

/// A PVE container config: the main section parsed line by line, the sections
/// (`[pve:pending]`, snapshots) kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PveConfig {
    lines: Vec<Line>,
    /// From the first `[section]` line to the end, verbatim.
    tail: String,
    /// The input ended without a newline (kept for an exact round trip).
    no_final_newline: bool,
}

/// PVE's `encode_text`: bytes outside 0x20..0x7e, and `:`, as `%XX`.
pub fn encode_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b':' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding into bytes (invalid escapes are kept literally).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// PVE's `decode_text` (URL-decoding, UTF-8).
pub fn decode_text(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s)).into_owned()
}

/// Split a raw line `lxc.key: value` / `lxc.key = value`.
pub fn split_raw(line: &str) -> Option<(String, String)> {
    if !line.starts_with("lxc.") {
        return None;
    }
    let end = line.find(|c: char| c == ':' || c == '=' || c.is_whitespace())?;
    let key = &line[..end];
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?;
    Some((key.to_string(), rest.trim().to_string()))
}

fn split_key(line: &str) -> Option<(String, String)> {
    let (k, v) = line.split_once(':')?;
    let ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| (k.to_string(), v.trim().to_string()))
}

impl PveConfig {
    pub fn parse(text: &str) -> PveConfig {
        let mut conf = PveConfig { no_final_newline: !text.is_empty() && !text.ends_with('\n'), ..Default::default() };
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let body = line.strip_suffix('\n').unwrap_or(line);
            let trimmed = body.trim();
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                conf.tail = text[offset..].to_string();
                conf.no_final_newline = false;
                break;
            }
            offset += line.len();
            let kind = if let Some(c) = body.strip_prefix('#') {
                Kind::Comment(c.to_string())
            } else if let Some((k, v)) = split_raw(body) {
                Kind::Raw(k, v)
            } else if let Some((k, v)) = split_key(body) {
                Kind::Key(k, v)
            } else {
                Kind::Other
            };
            conf.lines.push(Line { text: body.to_string(), kind });
        }
        conf
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&l.text);
            s.push('\n');
        }
        if self.no_final_newline && self.tail.is_empty() {
            s.pop();
        }
        s.push_str(&self.tail);
        s
    }

    /// A `key: value` of the main section.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| match &l.kind {
            Kind::Key(k, v) if k == key => Some(v.as_str()),
            _ => None,
        })
    }

    /// All `key: value` pairs of the main section, in file order.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Key(k, v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }

    /// Set a key (replacing its line, or inserting it in sorted position).
    pub fn set(&mut self, key: &str, value: &str) {
        let line = Line { text: format!("{key}: {value}"), kind: Kind::Key(key.into(), value.into()) };
        if let Some(l) = self.lines.iter_mut().find(|l| matches!(&l.kind, Kind::Key(k, _) if k == key)) {
            *l = line;
            return;
        }
        let pos = self
            .lines
            .iter()
            .position(|l| matches!(&l.kind, Kind::Key(k, _) if k.as_str() > key) || matches!(l.kind, Kind::Raw(..)))
            .or_else(|| self.last_pos(|k| matches!(k, Kind::Key(..) | Kind::Comment(_))).map(|i| i + 1))
            .unwrap_or(self.lines.len().min(self.lines.iter().take_while(|l| l.kind != Kind::Other).count()));
        self.lines.insert(pos, line);
    }

    fn last_pos(&self, f: impl Fn(&Kind) -> bool) -> Option<usize> {
        self.lines.iter().rposition(|l| f(&l.kind))
    }

    /// The description (decoded `#` lines joined with newlines).
    pub fn description(&self) -> String {
        let lines: Vec<String> = self
            .lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Comment(c) => Some(decode_text(c)),
                _ => None,
            })
            .collect();
        lines.join("\n")
    }

    /// Replace the description (written as encoded `#` lines at the top).
    pub fn set_description(&mut self, descr: &str) {
        self.lines.retain(|l| !matches!(l.kind, Kind::Comment(_)));
        let new: Vec<Line> = descr
            .lines()
            .map(|d| {
                let enc = encode_text(d);
                Line { text: format!("#{enc}"), kind: Kind::Comment(enc) }
            })
            .collect();
        self.lines.splice(0..0, new);
    }

    /// Raw `lxc.*` lines of the main section, in file order.
    pub fn raw_lxc(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Raw(k, v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }

    /// Append a raw line after the existing ones (before blank lines and sections),
    /// written `key: value` as PVE writes them. The caller validates (see
    /// [`check_raw_line`]).
    pub fn push_raw_lxc(&mut self, key: &str, value: &str) {
        let pos = self.last_pos(|k| !matches!(k, Kind::Other)).map(|i| i + 1).unwrap_or(0);
        self.lines.insert(pos, Line { text: format!("{key}: {value}"), kind: Kind::Raw(key.into(), value.into()) });
    }

    /// The `tags` key split as PVE splits it (`;`, `,` or spaces), lowercased.
    pub fn tags(&self) -> Vec<String> {
        self.get("tags")
            .map(|t| t.split([';', ',', ' ']).filter(|t| !t.is_empty()).map(str::to_ascii_lowercase).collect())
            .unwrap_or_default()
    }
}

/// Check one raw line before it goes into a config: an `lxc.` key of
/// `[a-z0-9._-]` characters, not `lxc.rootfs.path` (pct refuses it), and neither key
/// nor value may contain a line break (which would inject further config lines).
pub fn check_raw_line(key: &str, value: &str) -> Result<(), PveConfError> {
    let bad = |problem: &str| Err(PveConfError::InvalidRaw { key: key.to_string(), problem: problem.to_string() });
    if !key.starts_with("lxc.")
        || key.len() <= 4
        || !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return bad("not an lxc.* key of [a-z0-9._-]");
    }
    if key == "lxc.rootfs.path" {
        return bad("pct does not accept lxc.rootfs.path");
    }
    if value.contains(['\n', '\r', '\0']) {
        return bad("the value contains a line break or NUL");
    }
    Ok(())
}

/// `<pve_root>/etc/pve/lxc/<vmid>.conf` (this node's config directory).
pub fn conf_path(pve_root: &Path, vmid: u32) -> PathBuf {
    pve_root.join("etc/pve/lxc").join(format!("{vmid}.conf"))
}

/// `<pve_root>/run/lock/lxc/pve-config-<vmid>.lock`.
pub fn lock_path(pve_root: &Path, vmid: u32) -> PathBuf {
    pve_root.join("run/lock/lxc").join(format!("pve-config-{vmid}.lock"))
}

/// Read and parse a container's config.
pub fn read_config(pve_root: &Path, vmid: u32) -> Result<PveConfig, PveConfError> {
    let path = conf_path(pve_root, vmid);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(PveConfig::parse(&t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PveConfError::NotFound { path }),
        Err(e) => Err(PveConfError::Io { path, err: e }),
    }
}

/// pct's per-VMID flock, released on drop.
#[derive(Debug)]
pub struct ConfigLock {
    _file: Flock<File>,
    vmid: u32,
}

/// Take pct's per-VMID flock (exclusive), waiting up to `timeout`.
pub fn lock_config(pve_root: &Path, vmid: u32, timeout: Duration) -> Result<ConfigLock, PveConfError> {
    let path = lock_path(pve_root, vmid);
    let file = open_lock_file(&path)?;
    let Some(file) = flock_wait(file, timeout) else { return Err(PveConfError::LockTimeout { path }) };
    Ok(ConfigLock { _file: file, vmid })
}

pub(crate) fn open_lock_file(path: &Path) -> Result<File, PveConfError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io_err(path))
}

/// Exclusive flock, polling until `timeout` (pct polls too: no blocking call that
/// cannot be given a deadline). `None`: not acquired in time.
pub(crate) fn flock_wait(mut file: File, timeout: Duration) -> Option<Flock<File>> {
    let deadline = Instant::now() + timeout;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Some(locked),
            Err((f, _)) => file = f,
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Write a container's config atomically (new file in the same directory, fsync,
/// rename). The caller holds the container's [`ConfigLock`].
pub fn write_config(pve_root: &Path, lock: &ConfigLock, conf: &PveConfig) -> Result<(), PveConfError> {
    let path = conf_path(pve_root, lock.vmid);
    let dir = path.parent().expect("conf path has a parent");
    let tmp =
        dir.join(format!(".{}.conf.tmp.{}.{}", lock.vmid, std::process::id(), TMP_SEQ.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(conf.render().as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Append raw `lxc.*` lines to a container's config as pct-contract §4 demands: under
/// the per-VMID flock (waiting up to 10 s), read, append after the existing raw lines
/// (before any `[section]`), write a new file and rename it into place.
pub fn append_raw_lxc(pve_root: &Path, vmid: u32, lines: &[(String, String)]) -> Result<(), PveConfError> {
    for (k, v) in lines {
        check_raw_line(k, v)?;
    }
    if lines.is_empty() {
        return Ok(());
    }
    let lock = lock_config(pve_root, vmid, LOCK_TIMEOUT)?;
    let mut conf = read_config(pve_root, vmid)?;
    for (k, v) in lines {
        conf.push_raw_lxc(k, v);
    }
    write_config(pve_root, &lock, &conf)
}

/// What nexcage records about a container in its PVE description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub oci_id: String,
    pub bundle: PathBuf,
    /// The nexcage `--root` holding the container's state, when recorded.
    pub state_root: Option<PathBuf>,
    /// When `create` made it (RFC 3339, as `state` reports `created`), when recorded:
    /// a record rebuilt after `--root` was lost reports this, never the rebuild time.
    pub created: Option<String>,
    /// The host's boot id when `create` made it (`/proc/sys/kernel/random/boot_id`):
    /// a container of an earlier boot has no supervisor and nothing of its OCI state
    /// left (boot.rs).
    pub boot: Option<String>,
    /// The VMID nexcage created the CT as. Proxmox copies the description when it
    /// restores a backup or clones a CT, so a config whose VMID differs is such a copy,
    /// which nexcage never adopts or destroys.
    pub vmid: Option<u32>,
}

const DESCR_HEADER: &str = "nexcage OCI container: the nexcage-* lines below are read by nexcage, keep them";

/// Escape bytes outside 0x21..0x7e, `%` and `\\` as `\\xHH`. No `%` is left in the
/// result: PVE URL-decodes description lines when it reads a config (and does not
/// escape `%` when it writes them), so a `%XX` sequence would not survive.
fn encode_value(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if (0x21..=0x7e).contains(&c) && c != b'%' && c != b'\\' {
            out.push(c as char);
        } else {
            out.push_str(&format!("\\x{c:02x}"));
        }
    }
    out
}

/// Inverse of [`encode_value`] (invalid escapes are kept literally).
fn decode_value(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1] == b'x'
            && b[i + 2].is_ascii_hexdigit()
            && b[i + 3].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 2]) << 4 | hex(b[i + 3]));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The description for a container with this OCI id and bundle.
pub fn describe(oci_id: &str, bundle: &Path) -> String {
    describe_full(&Description {
        oci_id: oci_id.to_string(),
        bundle: bundle.to_path_buf(),
        state_root: None,
        created: None,
        boot: None,
        vmid: None,
    })
}

pub fn describe_full(d: &Description) -> String {
    let mut s = format!(
        "{DESCR_HEADER}\nnexcage-id: {}\nnexcage-bundle: {}\n",
        encode_value(d.oci_id.as_bytes()),
        encode_value(d.bundle.as_os_str().as_bytes())
    );
    if let Some(root) = &d.state_root {
        s.push_str(&format!("nexcage-root: {}\n", encode_value(root.as_os_str().as_bytes())));
    }
    if let Some(created) = &d.created {
        s.push_str(&format!("nexcage-created: {}\n", encode_value(created.as_bytes())));
    }
    if let Some(boot) = &d.boot {
        s.push_str(&format!("nexcage-boot: {}\n", encode_value(boot.as_bytes())));
    }
    if let Some(vmid) = d.vmid {
        s.push_str(&format!("nexcage-vmid: {vmid}\n"));
    }
    s
}

/// Parse a description written by [`describe_full`] (other lines are ignored, so a
/// user may add text around them). `None` when the id or bundle line is missing.
pub fn parse_description(text: &str) -> Option<Description> {
    let (mut id, mut bundle, mut root, mut created, mut boot, mut vmid) = (None, None, None, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k.trim() {
            "nexcage-id" => id = String::from_utf8(decode_value(v)).ok(),
            "nexcage-bundle" => bundle = Some(PathBuf::from(OsString::from_vec(decode_value(v)))),
            "nexcage-root" => root = Some(PathBuf::from(OsString::from_vec(decode_value(v)))),
            "nexcage-created" => created = String::from_utf8(decode_value(v)).ok().filter(|c| !c.is_empty()),
            "nexcage-boot" => boot = String::from_utf8(decode_value(v)).ok().filter(|b| !b.is_empty()),
            "nexcage-vmid" => vmid = v.parse().ok(),
            _ => {}
        }
    }
    Some(Description { oci_id: id.filter(|i| !i.is_empty())?, bundle: bundle?, state_root: root, created, boot, vmid })
}

/// `pct create` options with the CT's own VMID added to the description (its last line),
/// known only once the VMID is chosen.
pub fn with_described_vmid(options: &[(String, String)], vmid: u32) -> Vec<(String, String)> {
    options
        .iter()
        .map(|(k, v)| {
            if k == "description" {
                (k.clone(), format!("{v}nexcage-vmid: {vmid}\n"))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Whether a description written for CT `described` now sits in CT `vmid`'s config: a
/// copy Proxmox made (backup restored to another VMID, clone), not nexcage's container.
pub fn is_copy(d: &Description, vmid: u32) -> bool {
    d.vmid.is_some_and(|v| v != vmid)
}

/// A container of this node tagged `nexcage` whose description nexcage can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedContainer {
    pub vmid: u32,
    pub oci_id: String,
    pub bundle: PathBuf,
    pub state_root: Option<PathBuf>,
    /// When it was created (`nexcage-created`), if the description says.
    pub created: Option<String>,
    /// The boot it was made in (`nexcage-boot`), if the description says.
    pub boot: Option<String>,
    pub hostname: Option<String>,
    /// `lock:` of the config (e.g. `create` while pct creates it).
    pub lock: Option<String>,
}

/// VMIDs with a config file in `dir` (`<n>.conf`, n a valid VMID).
pub(crate) fn vmids_in(dir: &Path) -> io::Result<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".conf")) else { continue };
        if stem.len() >= 3 && !stem.starts_with('0') && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(v) = stem.parse() {
                out.insert(v);
            }
        }
    }
    Ok(out)
}

/// This node's containers tagged `nexcage` (configs in `<pve_root>/etc/pve/lxc`),
/// sorted by VMID. Tagged configs whose description lacks the nexcage lines are
/// skipped with a warning in the log.
pub fn nexcage_containers(pve_root: &Path) -> Result<Vec<TaggedContainer>, PveConfError> {
    let dir = pve_root.join("etc/pve/lxc");
    let vmids = vmids_in(&dir).map_err(io_err(&dir))?;
    let mut out = Vec::new();
    for vmid in vmids {
        let conf = match read_config(pve_root, vmid) {
            Ok(c) => c,
            Err(PveConfError::NotFound { .. }) => continue, // destroyed meanwhile
            Err(e) => return Err(e),
        };
        if !conf.tags().iter().any(|t| t == NEXCAGE_TAG) {
            continue;
        }
        let Some(d) = parse_description(&conf.description()) else {
            log::warn!(
                "CT {vmid} is tagged '{NEXCAGE_TAG}' but its description has no nexcage-id/nexcage-bundle lines"
            );
            continue;
        };
        if is_copy(&d, vmid) {
            log::debug!("CT {vmid} is a copy of nexcage's CT {:?} (a restore or clone): not nexcage's", d.vmid);
            continue;
        }
        out.push(TaggedContainer {
            vmid,
            oci_id: d.oci_id,
            bundle: d.bundle,
            state_root: d.state_root,
            created: d.created,
            boot: d.boot,
            hostname: conf.get("hostname").map(str::to_string),
            lock: conf.get("lock").map(str::to_string),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PVE_FILE: &str = "#nexcage OCI container%3A the nexcage-* lines below are read by nexcage, keep them\n#nexcage-id%3A web\n#nexcage-bundle%3A /b/web\narch: amd64\nhostname: web\nmemory: 256\nnet0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AB:CD:EF,ip=dhcp,type=veth\nostype: unmanaged\nrootfs: local:subvol-9000-disk-0,size=0T\nswap: 0\ntags: nexcage\nunprivileged: 1\nlxc.environment.runtime: A=1\nlxc.cgroup2.pids.max: 33\nlxc.mount.entry = /a b none bind 0 0\n\n[pve:pending]\nmemory: 512\n\n[snap1]\nhostname: old\n";

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/pve/nodes/n1/lxc")).unwrap();
        std::os::unix::fs::symlink("nodes/n1/lxc", d.path().join("etc/pve/lxc")).unwrap();
        d
    }

    #[test]
    fn roundtrip_is_identical() {
        for text in [PVE_FILE, "", "arch: amd64", "#only\n", "weird line\nmemory: 1\n\n\n"] {
            assert_eq!(PveConfig::parse(text).render(), text);
        }
    }

    #[test]
    fn parse_fields() {
        let c = PveConfig::parse(PVE_FILE);
        assert_eq!(c.get("memory"), Some("256"));
        assert_eq!(c.get("hostname"), Some("web"));
        assert_eq!(c.tags(), vec!["nexcage"]);
        assert_eq!(c.raw_lxc().len(), 3);
        assert_eq!(c.raw_lxc()[2], ("lxc.mount.entry".into(), "/a b none bind 0 0".into()));
        assert_eq!(parse_description(&c.description()).unwrap().oci_id, "web");
    }

    #[test]
    fn append_goes_before_sections() {
        let mut c = PveConfig::parse(PVE_FILE);
        c.push_raw_lxc("lxc.init.cmd", "/x");
        let out = c.render();
        assert!(
            out.contains("lxc.mount.entry = /a b none bind 0 0\nlxc.init.cmd: /x\n\n[pve:pending]\nmemory: 512\n"),
            "{out}"
        );
        // No raw lines yet: after the keys.
        let mut c = PveConfig::parse("#d\narch: amd64\nmemory: 5\n\n[pve:pending]\nswap: 1\n");
        c.push_raw_lxc("lxc.a", "1");
        assert_eq!(c.render(), "#d\narch: amd64\nmemory: 5\nlxc.a: 1\n\n[pve:pending]\nswap: 1\n");
        let mut c = PveConfig::parse("");
        c.push_raw_lxc("lxc.a", "1");
        assert_eq!(c.render(), "lxc.a: 1\n");
    }

    #[test]
    fn set_keeps_sorted_order() {
        let mut c = PveConfig::parse("#d\narch: amd64\nmemory: 5\nlxc.a: 1\n");
        c.set("hostname", "h");
        c.set("memory", "6");
        c.set("zzz", "1");
        c.set("aaa", "0");
        assert_eq!(c.render(), "#d\naaa: 0\narch: amd64\nhostname: h\nmemory: 6\nzzz: 1\nlxc.a: 1\n");
        let mut c = PveConfig::default();
        c.set("b", "1");
        c.set("a", "1");
        assert_eq!(c.render(), "a: 1\nb: 1\n");
    }

    #[test]
    fn description_encoding() {
        let mut c = PveConfig::parse("arch: amd64\n");
        c.set_description("a: b\nsecond % line\u{e9}");
        assert_eq!(c.render(), "#a%3A b\n#second % line%C3%A9\narch: amd64\n");
        assert_eq!(c.description(), "a: b\nsecond % line\u{e9}");
        assert_eq!(encode_text("x:\ty"), "x%3A%09y");
        assert_eq!(decode_text("x%3A%09y%zz%"), "x:\ty%zz%");
    }

    #[test]
    fn description_format_is_safe_for_user_data() {
        let bundle = PathBuf::from(OsString::from_vec(b"/srv/b dir/x:y\n%z\\\xff".to_vec()));
        let d = Description {
            oci_id: "a.b+c_d-e".into(),
            bundle: bundle.clone(),
            state_root: Some("/run/nexcage".into()),
            created: Some("2026-11-27T15:04:05.123456789Z".into()),
            boot: Some("0f4c8a6e-3b1d-4f5e-9a2b-7c6d5e4f3a2b".into()),
            vmid: Some(9000),
        };
        let text = describe_full(&d);
        assert_eq!(
            text,
            "nexcage OCI container: the nexcage-* lines below are read by nexcage, keep them\nnexcage-id: a.b+c_d-e\nnexcage-bundle: /srv/b\\x20dir/x:y\\x0a\\x25z\\x5c\\xff\nnexcage-root: /run/nexcage\nnexcage-created: 2026-11-27T15:04:05.123456789Z\nnexcage-boot: 0f4c8a6e-3b1d-4f5e-9a2b-7c6d5e4f3a2b\nnexcage-vmid: 9000\n"
        );
        assert_eq!(parse_description(&text), Some(d.clone()));
        // Through a PVE config file and back.
        let mut c = PveConfig::default();
        c.set_description(&text);
        let again = PveConfig::parse(&c.render());
        assert_eq!(parse_description(&again.description()), Some(d));
        // Through `pct config` (URL-encoded whole).
        let out = format!("description: {}\n", encode_text(&text).replace('\n', "%0A"));
        assert_eq!(
            parse_description(&crate::backend::lxc::pct::parse_config(&out).description()).unwrap().bundle,
            bundle
        );
        assert_eq!(describe("x", Path::new("/b")).lines().count(), 3);
        assert_eq!(parse_description("user text\nnexcage-id: x\n"), None);
    }

    #[test]
    fn raw_line_checks() {
        assert!(check_raw_line("lxc.cgroup2.pids.max", "3").is_ok());
        assert!(check_raw_line("lxc.mount.entry", "a\nlxc.rootfs.path: /").is_err());
        assert!(check_raw_line("lxc.rootfs.path", "/").is_err());
        assert!(check_raw_line("memory", "3").is_err());
        assert!(check_raw_line("lxc.A", "3").is_err());
    }

    #[test]
    fn append_under_lock_and_atomic() {
        let r = root();
        let p = conf_path(r.path(), 9000);
        std::fs::write(&p, PVE_FILE).unwrap();
        let ino_before = std::fs::metadata(&p).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
        // Hold the lock in another thread for 300 ms: the append must wait for it.
        let lock = lock_config(r.path(), 9000, Duration::from_secs(1)).unwrap();
        let root_path = r.path().to_path_buf();
        let t0 = Instant::now();
        let h = std::thread::spawn(move || {
            append_raw_lxc(&root_path, 9000, &[("lxc.init.cmd".into(), "/nexcage-init".into())]).unwrap();
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), PVE_FILE, "written while the lock was held");
        drop(lock);
        let done = h.join().unwrap();
        assert!(done - t0 >= Duration::from_millis(300));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("lxc.mount.entry = /a b none bind 0 0\nlxc.init.cmd: /nexcage-init\n\n[pve:pending]"));
        let ino_after = std::fs::metadata(&p).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
        assert_ne!(ino_before, ino_after, "replaced by rename, not rewritten in place");
        // The config really lives in nodes/n1/lxc (written through the symlink).
        assert!(r.path().join("etc/pve/nodes/n1/lxc/9000.conf").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(r.path().join("etc/pve/nodes/n1/lxc")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left");
    }

    #[test]
    fn append_times_out_and_reports_missing() {
        let r = root();
        std::fs::write(conf_path(r.path(), 9001), "arch: amd64\n").unwrap();
        let _held = lock_config(r.path(), 9001, Duration::from_secs(1)).unwrap();
        let file = open_lock_file(&lock_path(r.path(), 9001)).unwrap();
        assert!(flock_wait(file, Duration::from_millis(100)).is_none());
        let e = append_raw_lxc(r.path(), 9002, &[("lxc.a".into(), "1".into())]).unwrap_err();
        assert!(matches!(e, PveConfError::NotFound { .. }), "{e}");
        let e = append_raw_lxc(r.path(), 9001, &[("lxc.a".into(), "x\ny".into())]).unwrap_err();
        assert!(matches!(e, PveConfError::InvalidRaw { .. }), "{e}");
    }

    #[test]
    fn finds_tagged_containers() {
        let r = root();
        let write = |vmid: u32, text: &str| std::fs::write(conf_path(r.path(), vmid), text).unwrap();
        let mut c = PveConfig::default();
        c.set_description(&describe("web", Path::new("/b/web")));
        c.set("hostname", "web");
        c.set("tags", "db;nexcage");
        write(9000, &c.render());
        write(9001, "hostname: other\n");
        c.set("tags", "nexcage");
        c.set_description("no nexcage lines");
        write(9002, &c.render());
        std::fs::write(r.path().join("etc/pve/lxc/.9003.conf.tmp.1.0"), "tags: nexcage\n").unwrap();
        let found = nexcage_containers(r.path()).unwrap();
        assert_eq!(
            found,
            vec![TaggedContainer {
                vmid: 9000,
                oci_id: "web".into(),
                bundle: "/b/web".into(),
                state_root: None,
                created: None,
                boot: None,
                hostname: Some("web".into()),
                lock: None
            }]
        );
        assert_eq!(nexcage_containers(Path::new("/nonexistent")).unwrap(), vec![]);
    }
}

//! Reading an OCI bundle: its absolute path and what routing needs from config.json.
//! config.json is read and parsed once, here; backends that map the whole spec
//! (proxmox-lxc) take the parsed document ([`Bundle::config`]) instead of reading the
//! file again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub annotations: HashMap<String, String>,
    /// The rootfs directory (`root.path`, relative paths resolved against `dir`).
    pub rootfs: PathBuf,
    /// The configuration file that was read (`dir/config.json`, or crun's `--config`).
    pub config_path: PathBuf,
    /// The whole configuration document, parsed once (the fields above are checked views
    /// of it). Passthrough backends never look at it: the runtime reads the bundle.
    pub config: Document,
}

/// A JSON document parsed once: the tree, and the text it came from. The text is kept
/// only so that a typed view that does not fit says at which line and column, as a
/// parse of the text would (the tree has no positions).
#[derive(Debug, Clone)]
pub struct Document {
    value: serde_json::Value,
    text: Vec<u8>,
}

impl Document {
    pub fn parse(text: Vec<u8>) -> Result<Document, serde_json::Error> {
        let value = serde_json::from_slice(&text)?;
        Ok(Document { value, text })
    }

    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// The document as a `T`, from the tree. Errors name the JSON path; for them only,
    /// the text is read again, so that they also give the line and column.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
        serde_path_to_error::deserialize(&self.value)
            .or_else(|_| serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&self.text)))
    }
}

#[derive(Deserialize)]
struct Annotations {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    process: Option<Process>,
}

/// The shape of `process` fields every backend needs (types only; a wrong type is
/// reported with its JSON path here instead of by each runtime in its own way, or, for
/// crun, not at all).
#[derive(Deserialize)]
struct Process {
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    cwd: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    terminal: Option<bool>,
}

/// Linux's limit for one exec argument or environment string (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// `process.args` and `process.env` must fit the kernel's exec limits, or the program
/// cannot start (E2BIG, "Argument list too long"): refused at create, before any state
/// exists. Values are never quoted in the message (env values may be secrets).
fn check_exec_size(p: &Process, config: &Path) -> Result<()> {
    let mut total = 0usize;
    for (field, list) in [("args", &p.args), ("env", &p.env)] {
        for (i, s) in list.iter().flatten().enumerate() {
            if s.len() + 1 > MAX_ARG_STRLEN {
                bail!(
                    "invalid {}: process.{field}[{i}] is {} bytes, more than Linux accepts for one exec string ({MAX_ARG_STRLEN})",
                    config.display(),
                    s.len()
                );
            }
            total += s.len() + 1 + std::mem::size_of::<usize>();
        }
    }
    // SAFETY: sysconf has no preconditions.
    let arg_max = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    let arg_max = if arg_max > 0 { arg_max as usize } else { 2 << 20 };
    if total > arg_max {
        bail!(
            "invalid {}: process.args and process.env take {total} bytes, more than this host's exec limit (ARG_MAX {arg_max}): the program could not start",
            config.display()
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct Root {
    #[serde(default)]
    path: Option<PathBuf>,
}

impl Bundle {
    /// Open a bundle directory and read the annotations of its config.json.
    pub fn open(dir: &Path) -> Result<Bundle> {
        Bundle::open_with(dir, None)
    }

    /// As [`Bundle::open`], with crun's `--config FILE` naming the configuration file
    /// instead of config.json (relative to the bundle directory, as crun takes it).
    pub fn open_with(dir: &Path, config: Option<&Path>) -> Result<Bundle> {
        let dir = std::path::absolute(dir).with_context(|| format!("invalid bundle path {}", dir.display()))?;
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("bundle {} is not a directory (--bundle must name the bundle directory)", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("bundle {} does not exist (--bundle must name the bundle directory)", dir.display())
            }
            Err(e) => bail!("cannot access bundle {}: {e}", dir.display()),
        }
        let path = dir.join(config.unwrap_or(Path::new(CONFIG_FILE)));
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.is_some() => {
                bail!("configuration file {} (--config) does not exist", path.display())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("bundle {} has no {CONFIG_FILE} (create one with `nexcage spec`)", dir.display())
            }
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        };
        let config =
            Document::parse(text).map_err(|e| anyhow::anyhow!("invalid {}: not valid JSON: {e}", path.display()))?;
        let parsed: Annotations = config.typed().map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            if at.is_empty() || at == "." || at == "?" {
                anyhow::anyhow!("invalid {}: {inner}", path.display())
            } else {
                anyhow::anyhow!("invalid {}: at {at}: {inner}", path.display())
            }
        })?;
        let root = parsed.root.and_then(|r| r.path).filter(|p| !p.as_os_str().is_empty()).ok_or_else(|| {
            anyhow::anyhow!("invalid {}: root.path is missing: it must name the rootfs directory", path.display())
        })?;
        let rootfs = check_rootfs(&dir, &root)?;
        if let Some(p) = &parsed.process {
            check_exec_size(p, &path)?;
        }
        Ok(Bundle { dir, annotations: parsed.annotations.unwrap_or_default(), rootfs, config_path: path, config })
    }
}

/// The rootfs must be a directory. A relative `root.path` must stay inside the bundle
/// once symlinks are resolved (a bundle whose `rootfs` is a symlink to `/` or `/etc`
/// would otherwise make nexcage archive, or a runtime mount, host directories the engine
/// never chose); an absolute one is the engine's explicit choice (Podman and CRI-O put
/// rootfs outside the bundle) and is taken as given, as runc does.
fn check_rootfs(bundle: &Path, root: &Path) -> Result<PathBuf> {
    let p = if root.is_absolute() { root.to_path_buf() } else { bundle.join(root) };
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("rootfs {} (root.path) is not a directory", p.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("rootfs {} (root.path) does not exist", p.display())
        }
        Err(e) => bail!("cannot access rootfs {} (root.path): {e}", p.display()),
    }
    if !root.is_absolute() {
        let real = std::fs::canonicalize(&p).with_context(|| format!("cannot resolve rootfs {}", p.display()))?;
        let real_bundle =
            std::fs::canonicalize(bundle).with_context(|| format!("cannot resolve bundle {}", bundle.display()))?;
        if !real.starts_with(&real_bundle) {
            bail!(
                "rootfs {} (root.path {:?}) resolves to {}, outside the bundle: a relative root.path must stay in the bundle (give an absolute root.path if that directory is really meant)",
                p.display(),
                root.display().to_string(),
                real.display()
            );
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(CONFIG_FILE), config).unwrap();
        std::fs::create_dir(t.path().join("rootfs")).unwrap();
        t
    }

    #[test]
    fn reads_annotations() {
        let t = bundle_with(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"annotations":{"nexcage.backend":"crun","a":"b"}}"#,
        );
        let b = Bundle::open(t.path()).unwrap();
        assert_eq!(b.annotations["nexcage.backend"], "crun");
        assert!(b.dir.is_absolute());
        // The whole document is kept for the backends that map it.
        assert_eq!(b.config_path, b.dir.join(CONFIG_FILE));
        assert_eq!(b.config.value()["ociVersion"], "1.0.2");
        assert_eq!(b.config.value()["annotations"]["a"], "b");
    }

    #[test]
    fn no_annotations_is_fine() {
        let t = bundle_with(r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]}}"#);
        assert!(Bundle::open(t.path()).unwrap().annotations.is_empty());
    }

    #[test]
    fn errors_are_specific() {
        let e = Bundle::open(Path::new("/nonexistent-bundle")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-bundle does not exist"), "{e}");
        let t = tempfile::tempdir().unwrap();
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("has no config.json"), "{e}");
        let t = bundle_with("{ not json");
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("invalid") && e.contains("config.json") && e.contains("line 1"), "{e}");
        let t = bundle_with(r#"{"annotations":{"a":1}}"#);
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("at annotations.a"), "{e}");
        // The line and column too, although the typed view is made from the parsed tree.
        assert!(e.ends_with("expected a string at line 1 column 21"), "{e}");
        let t = bundle_with(r#"{"process":{}}"#);
        assert!(Bundle::open(t.path()).unwrap_err().to_string().contains("root.path is missing"));
        let t = bundle_with(r#"{"root":{"path":"nope"}}"#);
        assert!(Bundle::open(t.path()).unwrap_err().to_string().contains("(root.path) does not exist"));
    }

    #[test]
    fn process_types_and_exec_limits() {
        let t = bundle_with(r#"{"root":{"path":"rootfs"},"process":"x"}"#);
        assert!(Bundle::open(t.path()).unwrap_err().to_string().contains("at process: invalid type"));
        let t = bundle_with(r#"{"root":{"path":"rootfs"},"process":{"env":[1]}}"#);
        assert!(Bundle::open(t.path()).unwrap_err().to_string().contains("at process.env[0]"));
        let huge: Vec<String> = (0..30000).map(|i| format!("V{i}={}", "x".repeat(100))).collect();
        let t = bundle_with(&serde_json::json!({"root":{"path":"rootfs"},"process":{"env":huge}}).to_string());
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("more than this host's exec limit") && !e.contains("xxxx"), "{e}");
        let long = format!("A={}", "y".repeat(200_000));
        let t = bundle_with(&serde_json::json!({"root":{"path":"rootfs"},"process":{"env":[long]}}).to_string());
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("process.env[0] is 200002 bytes") && !e.contains("yyyy"), "{e}");
    }

    #[test]
    fn relative_rootfs_must_stay_in_the_bundle() {
        let t = bundle_with(r#"{"root":{"path":"link"}}"#);
        std::os::unix::fs::symlink("/etc", t.path().join("link")).unwrap();
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("resolves to /etc, outside the bundle"), "{e}");
        let t = bundle_with(r#"{"root":{"path":"../"}}"#);
        assert!(Bundle::open(t.path()).unwrap_err().to_string().contains("outside the bundle"));
        // Inside the bundle through a symlink: fine; absolute: the engine's choice.
        let t = bundle_with(r#"{"root":{"path":"inner"}}"#);
        std::os::unix::fs::symlink("rootfs", t.path().join("inner")).unwrap();
        Bundle::open(t.path()).unwrap();
        let t = bundle_with(r#"{"root":{"path":"/tmp"}}"#);
        assert_eq!(Bundle::open(t.path()).unwrap().rootfs, Path::new("/tmp"));
    }
}

//! nexcage configuration: which backends exist and how containers are routed to them.
//!
//! Lookup order: `$NEXCAGE_CONFIG`, then `/etc/nexcage/config.json`, then the built-in
//! default, which is the repository's `config.json` compiled in. Every problem is reported
//! with the file, the JSON path and what is wrong; an invalid configuration stops nexcage
//! before it does anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::route::RouteRule;

/// The configuration shipped in the repository, used when no file is found.
pub const BUILTIN: &str = include_str!("../config.json");
/// Environment variable naming the configuration file to use.
pub const ENV_CONFIG: &str = "NEXCAGE_CONFIG";
/// The host-wide configuration file.
pub const SYSTEM_CONFIG: &str = "/etc/nexcage/config.json";

#[derive(Debug, Clone)]
pub struct Config {
    /// Backend used when neither the `nexcage.backend` annotation nor a route decides.
    pub default_backend: String,
    /// Backends by name.
    pub backends: BTreeMap<String, BackendConfig>,
    /// Ordered routing rules; the first that matches wins.
    pub routes: Vec<RouteRule>,
    /// Where the configuration came from (not part of the file).
    pub source: ConfigSource,
    /// The routes compiled once, by validation (see [`Config::router`]).
    router: std::sync::OnceLock<crate::route::Router>,
}

/// The file's shape. Backends are read in a second step, by their `kind`, so that an
/// error inside a backend still names the exact JSON path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    default_backend: String,
    backends: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    routes: Vec<RouteRule>,
}

#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// An OCI runtime (crun, runc, ...) that nexcage passes containers through to.
    Oci(OciBackendConfig),
    /// Proxmox VE LXC containers driven with `pct`.
    ProxmoxLxc(LxcBackendConfig),
}

impl BackendConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Oci(_) => "oci",
            BackendConfig::ProxmoxLxc(_) => "proxmox-lxc",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OciBackendConfig {
    /// The runtime binary: a bare name is looked up in `$PATH`.
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LxcBackendConfig {
    /// The `pct` binary: a bare name is looked up in `$PATH`.
    #[serde(default = "default_pct")]
    pub pct: String,
    /// Proxmox storage for container root volumes; default: the first in storage.cfg
    /// with rootdir content that is enabled on this node (`storage::Storages::for_root`).
    #[serde(default)]
    pub storage: Option<String>,
    /// Proxmox storage (with `vztmpl` content) where rootfs templates are written.
    #[serde(default = "default_storage")]
    pub template_storage: String,
    /// Inclusive range of VMIDs nexcage may allocate.
    #[serde(default = "default_vmid_range")]
    pub vmid_range: [u32; 2],
    /// Create unprivileged containers unless the bundle asks otherwise.
    #[serde(default = "default_true")]
    pub unprivileged: bool,
    /// Default `net0` property string; `null` for no network.
    #[serde(default)]
    pub network: Option<String>,
    /// Directory under which Proxmox's files (`/etc/pve`, `/var/lib/vz`, `/var/lib/lxc`,
    /// `/run/lock/lxc`) live: `/` on a Proxmox host; tests point it at the pct
    /// emulator's `PCT_EMULATOR_ROOT`.
    #[serde(default = "default_pve_root")]
    pub pve_root: PathBuf,
    /// The static in-container init; default: `nexcage-init` next to the nexcage binary.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Host directories (and everything below them) that bundles may bind-mount.
    #[serde(default)]
    pub allowed_host_mounts: Vec<PathBuf>,
    /// Where engines keep each container's own files (resolv.conf, hosts, hostname,
    /// `.containerenv`, the `/dev/shm` directory) in a directory named after the
    /// container's or its pod sandbox's id: such a bind source is allowed without
    /// `allowed_host_mounts` (docs/configuration.md).
    #[serde(default = "default_engine_dirs")]
    pub engine_dirs: Vec<PathBuf>,
    /// Where a container's root filesystem lives (docs/proxmox-lxc.md, "Root filesystem").
    #[serde(default)]
    pub rootfs: RootfsMode,
}

/// `rootfs` of the proxmox-lxc backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsMode {
    /// The bundle's rootfs itself is the CT's root (`rootfs: <path>`), where Proxmox VE
    /// can mount it so: privileged CTs, and unprivileged CTs where mount points take an
    /// `idmap` (Proxmox VE 9); elsewhere a copy.
    #[default]
    InPlace,
    /// Always a copy: a template of the rootfs, extracted by `pct create` into a volume.
    Copy,
}

fn default_pct() -> String {
    "pct".into()
}
fn default_storage() -> String {
    "local".into()
}
/// Podman's storage and run roots, Docker's per-container directories, the CRI
/// plugin's per-sandbox directories (containerd 1.x and 2.x).
fn default_engine_dirs() -> Vec<PathBuf> {
    [
        "/var/lib/containers/storage/overlay-containers",
        "/run/containers/storage/overlay-containers",
        "/var/lib/docker/containers",
        "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes",
        "/run/containerd/io.containerd.grpc.v1.cri/sandboxes",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}
fn default_vmid_range() -> [u32; 2] {
    [9000, 9999]
}
fn default_true() -> bool {
    true
}
fn default_pve_root() -> PathBuf {
    PathBuf::from("/")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConfigSource {
    #[default]
    Builtin,
    File(PathBuf),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Builtin => write!(f, "built-in default configuration"),
            ConfigSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A configuration problem: where (file, JSON path) and what.
#[derive(Debug, thiserror::Error)]
#[error("invalid nexcage configuration {source_name}: {location}{problem}")]
pub struct ConfigError {
    pub source_name: String,
    /// `at <json path>: ` or empty.
    pub location: String,
    pub problem: String,
}

impl ConfigError {
    fn new(source: &ConfigSource, path: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            source_name: source.to_string(),
            location: if path.is_empty() || path == "." { String::new() } else { format!("at {path}: ") },
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Load the configuration from the first place that has one.
    pub fn load() -> Result<Config, ConfigError> {
        if let Some(p) = std::env::var_os(ENV_CONFIG).filter(|v| !v.is_empty()) {
            return Config::from_file(Path::new(&p));
        }
        let system = Path::new(SYSTEM_CONFIG);
        if system.exists() {
            return Config::from_file(system);
        }
        Config::parse(BUILTIN, ConfigSource::Builtin)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let source = ConfigSource::File(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(" (unset {ENV_CONFIG} or create the file)")
            } else {
                String::new()
            };
            ConfigError::new(&source, "", format!("cannot read file: {e}{hint}"))
        })?;
        Config::parse(&text, source)
    }

    /// Parse and validate configuration text.
    pub fn parse(text: &str, source: ConfigSource) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: ConfigFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let problem = if inner.is_syntax() || inner.is_eof() {
                format!("not valid JSON: {inner}")
            } else if !text.trim_start().starts_with('{') {
                "must be a JSON object ({\"default_backend\": ..., \"backends\": {...}, \"routes\": [...]})".to_string()
            } else {
                inner.to_string()
            };
            ConfigError::new(&source, &path, problem)
        })?;
        let mut backends = BTreeMap::new();
        for (name, value) in file.backends {
            backends.insert(name.clone(), parse_backend(&source, &name, value)?);
        }
        let config = Config {
            default_backend: file.default_backend,
            backends,
            routes: file.routes,
            source,
            router: std::sync::OnceLock::new(),
        };
        config.validate()?;
        Ok(config)
    }

    fn err(&self, path: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.source, path, problem)
    }

    fn known_backends(&self) -> String {
        self.backends.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }

    /// Checks beyond the JSON shape: references, ranges, patterns.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(self.err("backends", "no backend defined; define at least one"));
        }
        for (name, backend) in &self.backends {
            let path = format!("backends.{name}");
            if !valid_backend_name(name) {
                return Err(self.err(&path, format!("backend name {name:?} must be letters, digits, '_', '-' or '.'")));
            }
            match backend {
                BackendConfig::Oci(oci) => {
                    if oci.path.is_empty() {
                        return Err(self.err(&format!("{path}.path"), "must name the runtime binary"));
                    }
                }
                BackendConfig::ProxmoxLxc(lxc) => {
                    let [lo, hi] = lxc.vmid_range;
                    if !(100..=999_999_999).contains(&lo) || !(100..=999_999_999).contains(&hi) {
                        return Err(self.err(
                            &format!("{path}.vmid_range"),
                            format!("[{lo}, {hi}] is outside Proxmox's VMID range 100..999999999"),
                        ));
                    }
                    if lo > hi {
                        return Err(self.err(
                            &format!("{path}.vmid_range"),
                            format!("first VMID {lo} is greater than last VMID {hi}"),
                        ));
                    }
                    if lxc.pct.is_empty() {
                        return Err(self.err(&format!("{path}.pct"), "must name the pct binary"));
                    }
                    let fields = [("storage", lxc.storage.as_ref()), ("template_storage", Some(&lxc.template_storage))];
                    for (field, value) in fields.into_iter().filter_map(|(f, v)| Some((f, v?))) {
                        if value.is_empty() || !valid_backend_name(value) {
                            return Err(
                                self.err(&format!("{path}.{field}"), format!("{value:?} is not a Proxmox storage id"))
                            );
                        }
                    }
                    if !lxc.pve_root.is_absolute() {
                        return Err(self.err(&format!("{path}.pve_root"), "must be an absolute path"));
                    }
                    for (i, p) in lxc.allowed_host_mounts.iter().enumerate() {
                        if !p.is_absolute() {
                            return Err(
                                self.err(&format!("{path}.allowed_host_mounts[{i}]"), "must be an absolute path")
                            );
                        }
                    }
                    for (i, p) in lxc.engine_dirs.iter().enumerate() {
                        if !p.is_absolute() {
                            return Err(self.err(&format!("{path}.engine_dirs[{i}]"), "must be an absolute path"));
                        }
                    }
                }
            }
        }
        if !self.backends.contains_key(&self.default_backend) {
            return Err(self.err(
                "default_backend",
                format!("unknown backend {:?} (defined: {})", self.default_backend, self.known_backends()),
            ));
        }
        for (i, rule) in self.routes.iter().enumerate() {
            if !self.backends.contains_key(&rule.backend) {
                return Err(self.err(
                    &format!("routes[{i}].backend"),
                    format!("unknown backend {:?} (defined: {})", rule.backend, self.known_backends()),
                ));
            }
            if !rule.has_condition() {
                return Err(self.err(
                    &format!("routes[{i}]"),
                    "rule has no condition (id, id_regex, annotation or bundle); use default_backend instead",
                ));
            }
        }
        // Patterns compile? The router reports the exact rule and field. Kept for routing.
        let names: Vec<String> = self.backends.keys().cloned().collect();
        let router = crate::route::Router::new(&self.routes, &self.default_backend, names)
            .map_err(|e| self.err(&e.path, e.message))?;
        let _ = self.router.set(router);
        Ok(())
    }

    /// The compiled routing rules (compiled once, when the configuration was validated).
    pub fn router(&self) -> &crate::route::Router {
        self.router.get().expect("a parsed configuration has been validated")
    }

    pub fn backend(&self, name: &str) -> Option<&BackendConfig> {
        self.backends.get(name)
    }
}

fn parse_backend(
    source: &ConfigSource,
    name: &str,
    mut value: serde_json::Value,
) -> Result<BackendConfig, ConfigError> {
    let path = format!("backends.{name}");
    let Some(obj) = value.as_object_mut() else {
        return Err(ConfigError::new(source, &path, "must be an object with a \"kind\""));
    };
    let kind = match obj.remove("kind") {
        Some(serde_json::Value::String(k)) => k,
        Some(_) => return Err(ConfigError::new(source, &format!("{path}.kind"), "must be a string")),
        None => return Err(ConfigError::new(source, &path, "missing field `kind` (\"oci\" or \"proxmox-lxc\")")),
    };
    fn typed<T: serde::de::DeserializeOwned>(
        source: &ConfigSource,
        path: &str,
        value: serde_json::Value,
    ) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let at = if inner.is_empty() || inner == "." { path.to_string() } else { format!("{path}.{inner}") };
            ConfigError::new(source, &at, e.into_inner().to_string())
        })
    }
    match kind.as_str() {
        "oci" => Ok(BackendConfig::Oci(typed(source, &path, value)?)),
        "proxmox-lxc" => Ok(BackendConfig::ProxmoxLxc(typed(source, &path, value)?)),
        other => Err(ConfigError::new(
            source,
            &format!("{path}.kind"),
            format!("unknown backend kind {other:?}: use \"oci\" or \"proxmox-lxc\""),
        )),
    }
}

fn valid_backend_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, ConfigSource::File("/etc/nexcage/config.json".into()))
    }

    #[test]
    fn builtin_config_is_valid_and_has_required_backends() {
        let c = Config::parse(BUILTIN, ConfigSource::Builtin).unwrap();
        assert_eq!(c.default_backend, "lxc");
        assert!(matches!(c.backend("crun"), Some(BackendConfig::Oci(o)) if o.path == "crun"));
        assert!(matches!(c.backend("runc"), Some(BackendConfig::Oci(o)) if o.path == "runc"));
        match c.backend("lxc") {
            Some(BackendConfig::ProxmoxLxc(l)) => {
                assert_eq!(l.vmid_range, [9000, 9999]);
                assert!(l.unprivileged);
                assert_eq!(l.pve_root, Path::new("/"));
            }
            other => panic!("lxc backend: {other:?}"),
        }
        assert_eq!(c.routes.len(), 2);
    }

    #[test]
    fn syntax_error_names_file_and_problem() {
        let e = parse("{ \"default_backend\": ").unwrap_err().to_string();
        assert!(e.contains("/etc/nexcage/config.json"), "{e}");
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn wrong_type_names_json_path() {
        let e = parse(r#"{"default_backend":"l","backends":{"l":{"kind":"proxmox-lxc","vmid_range":[1,"x"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at backends.l.vmid_range[1]"), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected_with_path() {
        let e = parse(r#"{"default_backend":"c","backends":{"c":{"kind":"oci","path":"crun","pth":1}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("backends.c"), "{e}");
        assert!(e.contains("unknown field `pth`"), "{e}");
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let e =
            parse(r#"{"default_backend":"c","backends":{"c":{"kind":"docker","path":"x"}}}"#).unwrap_err().to_string();
        assert!(e.contains("at backends.c"), "{e}");
        assert!(e.contains("docker"), "{e}");
    }

    #[test]
    fn default_backend_must_exist() {
        let e =
            parse(r#"{"default_backend":"x","backends":{"c":{"kind":"oci","path":"crun"}}}"#).unwrap_err().to_string();
        assert!(e.contains("at default_backend: unknown backend \"x\" (defined: c)"), "{e}");
    }

    #[test]
    fn route_backend_must_exist() {
        let e = parse(
            r#"{"default_backend":"c","backends":{"c":{"kind":"oci","path":"crun"}},
                "routes":[{"id":"a*","backend":"c"},{"id":"b*","backend":"nope"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at routes[1].backend: unknown backend \"nope\""), "{e}");
    }

    #[test]
    fn route_without_condition_is_rejected() {
        let e = parse(
            r#"{"default_backend":"c","backends":{"c":{"kind":"oci","path":"crun"}},"routes":[{"backend":"c"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at routes[0]: rule has no condition"), "{e}");
    }

    #[test]
    fn bad_regex_is_reported_with_path() {
        let e = parse(
            r#"{"default_backend":"c","backends":{"c":{"kind":"oci","path":"crun"}},"routes":[{"id_regex":"(","backend":"c"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at routes[0].id_regex"), "{e}");
    }

    #[test]
    fn vmid_range_is_checked() {
        for (range, want) in [("[50,60]", "outside"), ("[9000,100]", "greater than")] {
            let text = format!(
                r#"{{"default_backend":"l","backends":{{"l":{{"kind":"proxmox-lxc","vmid_range":{range}}}}}}}"#
            );
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains("at backends.l.vmid_range") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn missing_file_says_how_to_fix() {
        let e = Config::from_file(Path::new("/nonexistent/nexcage.json")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/nexcage.json") && e.contains("cannot read file"), "{e}");
    }

    #[test]
    fn lxc_defaults_apply() {
        let c = parse(r#"{"default_backend":"l","backends":{"l":{"kind":"proxmox-lxc"}}}"#).unwrap();
        let Some(BackendConfig::ProxmoxLxc(l)) = c.backend("l") else { panic!() };
        assert_eq!(l.pct, "pct");
        assert_eq!(l.storage, None);
        assert_eq!(l.template_storage, "local");
        assert!(l.network.is_none());
    }
}

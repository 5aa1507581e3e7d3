//! Routing: which backend owns a container. Pure: no I/O, decided once at `create`.
//!
//! Order: the bundle annotation `nexcage.backend` always wins; then the global flag
//! `--backend` (one engine runtime name per backend, for engines that cannot set
//! annotations, e.g. Docker 20.10's daemon.json `runtimeArgs`); then the configured rules
//! in order (first match wins); then `default_backend`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobMatcher};
use regex::Regex;

use serde::Deserialize;

/// The annotation that selects a backend by name for one container.
pub const BACKEND_ANNOTATION: &str = "nexcage.backend";

/// What routing looks at.
pub struct RouteInput<'a> {
    pub id: &'a str,
    pub annotations: &'a HashMap<String, String>,
    pub bundle: &'a Path,
    /// The global flag `--backend NAME`, if given.
    pub flag: Option<&'a str>,
}

/// The chosen backend and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub backend: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Annotation,
    Flag,
    Rule { index: usize, name: Option<String> },
    Default,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Annotation => {
                write!(f, "backend {}: chosen by the annotation {BACKEND_ANNOTATION}={}", self.backend, self.backend)
            }
            Reason::Flag => write!(f, "backend {}: chosen by the global flag --backend {}", self.backend, self.backend),
            Reason::Rule { index, name } => {
                write!(f, "backend {}: chosen by routes[{index}]", self.backend)?;
                if let Some(n) = name {
                    write!(f, " ({n})")?;
                }
                Ok(())
            }
            Reason::Default => write!(f, "backend {}: no rule matched, default_backend", self.backend),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    name: Option<String>,
    id: Option<GlobMatcher>,
    id_regex: Option<Regex>,
    annotations: Vec<(String, GlobMatcher)>,
    bundle: Option<GlobMatcher>,
    backend: String,
}

impl CompiledRule {
    fn matches(&self, input: &RouteInput) -> bool {
        if let Some(g) = &self.id {
            if !g.is_match(input.id) {
                return false;
            }
        }
        if let Some(r) = &self.id_regex {
            if !r.is_match(input.id) {
                return false;
            }
        }
        for (key, glob) in &self.annotations {
            match input.annotations.get(key) {
                Some(v) if glob.is_match(v.as_str()) => {}
                _ => return false,
            }
        }
        if let Some(g) = &self.bundle {
            if !g.is_match(input.bundle) {
                return false;
            }
        }
        true
    }
}

/// Compiled routing rules of one configuration.
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<CompiledRule>,
    default_backend: String,
    backends: Vec<String>,
}

fn text_glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(Glob::new(pattern)?.compile_matcher())
}

fn path_glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern).literal_separator(true).build()?.compile_matcher())
}

/// One routing rule. Every condition given must match; a rule needs at least one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Free text shown by `nexcage route`.
    #[serde(default)]
    pub name: Option<String>,
    /// Glob on the container id (`*`, `?`, `[...]`).
    #[serde(default)]
    pub id: Option<String>,
    /// Regular expression on the container id (unanchored unless you anchor it).
    #[serde(default)]
    pub id_regex: Option<String>,
    /// Annotations of the bundle's config.json: key exact, value glob.
    #[serde(default)]
    pub annotation: BTreeMap<String, String>,
    /// Glob on the absolute bundle path (`*` stays within one path component, `**` crosses).
    #[serde(default)]
    pub bundle: Option<String>,
    /// Backend chosen when the rule matches.
    pub backend: String,
}

impl RouteRule {
    pub fn has_condition(&self) -> bool {
        self.id.is_some() || self.id_regex.is_some() || !self.annotation.is_empty() || self.bundle.is_some()
    }
}

/// A pattern of a rule that does not compile: its JSON path in the configuration
/// (`routes[2].id_regex`) and why. The configuration turns it into its own error.
#[derive(Debug)]
pub struct RuleError {
    pub path: String,
    pub message: String,
}

impl Router {
    /// Compile the rules of a configuration (`routes`, its `default_backend`, the names of
    /// its backends).
    pub fn new(routes: &[RouteRule], default_backend: &str, backends: Vec<String>) -> Result<Router, RuleError> {
        let mut rules = Vec::with_capacity(routes.len());
        for (i, r) in routes.iter().enumerate() {
            let bad = |field: &str, e: &dyn fmt::Display| RuleError {
                path: format!("routes[{i}].{field}"),
                message: e.to_string(),
            };
            let id = r.id.as_deref().map(text_glob).transpose().map_err(|e| bad("id", &e))?;
            let id_regex = r.id_regex.as_deref().map(Regex::new).transpose().map_err(|e| bad("id_regex", &e))?;
            let mut annotations = Vec::new();
            for (k, v) in &r.annotation {
                let g = text_glob(v).map_err(|e| bad(&format!("annotation.{k}"), &e))?;
                annotations.push((k.clone(), g));
            }
            let bundle = r.bundle.as_deref().map(path_glob).transpose().map_err(|e| bad("bundle", &e))?;
            rules.push(CompiledRule {
                name: r.name.clone(),
                id,
                id_regex,
                annotations,
                bundle,
                backend: r.backend.clone(),
            });
        }
        Ok(Router { rules, default_backend: default_backend.to_string(), backends })
    }

    /// Decide the backend. Errors only for an annotation or flag naming an unknown backend.
    pub fn route(&self, input: &RouteInput) -> Result<Decision, String> {
        let named = match (input.annotations.get(BACKEND_ANNOTATION), input.flag) {
            (Some(name), _) => Some((name.as_str(), Reason::Annotation, format!("annotation {BACKEND_ANNOTATION}"))),
            (None, Some(name)) => Some((name, Reason::Flag, "the global flag --backend".to_string())),
            (None, None) => None,
        };
        if let Some((name, reason, source)) = named {
            if !self.backends.iter().any(|b| b == name) {
                return Err(format!(
                    "unknown backend {name:?} in {source} (defined: {}); name one of them or define it under \
                     \"backends\" in the configuration",
                    self.backends.join(", ")
                ));
            }
            return Ok(Decision { backend: name.to_string(), reason });
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.matches(input) {
                return Ok(Decision {
                    backend: rule.backend.clone(),
                    reason: Reason::Rule { index, name: rule.name.clone() },
                });
            }
        }
        Ok(Decision { backend: self.default_backend.clone(), reason: Reason::Default })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Test-only: the rules come from configuration text, as users write them.
    use crate::config::{Config, ConfigSource, BUILTIN};

    fn router(text: &str) -> Router {
        let c = Config::parse(text, ConfigSource::Builtin).unwrap();
        Router::new(&c.routes, &c.default_backend, c.backends.keys().cloned().collect()).unwrap()
    }

    fn decide(r: &Router, id: &str, ann: &[(&str, &str)], bundle: &str) -> Result<Decision, String> {
        let annotations: HashMap<String, String> = ann.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        r.route(&RouteInput { id, annotations: &annotations, bundle: Path::new(bundle), flag: None })
    }

    const RULES: &str = r#"{
      "default_backend": "lxc",
      "backends": { "crun": {"kind":"oci","path":"crun"}, "runc": {"kind":"oci","path":"runc"},
                    "lxc": {"kind":"proxmox-lxc"} },
      "routes": [
        { "name": "sandboxes", "annotation": {"io.kubernetes.cri.container-type": "sandbox"}, "backend": "crun" },
        { "id": "kube-ovn-*", "backend": "crun" },
        { "id_regex": "^cilium-[0-9]+$", "backend": "runc" },
        { "bundle": "/var/lib/podman/*/userdata", "backend": "runc" },
        { "id": "both-*", "annotation": {"tier": "db*"}, "backend": "runc" }
      ]
    }"#;

    #[test]
    fn the_backend_flag_beats_rules_and_default_but_not_the_annotation() {
        let r = router(RULES);
        let ann: HashMap<String, String> = HashMap::new();
        let flagged = |id, ann: &HashMap<String, String>, flag| {
            r.route(&RouteInput { id, annotations: ann, bundle: Path::new("/b"), flag: Some(flag) })
        };
        // kube-ovn-* is a rule for crun; the flag wins over it and over the default.
        let d = flagged("kube-ovn-1", &ann, "runc").unwrap();
        assert_eq!(d, Decision { backend: "runc".into(), reason: Reason::Flag });
        assert_eq!(d.to_string(), "backend runc: chosen by the global flag --backend runc");
        let with_ann: HashMap<String, String> = [(BACKEND_ANNOTATION.to_string(), "crun".to_string())].into();
        assert_eq!(flagged("x", &with_ann, "runc").unwrap().reason, Reason::Annotation);
        let e = flagged("x", &ann, "kvm").unwrap_err();
        assert!(e.contains("\"kvm\"") && e.contains("--backend") && e.contains("crun, lxc, runc"), "{e}");
    }

    #[test]
    fn default_when_nothing_matches() {
        let r = router(RULES);
        let d = decide(&r, "web", &[], "/b").unwrap();
        assert_eq!(d, Decision { backend: "lxc".into(), reason: Reason::Default });
    }

    #[test]
    fn annotation_rule_key_exact_value_glob() {
        let r = router(RULES);
        let d = decide(&r, "x", &[("io.kubernetes.cri.container-type", "sandbox")], "/b").unwrap();
        assert_eq!(d.backend, "crun");
        assert_eq!(d.reason, Reason::Rule { index: 0, name: Some("sandboxes".into()) });
        assert_eq!(decide(&r, "x", &[("io.kubernetes.cri.container-type", "container")], "/b").unwrap().backend, "lxc");
        assert_eq!(decide(&r, "x", &[("io.kubernetes.cri.container-typeX", "sandbox")], "/b").unwrap().backend, "lxc");
    }

    #[test]
    fn id_glob_and_regex() {
        let r = router(RULES);
        assert_eq!(decide(&r, "kube-ovn-cni-abc", &[], "/b").unwrap().backend, "crun");
        assert_eq!(decide(&r, "xkube-ovn-", &[], "/b").unwrap().backend, "lxc");
        assert_eq!(decide(&r, "cilium-12", &[], "/b").unwrap().reason, Reason::Rule { index: 2, name: None });
        assert_eq!(decide(&r, "cilium-12a", &[], "/b").unwrap().backend, "lxc");
    }

    #[test]
    fn bundle_glob_star_stays_in_component() {
        let r = router(RULES);
        assert_eq!(decide(&r, "c", &[], "/var/lib/podman/abc/userdata").unwrap().backend, "runc");
        assert_eq!(decide(&r, "c", &[], "/var/lib/podman/a/b/userdata").unwrap().backend, "lxc");
    }

    #[test]
    fn all_conditions_of_a_rule_must_match() {
        let r = router(RULES);
        assert_eq!(decide(&r, "both-1", &[("tier", "dbmain")], "/b").unwrap().backend, "runc");
        assert_eq!(decide(&r, "both-1", &[("tier", "web")], "/b").unwrap().backend, "lxc");
        assert_eq!(decide(&r, "other", &[("tier", "dbmain")], "/b").unwrap().backend, "lxc");
    }

    #[test]
    fn first_match_wins() {
        let r = router(RULES);
        // Matches rule 0 (annotation) and rule 1 (id): rule 0 wins.
        let d = decide(&r, "kube-ovn-x", &[("io.kubernetes.cri.container-type", "sandbox")], "/b").unwrap();
        assert_eq!(d.reason, Reason::Rule { index: 0, name: Some("sandboxes".into()) });
    }

    #[test]
    fn backend_annotation_always_wins() {
        let r = router(RULES);
        let d = decide(&r, "kube-ovn-x", &[(BACKEND_ANNOTATION, "runc")], "/b").unwrap();
        assert_eq!(d, Decision { backend: "runc".into(), reason: Reason::Annotation });
    }

    #[test]
    fn backend_annotation_unknown_is_an_error() {
        let r = router(RULES);
        let e = decide(&r, "x", &[(BACKEND_ANNOTATION, "docker")], "/b").unwrap_err();
        assert!(e.contains("unknown backend \"docker\"") && e.contains("crun, lxc, runc"), "{e}");
    }

    #[test]
    fn builtin_routes_sandboxes_to_crun() {
        let r = router(BUILTIN);
        let d = decide(&r, "abc", &[("io.kubernetes.cri.container-type", "sandbox")], "/b").unwrap();
        assert_eq!(d.backend, "crun");
        assert_eq!(decide(&r, "abc", &[], "/b").unwrap().backend, "lxc");
    }

    #[test]
    fn explanation_text() {
        let r = router(RULES);
        assert_eq!(decide(&r, "kube-ovn-1", &[], "/b").unwrap().to_string(), "backend crun: chosen by routes[1]");
        assert_eq!(
            decide(&r, "x", &[("io.kubernetes.cri.container-type", "sandbox")], "/b").unwrap().to_string(),
            "backend crun: chosen by routes[0] (sandboxes)"
        );
        assert_eq!(decide(&r, "x", &[], "/b").unwrap().to_string(), "backend lxc: no rule matched, default_backend");
    }
}

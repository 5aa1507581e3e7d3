//! `__generate` (hidden): files derived from the clap definitions and the built-in
//! configuration, written at packaging time (`hack/package`) so they never drift from the
//! binary that ships with them.
//!
//! - `completions bash|zsh|fish`: clap_complete script on stdout.
//! - `man [--dir DIR]`: clap_mangen page `nexcage.8` on stdout, or with `--dir` the main
//!   page plus `nexcage-<command>.8` for every visible command.
//! - `config --init PATH`: the built-in config.json with `init` set for proxmox-lxc backends.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{doc_command, CompletionShell, Generate};
use crate::config::{Config, ConfigSource, BUILTIN};

/// Man section: nexcage is run by root and by engines (system administration).
const SECTION: &str = "8";

pub fn generate(what: &Generate) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match what {
        Generate::Completions { shell } => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut doc_command(), "nexcage", &mut out);
        }
        Generate::Man { dir: None } => out.write_all(&man_pages()?.remove(0).1)?,
        Generate::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, page) in man_pages()? {
                let path = dir.join(&name);
                std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(out, "{}", path.display())?;
            }
        }
        Generate::Config { init } => out.write_all(packaged_config(init)?.as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}

/// `(file name, roff)` of the main page, then one page per visible command.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = doc_command();
    cmd.build();
    let mut pages = vec![("nexcage.8".to_string(), render(cmd.clone())?)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap names are &'static str (no "string" feature); this runs once per page.
        let name: &'static str = Box::leak(format!("nexcage-{}", sub.get_name()).into_boxed_str());
        let page = sub.clone().name(name).bin_name(format!("nexcage {}", sub.get_name()));
        pages.push((format!("{name}.{SECTION}"), render(page)?));
    }
    Ok(pages)
}

fn render(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(SECTION)
        .manual("nexcage")
        .source(format!("nexcage {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)?;
    Ok(buf)
}

/// The built-in configuration with `init` set in every proxmox-lxc backend: packages
/// install nexcage-init outside `/usr/bin`, where the backend would not look by itself.
pub fn packaged_config(init: &Path) -> Result<String> {
    let mut doc: serde_json::Value = serde_json::from_str(BUILTIN)?;
    if let Some(backends) = doc.get_mut("backends").and_then(|b| b.as_object_mut()) {
        for backend in backends.values_mut() {
            if backend.get("kind").and_then(|k| k.as_str()) == Some("proxmox-lxc") {
                backend["init"] = init.to_string_lossy().into_owned().into();
            }
        }
    }
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    Config::parse(&text, ConfigSource::Builtin).context("the packaged configuration would be invalid")?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_visible_command_and_the_global_flags() {
        let pages = man_pages().unwrap();
        assert_eq!(pages[0].0, "nexcage.8");
        let main = String::from_utf8(pages[0].1.clone()).unwrap();
        for flag in ["root", "log\\-format", "systemd\\-cgroup", "doctor"] {
            assert!(main.contains(flag), "nexcage.8 lacks {flag}");
        }
        assert!(!main.contains("__generate"), "hidden command documented");
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for n in ["nexcage-create.8", "nexcage-doctor.8", "nexcage-list.8", "nexcage-route.8"] {
            assert!(names.contains(&n), "{n} missing: {names:?}");
        }
        let create = String::from_utf8(pages.iter().find(|(n, _)| n == "nexcage-create.8").unwrap().1.clone()).unwrap();
        assert!(create.contains("console\\-socket"), "{create}");
    }

    #[test]
    fn completions_know_commands_and_global_flags() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut doc_command(), "nexcage", &mut buf);
            let text = String::from_utf8(buf).unwrap();
            for word in ["doctor", "create", "console-socket", "cgroup-manager", "log-format"] {
                assert!(text.contains(word), "{shell}: completion lacks {word}");
            }
        }
    }

    #[test]
    fn packaged_config_sets_init_only_for_proxmox_lxc() {
        let text = packaged_config(Path::new("/usr/lib/nexcage/nexcage-init")).unwrap();
        let c = Config::parse(&text, ConfigSource::Builtin).unwrap();
        for (name, b) in &c.backends {
            match b {
                crate::config::BackendConfig::ProxmoxLxc(l) => {
                    assert_eq!(l.init.as_deref(), Some(Path::new("/usr/lib/nexcage/nexcage-init")), "{name}")
                }
                crate::config::BackendConfig::Oci(_) => {}
            }
        }
        assert_eq!(c.routes.len(), Config::parse(BUILTIN, ConfigSource::Builtin).unwrap().routes.len());
    }
}

//! `checkpoint` and `restore` (CRIU): passed through to oci backends. `restore` creates a
//! container, so it is routed and recorded like `create`; a restore routed to
//! proxmox-lxc is refused before anything is made (create.rs).

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::create::{create, Source};
use super::simple::with_backend;
use super::Ctx;
use crate::backend::Launch;
use crate::cli::CreateArgs;

fn last_word_id(args: &[String], command: &str) -> Result<String> {
    match args.last() {
        Some(id) if !id.starts_with('-') => Ok(id.clone()),
        _ => bail!("{command}: the container id must be the last argument"),
    }
}

pub fn checkpoint(ctx: &Ctx, args: &[String]) -> Result<i32> {
    let id = last_word_id(args, "checkpoint")?;
    with_backend(ctx, &id, |b, r| b.checkpoint(ctx, r))
}

/// Value of `-b DIR`, `--bundle DIR` or `--bundle=DIR` among restore's arguments.
fn bundle_of(args: &[String]) -> PathBuf {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-b" || a == "--bundle" || a == "-bundle" {
            if let Some(v) = it.next() {
                return PathBuf::from(v);
            }
        } else if let Some(v) = a.strip_prefix("--bundle=").or_else(|| a.strip_prefix("-b=")) {
            return PathBuf::from(v);
        }
    }
    PathBuf::from(".")
}

pub fn restore(ctx: &Ctx, args: &[String]) -> Result<i32> {
    let id = last_word_id(args, "restore")?;
    let detach = args.iter().any(|a| a == "-d" || a == "--detach");
    let create_args = CreateArgs {
        bundle: bundle_of(args),
        pid_file: None,
        console_socket: None,
        pidfd_socket: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        config: None,
        no_subreaper: false,
        id,
    };
    create(ctx, &create_args, Launch::run(detach), Source::Checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn restore_words() {
        assert_eq!(bundle_of(&s(&["--image-path", "/i", "-b", "/bb", "c"])), PathBuf::from("/bb"));
        assert_eq!(bundle_of(&s(&["--bundle=/x", "c"])), PathBuf::from("/x"));
        assert_eq!(bundle_of(&s(&["c"])), PathBuf::from("."));
        assert_eq!(last_word_id(&s(&["-d", "c1"]), "restore").unwrap(), "c1");
        assert!(last_word_id(&s(&["--detach"]), "restore").is_err());
    }
}

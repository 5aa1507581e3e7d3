//! crun's `kill --regex` and `delete --regex`: the container id is a regular expression
//! (matched anywhere in the id, as crun's POSIX `regexec` does); the command runs once
//! per matching container, in id order, as if it had been given that id. Passthrough
//! runtimes get the caller's words with the id in place of the expression and without
//! the flag. No match is not an error (crun: exit 0).

use std::ffi::OsString;

use anyhow::{anyhow, Result};

use super::Ctx;
use crate::state::Store;

pub fn for_each(ctx: &Ctx, pattern: &str, mut f: impl FnMut(&Ctx, &str) -> Result<i32>) -> Result<i32> {
    let re =
        regex::Regex::new(pattern).map_err(|e| anyhow!("invalid regular expression {pattern:?} (--regex): {e}"))?;
    let mut status = 0;
    for id in ctx.store.ids()?.into_iter().filter(|id| re.is_match(id)) {
        let one = Ctx {
            globals: ctx.globals.clone(),
            words: words_for(&ctx.words, pattern, &id),
            store: Store::new(ctx.store.root()),
            many: true,
        };
        match f(&one, &id) {
            Ok(0) => {}
            Ok(code) => status = code,
            Err(e) => {
                log::error!("{id}: {e:#}");
                status = 1;
            }
        }
    }
    Ok(status)
}

/// The caller's words for one container: `-r`/`--regex` dropped, the first word equal to
/// the expression (the id argument) replaced by `id`.
fn words_for(words: &[OsString], pattern: &str, id: &str) -> Vec<OsString> {
    let mut replaced = false;
    words
        .iter()
        .enumerate()
        .filter(|(_, w)| *w != "-r" && *w != "--regex")
        .map(|(i, w)| {
            if !replaced && i > 0 && w.to_str() == Some(pattern) {
                replaced = true;
                OsString::from(id)
            } else {
                w.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn words_name_one_container() {
        assert_eq!(
            words_for(&os(&["kill", "-r", "web-.*", "KILL"]), "web-.*", "web-1"),
            os(&["kill", "web-1", "KILL"])
        );
        assert_eq!(words_for(&os(&["delete", "--force", "--regex", "a"]), "a", "ab"), os(&["delete", "--force", "ab"]));
        // The subcommand itself is never taken for the id.
        assert_eq!(words_for(&os(&["kill", "-r", "kill"]), "kill", "kill-1"), os(&["kill", "kill-1"]));
    }
}

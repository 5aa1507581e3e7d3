//! What the upgrade tests share: the previous release's binaries, installed as a package
//! upgrade installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The previous release's static nexcage and nexcage-init (hack/build-previous: built
/// once, cached under target/previous/; in the test host, which has no Rust,
/// `NEXCAGE_TEST_PREVIOUS`, which hack/test-pve sets).
pub fn previous_release() -> PathBuf {
    if let Some(dir) = std::env::var_os("NEXCAGE_TEST_PREVIOUS") {
        return PathBuf::from(dir);
    }
    assert!(
        !super::emu::real_pct(),
        "NEXCAGE_TEST_PREVIOUS is not set: hack/test-pve builds the previous release for a run that names these tests"
    );
    let out = Command::new(super::repo().join("hack/build-previous")).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "hack/build-previous failed");
    PathBuf::from(super::text(&out.stdout).trim())
}

/// Put `from` at `to` as dpkg does: a new file renamed over the old one (running
/// processes keep the old inode).
pub fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("dpkg-new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

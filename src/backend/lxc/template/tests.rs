//! Tests of the template cache. They run as root (the CI and dev boxes do): they create
//! device nodes, chown files and use GNU tar to extract as root. Pieces that need a feature
//! the machine lacks (user xattrs, mount) are skipped with a printed reason.

use super::*;
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::process::Command;
use std::sync::{Arc, Barrier};

fn is_root() -> bool {
    // SAFETY: trivial libc call.
    unsafe { libc::geteuid() == 0 }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let n = CString::new(name).unwrap();
    // SAFETY: valid C strings and value buffer.
    let r = unsafe { libc::lsetxattr(cpath(p).as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut buf = vec![0u8; 4096];
    // SAFETY: buffer writable for its length.
    let n = unsafe { libc::llistxattr(cpath(p).as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return out;
    }
    for k in buf[..n as usize].split(|&c| c == 0).filter(|k| !k.is_empty()) {
        let name = String::from_utf8_lossy(k).into_owned();
        if !name.starts_with("user.") {
            continue; // security.* / system.* depend on the host (selinux, acls)
        }
        let ck = CString::new(k).unwrap();
        let mut v = vec![0u8; 4096];
        // SAFETY: as above.
        let m = unsafe { libc::lgetxattr(cpath(p).as_ptr(), ck.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(m >= 0);
        v.truncate(m as usize);
        out.insert(name, v);
    }
    out
}

fn set_mtime(p: &Path, secs: i64, nsec: i64) {
    let ts = [libc::timespec { tv_sec: secs, tv_nsec: nsec }, libc::timespec { tv_sec: secs, tv_nsec: nsec }];
    // SAFETY: valid path and two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, cpath(p).as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    fs::write(&probe, b"").unwrap();
    let ok = set_xattr(&probe, "user.probe", b"1").is_ok();
    fs::remove_file(&probe).unwrap();
    if !ok {
        eprintln!("note: {} does not support user xattrs; xattr checks skipped", dir.display());
    }
    ok
}

/// A tree with every kind of entry the archiver must keep. Returns whether xattrs were set.
fn make_tree(root: &Path) -> bool {
    fs::create_dir_all(root.join("etc/sub")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("etc/hostname"), b"box\n").unwrap();
    fs::write(root.join("etc/shadow"), b"root:*:1::::::\n").unwrap();
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    lchown(&root.join("etc/shadow"), 0, 42);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8 ^ (i >> 13) as u8).collect();
    fs::write(root.join("usr/bin/busybox"), &big).unwrap();
    fs::set_permissions(root.join("usr/bin/busybox"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("usr/bin/busybox"), root.join("usr/bin/sh")).unwrap();
    symlink("busybox", root.join("usr/bin/ls")).unwrap();
    symlink("../../etc/passwd", root.join("etc/escape")).unwrap();
    symlink("/etc/shadow", root.join("etc/abs")).unwrap();
    fs::write(root.join("etc/sub/owned"), b"x").unwrap();
    lchown(&root.join("etc/sub/owned"), 100_000, 100_033);
    fs::set_permissions(root.join("etc/sub"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let long = root.join("l".repeat(150)).join("m".repeat(150));
    fs::create_dir_all(&long).unwrap();
    fs::write(long.join("n".repeat(40)), b"deep").unwrap();
    let fifo = cpath(&root.join("fifo"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let dev = cpath(&root.join("null"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
    let xattrs = xattrs_supported(root);
    if xattrs {
        set_xattr(&root.join("etc/hostname"), "user.note", b"hello\0binary\xff").unwrap();
        set_xattr(&root.join("etc/sub"), "user.dir", b"d").unwrap();
    }
    set_mtime(&root.join("etc/hostname"), 1_600_000_000, 123_456_789);
    xattrs
}

#[derive(Debug, PartialEq)]
struct Facts {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Option<i64>,
    size: u64,
    content: Option<Vec<u8>>,
    target: Option<PathBuf>,
    rdev: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
    hardlink_of: Option<PathBuf>,
}

/// Every entry of a tree by relative path (without following symlinks).
fn manifest(root: &Path) -> BTreeMap<PathBuf, Facts> {
    fn rec(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Facts>, inodes: &mut HashMap<u64, PathBuf>) {
        let p = root.join(rel);
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo_like() {
            "fifo"
        } else {
            "dev"
        };
        let mut hardlink_of = None;
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(first) = inodes.get(&md.ino()) {
                hardlink_of = Some(first.clone());
            } else {
                inodes.insert(md.ino(), rel.to_path_buf());
            }
        }
        out.insert(
            rel.to_path_buf(),
            Facts {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: (!ft.is_symlink() && rel != Path::new("")).then_some(md.mtime()),
                size: if ft.is_file() { md.size() } else { 0 },
                content: ft.is_file().then(|| fs::read(&p).unwrap()),
                target: ft.is_symlink().then(|| fs::read_link(&p).unwrap()),
                rdev: md.rdev(),
                xattrs: get_xattrs(&p),
                hardlink_of,
            },
        );
        if ft.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&p).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            for n in names {
                rec(root, &rel.join(n), out, inodes);
            }
        }
    }
    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for fs::FileType {
        fn is_fifo_like(&self) -> bool {
            std::os::unix::fs::FileTypeExt::is_fifo(self)
        }
    }
    let mut out = BTreeMap::new();
    rec(root, Path::new(""), &mut out, &mut HashMap::new());
    out
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cache: TemplateCache,
    base: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("bundle/rootfs");
    fs::create_dir_all(&root).unwrap();
    let cache = TemplateCache::new(base.join("cache"), base.join("index")).with_progress(false);
    Fixture { _tmp: tmp, root, cache, base }
}

fn digest_of(root: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let cache = TemplateCache::new(tmp.path().join("c"), tmp.path().join("i")).with_progress(false);
    cache.ensure(root).unwrap().digest
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(TMP_PREFIX) || n.contains(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn archive_extracts_identically_with_gnu_tar() {
    if !is_root() {
        eprintln!("skipped: needs root (mknod, chown, tar -p)");
        return;
    }
    let f = fixture();
    let xattrs = make_tree(&f.root);
    let t = f.cache.ensure(&f.root).unwrap();
    assert!(!t.reused);
    assert_eq!(t.file_name, format!("nexcage-{}.tar.zst", &t.digest[..32]));
    assert_eq!(t.digest.len(), 64);
    assert!(t.path.is_file());
    assert_eq!(fs::metadata(&t.path).unwrap().len(), t.bytes);
    assert!(leftovers(f.cache.dir()).is_empty());

    // Entry names are ./relative, root first, as in Proxmox templates.
    let list = Command::new("tar").args(["--zstd", "-tf"]).arg(&t.path).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let names = String::from_utf8(list.stdout).unwrap();
    assert_eq!(names.lines().next(), Some("./"));
    assert!(names.lines().all(|l| l.starts_with("./")), "{names}");
    assert!(names.contains("./etc/sub/\n"));

    let out = f.base.join("extract");
    fs::create_dir(&out).unwrap();
    let st = Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(&t.path)
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let want = manifest(&f.root);
    let got = manifest(&out);
    assert_eq!(want.len(), got.len());
    for (path, w) in &want {
        let g = got.get(path).unwrap_or_else(|| panic!("{} missing after extraction", path.display()));
        assert_eq!(w, g, "{}", path.display());
    }
    // The escaping symlink stayed a link; nothing of the host's /etc/passwd was archived.
    assert_eq!(fs::read_link(out.join("etc/escape")).unwrap(), Path::new("../../etc/passwd"));
    assert_eq!(
        fs::metadata(out.join("usr/bin/sh")).unwrap().ino(),
        fs::metadata(out.join("usr/bin/busybox")).unwrap().ino()
    );
    if xattrs {
        assert_eq!(get_xattrs(&out.join("etc/hostname"))["user.note"], b"hello\0binary\xff");
    }
}

#[test]
fn digest_is_stable_and_covers_content_and_metadata() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let f = fixture();
    let xattrs = make_tree(&f.root);
    let d0 = digest_of(&f.root);
    assert_eq!(d0, digest_of(&f.root), "same tree, same digest");

    let mut seen = HashSet::from([d0.clone()]);
    let mut check = |what: &str, root: &Path| {
        let d = digest_of(root);
        assert!(seen.insert(d), "digest unchanged after {what}");
    };
    let host = f.root.join("etc/hostname");
    // Content change with the same size and mtime.
    fs::write(&host, b"xyz\n").unwrap();
    set_mtime(&host, 1_600_000_000, 123_456_789);
    check("content", &f.root);
    fs::set_permissions(&host, fs::Permissions::from_mode(0o600)).unwrap();
    check("mode", &f.root);
    lchown(&host, 7, 0);
    check("owner", &f.root);
    lchown(&host, 7, 8);
    check("group", &f.root);
    set_mtime(&host, 1_600_000_000, 5);
    check("mtime (ns)", &f.root);
    fs::remove_file(f.root.join("usr/bin/ls")).unwrap();
    symlink("sh", f.root.join("usr/bin/ls")).unwrap();
    check("symlink target", &f.root);
    fs::rename(f.root.join("empty"), f.root.join("empty2")).unwrap();
    check("rename", &f.root);
    if xattrs {
        set_xattr(&host, "user.note", b"other").unwrap();
        check("xattr value", &f.root);
        set_xattr(&f.root.join("empty2"), "user.new", b"").unwrap();
        check("new xattr", &f.root);
    }
    // Unchanged again -> stable.
    let d = digest_of(&f.root);
    assert_eq!(d, digest_of(&f.root));
}

#[test]
fn cache_hit_reads_no_contents_and_ctime_catches_hidden_edits() {
    let f = fixture();
    fs::create_dir_all(f.root.join("d")).unwrap();
    fs::write(f.root.join("d/a"), vec![7u8; 100_000]).unwrap();
    fs::write(f.root.join("b"), b"bbbb").unwrap();
    // Tree made "just now": with the default window a repeat create must re-read (racy).
    let first = f.cache.ensure(&f.root).unwrap();
    assert!(!first.reused);
    assert_eq!(first.contents_read, 100_004);
    let racy = f.cache.ensure(&f.root).unwrap();
    assert!(racy.contents_read > 0, "a racily-clean tree must be re-read");
    assert_eq!(racy.file_name, first.file_name);

    // Once the tree is older than the window, a repeat create reads nothing.
    let cache = f.cache.clone().with_racy_window(Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(150));
    let built = cache.ensure(&f.root).unwrap();
    assert_eq!(built.file_name, first.file_name);
    let hit = cache.ensure(&f.root).unwrap();
    assert!(hit.reused);
    assert_eq!(hit.contents_read, 0, "cache hit must not read file contents");
    assert_eq!(hit.file_name, first.file_name);
    assert_eq!(hit.digest, first.digest);

    // Edit content, restore size and mtime: only ctime tells; must rebuild.
    let a = f.root.join("d/a");
    let mt = fs::metadata(&a).unwrap();
    let mut data = vec![7u8; 100_000];
    data[50_000] = 8;
    fs::write(&a, &data).unwrap();
    set_mtime(&a, mt.mtime(), mt.mtime_nsec());
    std::thread::sleep(Duration::from_millis(150));
    let edited = cache.ensure(&f.root).unwrap();
    assert!(!edited.reused);
    assert_ne!(edited.digest, first.digest);
    assert!(edited.contents_read > 0);

    // Template removed (pruned) while the index still knows the tree: rebuilt.
    fs::remove_file(&edited.path).unwrap();
    let rebuilt = cache.ensure(&f.root).unwrap();
    assert!(!rebuilt.reused);
    assert_eq!(rebuilt.digest, edited.digest);
    assert!(rebuilt.path.is_file());
}

#[test]
fn concurrent_creates_of_a_new_rootfs_build_once() {
    let f = fixture();
    for i in 0..40 {
        let d = f.root.join(format!("d{}", i % 4));
        fs::create_dir_all(&d).unwrap();
        let v: Vec<u8> = (0..500_000u32).map(|x| (x.wrapping_mul(2654435761) >> 13) as u8 ^ i as u8).collect();
        fs::write(d.join(format!("f{i}")), v).unwrap();
    }
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let cache = f.cache.clone();
            let root = f.root.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                cache.ensure(&root).unwrap()
            })
        })
        .collect();
    let res: Vec<Template> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(res[0].file_name, res[1].file_name);
    let builders = res.iter().filter(|t| t.contents_read > 0).count();
    assert_eq!(builders, 1, "exactly one create reads the tree: {res:?}");
    assert_eq!(res.iter().filter(|t| !t.reused).count(), 1);
    assert_eq!(f.cache.list().unwrap().len(), 1);
    assert!(leftovers(f.cache.dir()).is_empty());
}

/// Mounts a tmpfs of `size` on `dir`; None (with a printed reason) when not permitted.
fn mount_tmpfs(dir: &Path, size: &str) -> Option<()> {
    let st =
        Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status().ok()?;
    if !st.success() {
        eprintln!("skipped: cannot mount tmpfs on {}", dir.display());
        return None;
    }
    Some(())
}

fn umount(dir: &Path) {
    let _ = Command::new("umount").arg(dir).status();
}

#[test]
fn failure_mid_archive_leaves_no_temp_file() {
    if !is_root() {
        eprintln!("skipped: needs root (mount)");
        return;
    }
    let f = fixture();
    // Output side: the cache directory fills up half-way (ENOSPC).
    let mut v = vec![0u8; 4_000_000];
    File::open("/dev/urandom").unwrap().read_exact(&mut v).unwrap();
    fs::write(f.root.join("random"), v).unwrap();
    let cache_dir = f.cache.dir().to_path_buf();
    fs::create_dir_all(&cache_dir).unwrap();
    if mount_tmpfs(&cache_dir, "1m").is_none() {
        return;
    }
    let err = f.cache.ensure(&f.root);
    let left = leftovers(&cache_dir);
    let listed = f.cache.list().unwrap();
    umount(&cache_dir);
    let err = err.expect_err("a full template directory must fail the build");
    assert!(err.to_string().contains(".nexcage-tmp-"), "error names the temp file: {err}");
    assert!(left.is_empty(), "temp files left: {left:?}");
    assert!(listed.is_empty());

    // Input side: a file that yields fewer bytes than lstat promised (sysfs attribute).
    let src = Path::new("/sys/kernel/mm/transparent_hugepage/enabled");
    if !src.exists() {
        eprintln!("skipped input-side check: {} missing", src.display());
        return;
    }
    fs::write(f.root.join("zz-short"), b"").unwrap();
    let st = Command::new("mount").arg("--bind").arg(src).arg(f.root.join("zz-short")).status().unwrap();
    if !st.success() {
        eprintln!("skipped input-side check: bind mount refused");
        return;
    }
    let err = f.cache.ensure(&f.root);
    umount(&f.root.join("zz-short"));
    let err = err.expect_err("a short read must fail the build");
    assert!(matches!(err, TemplateError::Changed { .. }), "{err}");
    assert!(err.to_string().contains("zz-short"), "{err}");
    assert!(leftovers(&cache_dir).is_empty());
    assert!(f.cache.list().unwrap().is_empty());
}

#[test]
fn rootfs_resolution_and_errors() {
    let f = fixture();
    let bundle = f.root.parent().unwrap();
    assert_eq!(resolve_rootfs(bundle, Path::new("rootfs")).unwrap(), f.root);
    assert_eq!(resolve_rootfs(Path::new("/nonexistent"), &f.root).unwrap(), f.root);
    fs::write(bundle.join("file"), b"").unwrap();
    let e = resolve_rootfs(bundle, Path::new("file")).unwrap_err();
    assert!(matches!(e, TemplateError::NotADirectory(_)), "{e}");
    let e = resolve_rootfs(bundle, Path::new("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    let e = f.cache.ensure(&bundle.join("file")).unwrap_err();
    assert!(matches!(e, TemplateError::NotADirectory(_)), "{e}");

    // The rootfs itself may be reached through a symlink (root.path anywhere, as in runc).
    fs::write(f.root.join("x"), b"1").unwrap();
    symlink(&f.root, bundle.join("link")).unwrap();
    let via_link = f.cache.ensure(&resolve_rootfs(bundle, Path::new("link")).unwrap()).unwrap();
    assert_eq!(via_link.digest, f.cache.ensure(&f.root).unwrap().digest);
}

#[test]
fn symlinked_directory_inside_the_tree_is_not_followed() {
    let f = fixture();
    let outside = f.base.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"do not archive").unwrap();
    symlink(&outside, f.root.join("dir-link")).unwrap();
    let t = f.cache.ensure(&f.root).unwrap();
    assert_eq!(t.contents_read, 0);
    let list = Command::new("tar").args(["--zstd", "-tvf"]).arg(&t.path).output().unwrap();
    let s = String::from_utf8(list.stdout).unwrap();
    assert!(s.contains("./dir-link -> "), "{s}");
    assert!(!s.contains("secret"), "{s}");
}

#[test]
fn list_and_prune() {
    let f = fixture();
    let other = f.base.join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(f.root.join("a"), b"a").unwrap();
    fs::write(other.join("b"), b"b").unwrap();
    let ta = f.cache.ensure(&f.root).unwrap();
    let tb = f.cache.ensure(&other).unwrap();
    assert_ne!(ta.file_name, tb.file_name);
    // Foreign files and a stale temp file of a dead build.
    fs::write(f.cache.dir().join("debian-12-standard.tar.zst"), b"").unwrap();
    let stale = f.cache.dir().join(format!("{TMP_PREFIX}999999999-0000000000000000{SUFFIX}"));
    fs::write(&stale, b"half").unwrap();

    let list = f.cache.list().unwrap();
    let names: Vec<_> = list.iter().map(|t| t.file_name.clone()).collect();
    let mut want = vec![ta.file_name.clone(), tb.file_name.clone()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(list[0].bytes, fs::metadata(&list[0].path).unwrap().len());
    assert_eq!(list.iter().find(|t| t.file_name == ta.file_name).unwrap().digest, ta.digest[..32]);

    let in_use = HashSet::from([ta.volid("local")]);
    assert_eq!(ta.volid("local"), format!("local:vztmpl/{}", ta.file_name));
    let removed = f.cache.prune(&in_use).unwrap();
    assert_eq!(removed, vec![tb.file_name.clone()]);
    assert!(ta.path.exists());
    assert!(!tb.path.exists());
    assert!(!stale.exists());
    assert!(f.cache.dir().join("debian-12-standard.tar.zst").exists());
    let index_records = fs::read_dir(f.base.join("index"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(index_records, 1, "the pruned template's index record is gone");
    assert_eq!(f.cache.prune(&HashSet::new()).unwrap(), vec![ta.file_name.clone()]);
    assert!(f.cache.list().unwrap().is_empty());
}

#[test]
fn hex_and_names() {
    assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
    assert!(parse_template_name("nexcage-0123456789abcdef0123456789abcdef.tar.zst").is_some());
    assert!(parse_template_name("nexcage-0123.tar.zst").is_none());
    assert!(parse_template_name(".nexcage-tmp-1-2.tar.zst").is_none());
}

/// The empty template (an in-place root's): GNU tar extracts it into a directory and
/// changes nothing there, not even the directory's own owner, mode or mtime; it is named
/// like any other template and made once.
#[test]
fn empty_template_extracts_nothing() {
    let f = fixture();
    let t = f.cache.ensure_empty().unwrap();
    assert!(parse_template_name(&t.file_name).is_some(), "{}", t.file_name);
    assert!(!t.reused);
    let again = f.cache.ensure_empty().unwrap();
    assert!(again.reused && again.file_name == t.file_name);
    assert_eq!(f.cache.list().unwrap().len(), 1);
    assert!(leftovers(f.cache.dir()).is_empty());

    fs::write(f.root.join("kept"), "x").unwrap();
    fs::set_permissions(&f.root, fs::Permissions::from_mode(0o751)).unwrap();
    set_mtime(&f.root, 1_000_000, 0);
    let before = fs::metadata(&f.root).unwrap();
    // As pct does: `tar xpf - --zstd ... -C ROOT --skip-old-files --anchored --exclude ./dev/*`.
    let st = Command::new("tar")
        .args(["xpf", "-", "--zstd", "--totals", "--numeric-owner", "-C"])
        .arg(&f.root)
        .args(["--skip-old-files", "--anchored", "--exclude", "./dev/*"])
        .stdin(fs::File::open(&t.path).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    let after = fs::metadata(&f.root).unwrap();
    assert_eq!((after.mode(), after.uid(), after.mtime()), (before.mode(), before.uid(), before.mtime()));
    let names: Vec<_> = fs::read_dir(&f.root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["kept"]);
}

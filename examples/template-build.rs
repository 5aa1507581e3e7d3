//! Builds (or reuses) the template of a rootfs with nexcage's archiver.
//!
//! `cargo run --release --example template-build -- <rootfs> <outdir> [index_dir]`
//! Prints `<file_name> reused=<bool> bytes=<n> contents_read=<n> ms=<t>`.
//! Used by hack/bench-template.

use nexcage::backend::lxc::template;

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 {
        eprintln!("usage: template-build <rootfs> <outdir> [index_dir]");
        std::process::exit(2);
    }
    let rootfs = PathBuf::from(&args[0]);
    let out = PathBuf::from(&args[1]);
    let index = args.get(2).map(PathBuf::from).unwrap_or_else(|| out.join(".nexcage-index"));
    let cache = template::TemplateCache::new(out, index);
    let t0 = Instant::now();
    match cache.ensure(&rootfs) {
        Ok(t) => println!(
            "{} reused={} bytes={} contents_read={} ms={:.2}",
            t.file_name,
            t.reused,
            t.bytes,
            t.contents_read,
            t0.elapsed().as_secs_f64() * 1000.0
        ),
        Err(e) => {
            eprintln!("template-build: {e}");
            std::process::exit(1);
        }
    }
}

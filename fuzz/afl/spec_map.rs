fn main() {
    afl::fuzz!(|data: &[u8]| nexcage::fuzz::spec_map(data, std::path::Path::new("/tmp")));
}

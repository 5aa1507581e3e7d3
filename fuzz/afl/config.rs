fn main() {
    afl::fuzz!(|data: &[u8]| nexcage::fuzz::config(data));
}

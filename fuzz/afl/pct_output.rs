fn main() {
    afl::fuzz!(|data: &[u8]| nexcage::fuzz::pct_output(data));
}

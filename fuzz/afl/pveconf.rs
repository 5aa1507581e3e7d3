fn main() {
    afl::fuzz!(|data: &[u8]| nexcage::fuzz::pveconf_roundtrip(data));
}

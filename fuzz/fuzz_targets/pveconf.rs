#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nexcage::fuzz::pveconf_roundtrip(data));

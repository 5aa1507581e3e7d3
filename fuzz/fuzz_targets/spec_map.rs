#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nexcage::fuzz::spec_map(data, std::path::Path::new("/tmp")));

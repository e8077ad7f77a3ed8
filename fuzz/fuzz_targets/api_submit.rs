#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orca::fuzzing::api_submit(data));

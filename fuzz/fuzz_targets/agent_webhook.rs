#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orca_actors::fuzzing::agent_webhook(data));

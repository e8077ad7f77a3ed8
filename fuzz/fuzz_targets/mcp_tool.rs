#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orca::fuzzing::mcp_tool(data));

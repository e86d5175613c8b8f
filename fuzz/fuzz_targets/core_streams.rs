#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chatroom::fuzzing::core_streams(data));

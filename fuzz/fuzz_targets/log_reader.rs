//! Fuzz target: the log reader on any bytes must not panic, and whatever it
//! reports stays inside the input (`agent::sinks::log::fuzz::check`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::sinks::log::fuzz::check(data);
});

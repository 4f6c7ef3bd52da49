//! Arbitrary bytes as stanzas from visitors, staff and strangers, through the byte guard and
//! the parser into the core. The format is in src/fuzz.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frontdesk::fuzz::feed(data);
});

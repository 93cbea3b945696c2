//! Fuzzes the beacon parser and validator (and the gzip inflater) with the
//! invariants of `collector::fuzzing::check_beacon`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    collector::fuzzing::check_beacon(data);
});

//! Arbitrary pairs of items merged in both orders: never a panic, the same
//! item either way, merging again changes nothing, and an update on the
//! result wins over both.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mesh_protocol_fuzz::{after_every_change, checks, item_pair};

fuzz_target!(|data: &[u8]| {
    let Ok((a, b)) = item_pair(&mut Unstructured::new(data)) else {
        return;
    };
    checks::merge_pair(&a, &b, after_every_change());
});

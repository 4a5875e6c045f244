//! Arbitrary bytes into the JSON feed reader: it never panics; what it
//! reads round-trips exactly, and passes what meshd checks next without a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_protocol_fuzz::checks;

fuzz_target!(|doc: &[u8]| checks::json_document(doc));

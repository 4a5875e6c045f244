//! Arbitrary bytes into the Atom reader: it never panics; what it reads
//! writes back as a document that reads again, exactly from then on, and
//! passes what meshd checks next without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_protocol_fuzz::checks;

fuzz_target!(|doc: &[u8]| checks::atom_document(doc));

//! Arbitrary bytes into the change stream's SSE parser, cut into reads at
//! arbitrary points: never a panic, the same events however it is cut, and
//! the stream goes on whatever came before.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_protocol_fuzz::checks;

fuzz_target!(|input: (Vec<u16>, &[u8])| {
    let (cuts, stream) = input;
    let cuts: Vec<usize> = cuts.into_iter().map(usize::from).collect();
    checks::sse_stream(stream, &cuts);
});

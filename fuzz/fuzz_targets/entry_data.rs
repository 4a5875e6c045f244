//! Arbitrary JSON as a Live Folder entry's data (with and without an
//! enclosure) and as a content reference: never a panic; what is accepted
//! keeps the rules and reads the same from its own JSON, and a valid
//! content reference covers exactly the bytes asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_protocol::content::ContentRef;
use mesh_protocol::feedsync::Body;
use mesh_protocol_fuzz::checks;

fuzz_target!(|input: (bool, u64, u64, &[u8])| {
    let (file, offset, len, json) = input;
    let Ok(data) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    if let Ok(content) = serde_json::from_value::<ContentRef>(data.clone()) {
        checks::content_ref(&content, offset, len);
    }
    checks::entry_data(&Body {
        data: Some(data),
        enclosure: file.then(ContentRef::empty),
        ..Body::default()
    });
});

//! AWS Encryption SDK message headers from arbitrary bytes: parsing must
//! return a header or an error, never panic or allocate past its caps, and
//! a parsed header must serialize back to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_envelope::message::{parse_context, Header};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, used)) = Header::parse(data) {
        assert!(used <= data.len());
        assert_eq!(header.to_bytes(), &data[..used], "a parsed header re-serializes to its bytes");
    }
    let _ = parse_context(data);
});

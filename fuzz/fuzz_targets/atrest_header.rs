//! The at-rest file header parser (preamble, key slots, context) and the
//! record header parser, on arbitrary bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_envelope::atrest::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::parse_header(data);
    let _ = fuzzing::parse_record_header(data);
    let _ = fuzzing::parse_context_bytes(data);
});

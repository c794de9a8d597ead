//! Any bytes a client sends: the frame size check, the request decoder and
//! the record-batch reader must return errors, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_broker::protocol::{batch, decode_request, frame_length};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4 {
        let _ = frame_length([data[0], data[1], data[2], data[3]], 1 << 20);
    }
    if let Ok(req) = decode_request(bytes::Bytes::copy_from_slice(data)) {
        let _ = req.version();
    }
    let _ = batch::split_batches(&bytes::Bytes::copy_from_slice(data));
});

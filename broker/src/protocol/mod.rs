//! The Kafka wire codec: frames, request headers, the versions Wharf
//! implements, and record-batch headers. Nothing here touches a socket, so
//! every function is tested from bytes.

pub mod batch;
pub mod codec;
pub mod frame;
pub mod splice;
pub mod versions;

pub use codec::{decode_request, encode_response, encode_response_into, DecodeError, Request};
pub use frame::{frame_length, FrameError, DEFAULT_MAX_REQUEST_BYTES};

//! Kafka frames: a big-endian `i32` size followed by that many bytes.
//!
//! The size is checked against the configured maximum before anything is
//! allocated for the body, so a client cannot make the broker reserve
//! gigabytes with four bytes.

/// Kafka's own default for `socket.request.max.bytes` is 100 MiB; so is ours.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// Smallest valid request: api key, api version, correlation id (8 bytes).
pub const MIN_REQUEST_BYTES: usize = 8;

/// Why a frame's size prefix was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The size is larger than `max_request_bytes`.
    #[error("request of {size} bytes exceeds max_request_bytes ({max}); raise `max_request_bytes` or send smaller requests")]
    TooLarge {
        /// Size the client announced.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The size is negative or too small to hold a request header.
    #[error("request size {0} is not a valid Kafka frame size")]
    Invalid(i64),
}

/// Validates the 4-byte size prefix of a frame and returns the body length.
pub fn frame_length(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < MIN_REQUEST_BYTES as i32 {
        return Err(FrameError::Invalid(size as i64));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sizes_within_the_limit() {
        assert_eq!(frame_length(100i32.to_be_bytes(), 1000), Ok(100));
        assert_eq!(frame_length(1000i32.to_be_bytes(), 1000), Ok(1000));
    }

    #[test]
    fn refuses_oversize_before_allocating() {
        assert_eq!(
            frame_length(i32::MAX.to_be_bytes(), DEFAULT_MAX_REQUEST_BYTES),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: DEFAULT_MAX_REQUEST_BYTES
            })
        );
    }

    #[test]
    fn refuses_negative_and_tiny_sizes() {
        assert_eq!(
            frame_length((-1i32).to_be_bytes(), 1000),
            Err(FrameError::Invalid(-1))
        );
        assert_eq!(
            frame_length(3i32.to_be_bytes(), 1000),
            Err(FrameError::Invalid(3))
        );
    }
}

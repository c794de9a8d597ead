//! Request decoding and response encoding, from and to whole frames.
//!
//! [`decode_request`] takes the body of one frame (the size prefix already
//! removed and checked by [`super::frame_length`]) and returns the typed
//! request, or a [`DecodeError`] that says whether the connection can be
//! answered (an unsupported ApiVersions version is answered in v0 with
//! error 35) or must be closed.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::versions::is_supported;

/// One decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The API this request is for.
    pub api_key: ApiKey,
    /// The request's header (version, correlation id, client id).
    pub header: RequestHeader,
    /// The typed body.
    pub body: RequestKind,
}

impl Request {
    /// The request's API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Why a frame could not be turned into a [`Request`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a request header needs.
    #[error("request of {0} bytes is too short to hold a request header")]
    TooShort(usize),
    /// The API key is not one Kafka defines.
    #[error("request names API key {0}, which Kafka does not define")]
    UnknownApiKey(i16),
    /// The API or version is not one Wharf implements.
    #[error("{api} version {version} is not implemented by this broker")]
    UnsupportedVersion {
        /// Name of the API.
        api: String,
        /// Raw API key.
        api_key: i16,
        /// Requested version.
        version: i16,
        /// Correlation id, so that ApiVersions can still be answered.
        correlation_id: i32,
    },
    /// The bytes do not decode as that API and version.
    #[error("malformed {api} v{version} request: {reason}")]
    Malformed {
        /// Name of the API.
        api: String,
        /// Requested version.
        version: i16,
        /// What the decoder reported.
        reason: String,
    },
}

/// Human name of an API key, e.g. `Produce`.
pub fn api_name(api: ApiKey) -> String {
    format!("{api:?}")
}

/// Decodes one request frame body.
pub fn decode_request(frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let mut peek = &frame[..8];
    let raw_key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let api_key = ApiKey::try_from(raw_key).map_err(|_| DecodeError::UnknownApiKey(raw_key))?;
    let api = api_name(api_key);
    // ApiVersions of any version must get an answer, so its header is read
    // even for versions we do not implement (the header layout is stable).
    if !is_supported(api_key, version) && api_key != ApiKey::ApiVersions {
        return Err(DecodeError::UnsupportedVersion {
            api,
            api_key: raw_key,
            version,
            correlation_id,
        });
    }
    let header_version = if api_key == ApiKey::ApiVersions && version > 3 {
        2
    } else {
        api_key.request_header_version(version)
    };
    let mut buf = frame;
    // The generated decoders index into the buffer and may panic on
    // truncated input; a panic here is a malformed request, not a crash.
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let header = RequestHeader::decode(&mut buf, header_version)?;
        if !is_supported(api_key, version) {
            return Ok((header, None));
        }
        let body = RequestKind::decode(api_key, &mut buf, version)?;
        Ok::<_, anyhow::Error>((header, Some(body)))
    }));
    let malformed = |reason: String| DecodeError::Malformed {
        api: api_name(api_key),
        version,
        reason,
    };
    match decoded {
        Ok(Ok((header, Some(body)))) => Ok(Request {
            api_key,
            header,
            body,
        }),
        Ok(Ok((_, None))) => Err(DecodeError::UnsupportedVersion {
            api: api_name(api_key),
            api_key: raw_key,
            version,
            correlation_id,
        }),
        Ok(Err(e)) => Err(malformed(e.to_string())),
        Err(_) => Err(malformed(
            "the request ends before its fields do".to_string(),
        )),
    }
}

/// Why a response could not be encoded (a broker bug, never a client's).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api} v{version} response: {reason}")]
pub struct EncodeError {
    api: String,
    version: i16,
    reason: String,
}

impl EncodeError {
    pub(crate) fn new(api_key: ApiKey, version: i16, e: anyhow::Error) -> EncodeError {
        EncodeError {
            api: api_name(api_key),
            version,
            reason: e.to_string(),
        }
    }
}

/// Encodes a response with its size prefix and header.
///
/// The ApiVersions response header is always v0 (no tagged fields), as
/// clients expect whatever version they asked for.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    encode_response_into(&mut buf, api_key, version, correlation_id, body)?;
    Ok(buf.freeze())
}

/// [`encode_response`] appending to `out`, so that a connection can keep
/// one buffer for all its responses: a fresh megabyte-sized buffer per
/// fetch response costs a page fault per 4 KiB when the allocator has
/// handed the last one back to the kernel. On error `out` is as it was.
pub fn encode_response_into(
    out: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<(), EncodeError> {
    let err = |e: anyhow::Error| EncodeError::new(api_key, version, e);
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let start = out.len();
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let encoded = header
        .encode(out, header_version)
        .and_then(|()| body.encode(out, version));
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(err(e));
    }
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = 42;
        header.client_id = Some(StrBytes::from_static_str("test"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_metadata_at_every_supported_version() {
        for v in 0..=12 {
            let req =
                decode_request(frame(ApiKey::Metadata, v, &MetadataRequest::default())).unwrap();
            assert_eq!(req.api_key, ApiKey::Metadata);
            assert_eq!(req.header.correlation_id, 42);
            assert_eq!(req.version(), v);
        }
    }

    #[test]
    fn unsupported_api_versions_version_keeps_the_correlation_id() {
        let f = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let mut raw = BytesMut::from(&f[..]);
        raw[2..4].copy_from_slice(&9i16.to_be_bytes());
        match decode_request(raw.freeze()) {
            Err(DecodeError::UnsupportedVersion {
                api_key: 18,
                version: 9,
                correlation_id: 42,
                ..
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_and_garbage_requests_are_errors_not_panics() {
        let f = frame(ApiKey::Metadata, 9, &MetadataRequest::default());
        for cut in 0..f.len() {
            let _ = decode_request(f.slice(..cut));
        }
        assert_eq!(
            decode_request(Bytes::from_static(&[0, 3])),
            Err(DecodeError::TooShort(2))
        );
        assert!(matches!(
            decode_request(Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1])),
            Err(DecodeError::UnknownApiKey(0x7f00))
        ));
    }

    /// Regression: upstream kafka-protocol reserved the announced array
    /// length before reading, so 21 bytes announcing 2^31 topics aborted
    /// the broker on a failed allocation (see vendor/kafka-protocol).
    #[test]
    fn huge_array_counts_do_not_allocate() {
        let mut raw = BytesMut::new();
        raw.extend_from_slice(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 1, b'x']);
        raw.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        assert!(matches!(
            decode_request(raw.freeze()),
            Err(DecodeError::Malformed { .. })
        ));
        let mut raw = BytesMut::new();
        raw.extend_from_slice(&[0, 3, 0, 9, 0, 0, 0, 1, 0, 1, b'x', 0]);
        raw.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        assert!(matches!(
            decode_request(raw.freeze()),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn api_versions_response_header_is_v0_even_for_v3() {
        let body = ResponseKind::ApiVersions(Default::default());
        let out = encode_response(ApiKey::ApiVersions, 3, 7, &body).unwrap();
        // size, correlation id, then the body's error code: no tagged-field byte.
        assert_eq!(&out[4..8], &7i32.to_be_bytes());
        assert_eq!(&out[8..10], &0i16.to_be_bytes());
    }

    #[test]
    fn responses_appended_to_one_buffer_stay_whole_and_a_failed_one_leaves_no_trace() {
        let versions = ResponseKind::ApiVersions(Default::default());
        let metadata = ResponseKind::Metadata(Default::default());
        let mut out = BytesMut::new();
        encode_response_into(&mut out, ApiKey::ApiVersions, 3, 7, &versions).unwrap();
        let first = out.len();
        encode_response_into(&mut out, ApiKey::Metadata, 12, 8, &metadata).unwrap();
        assert_eq!(
            &out[..first],
            &encode_response(ApiKey::ApiVersions, 3, 7, &versions).unwrap()[..]
        );
        assert_eq!(
            &out[first..],
            &encode_response(ApiKey::Metadata, 12, 8, &metadata).unwrap()[..]
        );
        let size = i32::from_be_bytes(out[first..first + 4].try_into().unwrap());
        assert_eq!(size as usize, out.len() - first - 4);

        let before = out.clone();
        let err = encode_response_into(&mut out, ApiKey::Metadata, 99, 9, &metadata).unwrap_err();
        assert!(err.to_string().contains("Metadata v99"), "{err}");
        assert_eq!(out, before);
    }
}

//! Listeners: accept TCP (optionally TLS) connections and run each one's
//! request loop. A malformed or oversize request closes that connection
//! with a log line; it never harms another connection.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::broker::{api_versions, Advertised, Broker};
use crate::protocol::splice::{encode_response_spliced, pieces};
use crate::protocol::{decode_request, frame_length, DecodeError};
use crate::storage::Engine;
use crate::telemetry::response_has_error;

/// Settings shared by every connection of a listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Largest request accepted, checked before allocating.
    pub max_request_bytes: usize,
    /// Host advertised in Metadata / FindCoordinator (port is the listener's).
    pub advertised_host: String,
    /// Port advertised.
    pub advertised_port: i32,
    /// Listener name for the connection gauge (`PLAINTEXT`, `SSL`).
    pub name: String,
}

/// Accepts connections forever, with TLS when `tls` is set.
pub async fn serve<E: Engine>(
    listener: TcpListener,
    broker: Arc<Broker<E>>,
    config: ListenerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let connections = broker.metrics().listener(&config.name);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let broker = broker.clone();
        let config = config.clone();
        let tls = tls.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            connections.connection_opened();
            match tls {
                None => connection(stream, peer, broker, config).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => connection(s, peer, broker, config).await,
                    Err(e) => tracing::warn!(peer = %peer, error = %e, "TLS handshake refused"),
                },
            }
            connections.connection_closed();
        });
    }
}

/// Runs one connection's request loop until the client closes it or
/// sends something that cannot be answered.
pub async fn connection<S, E>(
    mut stream: S,
    peer: SocketAddr,
    broker: Arc<Broker<E>>,
    config: ListenerConfig,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    E: Engine,
{
    let advertised = Advertised {
        host: config.advertised_host.clone(),
        port: config.advertised_port,
    };
    // One buffer for the connection's responses (see `encode_response_into`;
    // a fetch's large records fields are written from where they are, see
    // `splice`) and one for its large request bodies (see `read_body`).
    let mut out = BytesMut::new();
    let mut splices = Vec::new();
    let mut input = BytesMut::new();
    loop {
        let mut prefix = [0u8; 4];
        if stream.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let len = match frame_length(prefix, config.max_request_bytes) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "closing connection");
                return;
            }
        };
        let Some(body) = read_body(&mut stream, len, &mut input).await else {
            return;
        };
        let (api_key, version, correlation_id, response) = match decode_request(body) {
            Ok(req) => {
                let (key, version, corr) = (req.api_key, req.version(), req.header.correlation_id);
                let started = Instant::now();
                let audit = broker.audit_begin(&req.body).map(|a| {
                    let client = req.header.client_id.as_ref().map(|c| c.to_string());
                    (a, client.unwrap_or_default())
                });
                let response = broker.handle(req, &advertised).await;
                let error = response.as_ref().is_some_and(response_has_error);
                broker
                    .metrics()
                    .record_request(key as i16, started.elapsed(), error);
                if let Some((pending, client)) = audit {
                    broker.audit_end(pending, response.as_ref(), &client, peer, version, corr);
                }
                match response {
                    Some(resp) => (key, version, corr, resp),
                    None => continue,
                }
            }
            Err(DecodeError::UnsupportedVersion {
                api_key: 18,
                correlation_id,
                version,
                ..
            }) => {
                tracing::info!(peer = %peer, version, "ApiVersions version not supported; answering in v0");
                let resp = ResponseKind::ApiVersions(api_versions(
                    crate::broker::code::UNSUPPORTED_VERSION,
                ));
                (ApiKey::ApiVersions, 0, correlation_id, resp)
            }
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "closing connection");
                return;
            }
        };
        let mut response = response;
        if let Err(e) = encode_response_spliced(
            &mut out,
            &mut splices,
            api_key,
            version,
            correlation_id,
            &mut response,
        ) {
            tracing::error!(peer = %peer, error = %e, "closing connection");
            return;
        }
        drop(response);
        if write_pieces(&mut stream, pieces(&out, &splices))
            .await
            .is_err()
            || stream.flush().await.is_err()
        {
            return;
        }
        // The records go now, so that their memory can be reused.
        splices.clear();
        recycle_response_buffer(&mut out);
    }
}

/// Writes `pieces` in order, as few writes as the stream allows.
async fn write_pieces<S: AsyncWrite + Unpin>(
    stream: &mut S,
    mut pieces: Vec<&[u8]>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < pieces.len() {
        let slices: Vec<IoSlice<'_>> = pieces[first..].iter().map(|p| IoSlice::new(p)).collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let piece = &mut pieces[first];
            let done = n.min(piece.len());
            *piece = &piece[done..];
            n -= done;
            if piece.is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}

/// A connection keeps its buffers only up to this size, so that a rare
/// huge request or fetch does not pin its memory.
const KEEP_BUFFER_MAX: usize = 32 << 20;

/// A response buffer at most this large is always kept.
const KEEP_BUFFER_SMALL: usize = 1 << 20;

/// Readies the response buffer for the next response: cleared and kept
/// while responses are about its size; let go when it is over
/// [`KEEP_BUFFER_MAX`], or over [`KEEP_BUFFER_SMALL`] with the response just
/// sent under a quarter of it (a consumer that caught up and now gets small
/// or empty fetches), so that idle connections hold no megabytes.
fn recycle_response_buffer(out: &mut BytesMut) {
    let (used, capacity) = (out.len(), out.capacity());
    if capacity > KEEP_BUFFER_MAX || (capacity > KEEP_BUFFER_SMALL && used < capacity / 4) {
        *out = BytesMut::new();
    } else {
        out.clear();
    }
}

/// Bodies from this long up to [`KEEP_BUFFER_MAX`] are read into the
/// connection's input buffer; others get their own allocation, so a small
/// request whose bytes outlive it (a group member's metadata) never pins a
/// large buffer, and a huge one is freed after use.
const SHARED_BODY_MIN: usize = 64 << 10;

/// Reads the `len` bytes of a request body (`len` already capped); `None`
/// when the peer hangs up. Large bodies go into `buffer`, a connection's
/// input buffer, and are split off it: once the last one has been dropped
/// its memory is reused for the next (`BytesMut::reserve` reclaims it),
/// where a fresh megabyte per produce request would be page-faulted in
/// anew each time. A small body lets the input buffer go: a connection
/// back to small requests keeps no megabytes.
async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    len: usize,
    buffer: &mut BytesMut,
) -> Option<Bytes> {
    let mut own = BytesMut::new();
    let target = if (SHARED_BODY_MIN..=KEEP_BUFFER_MAX).contains(&len) {
        buffer
    } else {
        if len < SHARED_BODY_MIN {
            *buffer = BytesMut::new();
        }
        &mut own
    };
    target.clear();
    target.reserve(len);
    let mut rest = stream.take(len as u64);
    while target.len() < len {
        match rest.read_buf(target).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    Some(target.split_to(len).freeze())
}

/// Builds a TLS acceptor (TLS 1.2 and 1.3 only) from PEM files.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate file {} holds no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not match or are invalid: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_read_whole_and_nothing_of_the_next_request() {
        let wire = b"0123456789next-request".to_vec();
        let mut stream = &wire[..];
        let mut buffer = BytesMut::new();
        let body = read_body(&mut stream, 10, &mut buffer).await.unwrap();
        assert_eq!(&body[..], b"0123456789");
        assert_eq!(stream, b"next-request");
    }

    #[tokio::test]
    async fn large_bodies_reuse_the_connection_buffer_once_the_last_is_dropped() {
        let n = SHARED_BODY_MIN;
        let wire: Vec<u8> = (0..3 * n).map(|i| (i % 251) as u8).collect();
        let mut stream = &wire[..];
        let mut buffer = BytesMut::new();
        let first = read_body(&mut stream, n, &mut buffer).await.unwrap();
        assert_eq!(&first[..], &wire[..n]);
        let at = first.as_ptr();
        // Still referenced: the next body may not overwrite it.
        let second = read_body(&mut stream, n, &mut buffer).await.unwrap();
        assert_eq!(&second[..], &wire[n..2 * n]);
        assert_eq!(&first[..], &wire[..n]);
        assert_ne!(second.as_ptr(), at);
        let at = second.as_ptr();
        drop((first, second));
        let third = read_body(&mut stream, n, &mut buffer).await.unwrap();
        assert_eq!(&third[..], &wire[2 * n..]);
        assert_eq!(third.as_ptr(), at);
        // A small body never lands in the shared buffer, and lets it go.
        drop(third);
        let small = read_body(&mut &b"abc"[..], 3, &mut buffer).await.unwrap();
        assert_eq!(&small[..], b"abc");
        assert_ne!(small.as_ptr(), at);
        assert_eq!(buffer.capacity(), 0);
    }

    #[tokio::test]
    async fn a_body_over_the_keep_limit_gets_its_own_buffer() {
        let n = KEEP_BUFFER_MAX + 1;
        let wire = vec![7u8; n];
        let mut buffer = BytesMut::new();
        let body = read_body(&mut &wire[..], n, &mut buffer).await.unwrap();
        assert_eq!(body.len(), n);
        assert_eq!(buffer.capacity(), 0);
    }

    #[test]
    fn the_response_buffer_is_kept_while_responses_fill_it_and_let_go_after() {
        let mut out = BytesMut::with_capacity(4 << 20);
        out.extend_from_slice(&vec![1u8; 3 << 20]);
        recycle_response_buffer(&mut out);
        assert!(out.is_empty());
        assert!(out.capacity() >= 4 << 20, "a full buffer is kept");
        out.extend_from_slice(&[1u8; 100]);
        recycle_response_buffer(&mut out);
        assert_eq!(
            out.capacity(),
            0,
            "a big buffer is let go after a small response"
        );
        let mut small = BytesMut::with_capacity(KEEP_BUFFER_SMALL);
        small.extend_from_slice(b"x");
        recycle_response_buffer(&mut small);
        assert_eq!(
            small.capacity(),
            KEEP_BUFFER_SMALL,
            "small buffers are always kept"
        );
        let mut huge = BytesMut::with_capacity(KEEP_BUFFER_MAX + 1);
        huge.extend_from_slice(&vec![1u8; KEEP_BUFFER_MAX]);
        recycle_response_buffer(&mut huge);
        assert_eq!(huge.capacity(), 0, "nothing over the limit is kept");
    }

    #[tokio::test]
    async fn pieces_written_a_few_bytes_at_a_time_arrive_whole_and_in_order() {
        let (mut client, mut server) = tokio::io::duplex(5);
        let pieces: Vec<Vec<u8>> = vec![b"head".to_vec(), vec![7; 1000], b"-tail".to_vec()];
        let expected = pieces.concat();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_pieces(&mut server, pieces.iter().map(|p| &p[..]).collect())
            .await
            .unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_body_arriving_in_pieces_is_assembled_and_a_hang_up_ends_it() {
        let (mut client, mut server) = tokio::io::duplex(4);
        let writer = tokio::spawn(async move {
            client.write_all(b"abcdefghij").await.unwrap();
            client.write_all(b"klm").await.unwrap();
        });
        let mut buffer = BytesMut::new();
        assert_eq!(
            &read_body(&mut server, 10, &mut buffer).await.unwrap()[..],
            b"abcdefghij"
        );
        writer.await.unwrap();
        // Three bytes of a ten-byte body, then the peer is gone.
        assert!(read_body(&mut server, 10, &mut buffer).await.is_none());
    }
}

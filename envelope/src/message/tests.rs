//! Round trips, bad input of every kind, and known answers from the Python
//! SDK, all with in-memory key providers.

use std::io::{Read, Write};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use super::*;
use crate::{serialize_context, DataKey, EncryptionContext, Error, KeyProvider, WrappedKey};

/// The SDK's raw AES keyring, in memory: provider id = namespace, provider
/// info = name ‖ 128 ‖ 12 ‖ IV, AAD = serialized context. `lax` ignores the
/// context on unwrap, like LocalStack's KMS sometimes does.
#[derive(Debug)]
struct RawAes {
    namespace: String,
    name: Vec<u8>,
    key: [u8; 32],
    lax: bool,
}

impl RawAes {
    fn new(name: &str, key: [u8; 32]) -> Self {
        Self {
            namespace: "wharf-local".into(),
            name: name.as_bytes().to_vec(),
            key,
            lax: false,
        }
    }
    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key).unwrap())
    }
}

#[async_trait::async_trait]
impl KeyProvider for RawAes {
    fn describe(&self) -> String {
        format!("raw AES key {}", String::from_utf8_lossy(&self.name))
    }
    async fn generate(&self, context: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error> {
        let k = DataKey::random();
        let w = self.wrap(&k, context).await?;
        Ok((k, w))
    }
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, Error> {
        let fail = |reason: &str| Error::Unwrap {
            provider: self.describe(),
            reason: reason.into(),
        };
        if wrapped.provider_id != self.namespace {
            return Err(Error::WrongProvider {
                expected: self.namespace.clone(),
                found: wrapped.provider_id.clone(),
            });
        }
        let info = &wrapped.provider_info;
        let n = self.name.len();
        if info.len() != n + 20 || info[..n] != self.name[..] {
            return Err(fail("the data key was wrapped under another key name"));
        }
        let iv: [u8; 12] = info[n + 8..].try_into().unwrap();
        let aad = if self.lax {
            vec![]
        } else {
            serialize_context(context).unwrap()
        };
        let mut buf = wrapped.ciphertext.clone();
        let pt = self
            .aead()
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
            .map_err(|_| fail("wrong key or wrong encryption context"))?;
        Ok(DataKey::from_slice(pt).unwrap())
    }
    async fn wrap(&self, key: &DataKey, context: &EncryptionContext) -> Result<WrappedKey, Error> {
        let mut iv = [0u8; 12];
        aws_lc_rs::rand::fill(&mut iv).unwrap();
        let aad = if self.lax {
            vec![]
        } else {
            serialize_context(context).unwrap()
        };
        let mut buf = key.as_bytes().to_vec();
        self.aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
            .unwrap();
        let mut info = self.name.clone();
        info.extend_from_slice(&128u32.to_be_bytes());
        info.extend_from_slice(&12u32.to_be_bytes());
        info.extend_from_slice(&iv);
        Ok(WrappedKey {
            provider_id: self.namespace.clone(),
            provider_info: info,
            ciphertext: buf,
        })
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn keyring() -> RawAes {
    RawAes::new("unit", [42; 32])
}

fn small_message(pt: &[u8]) -> Vec<u8> {
    let opts = EncryptOptions::default().frame_length(16);
    block_on(encrypt_with_options(
        &keyring(),
        &ctx(&[("purpose", "unit")]),
        pt,
        &opts,
    ))
    .unwrap()
}

#[test]
fn round_trips_at_frame_boundaries() {
    let kr = keyring();
    let c = ctx(&[("cluster", "c1"), ("purpose", "unit")]);
    for fl in [1u32, 7, 4096] {
        for n in [
            0usize,
            1,
            fl as usize - 1,
            fl as usize,
            fl as usize + 1,
            3 * fl as usize,
            10_000,
        ] {
            let pt = data(n);
            let opts = EncryptOptions::default().frame_length(fl);
            let msg = block_on(encrypt_with_options(&kr, &c, &pt, &opts)).unwrap();
            let out = block_on(decrypt(&kr, &msg, &ctx(&[("purpose", "unit")]))).unwrap();
            assert_eq!(out.plaintext, pt, "frame {fl} size {n}");
            assert_eq!(out.header.context, c);
            assert_eq!(out.header.suite, AlgorithmSuite::Aes256GcmHkdfSha512Commit);
        }
    }
}

#[test]
fn streaming_in_odd_chunks_matches_one_shot() {
    let kr = keyring();
    let c = ctx(&[("purpose", "stream")]);
    let pt = data(100_003);
    let opts = EncryptOptions::default().frame_length(1000);
    let mut enc = block_on(Encryptor::new(Vec::new(), &kr, c.clone(), &opts)).unwrap();
    for chunk in pt.chunks(777) {
        enc.write_all(chunk).unwrap();
    }
    enc.write_all(&[]).unwrap();
    let msg = enc.finish().unwrap();
    assert_eq!(block_on(decrypt(&kr, &msg, &c)).unwrap().plaintext, pt);

    let mut dec = block_on(Decryptor::new(&msg[..], &kr, &c)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 333];
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(dec.is_done());
    assert_eq!(out, pt);
}

#[test]
fn decryptor_leaves_bytes_after_the_message_in_the_reader() {
    let kr = keyring();
    let mut two = small_message(b"first");
    two.extend(small_message(b"second"));
    let mut dec = block_on(Decryptor::new(&two[..], &kr, &EncryptionContext::new())).unwrap();
    let mut out = Vec::new();
    dec.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"first");
    let rest = dec.into_inner();
    let out = block_on(decrypt(&kr, rest, &EncryptionContext::new())).unwrap();
    assert_eq!(out.plaintext, b"second");
}

#[test]
fn every_truncation_is_an_error_and_never_a_panic() {
    let kr = keyring();
    let msg = small_message(&data(50));
    for n in 0..msg.len() {
        let err = block_on(decrypt(&kr, &msg[..n], &EncryptionContext::new())).unwrap_err();
        assert!(
            matches!(err, Error::MessageTruncated { .. }),
            "cut at {n}: {err}"
        );
        // The streaming reader says the same through io::Error.
        if let Ok(mut dec) = block_on(Decryptor::new(&msg[..n], &kr, &EncryptionContext::new())) {
            let e = dec.read_to_end(&mut Vec::new()).unwrap_err();
            let inner = e.get_ref().and_then(|e| e.downcast_ref::<Error>()).unwrap();
            assert!(
                inner.to_string().contains("truncated"),
                "cut at {n}: {inner}"
            );
        }
    }
}

#[test]
fn every_flipped_bit_is_an_error() {
    let kr = keyring();
    let msg = small_message(&data(40));
    for i in 0..msg.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = msg.clone();
            bad[i] ^= bit;
            let r = block_on(decrypt(&kr, &bad, &EncryptionContext::new()));
            assert!(
                r.is_err(),
                "flipping bit {bit:#x} of byte {i} went unnoticed"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut msg = small_message(b"x");
    msg.extend_from_slice(b"junk");
    let err = block_on(decrypt(&keyring(), &msg, &EncryptionContext::new())).unwrap_err();
    assert!(matches!(err, Error::TrailingData { count: 4 }), "{err}");
}

#[test]
fn swapped_frames_are_named() {
    let kr = keyring();
    let msg = small_message(&data(40)); // frames 1, 2 (16 bytes) and final 3 (8 bytes)
    let (h, hl) = Header::parse(&msg).unwrap();
    assert_eq!(h.frame_length, 16);
    let frame = 4 + 12 + 16 + 16;
    let mut bad = msg.clone();
    bad[hl..hl + frame].copy_from_slice(&msg[hl + frame..hl + 2 * frame]);
    bad[hl + frame..hl + 2 * frame].copy_from_slice(&msg[hl..hl + frame]);
    let err = block_on(decrypt(&kr, &bad, &EncryptionContext::new())).unwrap_err();
    assert!(
        err.to_string()
            .contains("frame 2 where frame 1 was expected"),
        "{err}"
    );
    // Dropping the final frame is truncation.
    let err = block_on(decrypt(
        &kr,
        &msg[..hl + 2 * frame],
        &EncryptionContext::new(),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::MessageTruncated { .. }), "{err}");
}

#[test]
fn wrong_master_key_is_named() {
    let msg = small_message(b"secret");
    let other = RawAes::new("unit", [1; 32]);
    let err = block_on(decrypt(&other, &msg, &EncryptionContext::new())).unwrap_err();
    assert!(matches!(err, Error::Unwrap { .. }), "{err}");
    assert!(err.to_string().contains("raw AES key unit"), "{err}");
}

#[test]
fn wrong_expected_context_is_named() {
    let msg = small_message(b"secret");
    let err = block_on(decrypt(&keyring(), &msg, &ctx(&[("purpose", "other")]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong encryption context: expected `purpose` = `other`, the message has `unit`"
    );
    let err = block_on(decrypt(&keyring(), &msg, &ctx(&[("tenant", "a")]))).unwrap_err();
    assert!(err.to_string().contains("no such key"), "{err}");
}

/// A header whose context was edited must fail even when the key provider
/// does not check the context (as LocalStack's KMS sometimes does not).
#[test]
fn edited_context_fails_header_authentication_with_a_lax_provider() {
    let mut lax = keyring();
    lax.lax = true;
    let c = ctx(&[("purpose", "unit")]);
    let msg = block_on(encrypt(&lax, &c, b"secret")).unwrap();
    let at = msg.windows(4).position(|w| w == b"unit").unwrap();
    let mut bad = msg.clone();
    bad[at..at + 4].copy_from_slice(b"evil");
    let err = block_on(decrypt(&lax, &bad, &EncryptionContext::new())).unwrap_err();
    assert!(matches!(err, Error::HeaderAuthentication), "{err}");
}

#[test]
fn a_different_data_key_fails_the_commitment() {
    let msg = small_message(b"secret");
    let err = decrypt_with_data_key(
        &DataKey::from_bytes([0; 32]),
        &msg,
        &EncryptionContext::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::CommitmentMismatch), "{err}");
}

#[test]
fn the_key_this_provider_can_unwrap_is_found_among_several() {
    let mine = keyring();
    let theirs = RawAes::new("theirs", [9; 32]);
    let c = ctx(&[("purpose", "multi")]);
    let (k, w_mine) = block_on(mine.generate(&c)).unwrap();
    let w_theirs = block_on(theirs.wrap(&k, &c)).unwrap();
    let kms = WrappedKey {
        provider_id: "aws-kms".into(),
        provider_info: b"arn:aws:kms:us-east-1:000000000000:key/x".to_vec(),
        ciphertext: vec![1; 10],
    };
    let msg = encrypt_with_data_key(
        &k,
        &[kms, w_theirs, w_mine],
        &c,
        b"hello",
        &EncryptOptions::default(),
    )
    .unwrap();
    assert_eq!(
        block_on(decrypt(&mine, &msg, &c)).unwrap().plaintext,
        b"hello"
    );
    assert_eq!(
        block_on(decrypt(&theirs, &msg, &c)).unwrap().plaintext,
        b"hello"
    );
    let err = block_on(decrypt(&RawAes::new("nobody", [3; 32]), &msg, &c)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("none of the message's 3 encrypted data key(s)"),
        "{err}"
    );
}

#[test]
fn reserved_context_keys_and_bad_frame_lengths_are_refused() {
    let kr = keyring();
    let err = block_on(encrypt(&kr, &ctx(&[("aws-crypto-public-key", "x")]), b"x")).unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    for fl in [0, MAX_FRAME_LENGTH + 1] {
        let opts = EncryptOptions::default().frame_length(fl);
        let err = block_on(encrypt_with_options(
            &kr,
            &EncryptionContext::new(),
            b"x",
            &opts,
        ))
        .unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{err}");
    }
}

/// Shipping many records through a data-key cache costs a handful of
/// provider calls, yet every message decrypts on its own.
#[test]
fn cached_data_keys_serve_many_messages() {
    use std::sync::Arc;

    use crate::{CacheLimits, DataKeyCache};
    let cache = DataKeyCache::new(
        Arc::new(keyring()),
        CacheLimits {
            max_messages: 100,
            ..CacheLimits::default()
        },
    );
    let c = ctx(&[("purpose", "records")]);
    let opts = EncryptOptions::default();
    let mut ids = std::collections::HashSet::new();
    for i in 0..1000u32 {
        let pt = i.to_be_bytes();
        let msg = block_on(encrypt_cached(&cache, &c, &pt, &opts)).unwrap();
        let out = block_on(decrypt(&keyring(), &msg, &c)).unwrap();
        assert_eq!(out.plaintext, pt);
        assert!(ids.insert(out.header.message_id), "message ids are unique");
    }
    assert_eq!(cache.stats().generate_calls, 10);
}

// Known answers: messages written by the Python aws-encryption-sdk
// (envelope/tests/fixtures/make_fixtures.py) with raw AES key 00 01 .. 1f.

fn fixture_keyring() -> RawAes {
    let mut key = [0u8; 32];
    key.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    RawAes::new("fixture-key", key)
}

fn fixture_plaintext(n: usize) -> Vec<u8> {
    let unit = b"wharf fixture plaintext 0123456789\n";
    unit.iter().cycle().take(n).copied().collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn python_sdk_messages_decrypt() {
    let expected = ctx(&[("cluster", "test"), ("purpose", "fixture")]);
    for (name, n, suite) in [
        (
            "python-0478-10000.msg",
            10000,
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        ),
        (
            "python-0478-8192.msg",
            8192,
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        ),
        (
            "python-0578-10000.msg",
            10000,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ),
        (
            "python-0578-0.msg",
            0,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ),
    ] {
        let msg = fixture(name);
        let out = block_on(decrypt(&fixture_keyring(), &msg, &expected))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.plaintext, fixture_plaintext(n), "{name}");
        assert_eq!(out.header.suite, suite, "{name}");
        // And through the streaming reader.
        let mut dec = block_on(Decryptor::new(&msg[..], &fixture_keyring(), &expected)).unwrap();
        let mut pt = Vec::new();
        dec.read_to_end(&mut pt).unwrap();
        assert_eq!(pt, fixture_plaintext(n), "{name} streamed");
    }
}

#[test]
fn a_python_signed_message_with_an_altered_signature_is_refused() {
    let mut msg = fixture("python-0578-10000.msg");
    let last = msg.len() - 1;
    msg[last] ^= 1;
    let expected = EncryptionContext::new();
    let err = block_on(decrypt(&fixture_keyring(), &msg, &expected)).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    // The streaming reader withholds the final frame: it yields the first
    // two frames, then the error, never the last frame's bytes.
    let mut dec = block_on(Decryptor::new(&msg[..], &fixture_keyring(), &expected)).unwrap();
    let mut pt = Vec::new();
    let e = dec.read_to_end(&mut pt).unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    assert_eq!(pt, fixture_plaintext(8192));
}

#[test]
fn flipped_bits_anywhere_in_a_signed_python_message_are_caught() {
    let msg = fixture("python-0578-10000.msg");
    let expected = EncryptionContext::new();
    let kr = fixture_keyring();
    for i in (0..msg.len()).step_by(7) {
        let mut bad = msg.clone();
        bad[i] ^= 0x10;
        assert!(
            block_on(decrypt(&kr, &bad, &expected)).is_err(),
            "flipping a bit of byte {i} went unnoticed"
        );
    }
}

/// The shipper runs these on tokio's multi-threaded runtime.
#[test]
fn streams_and_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let kr = keyring();
    let c = EncryptionContext::new();
    let opts = EncryptOptions::default();
    send(&encrypt(&kr, &c, b"x"));
    send(&decrypt(&kr, b"x", &c));
    send(&Encryptor::new(Vec::new(), &kr, c.clone(), &opts));
    send(&Decryptor::new(&b""[..], &kr, &c));
    let msg = block_on(encrypt(&kr, &c, b"x")).unwrap();
    send(&block_on(Decryptor::new(&msg[..], &kr, &c)).unwrap());
}

/// A reader that decrypts straight into the caller's buffer leaves nothing
/// of a frame that failed its tag there.
#[test]
fn a_failed_frame_leaves_no_plaintext_in_the_callers_buffer() {
    let kr = keyring();
    let pt = vec![0xAA; 40];
    let msg = small_message(&pt); // frames of 16 bytes
    let (_, hl) = Header::parse(&msg).unwrap();
    let mut bad = msg.clone();
    let frame = 4 + 12 + 16 + 16;
    bad[hl + frame + 4 + 12 + 3] ^= 1; // inside frame 2's ciphertext
    let mut dec = block_on(Decryptor::new(&bad[..], &kr, &EncryptionContext::new())).unwrap();
    let mut buf = [0x55u8; 64];
    assert_eq!(dec.read(&mut buf).unwrap(), 16);
    assert_eq!(&buf[..16], &pt[..16]);
    let mut buf = [0x55u8; 64];
    let err = dec.read(&mut buf).unwrap_err();
    assert!(err.to_string().contains("frame 2"), "{err}");
    assert!(
        buf[..16].iter().all(|&b| b == 0),
        "unverified bytes left: {:?}",
        &buf[..16]
    );
    assert!(dec.read(&mut buf).is_err(), "a failed reader stays failed");
}

#[test]
fn signed_messages_round_trip_and_their_signature_is_checked() {
    let kr = keyring();
    let c = ctx(&[("purpose", "signed")]);
    let opts = EncryptOptions::default()
        .frame_length(1000)
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
    let pt = data(5000);
    let msg = block_on(encrypt_with_options(&kr, &c, &pt, &opts)).unwrap();
    assert_eq!(&msg[..3], &[0x02, 0x05, 0x78]);
    let out = block_on(decrypt(&kr, &msg, &c)).unwrap();
    assert_eq!(out.plaintext, pt);
    assert!(out.header.context.contains_key(PUBLIC_KEY_CONTEXT_KEY));

    // Streaming writer, odd chunks.
    let mut enc = block_on(Encryptor::new(Vec::new(), &kr, c.clone(), &opts)).unwrap();
    for chunk in pt.chunks(333) {
        enc.write_all(chunk).unwrap();
    }
    let streamed = enc.finish().unwrap();
    assert_eq!(block_on(decrypt(&kr, &streamed, &c)).unwrap().plaintext, pt);

    let mut bad = msg.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = block_on(decrypt(&kr, &bad, &c)).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    // Cut off the signature: truncated.
    let err = block_on(decrypt(&kr, &msg[..msg.len() - 10], &c)).unwrap_err();
    assert!(matches!(err, Error::MessageTruncated { .. }), "{err}");
}

#[test]
fn signed_messages_need_a_key_provider() {
    let opts = EncryptOptions::default().suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
    let k = DataKey::random();
    let w = block_on(keyring().wrap(&k, &EncryptionContext::new())).unwrap();
    let err = encrypt_with_data_key(&k, &[w], &EncryptionContext::new(), b"x", &opts).unwrap_err();
    assert!(err.to_string().contains("signed (0x0578)"), "{err}");
}

/// Message ids come from a pool refilled every few messages: every message
/// still gets its own, across refills and threads.
#[test]
fn every_message_gets_its_own_id() {
    let key = DataKey::from_bytes([4; 32]);
    let wrapped = WrappedKey {
        provider_id: "p".into(),
        provider_info: b"i".to_vec(),
        ciphertext: vec![1; 8],
    };
    let ids_of = |n: usize| -> Vec<[u8; 32]> {
        (0..n)
            .map(|_| {
                let msg = encrypt_with_data_key(
                    &key,
                    std::slice::from_ref(&wrapped),
                    &EncryptionContext::new(),
                    b"x",
                    &EncryptOptions::default(),
                )
                .unwrap();
                Header::parse(&msg).unwrap().0.message_id
            })
            .collect()
    };
    let mut ids = ids_of(100);
    ids.extend(std::thread::scope(|s| {
        s.spawn(|| ids_of(100)).join().unwrap()
    }));
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 200, "a message id was handed out twice");
    assert!(ids.iter().all(|id| id != &[0; 32]), "an all-zero id");
}

/// A buffer reused across messages ends up holding exactly each message:
/// a long message first, then shorter ones, leave nothing of the earlier.
#[test]
fn reused_output_buffer_holds_exactly_each_message() {
    let key = DataKey::from_bytes([6; 32]);
    let wrapped = WrappedKey {
        provider_id: "p".into(),
        provider_info: b"i".to_vec(),
        ciphertext: vec![2; 8],
    };
    let context: EncryptionContext = [("k".to_string(), "v".to_string())].into();
    let opts = EncryptOptions::default().frame_length(1000);
    let (mut out, mut plain) = (Vec::new(), Vec::new());
    for len in [10_000usize, 2_500, 1_000, 0, 7_001] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        encrypt_with_data_key_into(
            &key,
            std::slice::from_ref(&wrapped),
            &context,
            &plaintext,
            &opts,
            &mut out,
        )
        .unwrap();
        let fresh = encrypt_with_data_key(
            &key,
            std::slice::from_ref(&wrapped),
            &context,
            &plaintext,
            &opts,
        )
        .unwrap();
        assert_eq!(out.len(), fresh.len(), "{len}-byte message");
        let back = decrypt_with_data_key(&key, &out, &context).unwrap();
        assert_eq!(back.plaintext, plaintext, "{len}-byte message");
        decrypt_with_data_key_into(&key, &out, &context, &mut plain).unwrap();
        assert_eq!(plain, plaintext, "{len}-byte message into a reused buffer");
    }
    // A message that fails to verify leaves nothing in the buffer.
    let last = out.len() - 1; // the final frame's tag, after seven good frames
    out[last] ^= 1;
    let err = decrypt_with_data_key_into(&key, &out, &context, &mut plain).unwrap_err();
    assert!(matches!(err, Error::FrameAuthentication { .. }), "{err}");
    assert!(plain.is_empty(), "plaintext left after a failed message");
}

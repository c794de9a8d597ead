//! Whole messages under a known raw AES master key (the fixtures' key
//! 00 01 .. 1f, namespace `wharf-local`, name `fixture-key`), so that
//! mutations of real messages reach the frame reader and the signature
//! check. Decryption must return plaintext or an error, never panic, and
//! the streaming reader must agree with the one-shot decryption.
#![no_main]

use std::future::Future;
use std::io::Read;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use libfuzzer_sys::fuzz_target;
use wharf_envelope::message::{decrypt, Decryptor};
use wharf_envelope::{serialize_context, DataKey, EncryptionContext, Error, KeyProvider, WrappedKey};

#[derive(Debug)]
struct FixtureKey;

#[async_trait::async_trait]
impl KeyProvider for FixtureKey {
    fn describe(&self) -> String {
        "fixture key".into()
    }
    async fn generate(&self, _: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error> {
        unreachable!("the fuzz target only decrypts")
    }
    async fn unwrap(&self, w: &WrappedKey, context: &EncryptionContext) -> Result<DataKey, Error> {
        let fail = || Error::Unwrap { provider: self.describe(), reason: "no".into() };
        let name = b"fixture-key";
        let info = &w.provider_info;
        if w.provider_id != "wharf-local" || info.len() != name.len() + 20 || !info.starts_with(name) {
            return Err(fail());
        }
        let iv: [u8; 12] = info[name.len() + 8..].try_into().map_err(|_| fail())?;
        let key: Vec<u8> = (0..32).collect();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut buf = w.ciphertext.clone();
        let aad = serialize_context(context).ok_or_else(fail)?;
        let pt = key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
            .map_err(|_| fail())?;
        DataKey::from_slice(pt).ok_or_else(fail)
    }
    async fn wrap(&self, _: &DataKey, _: &EncryptionContext) -> Result<WrappedKey, Error> {
        unreachable!("the fuzz target only decrypts")
    }
}

/// Polls a future that never waits (the provider above does no I/O).
fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("nothing here waits"),
    }
}

fuzz_target!(|data: &[u8]| {
    let none = EncryptionContext::new();
    let one_shot = ready(decrypt(&FixtureKey, data, &none));
    let streamed = ready(Decryptor::new(data, &FixtureKey, &none)).and_then(|mut d| {
        let mut out = Vec::new();
        d.read_to_end(&mut out).map_err(Error::Stream)?;
        Ok((out, d.into_inner().len()))
    });
    match (&one_shot, &streamed) {
        (Ok(m), Ok((out, rest))) => {
            assert_eq!(&m.plaintext, out);
            assert_eq!(*rest, 0);
        }
        // The one-shot form also refuses trailing bytes.
        (Err(Error::TrailingData { .. }), Ok((_, rest))) => assert!(*rest > 0),
        (Ok(_), Err(e)) => panic!("streaming failed where one-shot succeeded: {e}"),
        _ => {}
    }
});

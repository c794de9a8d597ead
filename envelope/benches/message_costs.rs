//! What one message costs before any byte is encrypted: the pieces of the
//! fixed per-message work (message id, HKDF-SHA512 key derivation and
//! commitment, AES key setup) timed one by one, to explain the small-message
//! rows of the `envelope` bench. `sha2 compress512 x10` is the floor of the
//! format's key derivation (HKDF-SHA512 extract plus two one-block expands
//! is ten SHA-512 block compressions, whatever the implementation);
//! `whole message of 0 B` is everything a message costs besides its bytes.
//!
//! Run: `cargo bench -p wharf-envelope --bench message_costs`

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA512};

struct L(usize);

impl KeyType for L {
    fn len(&self) -> usize {
        self.0
    }
}

/// Prints the mean time of `f` over 20,000 runs after 1,000 warm-up runs.
fn t(name: &str, mut f: impl FnMut()) {
    for _ in 0..1000 {
        f();
    }
    let n = 20000;
    let s = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name}: {:.2} us",
        s.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
fn main() {
    t("rand32", || {
        let mut b = [0u8; 32];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        black_box(b);
    });
    t("hkdf extract", || {
        let p = Salt::new(HKDF_SHA512, &[1; 32]).extract(&[2; 32]);
        black_box(p);
    });
    let prk = Salt::new(HKDF_SHA512, &[1; 32]).extract(&[2; 32]);
    t("hkdf expand", || {
        let mut o = [0u8; 32];
        prk.expand(&[b"abc"], L(32)).unwrap().fill(&mut o).unwrap();
        black_box(o);
    });
    t("hmac key+sign", || {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, &[1; 32]);
        black_box(aws_lc_rs::hmac::sign(&k, &[2; 32]));
    });
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, &[1; 32]);
    t("hmac sign", || {
        black_box(aws_lc_rs::hmac::sign(&k, &[2; 32]));
    });
    t("hmac ctx", || {
        let mut c = aws_lc_rs::hmac::Context::with_key(&k);
        c.update(b"abc");
        c.update(&[1]);
        black_box(c.sign());
    });
    t("sha512 160B", || {
        let mut c = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512);
        c.update(&[1u8; 128]);
        c.update(&[2u8; 32]);
        black_box(c.finish());
    });
    let mut base = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512);
    base.update(&[1u8; 128]);
    t("sha512 clone+32B", || {
        let mut c = base.clone();
        c.update(&[2u8; 32]);
        black_box(c.finish());
    });
    let block = [5u8; 128];
    t("sha2 compress512 x1", || {
        let mut st = [1u64; 8];
        sha2::block_api::compress512(&mut st, &[block]);
        black_box(st);
    });
    t("sha2 compress512 x10", || {
        let mut st = [1u64; 8];
        for _ in 0..10 {
            sha2::block_api::compress512(&mut st, &[block]);
        }
        black_box(st);
    });
    t("aes key", || {
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[3; 32]).unwrap());
        black_box(k);
    });
    let data_key = wharf_envelope::DataKey::from_bytes([9; 32]);
    let wrapped = wharf_envelope::WrappedKey {
        provider_id: "aws-kms".into(),
        provider_info: b"arn:aws:kms:us-east-1:000000000000:key/0".to_vec(),
        ciphertext: vec![0xAB; 184],
    };
    let context: wharf_envelope::EncryptionContext =
        [("cluster".to_string(), "bench".to_string())].into();
    let opts = wharf_envelope::message::EncryptOptions::default().frame_length(64 * 1024);
    let mut out = Vec::new();
    for size in [0usize, 1024, 64 * 1024] {
        let plaintext = vec![1u8; size];
        t(&format!("whole message of {size} B"), || {
            wharf_envelope::message::encrypt_with_data_key_into(
                &data_key,
                std::slice::from_ref(&wrapped),
                &context,
                &plaintext,
                &opts,
                &mut out,
            )
            .unwrap();
            black_box(&out);
        });
    }
    let mut plain = Vec::new();
    for size in [0usize, 64 * 1024] {
        let message = wharf_envelope::message::encrypt_with_data_key(
            &data_key,
            std::slice::from_ref(&wrapped),
            &context,
            &vec![1u8; size],
            &opts,
        )
        .unwrap();
        if size == 0 {
            t("parse header", || {
                black_box(wharf_envelope::message::Header::parse(&message).unwrap());
            });
        }
        t(&format!("decrypt whole message of {size} B"), || {
            wharf_envelope::message::decrypt_with_data_key_into(
                &data_key, &message, &context, &mut plain,
            )
            .unwrap();
            black_box(&plain);
        });
    }
    t("alloc 64k zeroed", || {
        let v = vec![0u8; 65536];
        black_box(v);
    });
    t("alloc 64k + resize", || {
        let mut v: Vec<u8> = Vec::with_capacity(65536 + 100);
        v.resize(65536, 0);
        black_box(v);
    });
}

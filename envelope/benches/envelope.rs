//! Throughput of Wharf's AWS Encryption SDK messages beside raw aws-lc-rs
//! AES-256-GCM, measured in the same run on the same buffers.
//!
//! Run: `cargo bench -p wharf-envelope --bench envelope`
//! (`-- --quick` for a shorter run). Prints the hardware, then one row per
//! size: MiB/s of raw seal/open in place, of `encrypt_with_data_key` /
//! `decrypt_with_data_key` at 64 KiB and 4 KiB frames, and the ratio to raw.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use wharf_envelope::message::{decrypt_with_data_key, encrypt_with_data_key, EncryptOptions};
use wharf_envelope::{DataKey, EncryptionContext, WrappedKey};

const SIZES: [usize; 7] = [
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
];

/// Runs `f` repeatedly for about `budget` in each of several rounds and
/// returns the best rate in MiB/s (the least disturbed round).
fn rate(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut best = 0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget / 5 {
            f();
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        best = best.max(n as f64 * bytes as f64 / secs / (1024.0 * 1024.0));
    }
    best
}

fn hardware() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let simd: Vec<&str> = ["aes", "pclmulqdq", "avx2", "avx512f", "vaes", "vpclmulqdq"]
        .into_iter()
        .filter(|f| has(f))
        .collect();
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {threads} hardware threads, {} {}, flags: {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        simd.join(" ")
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 150 } else { 600 });
    println!("hardware: {}", hardware());
    println!("single thread; MiB/s, best of 5 rounds; % = of raw AES-256-GCM in the same run\n");
    println!(
        "| size | raw seal | SDK enc 64K frames | % | SDK enc 4K frames | % | raw open | SDK dec 64K frames | % | SDK dec 4K frames | % |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");

    let raw_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());
    let data_key = DataKey::from_bytes([9; 32]);
    let wrapped = WrappedKey {
        provider_id: "aws-kms".into(),
        provider_info:
            b"arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000".to_vec(),
        ciphertext: vec![0xAB; 184],
    };
    let context: EncryptionContext = [("cluster".to_string(), "bench".to_string())].into();

    for size in SIZES {
        let plaintext: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut buf = plaintext.clone();

        let raw_seal = rate(size, budget, || {
            let tag = raw_key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap();
            let _ = black_box(tag);
        });
        // Raw open: from a sealed copy into `buf`, as the SDK decryptor
        // opens from the message into its output.
        let mut sealed = plaintext.clone();
        let tag = raw_key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([2; 12]),
                Aad::empty(),
                &mut sealed,
            )
            .unwrap();
        let raw_open = rate(size, budget, || {
            raw_key
                .open_separate_gather(
                    Nonce::assume_unique_for_key([2; 12]),
                    Aad::empty(),
                    &sealed,
                    tag.as_ref(),
                    &mut buf,
                )
                .unwrap();
            black_box(&buf);
        });

        let mut row = format!("| {} | {raw_seal:.0} ", human(size));
        let mut dec_cols = format!("| {raw_open:.0} ");
        for frame in [64 * 1024u32, 4096] {
            let opts = EncryptOptions::default().frame_length(frame);
            let enc = rate(size, budget, || {
                let msg = encrypt_with_data_key(
                    &data_key,
                    vec![wrapped.clone()],
                    context.clone(),
                    &plaintext,
                    &opts,
                )
                .unwrap();
                black_box(msg);
            });
            let msg = encrypt_with_data_key(
                &data_key,
                vec![wrapped.clone()],
                context.clone(),
                &plaintext,
                &opts,
            )
            .unwrap();
            let dec = rate(size, budget, || {
                let out = decrypt_with_data_key(&data_key, &msg, &context).unwrap();
                black_box(out);
            });
            assert_eq!(
                decrypt_with_data_key(&data_key, &msg, &context)
                    .unwrap()
                    .plaintext,
                plaintext
            );
            row += &format!("| {enc:.0} | {:.0}% ", 100.0 * enc / raw_seal);
            dec_cols += &format!("| {dec:.0} | {:.0}% ", 100.0 * dec / raw_open);
        }
        println!("{row}{dec_cols}|");
    }
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

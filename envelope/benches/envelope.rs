//! Throughput of Wharf's AWS Encryption SDK messages beside raw aws-lc-rs
//! AES-256-GCM, measured in the same run on the same buffers.
//!
//! Run: `cargo bench -p wharf-envelope --bench envelope`
//! (`-- --quick` for a shorter run). Prints the hardware, then one row per
//! size: MiB/s of raw seal/open, of `encrypt_with_data_key_into` /
//! `decrypt_with_data_key_into` (one output buffer kept across messages,
//! as raw AES reuses its buffer) at 64 KiB and 4 KiB frames, and their
//! ratio to raw; then a second table for at-rest frames of that size
//! (`SealedWriter::append`, `SealedReader::read_at`) in a file under
//! `/dev/shm` (or the temp dir), so the page cache, not a disk, is measured.
//! Raw AES and Wharf take turns in short slices, and each % is the median
//! of the per-round ratios, so a shared machine's drift hits both alike.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use wharf_envelope::atrest::{SealedReader, SealedWriter, WriterOptions};
use wharf_envelope::message::{
    decrypt_with_data_key, decrypt_with_data_key_into, encrypt_with_data_key,
    encrypt_with_data_key_into, EncryptOptions,
};
use wharf_envelope::{DataKey, EncryptionContext, LocalKeyProvider, WrappedKey};

const SIZES: [usize; 7] = [
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
];

/// Rounds of [`compare`]: enough for a median that one disturbed round
/// cannot move.
const ROUNDS: u32 = 11;

/// Rates of several ways of doing the same work, measured interleaved so
/// that a slower or busier moment of the machine hits all of them alike:
/// each round runs every `(bytes per call, f)` in turn for a slice of
/// `budget / ROUNDS`. Returns, per function, its median rate in MiB/s and
/// the median over rounds of its rate divided by the first function's (the
/// raw baseline) in that same round.
fn compare(budget: Duration, fs: &mut [(usize, &mut dyn FnMut())]) -> Vec<(f64, f64)> {
    for (_, f) in fs.iter_mut() {
        f(); // warm-up
    }
    let slice = budget / ROUNDS;
    let mut rates = vec![Vec::new(); fs.len()];
    let mut ratios = vec![Vec::new(); fs.len()];
    for _ in 0..ROUNDS {
        let mut round = Vec::with_capacity(fs.len());
        for (bytes, f) in fs.iter_mut() {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < slice {
                f();
                n += 1;
            }
            let secs = start.elapsed().as_secs_f64();
            round.push(n as f64 * *bytes as f64 / secs / (1024.0 * 1024.0));
        }
        for (i, r) in round.iter().enumerate() {
            rates[i].push(*r);
            ratios[i].push(r / round[0]);
        }
    }
    rates
        .into_iter()
        .zip(ratios)
        .map(|(r, q)| (median(r), median(q)))
        .collect()
}

/// Raw AES-256-GCM, the baseline: seals `buf` in place under nonce
/// `[n; 12]` and returns the tag.
fn raw_seal(key: &LessSafeKey, n: u8, buf: &mut [u8]) -> Tag {
    key.seal_in_place_separate_tag(Nonce::assume_unique_for_key([n; 12]), Aad::empty(), buf)
        .unwrap()
}

/// Raw AES-256-GCM, the baseline: opens `sealed` and `tag` (nonce
/// `[n; 12]`) into `out`.
fn raw_open(key: &LessSafeKey, n: u8, sealed: &[u8], tag: &[u8], out: &mut [u8]) {
    key.open_separate_gather(
        Nonce::assume_unique_for_key([n; 12]),
        Aad::empty(),
        sealed,
        tag,
        out,
    )
    .unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    println!("single thread; MiB/s, median of {ROUNDS} rounds in which raw AES-256-GCM and the SDK take turns; % = median of the per-round ratios\n");
    println!(
        "| size | raw seal | SDK enc 64K frames | % | SDK enc 4K frames | % | raw open | SDK dec 64K frames | % | SDK dec 4K frames | % |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");

    let raw_key = &LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());
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
        let mut sealed = plaintext.clone();
        let tag = raw_seal(raw_key, 2, &mut sealed);
        let mut seal = || {
            let tag = raw_seal(raw_key, 1, &mut buf);
            let _ = black_box(tag);
        };
        let [opts64, opts4] =
            [64 * 1024u32, 4096].map(|f| EncryptOptions::default().frame_length(f));
        let encrypt = |opts: &EncryptOptions| {
            encrypt_with_data_key(
                &data_key,
                std::slice::from_ref(&wrapped),
                &context,
                &plaintext,
                opts,
            )
            .unwrap()
        };
        // Into one output buffer kept across messages, as raw AES seals
        // into one buffer kept across calls.
        let encrypt_into = |opts: &EncryptOptions, out: &mut Vec<u8>| {
            encrypt_with_data_key_into(
                &data_key,
                std::slice::from_ref(&wrapped),
                &context,
                &plaintext,
                opts,
                out,
            )
            .unwrap();
            black_box(&out);
        };
        let (mut out64, mut out4) = (Vec::new(), Vec::new());
        let mut enc64 = || encrypt_into(&opts64, &mut out64);
        let mut enc4 = || encrypt_into(&opts4, &mut out4);
        let enc = compare(
            budget,
            &mut [(size, &mut seal), (size, &mut enc64), (size, &mut enc4)],
        );

        // Raw open: from a sealed copy into `buf`, as the SDK decryptor
        // opens from the message into its output.
        let mut buf = plaintext.clone();
        let mut open = || {
            raw_open(raw_key, 2, &sealed, tag.as_ref(), &mut buf);
            black_box(&buf);
        };
        let [msg64, msg4] = [&opts64, &opts4].map(encrypt);
        for msg in [&msg64, &msg4] {
            let out = decrypt_with_data_key(&data_key, msg, &context).unwrap();
            assert_eq!(out.plaintext, plaintext);
        }
        let decrypt = |msg: &[u8], out: &mut Vec<u8>| {
            black_box(decrypt_with_data_key_into(&data_key, msg, &context, out).unwrap());
        };
        let (mut plain64, mut plain4) = (Vec::new(), Vec::new());
        let mut dec64 = || decrypt(&msg64, &mut plain64);
        let mut dec4 = || decrypt(&msg4, &mut plain4);
        let dec = compare(
            budget,
            &mut [(size, &mut open), (size, &mut dec64), (size, &mut dec4)],
        );
        let cols = |m: &[(f64, f64)]| {
            let mut c = format!("| {:.0} ", m[0].0);
            for (rate, ratio) in &m[1..] {
                c += &format!("| {rate:.0} | {:.0}% ", 100.0 * ratio);
            }
            c
        };
        println!("| {} {}{}|", human(size), cols(&enc), cols(&dec));
    }
    at_rest(budget, raw_key);
}

/// At-rest frames of each size: append throughput (files rolled at 64 MiB)
/// and read-back throughput of a file of such frames, beside raw seal/open.
fn at_rest(budget: Duration, raw_key: &LessSafeKey) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = LocalKeyProvider::from_key([5; 32]);
    let context: EncryptionContext = [("purpose".to_string(), "bench".to_string())].into();
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    println!(
        "\nat-rest frames (files in {}):\n",
        dir.path().parent().unwrap().display()
    );
    println!("| frame size | raw seal + write | append | % | raw read + open | read | % |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut n = 0;
    let new_file = |n: &mut u32| {
        *n += 1;
        let path = dir.path().join(format!("f{n}"));
        let opts = WriterOptions {
            max_frame_len: 4 << 20,
        };
        (
            path.clone(),
            rt.block_on(SealedWriter::create_with(&path, &keys, &context, opts))
                .unwrap(),
        )
    };
    for size in SIZES {
        let plaintext: Vec<u8> = (0..size).map(|i| i as u8).collect();
        // The raw baseline writes too: sealed frames appended to a plain
        // file beside Wharf's, rolled alike, so the % is the format's cost
        // and not the page cache's.
        let mut buf = plaintext.clone();
        let plain_path = dir.path().join("plain");
        let mut plain = std::fs::File::create(&plain_path).unwrap();
        let mut plain_len = 0usize;
        let mut frame = vec![0u8; size + 16];
        let mut seal_write = || {
            let (ct, tag_out) = frame.split_at_mut(size);
            let tag = raw_seal(raw_key, 1, ct);
            tag_out.copy_from_slice(tag.as_ref());
            plain.write_all(&frame).unwrap();
            plain_len += frame.len();
            if plain_len > 64 << 20 {
                plain = std::fs::File::create(&plain_path).unwrap();
                plain_len = 0;
            }
        };
        let (mut path, mut writer) = new_file(&mut n);
        let mut append = || {
            writer.append(&plaintext).unwrap();
            if writer.position() > 64 << 20 {
                std::fs::remove_file(&path).unwrap();
                (path, writer) = new_file(&mut n);
            }
        };
        let seal = compare(budget, &mut [(size, &mut seal_write), (size, &mut append)]);
        drop(writer);
        std::fs::remove_file(&path).unwrap();

        let (path, mut writer) = new_file(&mut n);
        let frames = ((16 << 20) / size).max(16);
        for _ in 0..frames {
            writer.append(&plaintext).unwrap();
        }
        writer.finish().unwrap();
        let reader = rt.block_on(SealedReader::open(&path, &keys)).unwrap();
        // Raw read: the same number of frames, each sealed with its tag,
        // read back from a plain file one read per frame and opened.
        let sealed_frame = {
            let mut f = plaintext.clone();
            let tag = raw_seal(raw_key, 2, &mut f);
            f.extend_from_slice(tag.as_ref());
            f
        };
        {
            let mut plain = std::fs::File::create(&plain_path).unwrap();
            for _ in 0..frames {
                plain.write_all(&sealed_frame).unwrap();
            }
        }
        let mut frame_buf = sealed_frame.clone();
        let mut read_open = || {
            // One read per frame, as `read_at` does one `pread` per frame.
            let mut plain = std::fs::File::open(&plain_path).unwrap();
            for _ in 0..frames {
                plain.read_exact(&mut frame_buf).unwrap();
                let (ct, tag) = frame_buf.split_at(size);
                raw_open(raw_key, 2, ct, tag, &mut buf);
            }
            black_box(&buf);
        };
        // `read_at`, frame after frame: how the broker reads a segment.
        let mut read = || {
            let (mut total, mut pos) = (0, reader.data_start());
            while let Some(f) = reader.read_at(pos).unwrap() {
                total += f.data.len();
                pos = f.next_position;
            }
            assert_eq!(total, size * frames);
        };
        let open = compare(
            budget,
            &mut [(size * frames, &mut read_open), (size * frames, &mut read)],
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&plain_path).unwrap();
        println!(
            "| {} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0} | {:.0}% |",
            human(size),
            seal[0].0,
            seal[1].0,
            100.0 * seal[1].1,
            open[0].0,
            open[1].0,
            100.0 * open[1].1
        );
    }
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

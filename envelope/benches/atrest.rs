//! Throughput of at-rest frames (`SealedWriter::append`,
//! `SealedReader::read_at`) beside raw aws-lc-rs AES-256-GCM on the same
//! buffers, in the same run.
//!
//! Run: `cargo bench -p wharf-envelope --bench atrest` (`-- --quick` for a
//! shorter run). Files go to /dev/shm when it exists (so the figures are
//! the format's cost, not the disk's), else to the system temp dir; no
//! fsync. Prints the hardware, then one row per frame size: MiB/s of raw
//! seal/open in place, of append/read_at, and the ratio to raw.

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use wharf_envelope::atrest::{SealedReader, SealedWriter, WriterOptions};
use wharf_envelope::{EncryptionContext, LocalKeyProvider};

const SIZES: [usize; 5] = [1 << 10, 4 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Bytes written per file before a new one is started (bounds memory use).
const FILE_BYTES: usize = 64 << 20;

/// Best of 5 rounds of about `budget / 5`, in MiB/s.
fn rate(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = 0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget / 5 {
            f();
            n += 1;
        }
        best = best.max(n as f64 * bytes as f64 / start.elapsed().as_secs_f64() / 1048576.0);
    }
    best
}

fn hardware() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {threads} hardware threads, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 200 } else { 1000 });
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    println!("hardware: {}", hardware());
    println!("files in {}; single thread; MiB/s, best of 5 rounds; % = of raw AES-256-GCM with the same I/O, in the same run\n", dir.path().display());
    println!("raw seal/open: in memory; +I/O: raw seal then pwrite to a file, pread into a new buffer then raw open\n");
    println!("| frame | raw seal | raw seal +I/O | append | % of +I/O | raw open | raw open +I/O | read_at | % of +I/O |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");

    let keys = LocalKeyProvider::random();
    let ctx: EncryptionContext = [("purpose".to_string(), "bench".to_string())].into();
    let raw_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());
    let opts = WriterOptions {
        max_frame_len: 1 << 20,
    };

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

        // Baselines with the same file I/O: raw seal then pwrite at the end
        // of a growing file; pread into a fresh buffer then raw open.
        let io_path = dir.path().join(format!("io{size}"));
        let io_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&io_path)
            .unwrap();
        let mut io_pos = 0u64;
        let raw_seal_io = rate(size, budget, || {
            if io_pos as usize > FILE_BYTES {
                io_file.set_len(0).unwrap();
                io_pos = 0;
            }
            buf.copy_from_slice(&plaintext);
            let tag = raw_key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap();
            io_file.write_all_at(&buf, io_pos).unwrap();
            io_file
                .write_all_at(tag.as_ref(), io_pos + size as u64)
                .unwrap();
            io_pos += size as u64 + 16;
        });
        io_file.set_len(0).unwrap();
        let frames = (FILE_BYTES / size).max(1);
        for i in 0..frames {
            io_file.write_all_at(&sealed, (i * size) as u64).unwrap();
        }
        let mut j = 0;
        let raw_open_io = rate(size, budget, || {
            let mut b = vec![0u8; size];
            io_file
                .read_exact_at(&mut b, ((j % frames) * size) as u64)
                .unwrap();
            raw_key
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key([2; 12]),
                    Aad::empty(),
                    tag.as_ref(),
                    &mut b,
                )
                .unwrap();
            black_box(&b);
            j += 1;
        });
        drop(io_file);
        std::fs::remove_file(&io_path).unwrap();

        // Append: a new file every FILE_BYTES.
        let mut n_file = 0;
        let new_writer = |n: &mut usize| {
            *n += 1;
            let path = dir.path().join(format!("w{size}-{n}"));
            block_on(SealedWriter::create_with(&path, &keys, &ctx, opts)).unwrap()
        };
        let mut writer = new_writer(&mut n_file);
        let append = rate(size, budget, || {
            if writer.position() as usize > FILE_BYTES {
                let old = std::mem::replace(&mut writer, new_writer(&mut n_file));
                let path = old.path().to_path_buf();
                drop(old);
                std::fs::remove_file(path).unwrap();
            }
            black_box(writer.append(&plaintext).unwrap());
        });

        // read_at: over a file of about FILE_BYTES, round and round.
        let path = dir.path().join(format!("r{size}"));
        let mut w = block_on(SealedWriter::create_with(&path, &keys, &ctx, opts)).unwrap();
        let positions: Vec<u64> = (0..(FILE_BYTES / size).max(1))
            .map(|_| w.append(&plaintext).unwrap())
            .collect();
        w.finish().unwrap();
        let reader = block_on(SealedReader::open(&path, &keys)).unwrap();
        let mut i = 0;
        let read = rate(size, budget, || {
            let frame = reader
                .read_at(positions[i % positions.len()])
                .unwrap()
                .unwrap();
            black_box(frame);
            i += 1;
        });
        std::fs::remove_file(&path).unwrap();

        println!(
            "| {} | {raw_seal:.0} | {raw_seal_io:.0} | {append:.0} | {:.0}% | {raw_open:.0} | {raw_open_io:.0} | {read:.0} | {:.0}% |",
            if size >= 1 << 20 {
                format!("{} MiB", size >> 20)
            } else {
                format!("{} KiB", size >> 10)
            },
            100.0 * append / raw_seal_io,
            100.0 * read / raw_open_io
        );
    }
}

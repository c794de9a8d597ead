//! Writes real at-rest files, sealed under the fuzz key, as the seed
//! corpus of `atrest_frames` and `atrest_header`:
//! `cargo run --release --manifest-path fuzz/Cargo.toml --example make_atrest_corpus`.

use std::fs;
use std::path::Path;

use wharf_envelope::atrest::{rotate_file, SealedWriter, WriterOptions};
use wharf_envelope::{EncryptionContext, LocalKeyProvider};
use wharf_fuzz::{block_on, fuzz_keys};

fn frame(n: u64, len: usize) -> Vec<u8> {
    let mut v = format!("frame {n}:").into_bytes();
    v.resize(len.max(v.len()), b'x');
    v
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let frames_dir = root.join("atrest_frames");
    let header_dir = root.join("atrest_header");
    fs::create_dir_all(&frames_dir).unwrap();
    fs::create_dir_all(&header_dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let keys = fuzz_keys();
    let ctx: EncryptionContext = [("purpose".to_string(), "fuzz".to_string())].into();
    let opts = WriterOptions { max_frame_len: 512 };

    let mut files = vec![];
    // Finished, three frames.
    let p = tmp.path().join("finished");
    let mut w = block_on(SealedWriter::create_with(&p, &keys, &ctx, opts)).unwrap();
    for n in 0..3 {
        w.append(&frame(n, 20 + n as usize * 30)).unwrap();
    }
    w.finish().unwrap();
    files.push(p);
    // Unfinished, reopened twice, with an empty context.
    let p = tmp.path().join("reopened");
    let mut w = block_on(SealedWriter::create_with(
        &p,
        &keys,
        &EncryptionContext::new(),
        opts,
    ))
    .unwrap();
    w.append(&frame(0, 10)).unwrap();
    drop(w);
    for round in 1..3 {
        let (mut w, _) = block_on(SealedWriter::open_append(&p, &keys)).unwrap();
        w.append(&frame(round, 10)).unwrap();
    }
    files.push(p);
    // No frames at all.
    let p = tmp.path().join("empty");
    drop(block_on(SealedWriter::create_with(&p, &keys, &ctx, opts)).unwrap());
    files.push(p);
    // Rotated away and back, leaving generation 3 in slot 0.
    let p = tmp.path().join("rotated");
    let mut w = block_on(SealedWriter::create_with(&p, &keys, &ctx, opts)).unwrap();
    w.append(&frame(0, 5)).unwrap();
    w.finish().unwrap();
    let other = LocalKeyProvider::from_key([7; 32]);
    block_on(rotate_file(&p, &keys, &other)).unwrap();
    block_on(rotate_file(&p, &other, &keys)).unwrap();
    files.push(p);

    for p in files {
        let bytes = fs::read(&p).unwrap();
        let name = p.file_name().unwrap();
        fs::write(frames_dir.join(name), &bytes).unwrap();
        // The header target only looks at the header.
        let slot_len = u32::from_be_bytes(bytes[12..16].try_into().unwrap()) as usize;
        fs::write(header_dir.join(name), &bytes[..32 + 2 * slot_len]).unwrap();
    }
    println!("wrote the seed corpus to {}", root.display());
}

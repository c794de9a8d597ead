//! Tests of the whole format: damage, crashes, reordering, nonces, keys.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::crypto::{self, session_key_bytes};
use super::header::read_header;
use super::reader::Step;
use super::record::Kind;
use super::*;
use crate::{EncryptionContext, Error, KeyProvider, LocalKeyProvider};

fn ctx() -> EncryptionContext {
    [
        ("cluster".to_string(), "c1".to_string()),
        ("purpose".to_string(), "test".to_string()),
    ]
    .into()
}

fn frame_data(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

/// Writes `n` frames of `len` bytes; returns their positions.
async fn write_file(
    path: &Path,
    keys: &dyn KeyProvider,
    n: usize,
    len: usize,
    finish: bool,
) -> Vec<u64> {
    let mut w = SealedWriter::create(path, keys, &ctx()).await.unwrap();
    let positions = (0..n)
        .map(|i| w.append(&frame_data(i, len)).unwrap())
        .collect();
    if finish {
        w.finish().unwrap();
    } else {
        w.sync().unwrap();
    }
    positions
}

async fn read_all(path: &Path, keys: &dyn KeyProvider) -> Result<(Vec<Frame>, Tail), Error> {
    let r = SealedReader::open(path, keys).await?;
    let mut frames = r.frames();
    let out = frames.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((out, frames.tail().unwrap()))
}

fn copy_with(src: &Path, dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = fs::read(src).unwrap();
    edit(&mut bytes);
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn frames_round_trip_and_read_at_their_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    let mut w = SealedWriter::create(&path, &keys, &ctx()).await.unwrap();
    let sizes = [0usize, 1, 100, 4096, 70_000];
    let positions: Vec<u64> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| w.append(&frame_data(i, n)).unwrap())
        .collect();
    let end = w.finish().unwrap();
    assert_eq!(end, fs::metadata(&path).unwrap().len());

    let (frames, tail) = read_all(&path, &keys).await.unwrap();
    assert_eq!(tail, Tail::Finished { end });
    assert_eq!(frames.len(), sizes.len());
    let r = SealedReader::open_expecting(&path, &keys, &ctx())
        .await
        .unwrap();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(
            (f.number, f.position, &f.data),
            (i as u64, positions[i], &frame_data(i, sizes[i]))
        );
        assert_eq!(r.read_at(positions[i]).unwrap().as_ref(), Some(f));
    }
    // The first frame is also found from the start of the data region
    // (read_at skips the session record), and nothing follows the last.
    assert_eq!(r.read_at(r.data_start()).unwrap().unwrap().number, 0);
    assert_eq!(r.read_at(frames[4].next_position).unwrap(), None);
    assert!(
        SealedWriter::create(&path, &keys, &ctx()).await.is_err(),
        "create must not overwrite"
    );
}

#[tokio::test]
async fn a_reader_sees_frames_appended_after_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    let mut w = SealedWriter::create(&path, &keys, &ctx()).await.unwrap();
    let r = SealedReader::open(&path, &keys).await.unwrap();
    assert_eq!(r.read_at(w.position()).unwrap(), None);
    let pos = w.append(b"later").unwrap();
    assert_eq!(r.read_at(pos).unwrap().unwrap().data, b"later");
}

#[tokio::test]
async fn a_torn_tail_at_every_byte_of_the_last_frame_keeps_every_complete_frame() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    let positions = write_file(&src, &keys, 3, 40, false).await;
    let full = fs::metadata(&src).unwrap().len();
    let last = positions[2];
    for cut in last + 1..full {
        let path = copy_with(&src, dir.path(), "torn", |b| b.truncate(cut as usize));
        let (frames, tail) = read_all(&path, &keys).await.unwrap();
        assert_eq!(frames.len(), 2, "cut at {cut}");
        assert_eq!(
            tail,
            Tail::Torn {
                offset: last,
                len: cut - last
            },
            "cut at {cut}"
        );

        let (mut w, rec) = SealedWriter::open_append(&path, &keys).await.unwrap();
        assert_eq!(
            rec,
            Recovery {
                frames: 2,
                end: last,
                torn: Some((last, cut - last))
            }
        );
        w.append(b"after the crash").unwrap();
        w.finish().unwrap();
        let (frames, tail) = read_all(&path, &keys).await.unwrap();
        assert!(matches!(tail, Tail::Finished { .. }));
        let numbers: Vec<u64> = frames.iter().map(|f| f.number).collect();
        assert_eq!(numbers, [0, 1, 2]);
        assert_eq!(frames[2].data, b"after the crash");
    }
}

#[tokio::test]
async fn a_zero_filled_tail_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    write_file(&src, &keys, 2, 10, false).await;
    let end = fs::metadata(&src).unwrap().len();
    let path = copy_with(&src, dir.path(), "zeros", |b| b.extend([0u8; 300]));
    let (frames, tail) = read_all(&path, &keys).await.unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        tail,
        Tail::Torn {
            offset: end,
            len: 300
        }
    );
}

/// Flips a bit in every byte of a small finished file: opening or
/// reading it must fail, naming the file and an offset: in the header, an
/// offset in the header; in the data region, one between the start of the
/// damaged record and the flipped byte.
#[tokio::test]
async fn a_flipped_bit_anywhere_is_detected_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    write_file(&src, &keys, 3, 20, true).await;
    let len = fs::metadata(&src).unwrap().len() as usize;
    let reader = SealedReader::open(&src, &keys).await.unwrap();
    let data_start = reader.data_start();
    // Where each record (session, data, end) starts.
    let mut record_starts = vec![];
    let mut pos = data_start;
    while let Step::Record(h, _) = reader.step(pos).unwrap() {
        record_starts.push(pos);
        pos += h.record_len();
    }
    assert_eq!(record_starts.len(), 5);
    for i in 0..len {
        // One bit per byte, walking through the bit positions.
        for bit in [1u8 << (i % 8)] {
            let path = copy_with(&src, dir.path(), "flipped", |b| b[i] ^= bit);
            let result = async {
                let r = SealedReader::open(&path, &keys).await?;
                let mut frames = r.frames().require_finished();
                frames.by_ref().collect::<Result<Vec<_>, _>>()
            }
            .await;
            let err = result.expect_err(&format!("flip {bit:#x} at byte {i} went unnoticed"));
            let msg = err.to_string();
            match err {
                Error::Corrupt {
                    path: p, offset, ..
                } => {
                    assert_eq!(p, path);
                    if i as u64 >= data_start {
                        assert!(
                            offset <= i as u64,
                            "flip at {i} reported at {offset}: {msg}"
                        );
                        let record = record_starts
                            .iter()
                            .rev()
                            .find(|&&p| p <= i as u64)
                            .unwrap();
                        assert!(
                            offset >= *record,
                            "flip at {i} in the record at {record}: {msg}"
                        );
                    } else {
                        // Length fields may send the parser on: the offset
                        // is where the header stopped making sense.
                        assert!(
                            offset < data_start,
                            "flip at {i} reported at {offset}: {msg}"
                        );
                    }
                }
                // A flip inside the wrapped key or the context makes the
                // master key refuse to unwrap it.
                Error::Unwrap { .. } | Error::WrongProvider { .. } => {
                    assert!(i < data_start as usize, "{msg}")
                }
                other => panic!("flip at {i}: unexpected error {other}"),
            }
        }
    }
}

#[tokio::test]
async fn swapped_dropped_repeated_frames_and_a_cut_finished_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    let pos = write_file(&src, &keys, 4, 32, true).await;
    let rec = (pos[1] - pos[0]) as usize;
    let at = |i: usize| pos[i] as usize;

    let swapped = copy_with(&src, dir.path(), "swapped", |b| {
        let (one, two) = (
            b[at(1)..at(1) + rec].to_vec(),
            b[at(2)..at(2) + rec].to_vec(),
        );
        b[at(1)..at(1) + rec].copy_from_slice(&two);
        b[at(2)..at(2) + rec].copy_from_slice(&one);
    });
    let dropped = copy_with(&src, dir.path(), "dropped", |b| {
        b.drain(at(1)..at(1) + rec);
    });
    let repeated = copy_with(&src, dir.path(), "repeated", |b| {
        let one = b[at(1)..at(1) + rec].to_vec();
        b[at(2)..at(2) + rec].copy_from_slice(&one);
    });
    for (path, offset) in [(&swapped, pos[1]), (&dropped, pos[1]), (&repeated, pos[2])] {
        match read_all(path, &keys).await {
            Err(Error::Corrupt {
                offset: o, path: p, ..
            }) => assert_eq!((o, &p), (offset, path)),
            other => panic!(
                "{}: expected an error at {offset}, got {other:?}",
                path.display()
            ),
        }
    }

    // Cutting the final frame off leaves a file that looks unfinished;
    // a reader that knows it was finished reports the truncation.
    let end_at =
        fs::metadata(&src).unwrap().len() - (crate::atrest::record::DATA_HEADER_LEN as u64 + 16);
    let cut = copy_with(&src, dir.path(), "cut", |b| b.truncate(end_at as usize));
    let (frames, tail) = read_all(&cut, &keys).await.unwrap();
    assert_eq!((frames.len(), tail), (4, Tail::Unfinished { end: end_at }));
    let r = SealedReader::open(&cut, &keys).await.unwrap();
    let err = r.frames().require_finished().find_map(Result::err).unwrap();
    assert!(
        matches!(err, Error::Truncated { offset, .. } if offset == end_at),
        "{err}"
    );
    // A cut at an earlier frame boundary too.
    let cut2 = copy_with(&src, dir.path(), "cut2", |b| b.truncate(at(2)));
    let r = SealedReader::open(&cut2, &keys).await.unwrap();
    assert!(matches!(
        r.frames().require_finished().find_map(Result::err),
        Some(Error::Truncated { .. })
    ));
    // Bytes after the final frame.
    let trailing = copy_with(&src, dir.path(), "trailing", |b| b.extend_from_slice(b"x"));
    assert!(matches!(
        read_all(&trailing, &keys).await,
        Err(Error::Corrupt { .. })
    ));
}

/// Every record's (key, nonce) pair over a file reopened for append
/// several times, one reopen after a torn write.
#[tokio::test]
async fn reopening_for_append_never_repeats_a_key_and_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    write_file(&path, &keys, 3, 10, false).await;
    for round in 0..4 {
        let (mut w, rec) = SealedWriter::open_append(&path, &keys).await.unwrap();
        assert_eq!(rec.frames, 3 + round * 3);
        for i in 0..3 {
            w.append(&frame_data(i, 10)).unwrap();
        }
        drop(w);
        if round == 1 {
            // A crash tore the last frame: cut 5 bytes off it.
            let len = fs::metadata(&path).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len - 5)
                .unwrap();
            let (mut w, rec) = SealedWriter::open_append(&path, &keys).await.unwrap();
            assert!(rec.torn.is_some());
            w.append(&frame_data(2, 10)).unwrap();
        }
    }
    let r = SealedReader::open(&path, &keys).await.unwrap();
    let file = fs::File::open(&path).unwrap();
    let header = read_header(&path, &file, &keys).await.unwrap();
    let mut pairs = HashSet::new();
    let (mut pos, mut key, mut records, mut sessions) = (r.data_start(), None, 0, 0);
    while let Step::Record(h, _) = r.step(pos).unwrap() {
        let nonce = match h.kind {
            Kind::Session => {
                key = Some(session_key_bytes(
                    &header.data_key,
                    &r.file_id(),
                    &h.salt.unwrap(),
                ));
                sessions += 1;
                crypto::session_nonce()
            }
            _ => crypto::numbered_nonce(h.number),
        };
        let pair = (*key.clone().unwrap(), crypto::nonce_bytes(&nonce));
        assert!(pairs.insert(pair), "record at {pos} reuses a key and nonce");
        records += 1;
        pos += h.record_len();
    }
    assert_eq!(sessions, 6);
    assert_eq!(records, 6 + 15);
    let (frames, _) = read_all(&path, &keys).await.unwrap();
    assert_eq!(
        frames.iter().map(|f| f.number).collect::<Vec<_>>(),
        (0..15).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn wrong_key_and_wrong_context_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    write_file(&path, &keys, 1, 10, true).await;
    let err = SealedReader::open(&path, &LocalKeyProvider::random())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unwrap { .. }), "{err}");
    let other: EncryptionContext = [("purpose".to_string(), "other".to_string())].into();
    let err = SealedReader::open_expecting(&path, &keys, &other)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ContextMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("purpose=other") && err.to_string().contains("cluster=c1"),
        "{err}"
    );
}

#[tokio::test]
async fn limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    let opts = WriterOptions { max_frame_len: 100 };
    let mut w = SealedWriter::create_with(&path, &keys, &ctx(), opts)
        .await
        .unwrap();
    w.append(&[0; 100]).unwrap();
    assert!(matches!(
        w.append(&[0; 101]),
        Err(Error::FrameTooLarge { len: 101, max: 100 })
    ));
    w.finish().unwrap();
    assert_eq!(
        SealedReader::open(&path, &keys)
            .await
            .unwrap()
            .max_frame_len(),
        100
    );
    assert!(matches!(
        SealedWriter::open_append(&path, &keys).await,
        Err(Error::FileFinished { .. })
    ));
    let opts = WriterOptions {
        max_frame_len: MAX_FRAME_LEN_LIMIT + 1,
    };
    assert!(
        SealedWriter::create_with(dir.path().join("big"), &keys, &ctx(), opts)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn not_a_sealed_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.txt");
    fs::write(
        &path,
        b"hello, this is not encrypted at all, nope, not at all",
    )
    .unwrap();
    let err = SealedReader::open(&path, &LocalKeyProvider::random())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
    assert!(
        err.to_string().contains("not a Wharf at-rest file"),
        "{err}"
    );
}

/// The broker shares readers between fetches and moves writers between
/// tasks.
#[test]
fn readers_are_shareable_and_writers_movable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shareable::<SealedReader>();
    movable::<SealedWriter>();
    shareable::<crate::DataKeyCache>();
}

/// A crash between linking a new file and writing its first session
/// record leaves a bare header: it reads as empty and appends normally.
#[tokio::test]
async fn a_file_with_only_its_header_reads_empty_and_can_be_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let keys = LocalKeyProvider::random();
    write_file(&path, &keys, 0, 0, false).await;
    let start = SealedReader::open(&path, &keys).await.unwrap().data_start();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(start)
        .unwrap();
    let (frames, tail) = read_all(&path, &keys).await.unwrap();
    assert_eq!((frames.len(), tail), (0, Tail::Unfinished { end: start }));
    let (mut w, rec) = SealedWriter::open_append(&path, &keys).await.unwrap();
    assert_eq!(
        rec,
        Recovery {
            frames: 0,
            end: start,
            torn: None
        }
    );
    w.append(b"first").unwrap();
    let (frames, _) = read_all(&path, &keys).await.unwrap();
    assert_eq!(frames[0].data, b"first");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A caller's buffer that keeps whatever it held before each frame, to
/// show `read_at_into` replaces it rather than appending.
struct Reused(Vec<u8>, usize);

impl FrameBuffer for Reused {
    fn set_len(&mut self, len: usize) -> &mut [u8] {
        self.1 += 1;
        self.0.resize(len, 0xAA);
        &mut self.0
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

#[tokio::test]
async fn read_at_into_a_reused_buffer_gives_each_frame_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let keys = LocalKeyProvider::random();
    // Large, small, then large again: a shrinking buffer must not keep
    // the earlier frame's tail.
    let lens = [70_000, 10, 5_000, 70_000, 0];
    let mut w = SealedWriter::create(&path, &keys, &ctx()).await.unwrap();
    let positions: Vec<u64> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| w.append(&frame_data(i, len)).unwrap())
        .collect();
    w.sync().unwrap();
    let r = SealedReader::open(&path, &keys).await.unwrap();
    let mut buf = Reused(vec![0xEE; 3], 0);
    for (i, (&pos, &len)) in positions.iter().zip(&lens).enumerate() {
        let at = r.read_at_into(pos, &mut buf).unwrap().unwrap();
        assert_eq!(buf.0, frame_data(i, len), "frame {i}");
        assert_eq!(at.number, i as u64);
        assert_eq!(at.position, pos);
        let whole = r.read_at(pos).unwrap().unwrap();
        assert_eq!(whole.data, buf.0);
        assert_eq!(whole.next_position, at.next_position);
    }
    assert!(buf.1 >= lens.len(), "every frame went through the buffer");
    // Past the last frame: nothing, and no error.
    let end = r.read_at(positions[4]).unwrap().unwrap().next_position;
    assert_eq!(r.read_at_into(end, &mut buf).unwrap(), None);
}

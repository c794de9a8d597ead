//! Disk engine: rolling, index reuse and rebuild, torn tails, retention,
//! and no plaintext in the files.

use std::io::Write;
use std::sync::Arc;

use kafka_protocol::records::Compression;

use super::frames::AtRest;
use super::DiskEngine;
use bytes::Bytes;

use crate::protocol::batch::{assign, read_header, split_batches, tests::client_batch};
use crate::storage::{Engine, LogPolicy, PartitionLog};

fn sealed() -> AtRest {
    AtRest::sealed(Arc::new(wharf_envelope::LocalKeyProvider::from_key(
        [3; 32],
    )))
}

fn small_segments() -> LogPolicy {
    LogPolicy {
        segment_bytes: 1024,
        segment_ms: i64::MAX / 2,
        retention_ms: -1,
        retention_bytes: -1,
    }
}

/// The batches `read` returns, its runs split at batch boundaries.
async fn read_batches<L: PartitionLog>(log: &mut L, offset: i64, max_bytes: usize) -> Vec<Bytes> {
    let runs = log.read(offset, max_bytes).await.unwrap();
    runs.iter()
        .flat_map(|run| split_batches(run).unwrap())
        .map(|(_, batch)| batch)
        .collect()
}

async fn append_n<L: PartitionLog>(log: &mut L, n: usize) {
    for _ in 0..n {
        let batch = client_batch(3, Compression::None, None);
        let base = log.next_offset();
        let stored = assign(&batch, base, None);
        let header = read_header(&stored, true).unwrap();
        log.append(&header, stored, crate::now_ms()).await.unwrap();
    }
}

fn files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn segments_roll_reopen_from_indexes_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed()).unwrap();
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    append_n(&mut log, 40).await;
    log.flush().await.unwrap();
    let segments = files(dir.path(), "log").len();
    assert!(segments > 3, "1 KiB segments roll: {segments}");
    let before = log.headers();
    drop(log);
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!(log.headers(), before);
    assert_eq!(log.next_offset(), 120);
    let all = read_batches(&mut log, 0, usize::MAX).await;
    assert_eq!(all.len(), 40);
    // A lost index is rebuilt from its segment.
    std::fs::remove_file(&files(dir.path(), "index")[1]).unwrap();
    drop(log);
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!(log.headers(), before);
    append_n(&mut log, 1).await;
    assert_eq!(log.next_offset(), 123);
}

#[tokio::test]
async fn torn_tail_is_truncated_and_acknowledged_batches_stay_at_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed()).unwrap();
    let mut log = engine.open_log("t", 0, LogPolicy::default()).await.unwrap();
    append_n(&mut log, 5).await;
    log.flush().await.unwrap();
    drop(log);
    let seg = files(dir.path(), "log").pop().unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[1, 0, 0, 0, 9, 9])
        .unwrap();
    let mut log = engine.open_log("t", 0, LogPolicy::default()).await.unwrap();
    assert_eq!(log.next_offset(), 15);
    append_n(&mut log, 1).await;
    let batches = read_batches(&mut log, 12, usize::MAX).await;
    let offsets: Vec<i64> = batches
        .iter()
        .map(|b| read_header(b, true).unwrap().base_offset)
        .collect();
    assert_eq!(offsets, vec![12, 15]);
}

#[tokio::test]
async fn retention_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed()).unwrap();
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    append_n(&mut log, 40).await;
    let segments = files(dir.path(), "log").len();
    let policy = LogPolicy {
        retention_bytes: 2048,
        ..small_segments()
    };
    let deleted = log.apply_retention(&policy, crate::now_ms()).await.unwrap();
    assert!(deleted > 0);
    assert_eq!(files(dir.path(), "log").len(), segments - deleted);
    assert!(log.size_bytes() <= 2048 + 1024);
    let start = log.log_start_offset();
    assert!(start > 0 && start % 3 == 0);
    assert_eq!(
        read_header(&read_batches(&mut log, 0, 1).await[0], true)
            .unwrap()
            .base_offset,
        start
    );
    drop(log);
    let log = engine.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!(log.log_start_offset(), start);
}

#[tokio::test]
async fn no_file_holds_a_produced_plaintext_marker() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed()).unwrap();
    let mut log = engine.open_log("t", 0, LogPolicy::default()).await.unwrap();
    append_n(&mut log, 3).await;
    log.flush().await.unwrap();
    engine
        .write_state(
            "topics",
            &[bytes::Bytes::from_static(b"value-1 topic record")],
        )
        .await
        .unwrap();
    engine
        .append_state("offsets", b"value-2 offsets record")
        .await
        .unwrap();
    for f in walk(dir.path()) {
        let raw = std::fs::read(&f).unwrap();
        assert!(
            !raw.windows(7).any(|w| w == b"value-1" || w == b"value-2"),
            "{} holds plaintext",
            f.display()
        );
    }
    assert_eq!(engine.read_state("offsets").await.unwrap().len(), 1);
}

#[tokio::test]
async fn delete_records_moves_the_start_deletes_segments_below_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed()).unwrap();
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    append_n(&mut log, 40).await;
    let segments = files(dir.path(), "log").len();
    let first_kept = log
        .headers()
        .iter()
        .find(|h| h.last_offset >= 61)
        .unwrap()
        .base_offset;
    let deleted = log
        .delete_records_before(61, crate::now_ms())
        .await
        .unwrap();
    assert!(deleted > 0, "segments wholly below 61 are deleted");
    assert_eq!(files(dir.path(), "log").len(), segments - deleted);
    assert_eq!(
        log.log_start_offset(),
        61,
        "the start is the offset asked for"
    );
    // The segment holding offset 61 is kept, from its first batch.
    assert!(log.headers()[0].base_offset <= first_kept);
    assert_eq!(
        log.delete_records_before(10, crate::now_ms())
            .await
            .unwrap(),
        0,
        "an offset below the start changes nothing"
    );
    assert_eq!(log.log_start_offset(), 61);
    drop(log);

    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!(log.log_start_offset(), 61, "the start survives a reopen");
    assert_eq!(log.next_offset(), 120);
    // Everything: the active segment is rolled and every old one deleted.
    log.delete_records_before(120, crate::now_ms())
        .await
        .unwrap();
    assert_eq!(log.log_start_offset(), 120);
    assert!(log.headers().is_empty(), "{:?}", log.headers());
    assert_eq!(
        files(dir.path(), "log").len(),
        1,
        "only the new empty segment"
    );
    drop(log);

    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!((log.log_start_offset(), log.next_offset()), (120, 120));
    append_n(&mut log, 1).await;
    let batches = read_batches(&mut log, 120, usize::MAX).await;
    assert_eq!(read_header(&batches[0], true).unwrap().base_offset, 120);
}

async fn append_batches<L: PartitionLog>(log: &mut L, n: usize, records: usize) {
    for _ in 0..n {
        let batch = client_batch(records, Compression::None, None);
        let stored = assign(&batch, log.next_offset(), None);
        let header = read_header(&stored, true).unwrap();
        log.append(&header, stored, crate::now_ms()).await.unwrap();
    }
}

#[tokio::test]
async fn tail_cache_serves_the_newest_batches_as_stored_and_older_ones_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let probe = client_batch(3, Compression::None, None).len();
    // Room for the last 4 batches of the 10.
    let engine = DiskEngine::open(dir.path(), sealed())
        .unwrap()
        .with_tail_cache(4 * probe + probe / 2);
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    append_batches(&mut log, 10, 3).await;
    let runs = log.read(0, usize::MAX).await.unwrap();
    let stats = engine.tail_cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (4, 6));
    // The six read from the segments come back to back, as one run.
    let sizes: Vec<usize> = runs.iter().map(|r| r.len()).collect();
    assert_eq!(sizes, [6 * probe, probe, probe, probe, probe]);
    let served = read_batches(&mut log, 0, usize::MAX).await;
    // The same bytes a reader without the cache gets from the segments.
    drop(log);
    let cold = DiskEngine::open(dir.path(), sealed()).unwrap();
    let mut log = cold.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!(read_batches(&mut log, 0, usize::MAX).await, served);
    let stats = cold.tail_cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (0, 0));
}

#[tokio::test]
async fn a_recreated_topic_never_reads_the_cached_batches_of_the_deleted_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed())
        .unwrap()
        .with_tail_cache(1 << 20);
    let mut log = engine.open_log("t", 0, LogPolicy::default()).await.unwrap();
    append_batches(&mut log, 2, 3).await;
    drop(log);
    engine.delete_topic("t").await.unwrap();
    let mut log = engine.open_log("t", 0, LogPolicy::default()).await.unwrap();
    append_batches(&mut log, 1, 5).await;
    let batches = read_batches(&mut log, 0, usize::MAX).await;
    assert_eq!(batches.len(), 1);
    assert_eq!(read_header(&batches[0], true).unwrap().last_offset, 4);
}

#[tokio::test]
async fn a_consumer_catching_up_gets_every_batch_once_in_order_with_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DiskEngine::open(dir.path(), sealed())
        .unwrap()
        .with_readahead(1 << 20);
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    append_batches(&mut log, 40, 3).await;
    let probe = client_batch(3, Compression::None, None).len();
    let (mut offset, mut got) = (0, Vec::new());
    while offset < log.next_offset() {
        // Two batches per fetch, across segment boundaries.
        let batches = read_batches(&mut log, offset, 2 * probe).await;
        assert_eq!(batches.len(), 2);
        let read_ahead = engine.readaheads.pending();
        offset = read_header(&batches[1], true).unwrap().last_offset + 1;
        assert_eq!(read_ahead, usize::from(offset < log.next_offset()));
        got.extend(batches);
        if offset == 30 {
            append_batches(&mut log, 2, 3).await; // new batches meanwhile
        }
    }
    // All but the first fetch's two batches came from read-aheads.
    assert_eq!(engine.tail_cache_stats().unwrap().read_ahead, 40);
    // Another consumer, behind, with a read-ahead of the first one's
    // pending: its own batches.
    let other = read_batches(&mut log, 3, probe).await;
    assert_eq!(read_header(&other[0], true).unwrap().base_offset, 3);
    assert_eq!(other[0], got[1]);
    let cold = DiskEngine::open(dir.path(), sealed()).unwrap();
    drop(log);
    let mut log = cold.open_log("t", 0, small_segments()).await.unwrap();
    assert_eq!(read_batches(&mut log, 0, usize::MAX).await, got);
    assert_eq!(got.len(), 42);
}

#[tokio::test]
async fn no_read_ahead_for_a_consumer_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let probe = client_batch(3, Compression::None, None).len();
    let engine = DiskEngine::open(dir.path(), sealed())
        .unwrap()
        .with_tail_cache(4 * probe)
        .with_readahead(1 << 20);
    let mut log = engine.open_log("t", 0, small_segments()).await.unwrap();
    append_batches(&mut log, 10, 3).await;
    // Batches 4 and 5 from the segments; 6 on are in the tail cache.
    read_batches(&mut log, 12, 2 * probe).await;
    assert_eq!(engine.readaheads.pending(), 0);
    // A consumer behind: batches 0 and 1, then 2 and 3 read ahead.
    read_batches(&mut log, 0, 2 * probe).await;
    assert_eq!(engine.readaheads.pending(), 1);
    // A smaller limit than the read-ahead was made for: read again.
    let batches = read_batches(&mut log, 6, probe).await;
    assert_eq!(batches.len(), 1);
    assert_eq!(engine.readaheads.pending(), 1, "batch 3 read ahead");
    // A larger one: the read-ahead is a right answer, if shorter.
    let batches = read_batches(&mut log, 9, usize::MAX).await;
    assert_eq!(batches.len(), 1);
    assert_eq!(read_header(&batches[0], true).unwrap().base_offset, 9);
}

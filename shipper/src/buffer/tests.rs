//! The buffer's rules, one test each where a test can show them.

use std::sync::Arc;

use wharf_envelope::LocalKeyProvider;

use super::*;
use crate::config::{BufferConfig, ByteSize, WhenFull};
use crate::record::Kind;

fn rec(n: u64) -> Record {
    Record {
        seq: 0,
        id: uuid::Uuid::now_v7(),
        kind: Kind::Log,
        ts_millis: n as i64,
        source: Arc::from("src"),
        line: format!(r#"{{"kind":"log","n":{n},"pad":"{}"}}"#, "x".repeat(200)).into_bytes(),
    }
}

fn small() -> BufferConfig {
    BufferConfig {
        segment_bytes: ByteSize(64 << 10),
        max_bytes: ByteSize(64 << 20),
        ..BufferConfig::default()
    }
}

struct Env {
    dir: tempfile::TempDir,
    keys: Arc<LocalKeyProvider>,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            keys: Arc::new(LocalKeyProvider::random()),
        }
    }
    async fn open(&self, cfg: &BufferConfig, sinks: &[&str]) -> Buffer {
        let sinks: Vec<String> = sinks.iter().map(|s| s.to_string()).collect();
        Buffer::open(
            self.dir.path(),
            AtRest::new(self.keys.clone(), "test-buffer"),
            cfg,
            &sinks,
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap()
    }
    fn segments(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".seg"))
            .collect();
        v.sort();
        v
    }
}

async fn append(b: &Buffer, from: u64, n: u64) {
    let recs: Vec<Record> = (from..from + n).map(rec).collect();
    let r = b.append(recs).await.unwrap().await.unwrap().unwrap();
    assert_eq!(r, Appended::Durable(n as usize));
}

async fn read_all(r: &mut BufferReader) -> Vec<Arc<Record>> {
    let mut out = Vec::new();
    while r.has_more() {
        out.extend(r.read(1000, 1 << 20).await.unwrap());
    }
    out
}

fn n_of(r: &Record) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&r.line).unwrap();
    v["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_come_back_in_order_with_consecutive_seqs() {
    let env = Env::new();
    let b = env.open(&small(), &["a"]).await;
    for i in 0..20 {
        append(&b, i * 100, 100).await;
    }
    let mut r = b.reader("a");
    let got = read_all(&mut r).await;
    assert_eq!(got.len(), 2000);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.seq, i as u64);
        assert_eq!(n_of(g), i as u64);
    }
    assert!(env.segments().len() > 3, "64 KiB segments rolled");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_is_deleted_only_when_every_sink_passed_it() {
    let env = Env::new();
    let b = env.open(&small(), &["a", "b"]).await;
    for i in 0..10 {
        append(&b, i * 100, 100).await;
    }
    let before = env.segments().len();
    b.commit("a", 1000).unwrap();
    assert_eq!(env.segments().len(), before, "b still needs them");
    b.commit("b", 500).unwrap();
    let after = env.segments().len();
    assert!(after < before);
    // What remains still holds everything b has not acknowledged.
    let mut r = b.reader("b");
    let got = read_all(&mut r).await;
    assert_eq!(got.first().unwrap().seq, 500);
    assert_eq!(got.len(), 500);
    b.commit("b", 1000).unwrap();
    assert!(env.segments().len() <= 1, "only the active segment is left");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_restart_sinks_resume_at_their_cursors() {
    let env = Env::new();
    {
        let b = env.open(&small(), &["a", "b"]).await;
        append(&b, 0, 1500).await;
        b.commit("a", 1200).unwrap();
        b.commit("b", 300).unwrap();
        b.close().await;
    }
    let b = env.open(&small(), &["a", "b"]).await;
    let got_a = read_all(&mut b.reader("a")).await;
    assert_eq!(got_a.first().unwrap().seq, 1200);
    assert_eq!(got_a.len(), 300);
    let got_b = read_all(&mut b.reader("b")).await;
    assert_eq!(got_b.len(), 1200);
    assert_eq!(n_of(&got_b[0]), 300);
    // Numbering continues after the old records.
    append(&b, 1500, 10).await;
    let mut r = b.reader("a");
    let all = read_all(&mut r).await;
    assert_eq!(all.last().unwrap().seq, 1509);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_tail_is_cut_and_the_rest_is_kept() {
    let env = Env::new();
    {
        let b = env.open(&small(), &["a"]).await;
        append(&b, 0, 50).await;
        b.close().await;
    }
    // Tear the last segment's last bytes, as a crash mid-write would.
    let last = env.dir.path().join(env.segments().last().unwrap());
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let b = env.open(&small(), &["a"]).await;
    let got = read_all(&mut b.reader("a")).await;
    assert_eq!(got.len(), 50, "the final frame was torn, no record was");
    append(&b, 50, 5).await;
    assert_eq!(read_all(&mut b.reader("a")).await.len(), 55);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_newest_refuses_and_counts_when_full() {
    let env = Env::new();
    let cfg = BufferConfig {
        segment_bytes: ByteSize(64 << 10),
        max_bytes: ByteSize(256 << 10),
        when_full: WhenFull::DropNewest,
        ..BufferConfig::default()
    };
    let b = env.open(&cfg, &["a"]).await;
    let mut dropped = 0;
    for i in 0..100 {
        let recs: Vec<Record> = (0..20).map(|k| rec(i * 20 + k)).collect();
        match b.append(recs).await.unwrap().await.unwrap().unwrap() {
            Appended::Dropped(n) => dropped += n,
            Appended::Durable(_) => {}
        }
    }
    assert!(dropped > 0);
    assert!(b.bytes() <= 256 << 10);
    let kept = read_all(&mut b.reader("a")).await.len();
    assert_eq!(kept + dropped, 2000);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn block_holds_appends_until_a_sink_frees_space() {
    let env = Env::new();
    let cfg = BufferConfig {
        segment_bytes: ByteSize(64 << 10),
        max_bytes: ByteSize(256 << 10),
        ..BufferConfig::default()
    };
    let b = env.open(&cfg, &["a"]).await;
    let mut n = 0;
    // Fill it.
    while b.bytes() < 200 << 10 {
        append(&b, n, 20).await;
        n += 20;
    }
    let b2 = b.clone();
    let start = n;
    let blocked = tokio::spawn(async move {
        for i in 0..20 {
            append(&b2, start + i * 20, 20).await;
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !blocked.is_finished(),
        "appends wait while the buffer is full"
    );
    // The sink catches up: space frees, appends go on.
    let mut r = b.reader("a");
    let mut seen = 0;
    while !blocked.is_finished() {
        let got = r.read(1000, 1 << 20).await.unwrap();
        seen += got.len();
        b.commit("a", r.position()).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    blocked.await.unwrap();
    seen += read_all(&mut r).await.len();
    assert_eq!(seen as u64, n + 400, "nothing lost while blocked");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_are_encrypted_on_disk() {
    let env = Env::new();
    let b = env.open(&small(), &["a"]).await;
    append(&b, 0, 10).await;
    b.close().await;
    for s in env.segments() {
        let bytes = std::fs::read(env.dir.path().join(s)).unwrap();
        assert!(!bytes.windows(5).any(|w| w == b"\"pad\""));
    }
}

/// A master key that can be made unreachable, like KMS during an outage.
#[derive(Debug)]
struct Flaky {
    inner: LocalKeyProvider,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl wharf_envelope::KeyProvider for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }
    async fn generate(
        &self,
        c: &wharf_envelope::EncryptionContext,
    ) -> std::result::Result<
        (wharf_envelope::DataKey, wharf_envelope::WrappedKey),
        wharf_envelope::Error,
    > {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(wharf_envelope::Error::Io {
                path: "kms".into(),
                source: std::io::Error::other("unreachable"),
            });
        }
        self.inner.generate(c).await
    }
    async fn unwrap(
        &self,
        w: &wharf_envelope::WrappedKey,
        c: &wharf_envelope::EncryptionContext,
    ) -> std::result::Result<wharf_envelope::DataKey, wharf_envelope::Error> {
        self.inner.unwrap(w, c).await
    }
    async fn wrap(
        &self,
        k: &wharf_envelope::DataKey,
        c: &wharf_envelope::EncryptionContext,
    ) -> std::result::Result<wharf_envelope::WrappedKey, wharf_envelope::Error> {
        self.inner.wrap(k, c).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_segment_waits_for_its_key_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Flaky {
        inner: LocalKeyProvider::random(),
        down: false.into(),
    });
    let b = Buffer::open(
        dir.path(),
        AtRest::new(keys.clone(), "test-buffer"),
        &small(),
        &["a".to_string()],
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    keys.down.store(true, std::sync::atomic::Ordering::SeqCst);
    // Fill the first segment until it rolls; the next append needs a key.
    let mut n = 0;
    while env_segments(dir.path()) < 2 && n < 2000 {
        let recs: Vec<Record> = (n..n + 20).map(rec).collect();
        let receipt = b.append(recs).await.unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(500), receipt).await;
        n += 20;
        if waited.is_err() {
            // Held back while the key is away; comes through once it is back.
            keys.down.store(false, std::sync::atomic::Ordering::SeqCst);
            break;
        }
        waited.unwrap().unwrap().unwrap();
    }
    assert!(
        !keys.down.load(std::sync::atomic::Ordering::SeqCst),
        "an append had to wait"
    );
    append(&b, n, 10).await;
    let got = read_all(&mut b.reader("a")).await;
    assert_eq!(
        got.len() as u64,
        n + 10,
        "nothing lost while the key was away"
    );
    b.close().await;
}

fn env_segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count()
}

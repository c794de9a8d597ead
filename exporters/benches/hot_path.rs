//! What telemetry costs the broker's hot path, per call:
//! - a produce recorded on a topic handle, a request recorded by API key;
//! - a `tracing` event through the log layer into the socket writer, with a
//!   real shipper stand-in on a Unix socket acking every line.
//!
//! Run: `cargo bench -p wharf-exporters --bench hot_path`. Prints ns per
//! call and the machine it ran on; asserts nothing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;
use wharf_exporters::{LogLayer, MetricsRegistry, SocketWriter, SocketWriterConfig};

fn per_call(n: u64, f: impl FnMut(u64)) -> f64 {
    let mut f = f;
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("hardware: {} ({cores} cores)", cpu());

    let registry = MetricsRegistry::new("bench", 1);
    let topic = registry.topic("payments");
    let n = 10_000_000;
    let ns = per_call(n, |i| topic.record_produce(1000 + (i & 7), 10));
    println!("TopicMetrics::record_produce: {ns:.1} ns/call");
    let ns = per_call(n, |i| {
        registry.record_request(0, Duration::from_micros(100 + (i & 1023)), false)
    });
    println!("MetricsRegistry::record_request: {ns:.1} ns/call");
    let ns = per_call(100_000, |i| {
        let _ = registry.partition("payments", (i & 63) as i32);
    });
    println!("MetricsRegistry::partition (handle lookup, existing): {ns:.1} ns/call");

    // The log layer alone: formatting into a sink that discards.
    struct Discard;
    impl wharf_exporters::LineSink for Discard {
        fn try_send_line(&self, line: Vec<u8>) -> bool {
            std::hint::black_box(line);
            true
        }
    }
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(Discard, "bench", 1));
    let ns = tracing::subscriber::with_default(subscriber, || {
        per_call(200_000, |i| {
            tracing::info!(
                topic = "payments",
                partition = (i & 7) as i64,
                bytes = 1024u64,
                "produced"
            );
        })
    });
    println!("tracing::info! through LogLayer, formatting only: {ns:.0} ns/event");

    // A shipper stand-in acking every line.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("shipper.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut out = stream.try_clone().unwrap();
            let mut n = 0u64;
            let mut lines = BufReader::new(stream).lines();
            while let Some(Ok(_)) = lines.next() {
                n += 1;
                if n % 64 == 0 {
                    let _ = writeln!(out, "{{\"ack\":{n}}}");
                }
            }
        }
    });
    let keys = Arc::new(wharf_envelope::LocalKeyProvider::random());
    let cfg = SocketWriterConfig::new(&sock, dir.path().join("spool"), keys, "bench");
    let writer = SocketWriter::start(cfg).unwrap();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(writer.clone(), "bench", 1));
    let events = 200_000;
    let ns = tracing::subscriber::with_default(subscriber, || {
        per_call(events, |i| {
            tracing::info!(
                topic = "payments",
                partition = (i & 7) as i64,
                bytes = 1024u64,
                "produced"
            );
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let s = writer.stats();
    println!(
        "tracing::info! through LogLayer into SocketWriter: {ns:.0} ns/event \
         ({} accepted, {} dropped with a full queue, {} acked within 0.5 s)",
        s.accepted, s.dropped_queue_full, s.acked
    );
    writer.shutdown(Duration::from_secs(2));
}

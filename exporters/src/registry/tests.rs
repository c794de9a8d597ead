//! The registry: every catalog row gets a series, values follow what was
//! recorded.

use super::*;
use crate::catalog;

fn value(samples: &[Sample], key: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.key == key
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
        })
        .map(|s| s.value)
}

/// A registry with a value in every series.
pub(crate) fn busy_registry() -> MetricsRegistry {
    let r = MetricsRegistry::new("orders", 1);
    let t = r.topic("payments");
    t.record_produce(1000, 10);
    t.record_fetch(600, 6);
    r.topic("audit").record_produce(24, 1);
    r.partition("payments", 0).set_log_size(4096);
    r.partition("payments", 0).set_offsets(0, 10);
    r.record_request(0, Duration::from_millis(3), false);
    r.record_request(1, Duration::from_millis(40), false);
    r.record_request(3, Duration::from_micros(200), true);
    for (g, _) in GAUGES {
        r.set_gauge(g, 2);
    }
    r.set_gauge(BrokerGauge::ActiveControllerCount, 1);
    r.set_gauge(BrokerGauge::OfflinePartitionsCount, 0);
    r.listener("PLAINTEXT").connection_opened();
    r.listener("PLAINTEXT").connection_opened();
    r.listener("SSL").connection_opened();
    r.set_data_disk("/var/lib/wharf", 1000, 250);
    r.set_consumer_lag("billing", "payments", 0, 5);
    r.set_consumer_lag("billing", "payments", 1, 7);
    r.attach_writer(Arc::new(WriterCounters::default()));
    r.set_tail_cache(7, 3, 2, 4096);
    r
}

#[test]
fn tail_cache_series_appear_once_reported() {
    let r = MetricsRegistry::new("orders", 1);
    assert!(r.collect().iter().all(|s| s.key != "fetch_batches"));
    r.set_tail_cache(7, 3, 2, 4096);
    let samples = r.collect();
    let from = |source| value(&samples, "fetch_batches", &[("source", source)]);
    assert_eq!(from("tail_cache"), Some(7.0));
    assert_eq!(from("segments"), Some(3.0));
    assert_eq!(from("read_ahead"), Some(2.0));
    assert_eq!(value(&samples, "tail_cache_bytes", &[]), Some(4096.0));
}

#[test]
fn every_catalog_row_gets_a_series_and_nothing_else_is_emitted() {
    let samples = busy_registry().collect();
    for d in catalog::CATALOG {
        assert!(
            samples.iter().any(|s| s.key == d.key),
            "no series for {}",
            d.key
        );
    }
    for s in &samples {
        let def = catalog::get(s.key).unwrap_or_else(|| panic!("{} is not in the catalog", s.key));
        if let Some(p) = def.prometheus {
            let names: Vec<_> = s.labels.iter().map(|(k, _)| *k).collect();
            assert_eq!(names, p.labels, "labels of {}", s.key);
        }
    }
}

#[test]
fn totals_sums_and_maxima_add_up() {
    let r = busy_registry();
    let s = r.collect();
    assert_eq!(value(&s, "bytes_in", &[]), Some(1024.0));
    assert_eq!(
        value(&s, "bytes_in.topic", &[("topic", "payments")]),
        Some(1000.0)
    );
    assert_eq!(value(&s, "messages_in", &[]), Some(11.0));
    assert_eq!(
        value(
            &s,
            "sum_offset_lag",
            &[("groupId", "billing"), ("topic", "payments")]
        ),
        Some(12.0)
    );
    assert_eq!(
        value(
            &s,
            "max_offset_lag",
            &[("groupId", "billing"), ("topic", "payments")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value(&s, "connection_count", &[("listener", "PLAINTEXT")]),
        Some(2.0)
    );
    assert_eq!(value(&s, "connection_count.broker", &[]), Some(3.0));
    assert_eq!(value(&s, "disk_used_percent", &[]), Some(75.0));
    assert_eq!(value(&s, "requests", &[("request", "Metadata")]), Some(1.0));
    assert_eq!(
        value(&s, "request_errors", &[("request", "Metadata")]),
        Some(1.0)
    );
    assert_eq!(value(&s, "produce_time.mean", &[]), Some(3.0));
    // A deleted topic leaves its series but not its bytes.
    r.remove_topic("payments");
    let s = r.collect();
    assert_eq!(value(&s, "bytes_in.topic", &[("topic", "payments")]), None);
    assert_eq!(value(&s, "bytes_in", &[]), Some(1024.0));
    assert_eq!(
        value(&s, "log_size", &[("topic", "payments"), ("partition", "0")]),
        None
    );
    assert_eq!(
        value(
            &s,
            "sum_offset_lag",
            &[("groupId", "billing"), ("topic", "payments")]
        ),
        None
    );
}

#[test]
fn the_data_disk_is_measured_from_the_file_system() {
    let r = MetricsRegistry::new("c", 1);
    let dir = tempfile::tempdir().unwrap();
    r.refresh_data_disk(dir.path()).unwrap();
    let s = r.collect();
    let size = value(
        &s,
        "disk_size_bytes",
        &[("mountpoint", dir.path().to_str().unwrap())],
    )
    .unwrap();
    let used = value(&s, "disk_used_percent", &[]).unwrap();
    assert!(size > 0.0);
    assert!((0.0..=100.0).contains(&used));
    let err = r
        .refresh_data_disk(std::path::Path::new("/no/such/dir"))
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}

#[test]
fn handles_are_shared_and_unknown_api_keys_are_ignored() {
    let r = MetricsRegistry::new("c", 1);
    let a = r.topic("t");
    let b = r.topic("t");
    assert!(Arc::ptr_eq(&a, &b));
    r.record_request(-1, Duration::from_millis(1), false);
    r.record_request(i16::MAX, Duration::from_millis(1), false);
    assert!(r.collect().iter().all(|s| s.key != "requests"));
}

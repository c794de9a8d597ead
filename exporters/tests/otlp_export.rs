//! OTLP/HTTP export to a collector stand-in on real TCP: the requests carry
//! the catalog's metric names with their labels, and the log events.
#![cfg(feature = "otlp")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use wharf_exporters::otlp::{OtlpConfig, OtlpExporter};
use wharf_exporters::{BrokerGauge, MetricsRegistry};

type Requests = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// Accepts OTLP/HTTP JSON requests, records (path, body), answers 200.
fn collector() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Requests = Arc::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = seen.clone();
            // A thread per connection: clients keep connections alive.
            std::thread::spawn(move || serve(stream, seen));
        }
    });
    (format!("http://{addr}"), got)
}

fn serve(mut stream: std::net::TcpStream, seen: Requests) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut len = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        seen.lock().unwrap().push((path, json));
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        );
    }
}

#[test]
fn metrics_and_logs_reach_the_collector_with_msk_names() {
    let (endpoint, requests) = collector();
    let registry = MetricsRegistry::new("orders", 4);
    registry.topic("payments").record_produce(2048, 16);
    registry.set_gauge(BrokerGauge::OfflinePartitionsCount, 2);
    let mut cfg = OtlpConfig::new(endpoint);
    cfg.metrics_interval = Duration::from_secs(3600);
    let otlp = OtlpExporter::start(&cfg, &registry).unwrap();
    let subscriber = tracing_subscriber::registry().with(otlp.log_layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(topic = "payments", "disk almost full");
    });
    otlp.flush().unwrap();
    otlp.shutdown().unwrap();

    let requests = requests.lock().unwrap().clone();
    let metrics: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|(p, _)| p == "/v1/metrics")
        .map(|(_, b)| b)
        .collect();
    let logs: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|(p, _)| p == "/v1/logs")
        .map(|(_, b)| b)
        .collect();
    assert!(!metrics.is_empty(), "no metric export: {requests:?}");
    assert!(!logs.is_empty(), "no log export");

    let all_metrics: Vec<&serde_json::Value> = metrics
        .iter()
        .flat_map(|b| b["resourceMetrics"].as_array().unwrap())
        .flat_map(|rm| rm["scopeMetrics"].as_array().unwrap())
        .flat_map(|sm| sm["metrics"].as_array().unwrap())
        .collect();
    let btm = all_metrics
        .iter()
        .find(|m| m["name"] == "kafka_server_BrokerTopicMetrics_Count")
        .expect("BrokerTopicMetrics exported");
    assert!(
        btm.get("sum").is_some(),
        "a counter is exported as a sum: {btm}"
    );
    let points = btm["sum"]["dataPoints"].as_array().unwrap();
    let bytes_in_payments = points.iter().find(|p| {
        let attrs = p["attributes"].as_array().unwrap();
        let has = |k: &str, v: &str| {
            attrs
                .iter()
                .any(|a| a["key"] == k && a["value"]["stringValue"] == v)
        };
        has("name", "BytesInPerSec") && has("topic", "payments")
    });
    assert_eq!(
        bytes_in_payments.expect("BytesInPerSec of payments")["asDouble"],
        2048.0
    );
    let kc = all_metrics
        .iter()
        .find(|m| m["name"] == "kafka_controller_KafkaController_Value")
        .expect("KafkaController exported");
    assert!(kc.get("gauge").is_some(), "{kc}");

    let text = serde_json::to_string(&logs).unwrap();
    assert!(text.contains("disk almost full"), "{text}");
    assert!(
        text.contains("\"orders\""),
        "the resource names the cluster: {text}"
    );
}

#[test]
fn a_bad_endpoint_is_refused_by_name() {
    let err = OtlpExporter::start(
        &OtlpConfig::new("127.0.0.1:4318"),
        &MetricsRegistry::new("c", 1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("otlp.endpoint"), "{err}");
}

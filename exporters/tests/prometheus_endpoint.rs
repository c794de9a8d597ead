//! The scrape endpoint over real TCP, and its output through promtool.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use wharf_exporters::{http, BrokerGauge, MetricsRegistry};

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// A registry with every kind of series in it.
fn busy() -> MetricsRegistry {
    let r = MetricsRegistry::new("orders", 1);
    r.topic("payments").record_produce(1000, 10);
    r.topic("payments").record_fetch(500, 5);
    r.partition("payments", 0).set_log_size(4096);
    r.partition("payments", 0).set_offsets(0, 10);
    r.record_request(0, Duration::from_millis(3), false);
    r.record_request(1, Duration::from_millis(40), false);
    r.set_gauge(BrokerGauge::PartitionCount, 1);
    r.set_gauge(BrokerGauge::ActiveControllerCount, 1);
    r.listener("PLAINTEXT").connection_opened();
    r.set_data_disk("/var/lib/wharf", 1000, 250);
    r.set_consumer_lag("billing", "payments", 0, 5);
    r.attach_writer(std::sync::Arc::new(Default::default()));
    r
}

async fn serve(r: MetricsRegistry) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(http::serve(listener, r, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_return_the_registry_as_prometheus_text() {
    let (addr, stop) = serve(busy()).await;
    let (head, body) = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains(
        "kafka_server_BrokerTopicMetrics_Count{name=\"BytesInPerSec\",topic=\"payments\"} 1000\n"
    ));
    let (head, _) = tokio::task::spawn_blocking(move || get(addr, "/nope"))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let _ = stop.send(());
}

/// `promtool check metrics` on the endpoint's output: no parse error, and
/// no finding but the style findings MSK's own names carry (kept on purpose
/// so that MSK dashboards work; see docs/metrics.md): CamelCase in the JMX
/// exporter's names and in `groupId`, and Kafka's `connection_count`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool (Debian package prometheus): run scripts/test-all.sh"]
async fn promtool_check_metrics_accepts_the_endpoint_output() {
    let (addr, stop) = serve(busy()).await;
    let (_, body) = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .unwrap();
    let _ = stop.send(());
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("promtool is not installed ({e}): `apt-get install prometheus` or run scripts/test-all.sh"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0: clean; exit 3: lint findings only; anything else: parse error.
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "promtool failed: {text}"
    );
    let msk_names = wharf_exporters::catalog::prometheus_names();
    let inherited = |metric: &str, finding: &str| {
        let camel = finding.ends_with("should be written in 'snake_case' not 'camelCase'");
        let kafka_count = metric == "kafka_server_socket_server_metrics_connection_count"
            && finding.ends_with("should not have \"_count\" suffix");
        msk_names.contains(&metric) && metric.starts_with("kafka_") && (camel || kafka_count)
    };
    let mut findings = 0;
    for finding in text.lines().filter(|l| !l.trim().is_empty()) {
        let metric = finding.split_whitespace().next().unwrap_or("");
        assert!(
            inherited(metric, finding),
            "unexpected promtool finding: {finding}"
        );
        findings += 1;
    }
    assert!(
        findings > 0,
        "promtool should at least see MSK's CamelCase names: {text}"
    );
    // The findings must not hide Wharf's own names.
    assert!(!text.contains("wharf_"), "{text}");
}

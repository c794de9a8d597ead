//! Benchmark of the AWS sinks (CloudWatch Logs, CloudWatch metrics,
//! Firehose): the shipper's own cost per event.
//!
//! For each sink, N events are appended to a real (encrypted) buffer, then
//! the sink's pipeline runs exactly as in `wharf-shipper` (buffer read,
//! batching, EMF/NDJSON encoding, envelope encryption, gzip, the AWS SDK's
//! serialization and signing, HTTP) against an endpoint that accepts
//! everything: by default one served in this process (so the figure is the
//! shipper's cost, not AWS's), or `--endpoint URL` (e.g. LocalStack, for
//! throughput). Prints events/s, CPU µs per event and peak RSS.
//!
//! ```text
//! cargo build --release -p wharf-shipper --bin wharf-sinks-bench
//! target/release/wharf-sinks-bench --events 200000
//! eval "$(localstack/localstack.sh env)"
//! target/release/wharf-sinks-bench --events 100000 --endpoint "$AWS_ENDPOINT_URL"
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use wharf_envelope::{CacheLimits, DataKeyCache, KeyProvider, LocalKeyProvider};
use wharf_shipper::buffer::{AtRest, Buffer};
use wharf_shipper::config::{BufferConfig, ByteSize, Config};
use wharf_shipper::metrics::Metrics;
use wharf_shipper::record::{Kind, Record};
use wharf_shipper::sinks::cloudwatch_logs::{self, Wiring};
use wharf_shipper::sinks::dead_letter::SinkDeadLetter;
use wharf_shipper::sinks::{Filter, SinkConfig};

#[derive(Parser)]
#[command(about = "Cost per event of wharf-shipper's AWS sinks")]
struct Args {
    /// Events per sink.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Send to this endpoint instead of the in-process accept-all one.
    #[arg(long)]
    endpoint: Option<String>,
    /// Sinks to run.
    #[arg(long, default_values_t = ["cloudwatch_logs".to_string(), "cloudwatch_metrics".to_string(), "firehose".to_string(), "firehose_envelope".to_string()])]
    sinks: Vec<String>,
}

fn log_event(i: u64, now: i64) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"kind":"log","ts":{},"level":"INFO","cluster":"prod-eu","broker":{},"#,
            r#""logger":"kafka.server.ReplicaFetcherThread","#,
            r#""message":"[ReplicaFetcher replicaId={}, leaderId=2, fetcherId=0] Truncating partition orders-{} to offset {}"}}"#
        ),
        now - (i % 1000) as i64,
        i % 3,
        i % 3,
        i % 12,
        i * 17
    )
    .into_bytes()
}

fn metric_event(i: u64, now: i64) -> Vec<u8> {
    const NAMES: [&str; 4] = [
        "BytesInPerSec",
        "MessagesInPerSec",
        "BytesOutPerSec",
        "ProduceTotalTimeMsMean",
    ];
    format!(
        r#"{{"kind":"metric","ts":{},"name":"{}","value":{},"unit":"Count","cluster":"prod-eu","broker":{},"topic":"orders-{}"}}"#,
        now - (i % 1000) as i64,
        NAMES[(i % 4) as usize],
        i % 500,
        i % 3,
        i % 12
    )
    .into_bytes()
}

/// CPU seconds (user + system) of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// An HTTP/1.1 endpoint that answers every PutLogEvents, PutRecordBatch and
/// PutMetricData with success.
async fn accept_all() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let (mut len, mut target) = (0usize, String::new());
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        let lower = l.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if lower.starts_with("x-amz-target:") {
                            target = l.to_owned();
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let (ctype, resp) = if target.contains("PutRecordBatch") {
                        let n = body.windows(6).filter(|w| w == b"\"Data\"").count();
                        let entries = vec![r#"{"RecordId":"r"}"#; n].join(",");
                        (
                            "application/x-amz-json-1.1",
                            format!(
                                r#"{{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[{entries}]}}"#
                            ),
                        )
                    } else if target.contains("PutLogEvents") {
                        (
                            "application/x-amz-json-1.1",
                            r#"{"nextSequenceToken":"1"}"#.to_owned(),
                        )
                    } else {
                        (
                            "text/xml",
                            "<PutMetricDataResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PutMetricDataResponse>".to_owned(),
                        )
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nx-amzn-requestid: r\r\n\r\n",
                        resp.len()
                    );
                    if w.write_all(head.as_bytes()).await.is_err()
                        || w.write_all(resp.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(format!("http://{addr}"))
}

fn sink_toml(sink: &str, endpoint: &str, run: &str) -> String {
    let base = match sink {
        "cloudwatch_logs" => format!(
            "type = \"cloudwatch_logs\"\ngroup = \"/wharf-bench/{run}\"\nstream = \"broker-{{broker}}\"\nmax_in_flight = 4"
        ),
        "cloudwatch_metrics" => "type = \"cloudwatch_metrics\"\nnamespace = \"Wharf/Bench\"\nmax_age = \"1s\"".to_owned(),
        "firehose" => format!("type = \"firehose\"\ndelivery_stream = \"{run}\"\nrecord_bytes = \"256 KiB\""),
        "firehose_envelope" => format!(
            "type = \"firehose\"\ndelivery_stream = \"{run}\"\nrecord_bytes = \"256 KiB\"\nencryption = \"envelope\""
        ),
        other => panic!("unknown sink {other}"),
    };
    format!(
        "data_dir = \"/tmp/unused\"\n[sources.bench]\ntype = \"socket\"\npath = \"/tmp/unused.sock\"\n[sinks.bench]\n{base}\ninputs = [\"bench\"]\nendpoint_url = \"{endpoint}\"\n"
    )
}

async fn create_stream(endpoint: &str, name: &str) -> Result<()> {
    use aws_sdk_firehose::types::{
        BufferingHints, DeliveryStreamType, ExtendedS3DestinationConfiguration,
    };
    let sdk = wharf_shipper::sinks::aws::sdk_config(Some(endpoint)).await;
    let fh = aws_sdk_firehose::Client::new(&sdk);
    fh.create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::000000000000:role/firehose")
                .bucket_arn("arn:aws:s3:::wharf-firehose")
                .prefix(format!("bench/{name}/"))
                .buffering_hints(
                    BufferingHints::builder()
                        .size_in_mbs(5)
                        .interval_in_seconds(60)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await
        .context("creating the delivery stream")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

async fn run(sink: &str, events: u64, endpoint: &str, local: bool) -> Result<()> {
    let dir =
        TempDir(std::env::temp_dir().join(format!("wharf-sinks-bench-{}", uuid::Uuid::new_v4())));
    let keys: Arc<dyn KeyProvider> = Arc::new(DataKeyCache::new(
        Arc::new(LocalKeyProvider::random()),
        CacheLimits::default(),
    ));
    let metrics = Arc::new(Metrics::new());
    let cfg = BufferConfig {
        max_bytes: ByteSize(8 << 30),
        ..BufferConfig::default()
    };
    let buffer = Buffer::open(
        &dir.path().join("buffer"),
        AtRest::new(keys.clone(), "bench-buffer"),
        &cfg,
        &["bench".to_owned()],
        metrics.clone(),
    )
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut bytes = 0u64;
    for chunk in (0..events).collect::<Vec<_>>().chunks(10_000) {
        let recs: Vec<Record> = chunk
            .iter()
            .map(|&i| {
                let metric = sink == "cloudwatch_metrics";
                let line = if metric {
                    metric_event(i, now)
                } else {
                    log_event(i, now)
                };
                bytes += line.len() as u64;
                Record {
                    seq: 0,
                    id: uuid::Uuid::now_v7(),
                    kind: if metric { Kind::Metric } else { Kind::Log },
                    ts_millis: now - (i % 1000) as i64,
                    source: Arc::from("bench"),
                    line,
                }
            })
            .collect();
        buffer.append(recs).await?.await??;
    }
    let run_name = format!(
        "wharf-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    if sink.starts_with("firehose") && !local {
        create_stream(endpoint, &run_name).await?;
    }
    let config = Config::from_toml(&sink_toml(sink, endpoint, &run_name))?;
    let sc = &config.sinks["bench"];
    let wiring = Wiring {
        name: "bench".into(),
        filter: Filter::new(sc),
        buffer: buffer.clone(),
        metrics: metrics.clone(),
        dead_letter: Arc::new(SinkDeadLetter::file(
            &dir.path().join("dl"),
            "bench",
            AtRest::new(keys.clone(), "bench-dl"),
            metrics.clone(),
        )),
        hard_stop: CancellationToken::new(),
    };
    let stop = CancellationToken::new();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    match sc {
        SinkConfig::CloudWatchLogs(c) => {
            let (g, s) = c.target.templates("sinks.bench")?;
            let d = cloudwatch_logs::build(wiring, &c.target, cloudwatch_logs::record_format(g, s))
                .await?;
            let stop = stop.clone();
            set.spawn(async move { ("bench".to_owned(), d.run(stop).await) });
        }
        SinkConfig::Firehose(c) => {
            let d = wharf_shipper::sinks::firehose::build(wiring, c, keys.clone()).await?;
            let stop = stop.clone();
            set.spawn(async move { ("bench".to_owned(), d.run(stop).await) });
        }
        SinkConfig::CloudWatchMetrics(c) => {
            wharf_shipper::sinks::cloudwatch_metrics::spawn(wiring, c, stop.clone(), &mut set)
                .await?;
        }
        _ => unreachable!(),
    }
    // Metrics are aggregated: the sink is done when its cursor reaches the end.
    let end = buffer.durable_end();
    while buffer.cursor("bench").unwrap_or(0) < end {
        if let Some(Ok((_, Err(e)))) = futures_now(&mut set) {
            return Err(e.into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    stop.cancel();
    while set.join_next().await.is_some() {}
    let delivered = metrics.delivered("bench").get();
    println!(
        "{sink:<20} {events:>9} events {:>7.1} MiB  {:>10.0} events/s  {:>6.2} µs CPU/event  delivered {delivered:>9}  dead {:>3}  peak RSS {:>6.1} MiB",
        bytes as f64 / (1 << 20) as f64,
        events as f64 / wall,
        cpu * 1e6 / events as f64,
        metrics.sink_dead_lettered("bench").get(),
        peak_rss_mib(),
    );
    Ok(())
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn futures_now(
    set: &mut tokio::task::JoinSet<(String, wharf_shipper::error::Result<()>)>,
) -> Option<std::result::Result<(String, wharf_shipper::error::Result<()>), tokio::task::JoinError>>
{
    set.try_join_next()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    let local = args.endpoint.is_none();
    let endpoint = match &args.endpoint {
        Some(e) => e.clone(),
        None => accept_all().await?,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "wharf-sinks-bench: {} endpoint {endpoint}; {cpus} CPUs ({model}); CPU includes reading the encrypted buffer",
        if local { "in-process accept-all" } else { "remote" }
    );
    for s in &args.sinks {
        run(s, args.events, &endpoint, local).await?;
    }
    Ok(())
}

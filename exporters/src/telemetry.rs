//! Everything the broker starts for its telemetry, in one value.
//!
//! [`Telemetry::start`] opens the socket writer and its spool, creates the
//! metrics registry, binds the Prometheus endpoint, starts the periodic
//! snapshots and, when configured, the OTLP export. The broker then:
//! installs [`Telemetry::log_layer`] in its `tracing` subscriber, updates
//! [`Telemetry::metrics`] on its hot path, writes one audit record per
//! admin request with [`Telemetry::auditor`], and calls
//! [`Telemetry::shutdown`] when it stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use wharf_envelope::KeyProvider;

use crate::config::TelemetrySettings;
use crate::registry::snapshot::run_snapshots;
use crate::{http, Auditor, Error, LogLayer, MetricsRegistry, SocketWriter, SocketWriterConfig};

/// The log directives of the OTLP bridge: the configured ones, with the
/// OTLP exporter's own HTTP stack silenced.
#[cfg(feature = "otlp")]
fn otlp_directives(level: &str) -> String {
    let quiet = [
        "hyper",
        "hyper_util",
        "h2",
        "reqwest",
        "opentelemetry",
        "opentelemetry_sdk",
        "opentelemetry_otlp",
        "opentelemetry_http",
    ];
    let mut d = level.to_string();
    for target in quiet {
        d.push_str(&format!(",{target}=off"));
    }
    d
}

/// The broker's running telemetry; see the module docs.
#[derive(Debug)]
pub struct Telemetry {
    writer: SocketWriter,
    metrics: MetricsRegistry,
    auditor: Auditor<SocketWriter>,
    cluster: String,
    broker_id: String,
    log_level: String,
    prometheus_addr: Option<SocketAddr>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::OtlpExporter>,
}

impl Telemetry {
    /// Starts everything; call it from within the broker's tokio runtime.
    /// The spool is sealed under data keys from `keys`.
    pub async fn start(
        settings: TelemetrySettings,
        keys: Arc<dyn KeyProvider>,
        cluster: &str,
        broker_id: i32,
    ) -> Result<Self, Error> {
        let mut wcfg =
            SocketWriterConfig::new(&settings.socket, &settings.spool_dir, keys, cluster);
        wcfg.queue_capacity = settings.queue_capacity;
        wcfg.spool_max_bytes = settings.spool_max_bytes;
        let writer = SocketWriter::start(wcfg)?;
        let metrics = MetricsRegistry::new(cluster, broker_id);
        metrics.attach_writer(writer.counters());
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let mut prometheus_addr = None;
        if let Some(addr) = settings.prometheus_address {
            let listener = http::bind(addr).await?;
            prometheus_addr = listener.local_addr().ok();
            let stopped = stop.clone();
            tasks.spawn(http::serve(listener, metrics.clone(), async move {
                stopped.cancelled().await
            }));
        }
        let stopped = stop.clone();
        tasks.spawn(run_snapshots(
            metrics.clone(),
            writer.clone(),
            settings.monitoring_level,
            settings.snapshot_period,
            async move { stopped.cancelled().await },
        ));

        #[cfg(feature = "otlp")]
        let otlp = match &settings.otlp_endpoint {
            Some(endpoint) => {
                let cfg = crate::otlp::OtlpConfig::new(endpoint.clone());
                Some(crate::otlp::OtlpExporter::start(&cfg, &metrics)?)
            }
            None => None,
        };

        let mut auditor = Auditor::new(writer.clone(), cluster, broker_id);
        if let Some((region, account)) = settings.aws_account {
            auditor = auditor.with_account(region, account);
        }
        Ok(Self {
            auditor,
            writer,
            metrics,
            cluster: cluster.to_string(),
            broker_id: broker_id.to_string(),
            log_level: settings.log_level,
            prometheus_addr,
            stop,
            tasks,
            #[cfg(feature = "otlp")]
            otlp,
        })
    }

    /// The `tracing` layer to install: JSON log records to the shipper
    /// (and OTLP log records when configured), filtered by the configured
    /// per-module levels.
    pub fn log_layer<S>(&self) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        // The directives were validated at start.
        let filter = || crate::log_filter(&self.log_level).unwrap_or_default();
        let json = LogLayer::new(self.writer.clone(), self.cluster.clone(), &self.broker_id)
            .with_filter(filter());
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            // The exporter's own HTTP client must not feed its events back
            // into the export.
            let quiet = otlp_directives(&self.log_level);
            let otlp_filter = crate::log_filter(&quiet).unwrap_or_else(|_| filter());
            return json
                .and_then(otlp.log_layer().with_filter(otlp_filter))
                .boxed();
        }
        json.boxed()
    }

    /// The metrics registry to update.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.metrics
    }

    /// Writes audit records.
    pub fn auditor(&self) -> &Auditor<SocketWriter> {
        &self.auditor
    }

    /// The socket writer (its counters, or raw lines).
    pub fn writer(&self) -> &SocketWriter {
        &self.writer
    }

    /// Where the Prometheus endpoint listens (the bound port when 0 was
    /// asked for), if it is on.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus_addr
    }

    /// Stops the endpoint and the snapshots, flushes OTLP, and gives the
    /// shipper up to `deadline` to acknowledge what is pending; the rest
    /// stays in the spool for the next start.
    pub async fn shutdown(mut self, deadline: Duration) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        let writer = self.writer.clone();
        #[cfg(feature = "otlp")]
        let otlp = self.otlp.take();
        let _ = tokio::task::spawn_blocking(move || {
            #[cfg(feature = "otlp")]
            if let Some(o) = otlp {
                let _ = o.shutdown();
            }
            writer.shutdown(deadline);
        })
        .await;
    }
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    #[test]
    fn the_otlp_bridge_directives_parse() {
        let d = super::otlp_directives("info,wharf_broker::storage=debug");
        assert!(d.contains(",reqwest=off"));
        crate::log_filter(&d).unwrap();
    }
}

//! The `wharf-broker` process: configuration, telemetry, listeners,
//! periodic tasks and a clean stop on SIGINT/SIGTERM. The binary and
//! `wharf up` both run [`main`].
//!
//! With no arguments: plaintext listener on 127.0.0.1:9092, data under
//! `./wharf-data`, at-rest encryption under a local master key kept in the
//! data directory (created 0600). With a `[telemetry]` section, logs also
//! go to the shipper's socket, audit records are written for every admin
//! request and Prometheus is served (port 11001 by default).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use wharf_envelope::{KeyProvider, LocalKeyProvider};
use wharf_exporters::Telemetry;

use crate::broker::Broker;
use crate::config::{Config, Encryption};
use crate::server::{serve, tls_acceptor, ListenerConfig};
use crate::storage::disk::frames::{AtRest, LOCAL_KEY_FILE};
use crate::storage::disk::DiskEngine;
use crate::storage::Engine;

/// How often partition sizes, counts, consumer lag and disk use are
/// measured for the metrics.
const METRICS_REFRESH: Duration = Duration::from_secs(2);

/// How long the shipper gets at shutdown to acknowledge pending lines
/// before they stay in the spool for the next start.
const TELEMETRY_SHUTDOWN: Duration = Duration::from_secs(5);

/// `wharf-broker`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "wharf-broker",
    version,
    about = "A Kafka-compatible broker with encrypted storage"
)]
pub struct Args {
    /// TOML configuration file (WHARF_* environment variables override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config file).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Plaintext listener address (overrides the config file).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Parses `args` (the program name first) and runs the broker until
/// SIGINT or SIGTERM.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf-broker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;

    let telemetry = start_telemetry(&config).await?;
    init_logging(telemetry.as_ref());
    if let Some(t) = &telemetry {
        let prometheus = t
            .prometheus_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(
            prometheus = %prometheus,
            socket = %t.writer_socket().display(),
            "telemetry started"
        );
    }

    let at_rest = match config.encryption {
        Encryption::None => AtRest::Plain,
        Encryption::Local => AtRest::local(&config.data_dir).await?,
    };
    let engine = DiskEngine::open(&config.data_dir, at_rest)?
        .with_tail_cache(config.tail_cache_bytes)
        .with_readahead(config.readahead_bytes);
    let metrics = match &telemetry {
        Some(t) => t.telemetry.metrics().clone(),
        None => wharf_exporters::MetricsRegistry::new(config.cluster_id.clone(), config.node_id),
    };
    let storage = engine.clone();
    let broker = Broker::open_with_metrics(config.broker_config(), engine, metrics).await?;
    if let Some(t) = &telemetry {
        let auditor = t.telemetry.auditor().clone();
        broker.set_audit(Box::new(move |event| {
            auditor.emit(event);
        }));
    }

    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (`listen`)", config.listen))?;
    let addr = listener.local_addr()?;
    let host = config
        .advertised_host
        .clone()
        .unwrap_or_else(|| addr.ip().to_string());
    let plain = ListenerConfig {
        max_request_bytes: config.max_request_bytes,
        advertised_host: host.clone(),
        advertised_port: addr.port() as i32,
        name: "PLAINTEXT".into(),
    };
    tracing::info!(listen = %addr, data_dir = %config.data_dir.display(), "wharf-broker listening (plaintext)");
    tokio::spawn(serve(listener, broker.clone(), plain, None));

    if let Some(tls) = &config.tls {
        let acceptor = tls_acceptor(&tls.cert, &tls.key).map_err(anyhow::Error::msg)?;
        let l = TcpListener::bind(&tls.listen)
            .await
            .with_context(|| format!("cannot listen on {} (`tls.listen`)", tls.listen))?;
        let addr = l.local_addr()?;
        let cfg = ListenerConfig {
            max_request_bytes: config.max_request_bytes,
            advertised_host: config
                .advertised_host
                .clone()
                .unwrap_or_else(|| addr.ip().to_string()),
            advertised_port: addr.port() as i32,
            name: "SSL".into(),
        };
        tracing::info!(listen = %addr, "wharf-broker listening (TLS)");
        tokio::spawn(serve(l, broker.clone(), cfg, Some(acceptor)));
    }

    spawn_periodic(&broker, &config);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: flushing partitions");
    broker.flush_all().await;
    let tail = storage.tail_cache_stats().unwrap_or_default();
    tracing::info!(
        tail_cache_hits = tail.hits,
        tail_cache_misses = tail.misses,
        read_ahead = tail.read_ahead,
        "fetched batches served from the tail cache / read from segments / read ahead"
    );
    if let Some(t) = telemetry {
        t.telemetry.shutdown(TELEMETRY_SHUTDOWN).await;
    }
    Ok(())
}

/// The telemetry and the socket it writes to.
struct Started {
    telemetry: Telemetry,
    socket: PathBuf,
}

impl std::ops::Deref for Started {
    type Target = Telemetry;
    fn deref(&self) -> &Telemetry {
        &self.telemetry
    }
}

impl Started {
    fn writer_socket(&self) -> &Path {
        &self.socket
    }
}

/// Starts `[telemetry]` when configured; the spool is sealed under the
/// local master key of the data directory.
async fn start_telemetry(config: &Config) -> anyhow::Result<Option<Started>> {
    let Some(tc) = &config.telemetry else {
        return Ok(None);
    };
    let settings = tc.validate()?;
    let key_path = config.data_dir.join(LOCAL_KEY_FILE);
    let keys: Arc<dyn KeyProvider> = Arc::new(
        LocalKeyProvider::open_or_create(&key_path)
            .with_context(|| format!("cannot open the master key {}", key_path.display()))?,
    );
    let socket = settings.socket.clone();
    let telemetry = Telemetry::start(settings, keys, &config.cluster_id, config.node_id).await?;
    Ok(Some(Started { telemetry, socket }))
}

/// JSON logs to stderr (level from `WHARF_LOG`, default `info`) and, with
/// telemetry, to the shipper's socket at the `[telemetry]` levels.
fn init_logging(telemetry: Option<&Started>) {
    let stderr = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| "info".into()),
        );
    tracing_subscriber::registry()
        .with(telemetry.map(|t| t.log_layer()))
        .with(stderr)
        .init();
}

/// Retention, group session expiry and the metrics refresh.
fn spawn_periodic(broker: &Arc<Broker<DiskEngine>>, config: &Config) {
    let retention_every = Duration::from_millis(config.log.retention_check_interval_ms.max(100));
    let b = broker.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(retention_every).await;
            b.apply_retention().await;
        }
    });
    let b = broker.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            b.tick_groups();
        }
    });
    let b = broker.clone();
    let data_dir = config.data_dir.clone();
    tokio::spawn(async move {
        let mut disk_warned = false;
        loop {
            b.refresh_metrics().await;
            if let Err(e) = b.metrics().refresh_data_disk(&data_dir) {
                if !disk_warned {
                    tracing::warn!(error = %e, "cannot measure the data volume");
                    disk_warned = true;
                }
            }
            tokio::time::sleep(METRICS_REFRESH).await;
        }
    });
}

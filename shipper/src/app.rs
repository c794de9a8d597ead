//! Wiring: build the buffer, sinks, sources and the API from a config, run
//! until SIGTERM/SIGINT, then shut down in order: stop accepting, ack what
//! was read, seal the buffer, let sinks deliver within the deadline
//! (cursors are persisted as they go), exit.

use std::path::Path;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::buffer::{AtRest, Buffer};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::sinks::file::FileStore;
use crate::sinks::object::pipeline::{Pipeline, PipelineSettings};
use crate::sinks::object::seal::Sealer;
use crate::sinks::object::template::KeyTemplate;
use crate::sinks::s3::{S3Service, S3Store};
use crate::sinks::{Filter, SinkConfig};
use crate::source::socket::SocketSource;
use crate::source::SourceConfig;

/// Loads the config file, runs the shipper on a new runtime until it is
/// told to stop, and says what went wrong on stderr: the whole of
/// `wharf-shipper --config FILE`, shared with `wharf up`'s child.
pub fn run_config_file(file: &Path) -> std::process::ExitCode {
    use std::process::ExitCode;
    let cfg = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf-shipper: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf-shipper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the shipper until a termination signal.
pub async fn run(cfg: Config) -> Result<()> {
    let stop = CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal as sig, SignalKind};
        let mut term = sig(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = sig(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        signal.cancel();
    });
    run_until(cfg, stop).await
}

/// Runs the shipper until `stop` is cancelled.
pub async fn run_until(cfg: Config, stop: CancellationToken) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let data = cfg.data_dir.clone();
    std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
    let provider = crate::keys::provider(&cfg, metrics.clone()).await?;

    let sink_names: Vec<String> = cfg.sinks.keys().cloned().collect();
    let source_names: Vec<String> = cfg.sources.keys().cloned().collect();
    metrics.declare(&source_names, &sink_names);
    let buffer = Buffer::open(
        &data.join("buffer"),
        AtRest::new(provider.clone(), "wharf-shipper-buffer"),
        &cfg.buffer,
        &sink_names,
        metrics.clone(),
    )
    .await?;

    let api_stop = CancellationToken::new();
    if cfg.api.enabled {
        let listener = tokio::net::TcpListener::bind(&cfg.api.address)
            .await
            .map_err(|e| Error::io(&cfg.api.address, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(&cfg.api.address, e))?;
        std::fs::write(data.join("api.addr"), addr.to_string())
            .map_err(|e| Error::io(data.join("api.addr"), e))?;
        tracing::info!(%addr, "serving /metrics and /health");
        tokio::spawn(crate::api::serve(
            listener,
            metrics.clone(),
            api_stop.clone(),
        ));
    }

    // Sinks first, so they are reading before the sources accept.
    let sinks_soft = CancellationToken::new();
    let sinks_hard = CancellationToken::new();
    let mut sinks = JoinSet::new();
    for (name, sc) in &cfg.sinks {
        let sealer = sc
            .uses_envelope()
            .then(|| Sealer::new(provider.clone(), name));
        let soft = sinks_soft.clone();
        let task_name = name.clone();
        match sc {
            SinkConfig::File(c) => {
                let settings = PipelineSettings {
                    name: name.clone(),
                    filter: Filter::new(sc),
                    template: template(name, &c.key)?,
                    compression: c.compression,
                    compression_level: c.compression.level(c.compression_level),
                    sealer,
                    batch: c.batch.clone(),
                    stop: sinks_hard.clone(),
                };
                let store = FileStore::open(&c.directory)?;
                let p = Pipeline::new(settings, store, buffer.clone(), metrics.clone());
                sinks.spawn(async move { (task_name, p.run(soft).await) });
            }
            SinkConfig::CloudWatchLogs(c) => {
                let wiring = crate::sinks::cloudwatch_logs::Wiring {
                    name: name.clone(),
                    filter: Filter::new(sc),
                    buffer: buffer.clone(),
                    metrics: metrics.clone(),
                    dead_letter: dead_letter(
                        &c.target.dead_letter,
                        name,
                        &data,
                        &provider,
                        &metrics,
                    )
                    .await,
                    hard_stop: sinks_hard.clone(),
                };
                let (g, s) = c.target.templates(&format!("sinks.{name}"))?;
                let format = crate::sinks::cloudwatch_logs::record_format(g, s);
                let d = crate::sinks::cloudwatch_logs::build(wiring, &c.target, format).await?;
                sinks.spawn(async move { (task_name, d.run(soft).await) });
            }
            SinkConfig::Firehose(c) => {
                let wiring = crate::sinks::cloudwatch_logs::Wiring {
                    name: name.clone(),
                    filter: Filter::new(sc),
                    buffer: buffer.clone(),
                    metrics: metrics.clone(),
                    dead_letter: dead_letter(&c.dead_letter, name, &data, &provider, &metrics)
                        .await,
                    hard_stop: sinks_hard.clone(),
                };
                let d = crate::sinks::firehose::build(wiring, c, provider.clone()).await?;
                sinks.spawn(async move { (task_name, d.run(soft).await) });
            }
            SinkConfig::CloudWatchMetrics(c) => {
                let wiring = crate::sinks::cloudwatch_logs::Wiring {
                    name: name.clone(),
                    filter: Filter::new(sc),
                    buffer: buffer.clone(),
                    metrics: metrics.clone(),
                    dead_letter: dead_letter(&c.dead_letter, name, &data, &provider, &metrics)
                        .await,
                    hard_stop: sinks_hard.clone(),
                };
                crate::sinks::cloudwatch_metrics::spawn(wiring, c, soft, &mut sinks).await?;
            }
            SinkConfig::S3(c) => {
                let settings = PipelineSettings {
                    name: name.clone(),
                    filter: Filter::new(sc),
                    template: template(name, &c.key)?,
                    compression: c.compression,
                    compression_level: c.compression.level(c.compression_level),
                    sealer,
                    batch: c.batch.clone(),
                    stop: sinks_hard.clone(),
                };
                let service = S3Service {
                    client: crate::sinks::s3::client(c).await,
                    bucket: c.bucket.clone(),
                    sink: name.clone(),
                    metrics: metrics.clone(),
                    stop: sinks_hard.clone(),
                };
                let c = c.clone();
                let state = data.join("sinks").join(name).join("uploads");
                let buffer = buffer.clone();
                let metrics = metrics.clone();
                sinks.spawn(async move {
                    let res = async {
                        let store = S3Store::open(
                            service,
                            &state,
                            c.part_bytes.0,
                            c.encryption,
                            c.sse_kms_key_id.clone(),
                            c.compression,
                        )
                        .await?;
                        Pipeline::new(settings, store, buffer, metrics)
                            .run(soft)
                            .await
                    }
                    .await;
                    (task_name, res)
                });
            }
        }
    }

    let sources_stop = CancellationToken::new();
    let mut sources = JoinSet::new();
    let dead = data.join("dead-letter");
    for (name, sc) in &cfg.sources {
        match sc {
            SourceConfig::Socket(c) => {
                let at = AtRest::new(provider.clone(), "wharf-shipper-dead-letter");
                let src = SocketSource::bind(name, c, buffer.clone(), metrics.clone(), &dead, at)?;
                sources.spawn(src.run(sources_stop.clone()));
            }
        }
    }
    tracing::info!(
        sources = cfg.sources.len(),
        sinks = cfg.sinks.len(),
        "wharf-shipper is running"
    );

    let mut failure = None;
    tokio::select! {
        _ = stop.cancelled() => {}
        Some(done) = sinks.join_next() => {
            failure = Some(sink_failure(done));
        }
    }

    // 1. Stop accepting; connections ack what they have read.
    sources_stop.cancel();
    while sources.join_next().await.is_some() {}
    // 2. Everything accepted is durable; seal the active segment.
    buffer.close().await;
    // 3. Sinks deliver what is buffered, within the deadline.
    sinks_soft.cancel();
    let deadline = cfg.shutdown_timeout.0;
    let drained = tokio::time::timeout(deadline, async {
        while let Some(done) = sinks.join_next().await {
            if let Err(e) = sink_result(done) {
                failure.get_or_insert(e);
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(timeout = %cfg.shutdown_timeout, "sinks did not finish delivering in time; the rest stays buffered for the next start");
        sinks_hard.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while sinks.join_next().await.is_some() {}
        })
        .await;
        sinks.abort_all();
    }
    api_stop.cancel();
    tracing::info!(buffered_bytes = buffer.bytes(), "wharf-shipper stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn dead_letter(
    cfg: &crate::sinks::dead_letter::DeadLetterConfig,
    sink: &str,
    data: &Path,
    provider: &Arc<dyn wharf_envelope::KeyProvider>,
    metrics: &Arc<Metrics>,
) -> Arc<crate::sinks::dead_letter::SinkDeadLetter> {
    let at = AtRest::new(provider.clone(), "wharf-shipper-dead-letter");
    Arc::new(
        crate::sinks::dead_letter::SinkDeadLetter::open(cfg, sink, data, at, metrics.clone()).await,
    )
}

fn template(name: &str, text: &str) -> Result<KeyTemplate> {
    KeyTemplate::parse(text).map_err(|r| Error::invalid(format!("sinks.{name}.key"), r))
}

fn sink_result(
    done: std::result::Result<(String, Result<()>), tokio::task::JoinError>,
) -> Result<()> {
    match done {
        Ok((_, Ok(()))) | Ok((_, Err(Error::ShuttingDown))) => Ok(()),
        Ok((name, Err(e))) => {
            tracing::error!(sink = %name, error = %e, "sink failed");
            Err(e)
        }
        Err(e) => Err(Error::Sink {
            sink: "?".into(),
            message: format!("a sink task panicked: {e}"),
        }),
    }
}

fn sink_failure(done: std::result::Result<(String, Result<()>), tokio::task::JoinError>) -> Error {
    match sink_result(done) {
        Err(e) => e,
        Ok(()) => Error::ShuttingDown,
    }
}

/// Checks a config file without running anything.
pub fn validate(path: &Path) -> Result<Config> {
    Config::load(path)
}

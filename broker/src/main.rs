//! `wharf-broker`: runs the Kafka-compatible broker.
//!
//! With no arguments: plaintext listener on 127.0.0.1:9092, data under
//! `./wharf-data`, at-rest encryption under a local master key kept in the
//! data directory (created 0600).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use wharf_broker::broker::Broker;
use wharf_broker::config::{Config, Encryption};
use wharf_broker::server::{serve, tls_acceptor, ListenerConfig};
use wharf_broker::storage::disk::{frames::AtRest, DiskEngine};

#[derive(Debug, Parser)]
#[command(
    name = "wharf-broker",
    version,
    about = "A Kafka-compatible broker with encrypted storage"
)]
struct Args {
    /// TOML configuration file (WHARF_* environment variables override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (overrides the config file).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Plaintext listener address (overrides the config file).
    #[arg(long)]
    listen: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let at_rest = match config.encryption {
        Encryption::None => AtRest::Plain,
        Encryption::Local => AtRest::local(&config.data_dir).await?,
    };
    let engine = DiskEngine::open(&config.data_dir, at_rest)?;
    let broker = Broker::open(config.broker_config(), engine).await?;

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
        };
        tracing::info!(listen = %addr, "wharf-broker listening (TLS)");
        tokio::spawn(serve(l, broker.clone(), cfg, Some(acceptor)));
    }

    let retention_every = Duration::from_millis(config.log.retention_check_interval_ms.max(100));
    let b = broker.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(retention_every).await;
            b.apply_retention().await;
        }
    });
    let b: Arc<Broker<DiskEngine>> = broker.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            b.tick_groups();
        }
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: flushing partitions");
    broker.flush_all().await;
    Ok(())
}

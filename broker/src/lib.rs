//! `wharf-broker`: a Kafka-wire-compatible broker.
//!
//! - [`protocol`]: the Kafka codec (frames, headers, versions, record-batch
//!   headers), free of I/O.
//! - [`storage`]: the [`storage::Engine`] and [`storage::PartitionLog`]
//!   traits, with [`storage::memory::MemoryEngine`] and
//!   [`storage::disk::DiskEngine`] (segments, indexes, recovery,
//!   retention, all through one at-rest seam).
//! - [`broker`]: [`broker::Broker`], which answers decoded requests.
//! - [`group`]: the consumer-group coordinator and committed offsets.
//! - [`server`]: TCP and TLS listeners feeding frames to the broker.
//! - [`config`]: the TOML + `WHARF_*` configuration, `[telemetry]` included.
//! - [`telemetry`]: request counts, audit records and periodic gauges
//!   handed to `wharf-exporters`.
//! - [`app`]: the `wharf-broker` process (also run by `wharf up`).
#![warn(missing_docs)]

pub mod app;
pub mod broker;
pub mod config;
pub mod group;
pub mod protocol;
pub mod server;
pub mod storage;
pub mod telemetry;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

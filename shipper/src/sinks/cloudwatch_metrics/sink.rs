//! Builds and spawns the sink in its mode.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::aggregate::MetricBatcher;
use super::config::{CloudWatchMetricsSinkConfig, MetricsMode};
use super::service::{client, MetricsService};
use crate::error::Result;
use crate::sinks::cloudwatch_logs::{self, Wiring};
use crate::sinks::driver::Driver;

/// Starts the sink on `set`; the task returns its name and result.
pub async fn spawn(
    w: Wiring,
    c: &CloudWatchMetricsSinkConfig,
    soft: CancellationToken,
    set: &mut JoinSet<(String, Result<()>)>,
) -> Result<()> {
    let task = w.name.clone();
    match c.mode {
        MetricsMode::Emf => {
            let target = c.emf_target();
            let (g, s) = target.templates(&format!("sinks.{}.emf", w.name))?;
            let format = super::emf::format(
                g,
                s,
                c.namespace.clone(),
                c.storage_resolution,
                c.dimensions.clone(),
            );
            let d = cloudwatch_logs::build(w, &target, format).await?;
            set.spawn(async move { (task, d.run(soft).await) });
        }
        MetricsMode::Api => {
            let service = MetricsService {
                client: client(c.endpoint_url.as_deref(), c.compress).await,
                namespace: c.namespace.clone(),
                storage_resolution: c.storage_resolution as i32,
                sink: w.name.clone(),
                metrics: w.metrics.clone(),
                stop: w.hard_stop,
            };
            let d = Driver {
                name: w.name,
                filter: w.filter,
                batcher: MetricBatcher::new(c.dimensions.clone(), c.period.0, c.max_age.0),
                sender: Arc::new(service),
                dead_letter: w.dead_letter,
                max_in_flight: c.max_in_flight,
                buffer: w.buffer,
                metrics: w.metrics,
            };
            set.spawn(async move { (task, d.run(soft).await) });
        }
    }
    Ok(())
}

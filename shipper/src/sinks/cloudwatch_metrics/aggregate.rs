//! Metric samples aggregated per metric, unit, dimensions and period, then
//! cut into PutMetricData requests within the API's limits; pure code.
//!
//! A datum carries `Values` and `Counts` (at most [`MAX_VALUES`] distinct
//! values) until a 151st distinct value or a statistic set arrives, then
//! a `StatisticValues` set. Its timestamp is the start of its period.
//! Requests hold at most [`MAX_DATUMS`] datums and [`MAX_REQUEST_BYTES`]
//! (estimated before gzip, so the compressed body is smaller still).
//!
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html>

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::parse::{parse, Measure, Stats};
use crate::record::Record;
use crate::sinks::dead_letter::DeadEvent;
use crate::sinks::driver::{Batcher, Owing};

/// Most datums in one PutMetricData.
pub const MAX_DATUMS: usize = 1000;
/// Largest PutMetricData request (1 MB).
pub const MAX_REQUEST_BYTES: usize = 1_000_000;
/// Most distinct values in one datum.
pub const MAX_VALUES: usize = 150;
/// Most aggregates kept open before they are sent.
pub const MAX_OPEN_AGGREGATES: usize = 20_000;

/// A datum's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Distinct values and how often each was seen.
    Counts(Vec<(f64, f64)>),
    /// A statistic set.
    Stats(Stats),
}

/// One MetricDatum.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    /// Metric name.
    pub name: String,
    /// Unit.
    pub unit: Option<String>,
    /// Dimensions.
    pub dimensions: BTreeMap<String, String>,
    /// Start of its period (ms since the epoch).
    pub timestamp_ms: i64,
    /// Values.
    pub values: Values,
}

impl Datum {
    /// An upper bound of its size in an awsQuery request.
    pub fn estimated_bytes(&self) -> usize {
        let dims: usize = self
            .dimensions
            .iter()
            .map(|(k, v)| 3 * (k.len() + v.len()) + 120)
            .sum();
        let values = match &self.values {
            Values::Counts(v) => v.len() * 100,
            Values::Stats(_) => 400,
        };
        300 + 3 * self.name.len() + dims + values
    }
}

/// A PutMetricData request's worth of datums, with the records in each.
#[derive(Debug)]
pub struct MetricBatch {
    /// The datums.
    pub datums: Vec<Datum>,
    /// The records behind each datum.
    pub records: Vec<Vec<Arc<Record>>>,
    min_seq: u64,
}

impl Owing for MetricBatch {
    fn min_seq(&self) -> u64 {
        self.min_seq
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    name: String,
    unit: Option<String>,
    dimensions: Vec<(String, String)>,
    period_start: i64,
}

#[derive(Default)]
struct Agg {
    counts: BTreeMap<u64, f64>,
    stats: Option<Stats>,
    records: Vec<Arc<Record>>,
}

impl Agg {
    fn add(&mut self, m: &Measure) {
        match *m {
            Measure::Value(v) => match self.stats {
                Some(s) => self.stats = Some(s.merge(Stats::of(v))),
                None => {
                    *self.counts.entry(v.to_bits()).or_default() += 1.0;
                    if self.counts.len() > MAX_VALUES {
                        self.switch_to_stats();
                    }
                }
            },
            Measure::Stats(o) => {
                self.switch_to_stats();
                self.stats = Some(self.stats.map_or(o, |s| s.merge(o)));
            }
        }
    }

    fn switch_to_stats(&mut self) {
        let mut s: Option<Stats> = None;
        for (bits, n) in std::mem::take(&mut self.counts) {
            let v = f64::from_bits(bits);
            let one = Stats {
                count: n,
                sum: v * n,
                min: v,
                max: v,
            };
            s = Some(s.map_or(one, |s| s.merge(one)));
        }
        if s.is_some() {
            self.stats = s;
        }
    }
}

/// Aggregates samples and cuts requests.
pub struct MetricBatcher {
    dimensions: BTreeMap<String, String>,
    period_ms: i64,
    max_age: Duration,
    open: HashMap<Key, Agg>,
    opened: Option<Instant>,
    min_seq: Option<u64>,
}

impl MetricBatcher {
    /// Aggregates over `period`, sending every `max_age`; `dimensions` maps
    /// record fields to dimension names.
    pub fn new(dimensions: BTreeMap<String, String>, period: Duration, max_age: Duration) -> Self {
        MetricBatcher {
            dimensions,
            period_ms: period.as_millis().max(1) as i64,
            max_age,
            open: HashMap::new(),
            opened: None,
            min_seq: None,
        }
    }

    fn close(&mut self, ready: &mut Vec<MetricBatch>) {
        self.opened = None;
        self.min_seq = None;
        let mut aggs: Vec<(Key, Agg)> = self.open.drain().collect();
        aggs.sort_by(|a, b| {
            (a.0.period_start, &a.0.name, &a.0.dimensions).cmp(&(
                b.0.period_start,
                &b.0.name,
                &b.0.dimensions,
            ))
        });
        let mut batch = MetricBatch {
            datums: Vec::new(),
            records: Vec::new(),
            min_seq: u64::MAX,
        };
        let mut bytes = 0;
        for (k, a) in aggs {
            let values = match a.stats {
                Some(s) => Values::Stats(s),
                None => Values::Counts(
                    a.counts
                        .iter()
                        .map(|(b, n)| (f64::from_bits(*b), *n))
                        .collect(),
                ),
            };
            let d = Datum {
                name: k.name,
                unit: k.unit,
                dimensions: k.dimensions.into_iter().collect(),
                timestamp_ms: k.period_start,
                values,
            };
            let size = d.estimated_bytes();
            if batch.datums.len() >= MAX_DATUMS || bytes + size > MAX_REQUEST_BYTES {
                ready.push(std::mem::replace(
                    &mut batch,
                    MetricBatch {
                        datums: Vec::new(),
                        records: Vec::new(),
                        min_seq: u64::MAX,
                    },
                ));
                bytes = 0;
            }
            bytes += size;
            batch.min_seq = a
                .records
                .iter()
                .map(|r| r.seq)
                .fold(batch.min_seq, u64::min);
            batch.datums.push(d);
            batch.records.push(a.records);
        }
        if !batch.datums.is_empty() {
            ready.push(batch);
        }
    }
}

impl Batcher for MetricBatcher {
    type Batch = MetricBatch;

    fn add(&mut self, r: Arc<Record>, ready: &mut Vec<MetricBatch>, dead: &mut Vec<DeadEvent>) {
        let sample = match parse(&r.line, &self.dimensions) {
            Ok(s) => s,
            Err(reason) => {
                dead.push(DeadEvent::new(r, reason));
                return;
            }
        };
        let key = Key {
            name: sample.name,
            unit: sample.unit,
            dimensions: sample.dimensions.into_iter().collect(),
            period_start: r.ts_millis - r.ts_millis.rem_euclid(self.period_ms),
        };
        if !self.open.contains_key(&key) && self.open.len() >= MAX_OPEN_AGGREGATES {
            self.close(ready);
        }
        self.opened.get_or_insert_with(Instant::now);
        self.min_seq = Some(self.min_seq.map_or(r.seq, |m| m.min(r.seq)));
        let agg = self.open.entry(key).or_default();
        agg.add(&sample.measure);
        agg.records.push(r);
    }

    fn take_expired(&mut self, now: Instant, ready: &mut Vec<MetricBatch>) {
        if self.opened.is_some_and(|o| o + self.max_age <= now) {
            self.close(ready);
        }
    }

    fn take_all(&mut self, ready: &mut Vec<MetricBatch>) {
        self.close(ready);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.opened.map(|o| o + self.max_age)
    }

    fn min_open_seq(&self) -> Option<u64> {
        self.min_seq
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;

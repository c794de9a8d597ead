//! PutLogEvents batches: every rule of the API, as pure code.
//!
//! - at most [`MAX_BATCH_BYTES`], counting [`EVENT_OVERHEAD`] bytes per event;
//! - at most [`MAX_BATCH_EVENTS`] events;
//! - events sorted by timestamp, and one batch spans at most
//!   [`MAX_BATCH_SPAN_MS`] (an event that would stretch it further closes it);
//! - an event older than [`MAX_EVENT_AGE_MS`] (or the group's retention) or
//!   more than [`MAX_FUTURE_MS`] ahead is refused before sending;
//! - an event longer than [`MAX_EVENT_BYTES`] is truncated with a visible
//!   marker or split into marked parts ([`Oversize`]).
//!
//! <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html>

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;

use crate::record::Record;
use crate::sinks::dead_letter::DeadEvent;
use crate::sinks::driver::{Batcher, Owing};

/// Largest batch, counting [`EVENT_OVERHEAD`] per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Bytes PutLogEvents counts for each event besides its message.
pub const EVENT_OVERHEAD: usize = 26;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Longest time span of one batch.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// Longest message of one event.
pub const MAX_EVENT_BYTES: usize = MAX_BATCH_BYTES - EVENT_OVERHEAD;
/// Oldest event CloudWatch Logs accepts.
pub const MAX_EVENT_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// Furthest ahead an event may be.
pub const MAX_FUTURE_MS: i64 = 2 * 3600 * 1000;

/// What to do with an event longer than [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Oversize {
    /// Keep the start and end it with `…[wharf: truncated N bytes]`.
    #[default]
    Truncate,
    /// Send it as several events, each starting `[wharf: part i/n ID] `.
    Split,
}

/// One log event as it will be sent.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// Milliseconds since the epoch.
    pub ts: i64,
    /// The message.
    pub message: String,
    /// The record it comes from (several events when split).
    pub record: Arc<Record>,
}

/// A request's worth of events for one stream, sorted by time.
#[derive(Debug)]
pub struct LogBatch {
    /// Log group.
    pub group: String,
    /// Log stream.
    pub stream: String,
    /// Events, sorted by timestamp.
    pub events: Vec<LogEvent>,
    min_seq: u64,
}

impl Owing for LogBatch {
    fn min_seq(&self) -> u64 {
        self.min_seq
    }
}

impl LogBatch {
    /// Bytes PutLogEvents counts for it.
    pub fn counted_bytes(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.message.len() + EVENT_OVERHEAD)
            .sum()
    }
}

/// Limits of a sink's batches (the API's, or smaller).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Counted bytes per batch.
    pub max_bytes: usize,
    /// Events per batch.
    pub max_events: usize,
    /// Time a batch stays open.
    pub max_age: Duration,
    /// Oldest event accepted, in ms (14 days or the retention, if shorter).
    pub max_event_age_ms: i64,
    /// Oversize events.
    pub oversize: Oversize,
}

/// Turns a record into the group, stream and message to send (`Err`: the
/// reason to dead-letter it).
pub type Format = Box<dyn Fn(&Record) -> Result<(String, String, String), String> + Send>;

struct Open {
    events: Vec<LogEvent>,
    bytes: usize,
    min_ts: i64,
    max_ts: i64,
    min_seq: u64,
    opened: Instant,
}

/// Groups events by stream into batches within [`Limits`].
pub struct LogBatcher {
    limits: Limits,
    format: Format,
    open: HashMap<(String, String), Open>,
    now: Box<dyn Fn() -> i64 + Send>,
    /// Events truncated or split (`wharf_shipper_sink_events_oversize_total`).
    pub oversize: Counter,
}

impl LogBatcher {
    /// A batcher with `limits`, formatting records with `format`.
    pub fn new(limits: Limits, format: Format) -> LogBatcher {
        LogBatcher {
            limits,
            format,
            open: HashMap::new(),
            now: Box::new(|| chrono::Utc::now().timestamp_millis()),
            oversize: Counter::default(),
        }
    }

    /// Uses `now` as the clock (tests).
    pub fn with_clock(mut self, now: impl Fn() -> i64 + Send + 'static) -> Self {
        self.now = Box::new(now);
        self
    }

    fn close(&mut self, key: &(String, String), ready: &mut Vec<LogBatch>) {
        if let Some(mut o) = self.open.remove(key) {
            o.events.sort_by_key(|e| e.ts);
            ready.push(LogBatch {
                group: key.0.clone(),
                stream: key.1.clone(),
                events: o.events,
                min_seq: o.min_seq,
            });
        }
    }

    fn push(&mut self, key: (String, String), ev: LogEvent, ready: &mut Vec<LogBatch>) {
        let size = ev.message.len() + EVENT_OVERHEAD;
        if let Some(o) = self.open.get(&key) {
            let span = o.max_ts.max(ev.ts) - o.min_ts.min(ev.ts);
            if o.bytes + size > self.limits.max_bytes
                || o.events.len() >= self.limits.max_events
                || span > MAX_BATCH_SPAN_MS
            {
                self.close(&key, ready);
            }
        }
        let o = self.open.entry(key).or_insert_with(|| Open {
            events: Vec::new(),
            bytes: 0,
            min_ts: ev.ts,
            max_ts: ev.ts,
            min_seq: ev.record.seq,
            opened: Instant::now(),
        });
        o.bytes += size;
        o.min_ts = o.min_ts.min(ev.ts);
        o.max_ts = o.max_ts.max(ev.ts);
        o.min_seq = o.min_seq.min(ev.record.seq);
        o.events.push(ev);
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `message` truncated to [`MAX_EVENT_BYTES`] with a marker saying how much
/// was cut.
pub fn truncate(message: &str, max: usize) -> String {
    let marker_len = "…[wharf: truncated  bytes]".len() + 20;
    let kept = cut(message, max - marker_len);
    let dropped = message.len() - kept.len();
    format!("{kept}…[wharf: truncated {dropped} bytes]")
}

/// `message` in parts of at most `max` bytes, each starting with
/// `[wharf: part i/n ID] `.
pub fn split(message: &str, id: &str, max: usize) -> Vec<String> {
    let prefix_len = format!("[wharf: part 99999/99999 {id}] ").len();
    let room = max - prefix_len;
    let mut pieces = Vec::new();
    let mut rest = message;
    while !rest.is_empty() {
        let piece = cut(rest, room);
        pieces.push(piece);
        rest = &rest[piece.len()..];
    }
    let n = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[wharf: part {}/{n} {id}] {p}", i + 1))
        .collect()
}

impl Batcher for LogBatcher {
    type Batch = LogBatch;

    fn add(&mut self, r: Arc<Record>, ready: &mut Vec<LogBatch>, dead: &mut Vec<DeadEvent>) {
        let now = (self.now)();
        if r.ts_millis < now - self.limits.max_event_age_ms {
            dead.push(DeadEvent::new(r, "too_old"));
            return;
        }
        if r.ts_millis > now + MAX_FUTURE_MS {
            dead.push(DeadEvent::new(r, "too_new"));
            return;
        }
        let (group, stream, message) = match (self.format)(&r) {
            Ok(x) => x,
            Err(reason) => {
                dead.push(DeadEvent::new(r, reason));
                return;
            }
        };
        let key = (group, stream);
        let max = MAX_EVENT_BYTES.min(self.limits.max_bytes - EVENT_OVERHEAD);
        if message.len() <= max {
            let ev = LogEvent {
                ts: r.ts_millis,
                message,
                record: r,
            };
            self.push(key, ev, ready);
            return;
        }
        self.oversize.inc();
        let parts = match self.limits.oversize {
            Oversize::Truncate => vec![truncate(&message, max)],
            Oversize::Split => split(&message, &r.id.to_string(), max),
        };
        for message in parts {
            let ev = LogEvent {
                ts: r.ts_millis,
                message,
                record: r.clone(),
            };
            self.push(key.clone(), ev, ready);
        }
    }

    fn take_expired(&mut self, now: Instant, ready: &mut Vec<LogBatch>) {
        let due: Vec<_> = self
            .open
            .iter()
            .filter(|(_, o)| o.opened + self.limits.max_age <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.close(&k, ready);
        }
    }

    fn take_all(&mut self, ready: &mut Vec<LogBatch>) {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        for k in keys {
            self.close(&k, ready);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|o| o.opened + self.limits.max_age)
            .min()
    }

    fn min_open_seq(&self) -> Option<u64> {
        self.open.values().map(|o| o.min_seq).min()
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;

//! Where telemetry lines go.

use std::sync::{Arc, Mutex};

/// Anything that takes NDJSON lines without blocking: the
/// [`SocketWriter`](crate::SocketWriter) in the broker, a [`MemorySink`] in
/// tests.
pub trait LineSink: Send + Sync + 'static {
    /// Queues one line (a JSON object without the trailing newline); false
    /// when it was dropped.
    fn try_send_line(&self, line: Vec<u8>) -> bool;
}

impl LineSink for crate::SocketWriter {
    fn try_send_line(&self, line: Vec<u8>) -> bool {
        crate::SocketWriter::try_send_line(self, line)
    }
}

impl<T: LineSink> LineSink for Arc<T> {
    fn try_send_line(&self, line: Vec<u8>) -> bool {
        (**self).try_send_line(line)
    }
}

/// Keeps lines in memory; for tests and for tools that inspect telemetry.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every line so far, parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}

impl LineSink for MemorySink {
    fn try_send_line(&self, line: Vec<u8>) -> bool {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
        true
    }
}

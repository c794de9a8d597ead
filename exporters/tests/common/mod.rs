//! A shipper stand-in on a real Unix socket, shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use wharf_exporters::SocketWriterConfig;

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Ack,
    NeverAck,
    NeverRead,
}

/// A shipper stand-in: records every line it receives on a real socket.
pub struct Shipper {
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Shipper {
    pub fn start(path: &Path, mode: Mode) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let got = lines.clone();
        let task = tokio::spawn(async move {
            // One connection at a time, so that aborting this task closes it.
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rd, mut wr) = stream.into_split();
                if mode == Mode::NeverRead {
                    std::future::pending::<()>().await;
                }
                let mut rd = BufReader::new(rd).lines();
                let mut n = 0u64;
                while let Ok(Some(line)) = rd.next_line().await {
                    got.lock().unwrap().push(line);
                    n += 1;
                    if mode == Mode::Ack {
                        let _ = wr.write_all(format!("{{\"ack\":{n}}}\n").as_bytes()).await;
                    }
                }
            }
        });
        Self {
            path: path.to_path_buf(),
            lines,
            task,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Goes away: closes the connection and removes the socket.
    pub async fn stop(self) -> Vec<String> {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
        let lines = self.lines.lock().unwrap().clone();
        lines
    }
}

pub fn config(dir: &Path) -> SocketWriterConfig {
    let keys = Arc::new(wharf_envelope::LocalKeyProvider::from_key([9; 32]));
    let mut cfg =
        SocketWriterConfig::new(dir.join("shipper.sock"), dir.join("spool"), keys, "test");
    cfg.reconnect_min = Duration::from_millis(20);
    cfg.reconnect_max = Duration::from_millis(100);
    cfg
}

pub fn line(i: usize) -> String {
    format!(r#"{{"kind":"log","ts":{i},"level":"INFO","message":"line {i:06}"}}"#)
}

/// Compares line lists, reporting the first difference rather than both lists.
#[track_caller]
pub fn assert_lines(got: &[String], want: &[String], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!("{what}: line {i} differs: got {} want {}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: line counts differ");
}

/// Waits (up to 20 s) for a condition; the assertion after it says what failed.
pub async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

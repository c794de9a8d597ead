//! The Unix socket source: binds safely, accepts many clients, hands each
//! connection to [`connection`].

mod config;
mod connection;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::SocketConfig;

use super::dead_letter::DeadLetter;
use crate::buffer::Buffer;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// What every connection of one source shares.
pub(crate) struct SourceCtx {
    pub(crate) name: Arc<str>,
    pub(crate) max_line: usize,
    pub(crate) buffer: Buffer,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) dead_letter: DeadLetter,
}

/// A bound socket source, ready to run.
pub struct SocketSource {
    listener: UnixListener,
    path: PathBuf,
    ctx: Arc<SourceCtx>,
    max_connections: usize,
}

impl SocketSource {
    /// Binds the socket (see [`bind`]).
    pub fn bind(
        name: &str,
        cfg: &SocketConfig,
        buffer: Buffer,
        metrics: Arc<Metrics>,
        dead_letter_dir: &Path,
        at: crate::buffer::AtRest,
    ) -> Result<SocketSource> {
        let listener = bind(&cfg.path, cfg.mode_bits())?;
        Ok(SocketSource {
            listener,
            path: cfg.path.clone(),
            max_connections: cfg.max_connections,
            ctx: Arc::new(SourceCtx {
                name: Arc::from(name),
                max_line: cfg.max_line_bytes.0 as usize,
                buffer,
                metrics,
                dead_letter: DeadLetter::new(dead_letter_dir, name, at),
            }),
        })
    }

    /// Accepts clients until `shutdown`; then stops accepting, lets every
    /// connection ack what it has read, removes the socket and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let mut conns = JoinSet::new();
        tracing::info!(source = %self.ctx.name, path = %self.path.display(), "listening");
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = limit.clone().acquire_owned() => p.expect("never closed"),
            };
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let ctx = self.ctx.clone();
            let stop = shutdown.clone();
            conns.spawn(async move {
                connection::handle(stream, ctx, stop).await;
                drop(permit);
            });
            while conns.try_join_next().is_some() {}
        }
        let _ = std::fs::remove_file(&self.path);
        while conns.join_next().await.is_some() {}
        self.ctx.dead_letter.close().await;
    }
}

/// Binds `path` with `mode`: a stale socket there is replaced, a live one
/// (something accepts connections) or a non-socket file is refused. The
/// socket is bound under a temporary name, given its mode, then renamed
/// into place, so it never exists with looser permissions.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(Error::SocketInUse(path.to_owned())),
                Err(_) => {
                    tracing::info!(path = %path.display(), "replacing a stale socket");
                    std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
                }
            }
        }
        Ok(_) => {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a socket; refusing to replace it (remove it or choose another `path`)",
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(".wsh{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| Error::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(listener)
}

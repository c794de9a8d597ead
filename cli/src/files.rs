//! `--in` / `--out`: files or stdin/stdout. An output file is written under
//! a temporary name (mode 0600) beside it and renamed into place only when
//! the command succeeded, so a failed decryption never leaves a partial
//! plaintext behind.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// Opens `--in`, or stdin.
pub(crate) fn input(path: Option<&Path>) -> Result<Box<dyn Read>> {
    Ok(match path {
        Some(p) => Box::new(BufReader::with_capacity(
            256 * 1024,
            File::open(p).with_context(|| format!("cannot open input file {}", p.display()))?,
        )),
        None => Box::new(BufReader::with_capacity(256 * 1024, io::stdin().lock())),
    })
}

/// Where output goes until [`Output::commit`].
pub(crate) enum Output {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    File {
        tmp: BufWriter<NamedTempFile>,
        path: PathBuf,
    },
}

impl Output {
    pub(crate) fn open(path: Option<&Path>) -> Result<Self> {
        Ok(match path {
            None => Self::Stdout(BufWriter::with_capacity(256 * 1024, io::stdout().lock())),
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let tmp = NamedTempFile::new_in(dir).with_context(|| {
                    format!(
                        "cannot create a file in {} for {}",
                        dir.display(),
                        p.display()
                    )
                })?;
                Self::File {
                    tmp: BufWriter::with_capacity(256 * 1024, tmp),
                    path: p.to_path_buf(),
                }
            }
        })
    }

    /// Flushes and, for a file, renames it into place.
    pub(crate) fn commit(self) -> Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush().context("cannot write to stdout"),
            Self::File { tmp, path } => {
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tmp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tmp.persist(&path)
                    .map_err(|e| e.error)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(w) => w.write(buf),
            Self::File { tmp, .. } => tmp.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(w) => w.flush(),
            Self::File { tmp, .. } => tmp.flush(),
        }
    }
}

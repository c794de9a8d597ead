//! Turning records into object bytes: NDJSON, then compression, then
//! encryption, streamed into a destination writer.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::config::Compression;
use super::seal::Sealing;
use crate::record::Record;

/// A writer that must be finished (final frames, trailers, fsync).
pub trait ObjectWrite: Write + Send {
    /// Completes the stream.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// An in-memory destination the S3 sink drains part by part.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// Bytes written and not yet taken.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything written so far.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWrite for SharedBuf {
    fn finish(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWrite for io::BufWriter<std::fs::File> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let file = self.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

struct Gzip(flate2::write::GzEncoder<Box<dyn ObjectWrite>>);

impl Write for Gzip {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ObjectWrite for Gzip {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.finish()
    }
}

struct Zstd(zstd::stream::write::Encoder<'static, Box<dyn ObjectWrite>>);

impl Write for Zstd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ObjectWrite for Zstd {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.finish()
    }
}

/// NDJSON bytes gathered before they go to the compressor.
pub const CHUNK: usize = 64 << 10;

/// Encodes one object: records in, finished bytes out to the destination.
pub struct ObjectEncoder {
    out: Box<dyn ObjectWrite>,
    line: Vec<u8>,
    /// Records written.
    pub events: u64,
    /// Uncompressed NDJSON bytes written.
    pub raw_bytes: u64,
}

impl ObjectEncoder {
    /// Starts an object into `dest`: encryption (if any) wraps the
    /// destination, compression wraps the encryption.
    pub fn new(
        dest: Box<dyn ObjectWrite>,
        compression: Compression,
        level: i32,
        sealing: Option<&Sealing>,
    ) -> io::Result<ObjectEncoder> {
        let sealed = match sealing {
            Some(s) => s.wrap(dest)?,
            None => dest,
        };
        let out: Box<dyn ObjectWrite> = match compression {
            Compression::None => sealed,
            Compression::Gzip => Box::new(Gzip(flate2::write::GzEncoder::new(
                sealed,
                flate2::Compression::new(level.clamp(0, 9) as u32),
            ))),
            Compression::Zstd => Box::new(Zstd(zstd::stream::write::Encoder::new(sealed, level)?)),
        };
        Ok(ObjectEncoder {
            out,
            line: Vec::with_capacity(CHUNK + 4096),
            events: 0,
            raw_bytes: 0,
        })
    }

    /// Appends one record as an NDJSON line. Lines are handed to the
    /// compressor in chunks of [`CHUNK`] bytes.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let before = self.line.len();
        record.write_ndjson(&mut self.line);
        self.events += 1;
        self.raw_bytes += (self.line.len() - before) as u64;
        if self.line.len() >= CHUNK {
            self.out.write_all(&self.line)?;
            self.line.clear();
        }
        Ok(())
    }

    /// Completes the object (compression trailer, final encryption frame).
    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&self.line)?;
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;
    use std::io::Read;

    fn rec(n: u64) -> Record {
        Record {
            seq: n,
            id: uuid::Uuid::now_v7(),
            kind: Kind::Log,
            ts_millis: 0,
            source: Arc::from("s"),
            line: format!(r#"{{"kind":"log","n":{n}}}"#).into_bytes(),
        }
    }

    fn encode(c: Compression) -> Vec<u8> {
        let buf = SharedBuf::default();
        let mut e = ObjectEncoder::new(Box::new(buf.clone()), c, c.level(None), None).unwrap();
        for n in 0..1000 {
            e.write(&rec(n)).unwrap();
        }
        assert_eq!(e.events, 1000);
        e.finish().unwrap();
        buf.take()
    }

    fn lines(text: &[u8]) -> Vec<serde_json::Value> {
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn every_compression_round_trips() {
        let plain = encode(Compression::None);
        let mut gz = Vec::new();
        flate2::read::GzDecoder::new(&encode(Compression::Gzip)[..])
            .read_to_end(&mut gz)
            .unwrap();
        let zs = zstd::decode_all(&encode(Compression::Zstd)[..]).unwrap();
        for bytes in [&plain, &gz, &zs] {
            let v = lines(bytes);
            assert_eq!(v.len(), 1000);
            assert_eq!(v[999]["n"], 999);
            assert!(v[0]["wharf_id"].is_string());
        }
    }
}

//! Where the decoder takes its bytes from: a borrowed slice (no copy) or a
//! [`Read`] behind a buffer bounded by the largest field the caller asks for.

use std::io::{self, Read};

/// A source of exact-length chunks.
pub(crate) trait Source {
    /// The next `n` bytes, or `Ok(None)` when the input ends first. The
    /// caller bounds `n` (header caps, frame length) before asking.
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>>;
}

/// A borrowed slice: `take` returns sub-slices without copying.
pub(crate) struct SliceSource<'a> {
    pub(crate) data: &'a [u8],
}

impl Source for SliceSource<'_> {
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        if self.data.len() < n {
            self.data = &[];
            return Ok(None);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(Some(head))
    }
}

/// A reader: `take` reads into a reused buffer.
pub(crate) struct ReadSource<R> {
    pub(crate) reader: R,
    buf: Vec<u8>,
}

impl<R: Read> ReadSource<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::new(),
        }
    }
}

impl<R: Read> Source for ReadSource<R> {
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        self.buf.resize(n, 0);
        let mut filled = 0;
        while filled < n {
            match self.reader.read(&mut self.buf[filled..n]) {
                Ok(0) => return Ok(None),
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(&self.buf[..n]))
    }
}

//! Buffers that reads from the segments decrypt a fetch's frames into.
//!
//! A catch-up fetch of ten 1 MiB batches used to allocate ten buffers and
//! free them together once the response was written; glibc hands such a
//! stretch back to the kernel, and the next fetch page-faulted it in again
//! (a 256 MB catch-up read cost the broker 0.2 CPU-s in one run and 0.6 in
//! the next). Now a read takes an arena from a small pool, reserves room
//! for the whole fetch at once and reads the frames into it back to back,
//! so that they go out as one run, never copied to be joined; once the
//! response holding the previous fetch's frames has been dropped,
//! `BytesMut::reserve` reuses that memory instead of allocating.

use std::sync::Mutex;

use bytes::BytesMut;

/// Arenas kept for reuse; reads beyond this many at once use fresh ones.
const POOLED: usize = 4;

/// An arena reserved for more than this is not kept, so that a rare huge
/// fetch does not pin its memory.
const KEEP_MAX: usize = 32 << 20;

/// The engine's pool of read arenas.
#[derive(Debug, Default)]
pub(super) struct ReadArenas {
    free: Mutex<Vec<BytesMut>>,
}

impl ReadArenas {
    /// An arena with room for `bytes` more, back in the pool when dropped.
    pub(super) fn take(&self, bytes: usize) -> Arena<'_> {
        let mut buf = self.lock().pop().unwrap_or_default();
        buf.reserve(bytes);
        Arena {
            pool: self,
            buf,
            reserved: bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BytesMut>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An arena taken from [`ReadArenas`].
#[derive(Debug)]
pub(super) struct Arena<'a> {
    pool: &'a ReadArenas,
    buf: BytesMut,
    reserved: usize,
}

impl Arena<'_> {
    pub(super) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

impl Drop for Arena<'_> {
    fn drop(&mut self) {
        if self.reserved > KEEP_MAX {
            return;
        }
        let mut free = self.pool.lock();
        if free.len() < POOLED {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One fetch's frames in an arena with room for all reserved at once,
    /// each split off (`DiskLog::read` splits off runs of them; the
    /// memory is shared and reclaimed the same way).
    fn fetch(pool: &ReadArenas, sizes: &[usize], fill: u8) -> Vec<bytes::Bytes> {
        let mut arena = pool.take(sizes.iter().sum());
        sizes
            .iter()
            .map(|&n| {
                arena.buf().resize(n, fill);
                arena.buf().split().freeze()
            })
            .collect()
    }

    #[test]
    fn a_fetch_reuses_the_last_ones_memory_once_its_frames_are_dropped() {
        let pool = ReadArenas::default();
        let first = fetch(&pool, &[1 << 20, 2 << 20], 1);
        let at = first[0].as_ptr();
        assert_eq!(
            first[1].as_ptr(),
            at.wrapping_add(1 << 20),
            "one allocation per fetch"
        );
        drop(first);
        let second = fetch(&pool, &[3 << 20], 2);
        assert_eq!(second[0].as_ptr(), at, "the memory of the fetch before");
        // While a response still holds them, the next fetch leaves them be.
        let third = fetch(&pool, &[1 << 20], 3);
        assert_ne!(third[0].as_ptr(), at);
        assert!(second[0].iter().all(|&b| b == 2));
        assert!(third[0].iter().all(|&b| b == 3));
    }

    #[test]
    fn huge_arenas_are_not_kept_and_the_pool_is_bounded() {
        let pool = ReadArenas::default();
        drop(pool.take(KEEP_MAX + 1));
        assert!(pool.lock().is_empty());
        let arenas: Vec<_> = (0..POOLED + 2).map(|_| pool.take(1024)).collect();
        drop(arenas);
        assert_eq!(pool.lock().len(), POOLED);
    }
}

//! Helpers shared by the fuzz targets.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wharf_envelope::LocalKeyProvider;

/// The master key of every file in the at-rest corpus (fuzzing only).
pub const FUZZ_KEY: [u8; 32] = [0x42; 32];

/// The local provider for [`FUZZ_KEY`].
pub fn fuzz_keys() -> LocalKeyProvider {
    LocalKeyProvider::from_key(FUZZ_KEY)
}

/// Runs a future that never waits (the local provider's do not).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the future waited; only local keys are used here"),
    }
}

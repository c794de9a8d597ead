//! The master key named by `[key]`, shared by the buffer (at rest) and by
//! sinks with `encryption = "envelope"`.

use std::sync::Arc;

use wharf_envelope::KeyProvider;

use crate::config::Config;
use crate::error::Result;

/// The configured key provider, if this build can make one.
pub async fn provider(cfg: &Config) -> Result<Option<Arc<dyn KeyProvider>>> {
    let _ = cfg;
    // The `local` and `kms` providers land with `envelope`; until then
    // the shipper runs without one and says so.
    Ok(None)
}

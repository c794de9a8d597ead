//! The master key named by `[key]`, shared by the buffer (at rest), the
//! dead letters and the sinks with `encryption = "envelope"`. Every call to
//! it that reaches the master key is counted in
//! `wharf_shipper_kms_calls_total`.

use std::sync::Arc;

use wharf_envelope::{
    CacheLimits, DataKey, DataKeyCache, EncryptionContext, KeyProvider, LocalKeyProvider,
    WrappedKey,
};

use crate::config::{Config, KeyConfig};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The configured key provider, behind a data-key cache (bounded by age,
/// bytes and uses) so that buffer segments do not each cost a KMS call.
pub async fn provider(cfg: &Config, metrics: Arc<Metrics>) -> Result<Arc<dyn KeyProvider>> {
    let inner: Arc<dyn KeyProvider> = match &cfg.key {
        KeyConfig::Local { path } => {
            let path = path
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("master.key"));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            Arc::new(LocalKeyProvider::open_or_create(&path)?)
        }
        KeyConfig::Kms { key_id } => Arc::new(
            wharf_envelope::kms::KmsProvider::from_env(Some(key_id.clone()))
                .await
                .map_err(|e| Error::invalid("key.key_id", e.to_string()))?,
        ),
    };
    let counted: Arc<dyn KeyProvider> = Arc::new(Counted { inner, metrics });
    Ok(Arc::new(DataKeyCache::new(counted, CacheLimits::default())))
}

/// A provider that counts its calls.
#[derive(Debug)]
pub struct Counted {
    inner: Arc<dyn KeyProvider>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

#[async_trait::async_trait]
impl KeyProvider for Counted {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn generate(
        &self,
        context: &EncryptionContext,
    ) -> std::result::Result<(DataKey, WrappedKey), wharf_envelope::Error> {
        self.metrics.kms_call("generate_data_key");
        self.inner.generate(context).await
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> std::result::Result<DataKey, wharf_envelope::Error> {
        self.metrics.kms_call("decrypt");
        self.inner.unwrap(wrapped, context).await
    }

    async fn wrap(
        &self,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> std::result::Result<WrappedKey, wharf_envelope::Error> {
        self.metrics.kms_call("encrypt");
        self.inner.wrap(key, context).await
    }
}

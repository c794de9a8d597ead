//! A data-key cache in front of a [`KeyProvider`], so that shipping a
//! million events does not cost a million KMS requests.
//!
//! Rules (those of the AWS Encryption SDK's caching materials manager):
//!
//! - A generated (data key, wrapped key) pair is reused for further
//!   requests under the *same* encryption context while it is younger than
//!   [`CacheLimits::max_age`], has served fewer than
//!   [`CacheLimits::max_messages`] requests, and the bytes announced by its
//!   requests stay within [`CacheLimits::max_bytes`]. A request that would
//!   cross a limit retires the entry and generates a new key.
//! - Reuse is safe because every user derives its own key from the data key:
//!   an SDK message from its message id, an at-rest file from its file id
//!   (HKDF), so no (key, nonce) pair repeats across messages or files.
//! - Unwrapped keys are cached too (by wrapped key and context, for
//!   `max_age`), so reading many files sealed under one data key costs one
//!   unwrap. A failed unwrap is never cached.
//! - Both maps hold at most [`CacheLimits::max_entries`] entries; the oldest
//!   goes first.
//! - [`DataKeyCache::stats`] counts the calls that reached the provider
//!   (for KMS: `GenerateDataKey`, `Decrypt`, `Encrypt`) and the hits.
//!
//! The cache is itself a [`KeyProvider`], so it goes wherever one does
//! (e.g. [`crate::atrest::SealedWriter::create`]); `generate` through the
//! trait counts one message and no bytes, [`DataKeyCache::data_key_for`]
//! also counts bytes.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{serialize_context, DataKey, EncryptionContext, Error, KeyProvider, WrappedKey};

/// How long and how much one cached data key may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Oldest a cached key may be when used. Default 5 minutes.
    pub max_age: Duration,
    /// Most requests (messages, files) one generated key serves. Default
    /// 100,000.
    pub max_messages: u64,
    /// Most plaintext bytes the requests of one generated key may announce.
    /// Default 1 GiB.
    pub max_bytes: u64,
    /// Most entries in each of the encrypt and decrypt maps. Default 1,000.
    pub max_entries: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_messages: 100_000,
            max_bytes: 1 << 30,
            max_entries: 1_000,
        }
    }
}

/// Counters since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `generate` calls that reached the provider (KMS `GenerateDataKey`).
    pub generate_calls: u64,
    /// `unwrap` calls that reached the provider (KMS `Decrypt`).
    pub unwrap_calls: u64,
    /// `wrap` calls passed to the provider (KMS `Encrypt`; rotation only).
    pub wrap_calls: u64,
    /// Requests for a new data key served from the cache.
    pub generate_hits: u64,
    /// Unwraps served from the cache.
    pub unwrap_hits: u64,
}

struct EncryptEntry {
    key: DataKey,
    wrapped: WrappedKey,
    created: Instant,
    messages: u64,
    bytes: u64,
}

struct DecryptEntry {
    key: DataKey,
    created: Instant,
}

/// Key of the decrypt map: wrapped key fields and serialized context.
type DecryptKey = (String, Vec<u8>, Vec<u8>, Vec<u8>);

#[derive(Default)]
struct Counters {
    generate_calls: AtomicU64,
    unwrap_calls: AtomicU64,
    wrap_calls: AtomicU64,
    generate_hits: AtomicU64,
    unwrap_hits: AtomicU64,
}

/// A [`KeyProvider`] that caches another's data keys within [`CacheLimits`].
pub struct DataKeyCache {
    provider: Arc<dyn KeyProvider>,
    limits: CacheLimits,
    encrypt: Mutex<HashMap<Vec<u8>, EncryptEntry>>,
    decrypt: Mutex<HashMap<DecryptKey, DecryptEntry>>,
    counters: Counters,
}

impl DataKeyCache {
    /// A cache in front of `provider`.
    pub fn new(provider: Arc<dyn KeyProvider>, limits: CacheLimits) -> Self {
        Self {
            provider,
            limits,
            encrypt: Mutex::new(HashMap::new()),
            decrypt: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// The provider behind the cache.
    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// The limits in force.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// A data key for one message (or file) of `bytes` plaintext bytes under
    /// `context`: a cached one when within the limits, else a new one.
    pub async fn data_key_for(
        &self,
        context: &EncryptionContext,
        bytes: u64,
    ) -> Result<(DataKey, WrappedKey), Error> {
        let id = serialize_context(context).ok_or(Error::ContextTooLarge)?;
        if bytes > self.limits.max_bytes || self.limits.max_messages == 0 {
            // Too big to share a key with anything: bypass the cache.
            return self.generate_uncached(context).await;
        }
        {
            let mut map = self.encrypt.lock().expect("cache lock");
            if let Some(entry) = map.get_mut(&id) {
                let fits = entry.created.elapsed() < self.limits.max_age
                    && entry.messages < self.limits.max_messages
                    && entry.bytes.saturating_add(bytes) <= self.limits.max_bytes;
                if fits {
                    entry.messages += 1;
                    entry.bytes += bytes;
                    self.counters.generate_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((entry.key.clone(), entry.wrapped.clone()));
                }
                map.remove(&id);
            }
        }
        let (key, wrapped) = self.generate_uncached(context).await?;
        let entry = EncryptEntry {
            key: key.clone(),
            wrapped: wrapped.clone(),
            created: Instant::now(),
            messages: 1,
            bytes,
        };
        let mut map = self.encrypt.lock().expect("cache lock");
        evict_oldest(&mut map, self.limits.max_entries, |e| e.created);
        map.insert(id, entry);
        Ok((key, wrapped))
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            generate_calls: c.generate_calls.load(Ordering::Relaxed),
            unwrap_calls: c.unwrap_calls.load(Ordering::Relaxed),
            wrap_calls: c.wrap_calls.load(Ordering::Relaxed),
            generate_hits: c.generate_hits.load(Ordering::Relaxed),
            unwrap_hits: c.unwrap_hits.load(Ordering::Relaxed),
        }
    }

    /// Forgets every cached key (e.g. after a master key rotation, so new
    /// data is wrapped under the new key at once).
    pub fn clear(&self) {
        self.encrypt.lock().expect("cache lock").clear();
        self.decrypt.lock().expect("cache lock").clear();
    }

    async fn generate_uncached(
        &self,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey), Error> {
        self.counters.generate_calls.fetch_add(1, Ordering::Relaxed);
        self.provider.generate(context).await
    }
}

/// Makes room for one more entry.
fn evict_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    created: impl Fn(&V) -> Instant,
) {
    while !map.is_empty() && map.len() >= max.max(1) {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| created(v))
            .map(|(k, _)| k.clone())
            .expect("the map is not empty");
        map.remove(&oldest);
    }
}

impl fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeyCache")
            .field("provider", &self.provider.describe())
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

#[async_trait::async_trait]
impl KeyProvider for DataKeyCache {
    fn describe(&self) -> String {
        self.provider.describe()
    }

    async fn generate(&self, context: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error> {
        self.data_key_for(context, 0).await
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, Error> {
        let id: DecryptKey = (
            wrapped.provider_id.clone(),
            wrapped.provider_info.clone(),
            wrapped.ciphertext.clone(),
            serialize_context(context).ok_or(Error::ContextTooLarge)?,
        );
        {
            let mut map = self.decrypt.lock().expect("cache lock");
            if let Some(entry) = map.get(&id) {
                if entry.created.elapsed() < self.limits.max_age {
                    self.counters.unwrap_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(entry.key.clone());
                }
                map.remove(&id);
            }
        }
        self.counters.unwrap_calls.fetch_add(1, Ordering::Relaxed);
        let key = self.provider.unwrap(wrapped, context).await?;
        let mut map = self.decrypt.lock().expect("cache lock");
        evict_oldest(&mut map, self.limits.max_entries, |e| e.created);
        map.insert(
            id,
            DecryptEntry {
                key: key.clone(),
                created: Instant::now(),
            },
        );
        Ok(key)
    }

    async fn wrap(&self, key: &DataKey, context: &EncryptionContext) -> Result<WrappedKey, Error> {
        self.counters.wrap_calls.fetch_add(1, Ordering::Relaxed);
        self.provider.wrap(key, context).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalKeyProvider;

    /// An in-memory provider that counts the calls that reach it.
    #[derive(Debug, Default)]
    struct Counting {
        inner: Option<LocalKeyProvider>,
        generates: AtomicU64,
        unwraps: AtomicU64,
    }

    impl Counting {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                inner: Some(LocalKeyProvider::random()),
                ..Default::default()
            })
        }
        fn inner(&self) -> &LocalKeyProvider {
            self.inner.as_ref().unwrap()
        }
    }

    #[async_trait::async_trait]
    impl KeyProvider for Counting {
        fn describe(&self) -> String {
            "counting".into()
        }
        async fn generate(&self, c: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error> {
            self.generates.fetch_add(1, Ordering::Relaxed);
            self.inner().generate(c).await
        }
        async fn unwrap(&self, w: &WrappedKey, c: &EncryptionContext) -> Result<DataKey, Error> {
            self.unwraps.fetch_add(1, Ordering::Relaxed);
            self.inner().unwrap(w, c).await
        }
        async fn wrap(&self, k: &DataKey, c: &EncryptionContext) -> Result<WrappedKey, Error> {
            self.inner().wrap(k, c).await
        }
    }

    fn ctx(v: &str) -> EncryptionContext {
        [("purpose".to_string(), v.to_string())].into()
    }

    #[tokio::test]
    async fn a_million_records_cost_at_most_100_generate_calls() {
        let provider = Counting::new();
        let cache = DataKeyCache::new(provider.clone(), CacheLimits::default());
        let c = ctx("logs");
        for _ in 0..1_000_000 {
            cache.data_key_for(&c, 200).await.unwrap();
        }
        let calls = provider.generates.load(Ordering::Relaxed);
        assert!((1..=100).contains(&calls), "{calls} GenerateDataKey calls");
        assert_eq!(cache.stats().generate_calls, calls);
        assert_eq!(cache.stats().generate_hits, 1_000_000 - calls);
    }

    #[tokio::test]
    async fn each_limit_retires_a_key() {
        let provider = Counting::new();
        let limits = CacheLimits {
            max_messages: 10,
            ..CacheLimits::default()
        };
        let cache = DataKeyCache::new(provider.clone(), limits);
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..25 {
            distinct.insert(*cache.generate(&ctx("a")).await.unwrap().0.as_bytes());
        }
        assert_eq!(
            (provider.generates.load(Ordering::Relaxed), distinct.len()),
            (3, 3)
        );

        let provider = Counting::new();
        let limits = CacheLimits {
            max_bytes: 1000,
            ..CacheLimits::default()
        };
        let cache = DataKeyCache::new(provider.clone(), limits);
        for _ in 0..10 {
            cache.data_key_for(&ctx("a"), 300).await.unwrap(); // 3 per key
        }
        cache.data_key_for(&ctx("a"), 5000).await.unwrap(); // bypasses
        assert_eq!(provider.generates.load(Ordering::Relaxed), 4 + 1);

        let provider = Counting::new();
        let limits = CacheLimits {
            max_age: Duration::ZERO,
            ..CacheLimits::default()
        };
        let cache = DataKeyCache::new(provider.clone(), limits);
        for _ in 0..5 {
            cache.generate(&ctx("a")).await.unwrap();
        }
        assert_eq!(provider.generates.load(Ordering::Relaxed), 5);
    }

    #[tokio::test]
    async fn contexts_never_share_a_key() {
        let provider = Counting::new();
        let cache = DataKeyCache::new(provider.clone(), CacheLimits::default());
        let (a, _) = cache.generate(&ctx("a")).await.unwrap();
        let (b, wb) = cache.generate(&ctx("b")).await.unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(provider.generates.load(Ordering::Relaxed), 2);
        // And the wrapped key is bound to its own context.
        assert!(provider.inner().unwrap(&wb, &ctx("a")).await.is_err());
    }

    #[tokio::test]
    async fn unwraps_are_cached_but_failures_are_not() {
        let provider = Counting::new();
        let cache = DataKeyCache::new(provider.clone(), CacheLimits::default());
        let (key, wrapped) = provider.inner().generate(&ctx("a")).await.unwrap();
        for _ in 0..1000 {
            assert_eq!(
                cache.unwrap(&wrapped, &ctx("a")).await.unwrap().as_bytes(),
                key.as_bytes()
            );
        }
        assert_eq!(provider.unwraps.load(Ordering::Relaxed), 1);
        for _ in 0..3 {
            assert!(cache.unwrap(&wrapped, &ctx("b")).await.is_err());
        }
        assert_eq!(provider.unwraps.load(Ordering::Relaxed), 4);
        let stats = cache.stats();
        assert_eq!((stats.unwrap_calls, stats.unwrap_hits), (4, 999));
    }

    #[tokio::test]
    async fn entries_are_bounded() {
        let provider = Counting::new();
        let limits = CacheLimits {
            max_entries: 3,
            ..CacheLimits::default()
        };
        let cache = DataKeyCache::new(provider.clone(), limits);
        for i in 0..10 {
            cache.generate(&ctx(&i.to_string())).await.unwrap();
        }
        assert_eq!(cache.encrypt.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn at_rest_files_through_the_cache_share_one_generate_but_not_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Counting::new();
        let cache = DataKeyCache::new(provider.clone(), CacheLimits::default());
        let mut ids = std::collections::HashSet::new();
        for i in 0..50 {
            let path = dir.path().join(format!("f{i}"));
            let mut w = crate::atrest::SealedWriter::create(&path, &cache, &ctx("buffer"))
                .await
                .unwrap();
            w.append(format!("record {i}").as_bytes()).unwrap();
            w.finish().unwrap();
            let r = crate::atrest::SealedReader::open(&path, &cache)
                .await
                .unwrap();
            ids.insert(r.file_id());
            assert_eq!(
                r.read_at(r.data_start()).unwrap().unwrap().data,
                format!("record {i}").as_bytes()
            );
        }
        assert_eq!(
            ids.len(),
            50,
            "each file has its own id, hence its own derived key"
        );
        assert_eq!(provider.generates.load(Ordering::Relaxed), 1);
        assert_eq!(provider.unwraps.load(Ordering::Relaxed), 1);
    }
}

//! Committed offsets: an in-memory map backed by the `offsets` state file,
//! one JSON record per OffsetCommit, replayed on start and compacted when
//! the file holds many superseded records.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::{Engine, StorageError};

const OFFSETS_STATE: &str = "offsets";
/// Rewrite the state file when it holds this many records more than live offsets.
const COMPACT_AFTER: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Commit {
    g: String,
    t: String,
    p: i32,
    o: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<String>,
}

type Key = (String, String, i32);

/// Committed offsets of every group.
pub(crate) struct Offsets<E: Engine> {
    engine: E,
    map: Mutex<HashMap<Key, (i64, Option<String>)>>,
    records: AtomicUsize,
    write: tokio::sync::Mutex<()>,
}

impl<E: Engine> Offsets<E> {
    pub(crate) async fn open(engine: E) -> Result<Offsets<E>, StorageError> {
        let mut map = HashMap::new();
        let records = engine.read_state(OFFSETS_STATE).await?;
        for rec in &records {
            let commits: Vec<Commit> =
                serde_json::from_slice(rec).map_err(|e| StorageError::Corrupt {
                    path: OFFSETS_STATE.into(),
                    reason: e.to_string(),
                })?;
            for c in commits {
                map.insert((c.g, c.t, c.p), (c.o, c.m));
            }
        }
        Ok(Offsets {
            engine,
            map: Mutex::new(map),
            records: AtomicUsize::new(records.len()),
            write: Default::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (i64, Option<String>)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Durably records `commits` of `group` as `(topic, partition, offset, metadata)`.
    pub(crate) async fn commit(
        &self,
        group: &str,
        commits: Vec<(String, i32, i64, Option<String>)>,
    ) -> Result<(), StorageError> {
        let records: Vec<Commit> = commits
            .into_iter()
            .map(|(t, p, o, m)| Commit {
                g: group.to_string(),
                t,
                p,
                o,
                m,
            })
            .collect();
        let _w = self.write.lock().await;
        let rec = serde_json::to_vec(&records).expect("commits serialize");
        self.engine.append_state(OFFSETS_STATE, &rec).await?;
        {
            let mut map = self.lock();
            for c in records {
                map.insert((c.g, c.t, c.p), (c.o, c.m));
            }
        }
        let n = self.records.fetch_add(1, Ordering::Relaxed) + 1;
        if n > COMPACT_AFTER {
            self.rewrite(|_| true).await?;
        }
        Ok(())
    }

    /// Durably forgets every committed offset of `group`.
    pub(crate) async fn delete_group(&self, group: &str) -> Result<(), StorageError> {
        let _w = self.write.lock().await;
        self.rewrite(|g| g != group).await?;
        self.lock().retain(|(g, _, _), _| g != group);
        Ok(())
    }

    /// Replaces the state file with one record holding the offsets of the
    /// groups that `keep` accepts. The caller holds the write lock.
    async fn rewrite(&self, keep: impl Fn(&str) -> bool) -> Result<(), StorageError> {
        let all: Vec<Commit> = self
            .lock()
            .iter()
            .filter(|((g, _, _), _)| keep(g))
            .map(|((g, t, p), (o, m))| Commit {
                g: g.clone(),
                t: t.clone(),
                p: *p,
                o: *o,
                m: m.clone(),
            })
            .collect();
        let rec = Bytes::from(serde_json::to_vec(&all).expect("commits serialize"));
        self.engine.write_state(OFFSETS_STATE, &[rec]).await?;
        self.records.store(1, Ordering::Relaxed);
        Ok(())
    }

    /// The committed offset and metadata of one partition.
    pub(crate) fn get(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<(i64, Option<String>)> {
        self.lock()
            .get(&(group.to_string(), topic.to_string(), partition))
            .cloned()
    }

    /// Every `(topic, partition)` with a committed offset in `group`.
    pub(crate) fn partitions_of(&self, group: &str) -> Vec<(String, i32)> {
        let mut v: Vec<(String, i32)> = self
            .lock()
            .keys()
            .filter(|(g, _, _)| g == group)
            .map(|(_, t, p)| (t.clone(), *p))
            .collect();
        v.sort();
        v
    }

    /// Groups with committed offsets.
    pub(crate) fn groups(&self) -> BTreeSet<String> {
        self.lock().keys().map(|(g, _, _)| g.clone()).collect()
    }
}

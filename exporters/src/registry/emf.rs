//! CloudWatch Embedded Metric Format (EMF) rendering of a snapshot.
//!
//! EMF lets a log line carry metrics: CloudWatch Logs extracts them when
//! the line is written to a log group. One document holds metrics that
//! share one set of dimension values, so a snapshot becomes one document
//! per dimension set, each with at most [`MAX_METRICS_PER_DOCUMENT`]
//! metrics. Spec:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::snapshot::MetricRecord;

/// The spec's limit on `Metrics` entries in one directive.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// The spec's limit on dimension names in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// Namespace Wharf's EMF documents default to (`AWS/` namespaces are
/// reserved for AWS services).
pub const DEFAULT_NAMESPACE: &str = "Wharf/Kafka";

/// Timestamp and dimension values shared by the metrics of one document.
type GroupKey<'a> = (u64, Vec<(&'a str, &'a str)>);

/// The EMF documents of `records`, one per dimension set (more when a set
/// has over 100 metrics). Records at different timestamps go in different
/// documents.
pub fn emf_documents(records: &[MetricRecord], namespace: &str) -> Vec<Value> {
    let mut groups: BTreeMap<GroupKey<'_>, Vec<&MetricRecord>> = BTreeMap::new();
    for r in records {
        let dims = r.dimensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        groups.entry((r.ts_millis, dims)).or_default().push(r);
    }
    let mut docs = Vec::new();
    for ((ts, dims), rs) in groups {
        let dims: Vec<(&str, &str)> = dims.into_iter().take(MAX_DIMENSIONS).collect();
        // A metric name appears once per document: split repeats too.
        let mut chunks: Vec<Vec<&MetricRecord>> = Vec::new();
        for r in rs {
            let slot = chunks
                .iter_mut()
                .find(|c| c.len() < MAX_METRICS_PER_DOCUMENT && c.iter().all(|x| x.name != r.name));
            match slot {
                Some(c) => c.push(r),
                None => chunks.push(vec![r]),
            }
        }
        for chunk in chunks {
            let mut doc = Map::new();
            for (k, v) in &dims {
                doc.insert((*k).to_string(), Value::String((*v).to_string()));
            }
            let metrics: Vec<Value> = chunk
                .iter()
                .map(|r| json!({"Name": r.name, "Unit": r.unit}))
                .collect();
            for r in &chunk {
                doc.insert(r.name.to_string(), json!(r.value));
            }
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": ts,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dims.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                        "Metrics": metrics,
                    }],
                }),
            );
            docs.push(Value::Object(doc));
        }
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Level;
    use crate::registry::snapshot::Snapshotter;
    use crate::registry::tests::busy_registry;

    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    /// Checks one document against the EMF specification's rules.
    fn validate(doc: &Value) -> Result<(), String> {
        let root = doc.as_object().ok_or("the root is not an object")?;
        let aws = root
            .get("_aws")
            .and_then(Value::as_object)
            .ok_or("no _aws object")?;
        let ts = aws.get("Timestamp").ok_or("no Timestamp")?;
        if !ts.is_u64() {
            return Err("Timestamp is not epoch milliseconds".into());
        }
        let directives = aws
            .get("CloudWatchMetrics")
            .and_then(Value::as_array)
            .ok_or("CloudWatchMetrics is not an array")?;
        if directives.is_empty() {
            return Err("CloudWatchMetrics is empty".into());
        }
        for d in directives {
            let ns = d
                .get("Namespace")
                .and_then(Value::as_str)
                .ok_or("no Namespace")?;
            if ns.is_empty() || ns.len() > 255 || ns.starts_with("AWS/") {
                return Err(format!("bad Namespace {ns}"));
            }
            let sets = d
                .get("Dimensions")
                .and_then(Value::as_array)
                .ok_or("no Dimensions")?;
            for set in sets {
                let set = set.as_array().ok_or("a dimension set is not an array")?;
                if set.len() > MAX_DIMENSIONS {
                    return Err("over 30 dimensions".into());
                }
                for name in set {
                    let name = name.as_str().ok_or("a dimension name is not a string")?;
                    if !root.get(name).is_some_and(Value::is_string) {
                        return Err(format!("dimension {name} has no string member"));
                    }
                }
            }
            let metrics = d
                .get("Metrics")
                .and_then(Value::as_array)
                .ok_or("no Metrics")?;
            if metrics.is_empty() || metrics.len() > MAX_METRICS_PER_DOCUMENT {
                return Err(format!("{} metrics in one directive", metrics.len()));
            }
            let mut seen = std::collections::HashSet::new();
            for m in metrics {
                let name = m
                    .get("Name")
                    .and_then(Value::as_str)
                    .ok_or("a metric has no Name")?;
                if name.is_empty() || name.len() > 1024 || !seen.insert(name) {
                    return Err(format!("bad or repeated metric name {name}"));
                }
                if let Some(unit) = m.get("Unit") {
                    if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                        return Err(format!("unit {unit} is not a CloudWatch unit"));
                    }
                }
                if !root.get(name).is_some_and(Value::is_number) {
                    return Err(format!("metric {name} has no numeric member"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_snapshot_renders_as_valid_emf_documents() {
        let records = Snapshotter::new(busy_registry(), Level::PerTopicPerPartition).snapshot();
        let docs = emf_documents(&records, DEFAULT_NAMESPACE);
        assert!(docs.len() >= 4, "one per dimension set: {}", docs.len());
        for d in &docs {
            validate(d).unwrap_or_else(|e| panic!("{e}: {d}"));
        }
        // Every record is in exactly one document, with its value.
        let mut n = 0;
        for d in &docs {
            n += d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len();
        }
        assert_eq!(n, records.len());
        let broker = docs
            .iter()
            .find(|d| {
                d["Broker ID"] == "1"
                    && d.get("Topic").is_none()
                    && d.get("PartitionCount").is_some()
            })
            .expect("the broker's document");
        assert_eq!(broker["Cluster Name"], "orders");
        assert_eq!(broker["PartitionCount"], 2.0);
        assert_eq!(
            broker["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Broker ID", "Cluster Name"]])
        );
    }

    #[test]
    fn large_dimension_sets_are_split_at_100_metrics_and_repeats_are_separated() {
        let names: Vec<&'static str> = (0..250)
            .map(|i| &*Box::leak(format!("M{i}").into_boxed_str()))
            .collect();
        let mut records: Vec<MetricRecord> = names
            .iter()
            .map(|n| MetricRecord {
                ts_millis: 1,
                name: n,
                value: 1.0,
                unit: "Count",
                dimensions: [("Cluster Name", "c".to_string())].into_iter().collect(),
            })
            .collect();
        records.push(records[0].clone());
        let docs = emf_documents(&records, "Test");
        for d in &docs {
            validate(d).unwrap_or_else(|e| panic!("{e}"));
        }
        let sizes: Vec<usize> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 251);
        assert!(sizes.iter().all(|&s| s <= 100));
    }

    #[test]
    fn the_validator_rejects_what_the_spec_rejects() {
        assert!(validate(&json!({"x": 1})).is_err());
        assert!(validate(&json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [["A"]], "Metrics": [{"Name": "M"}]}]}, "M": 1})).is_err(), "dimension without member");
        assert!(validate(&json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], "Metrics": [{"Name": "M", "Unit": "Furlongs"}]}]}, "M": 1})).is_err(), "bad unit");
        assert!(validate(&json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], "Metrics": [{"Name": "M"}]}]}, "M": 1})).is_ok());
    }
}

//! `mode = "emf"`: each metric record becomes a CloudWatch Embedded Metric
//! Format event, sent through the CloudWatch Logs sink's batching and
//! service; CloudWatch extracts the metric from the log event.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::parse::{parse, Measure};
use crate::record::Record;
use crate::sinks::cloudwatch_logs::batch::Format;
use crate::sinks::cloudwatch_logs::template::NameTemplate;

/// The EMF document of one metric record (`Err`: the dead-letter reason).
pub fn document(
    r: &Record,
    namespace: &str,
    resolution: u32,
    dims: &BTreeMap<String, String>,
) -> Result<String, String> {
    let s = parse(&r.line, dims)?;
    let value = match s.measure {
        Measure::Value(v) => v,
        // EMF carries values, not statistic sets.
        Measure::Stats(_) => return Err("statistic_set_in_emf".into()),
    };
    let mut metric = Map::new();
    metric.insert("Name".into(), s.name.clone().into());
    if let Some(u) = &s.unit {
        metric.insert("Unit".into(), u.clone().into());
    }
    if resolution == 1 {
        metric.insert("StorageResolution".into(), 1.into());
    }
    let names: Vec<&String> = s.dimensions.keys().collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": r.ts_millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [names],
                "Metrics": [Value::Object(metric)],
            }],
        }),
    );
    for (k, v) in &s.dimensions {
        doc.insert(k.clone(), v.clone().into());
    }
    doc.insert(s.name, value.into());
    doc.insert("wharf_id".into(), r.id.to_string().into());
    Ok(Value::Object(doc).to_string())
}

/// The log format of the `emf` mode.
pub fn format(
    group: NameTemplate,
    stream: NameTemplate,
    namespace: String,
    resolution: u32,
    dims: BTreeMap<String, String>,
) -> Format {
    Box::new(move |r: &Record| {
        let event = if group.has_fields() || stream.has_fields() {
            serde_json::from_slice::<Value>(&r.line).ok()
        } else {
            None
        };
        let doc = document(r, &namespace, resolution, &dims)?;
        Ok((
            group.render(r, event.as_ref()),
            stream.render(r, event.as_ref()),
            doc,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_emf_document_names_namespace_dimensions_and_metric() {
        let r = Record {
            seq: 0,
            id: uuid::Uuid::now_v7(),
            kind: crate::record::Kind::Metric,
            ts_millis: 1_800_000_000_000,
            source: Arc::from("b"),
            line: br#"{"kind":"metric","name":"BytesInPerSec","value":3,"unit":"Bytes/Second","cluster":"prod","broker":2}"#.to_vec(),
        };
        let d = document(
            &r,
            "Wharf/Kafka",
            60,
            &super::super::parse::msk_dimensions(),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&d).unwrap();
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "Wharf/Kafka");
        assert_eq!(m["Dimensions"][0], json!(["Broker ID", "Cluster Name"]));
        assert_eq!(m["Metrics"][0]["Name"], "BytesInPerSec");
        assert_eq!(m["Metrics"][0]["Unit"], "Bytes/Second");
        assert_eq!(v["_aws"]["Timestamp"], 1_800_000_000_000i64);
        assert_eq!(v["BytesInPerSec"], 3.0);
        assert_eq!(v["Cluster Name"], "prod");
        assert_eq!(v["Broker ID"], "2");
    }
}

//! A metric record (`"kind":"metric"`) read into a [`Sample`]: its name,
//! unit, MSK-style dimensions and value or statistic set.
//!
//! Dimensions come from the record's `dimensions` object and from
//! top-level fields, renamed by the sink's `dimensions` table (default:
//! `cluster` → `Cluster Name`, `broker` → `Broker ID`, `topic` → `Topic`,
//! `consumer_group` → `Consumer Group`, as MSK names them).

use std::collections::BTreeMap;

use serde_json::Value;

/// Most dimensions on one datum.
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html>
pub const MAX_DIMENSIONS: usize = 30;

/// A statistic set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Number of samples.
    pub count: f64,
    /// Their sum.
    pub sum: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// One value.
    pub fn of(v: f64) -> Stats {
        Stats {
            count: 1.0,
            sum: v,
            min: v,
            max: v,
        }
    }

    /// Both sets together.
    pub fn merge(self, o: Stats) -> Stats {
        Stats {
            count: self.count + o.count,
            sum: self.sum + o.sum,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// What a metric record measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// One value.
    Value(f64),
    /// A statistic set.
    Stats(Stats),
}

/// A parsed metric record.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// CloudWatch unit (`Count`, `Bytes/Second`, ...), if given.
    pub unit: Option<String>,
    /// Dimensions, by CloudWatch name.
    pub dimensions: BTreeMap<String, String>,
    /// The value.
    pub measure: Measure,
}

/// The default mapping of record fields to MSK's dimension names.
pub fn msk_dimensions() -> BTreeMap<String, String> {
    [
        ("cluster", "Cluster Name"),
        ("broker", "Broker ID"),
        ("topic", "Topic"),
        ("consumer_group", "Consumer Group"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn num(o: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| o.get(*k).and_then(Value::as_f64))
}

/// Reads a metric record; the error is the dead-letter reason.
pub fn parse(line: &[u8], map: &BTreeMap<String, String>) -> Result<Sample, String> {
    let v: Value = serde_json::from_slice(line).map_err(|_| "not_json".to_owned())?;
    let o = v.as_object().ok_or("not_an_object")?;
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .ok_or("metric_without_name")?
        .to_owned();
    let unit = o.get("unit").and_then(Value::as_str).map(str::to_owned);
    let mut dimensions = BTreeMap::new();
    if let Some(Value::Object(d)) = o.get("dimensions") {
        for (k, v) in d {
            if let Some(t) = text(v) {
                dimensions.insert(map.get(k).cloned().unwrap_or_else(|| k.clone()), t);
            }
        }
    }
    for (field, dim) in map {
        if let Some(t) = o.get(field).and_then(text) {
            dimensions.insert(dim.clone(), t);
        }
    }
    if dimensions.len() > MAX_DIMENSIONS {
        return Err("too_many_dimensions".into());
    }
    if dimensions
        .iter()
        .any(|(k, v)| k.is_empty() || v.is_empty() || k.len() > 255 || v.len() > 1024)
    {
        return Err("bad_dimension".into());
    }
    let stats_obj = ["statistic_set", "statistics", "stats"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_object))
        .or_else(|| o.contains_key("sum").then_some(o));
    let measure = if let Some(v) = o.get("value").and_then(Value::as_f64) {
        Measure::Value(v)
    } else if let Some(s) = stats_obj {
        let st = Stats {
            count: num(s, &["count", "sample_count", "SampleCount"])
                .ok_or("statistic_set_without_count")?,
            sum: num(s, &["sum", "Sum"]).ok_or("statistic_set_without_sum")?,
            min: num(s, &["min", "minimum", "Minimum"]).ok_or("statistic_set_without_min")?,
            max: num(s, &["max", "maximum", "Maximum"]).ok_or("statistic_set_without_max")?,
        };
        if st.count <= 0.0 || st.min > st.max {
            return Err("bad_statistic_set".into());
        }
        Measure::Stats(st)
    } else {
        return Err("metric_without_value".into());
    };
    Ok(Sample {
        name,
        unit,
        dimensions,
        measure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msk_dimensions_from_fields_and_the_dimensions_object() {
        let s = parse(
            br#"{"kind":"metric","name":"BytesInPerSec","value":2.5,"unit":"Bytes/Second","cluster":"prod","broker":1,"dimensions":{"topic":"orders","extra":"x"}}"#,
            &msk_dimensions(),
        )
        .unwrap();
        assert_eq!(s.name, "BytesInPerSec");
        assert_eq!(s.measure, Measure::Value(2.5));
        let dims: Vec<_> = s
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            dims,
            [
                "Broker ID=1",
                "Cluster Name=prod",
                "Topic=orders",
                "extra=x"
            ]
        );
    }

    #[test]
    fn statistic_sets_and_refusals() {
        let s = parse(
            br#"{"kind":"metric","name":"M","statistic_set":{"count":3,"sum":6,"min":1,"max":3}}"#,
            &msk_dimensions(),
        )
        .unwrap();
        assert_eq!(
            s.measure,
            Measure::Stats(Stats {
                count: 3.0,
                sum: 6.0,
                min: 1.0,
                max: 3.0
            })
        );
        let m = msk_dimensions();
        assert_eq!(
            parse(br#"{"kind":"metric","value":1}"#, &m).unwrap_err(),
            "metric_without_name"
        );
        assert_eq!(
            parse(br#"{"kind":"metric","name":"x"}"#, &m).unwrap_err(),
            "metric_without_value"
        );
        let many: serde_json::Map<String, Value> = (0..31)
            .map(|i| (format!("d{i}"), Value::from("v")))
            .collect();
        let line = serde_json::json!({"name":"x","value":1,"dimensions":many}).to_string();
        assert_eq!(
            parse(line.as_bytes(), &m).unwrap_err(),
            "too_many_dimensions"
        );
    }
}

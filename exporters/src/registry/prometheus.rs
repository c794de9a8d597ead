//! The Prometheus text exposition format (version 0.0.4) of a registry.

use std::fmt::Write;

use super::Sample;
use crate::catalog::{self, PromSeries};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders samples as Prometheus text: one `# HELP` and `# TYPE` per metric
/// name, then its series, in catalog order. Samples of rows without a
/// Prometheus series are left out.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::with_capacity(64 * samples.len() + 1024);
    let mut done: Vec<&str> = Vec::new();
    for def in catalog::CATALOG {
        let Some(p) = def.prometheus else { continue };
        if done.contains(&p.metric) {
            continue;
        }
        done.push(p.metric);
        let rows: Vec<(&str, PromSeries)> = catalog::CATALOG
            .iter()
            .filter_map(|d| {
                d.prometheus
                    .filter(|q| q.metric == p.metric)
                    .map(|q| (d.key, q))
            })
            .collect();
        let mut lines = String::new();
        for (key, series) in &rows {
            for s in samples.iter().filter(|s| s.key == *key) {
                write_series(&mut lines, series, s);
            }
        }
        if lines.is_empty() {
            continue;
        }
        let help = if rows.len() == 1 {
            def.description.to_string()
        } else {
            let names: Vec<&str> = rows.iter().filter_map(|(_, q)| q.name_label).collect();
            let mut names = names;
            names.dedup();
            format!(
                "MSK open-monitoring series; the name label is one of {}. See docs/metrics.md.",
                names.join(", ")
            )
        };
        let _ = writeln!(out, "# HELP {} {}", p.metric, escape_help(&help));
        let _ = writeln!(out, "# TYPE {} {}", p.metric, p.prom_type);
        out.push_str(&lines);
    }
    out
}

fn write_series(out: &mut String, series: &PromSeries, s: &Sample) {
    out.push_str(series.metric);
    let mut first = true;
    let mut label = |out: &mut String, k: &str, v: &str| {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    };
    if let Some(n) = series.name_label {
        label(out, "name", n);
    }
    for (k, v) in &s.labels {
        label(out, k, v);
    }
    if !first {
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(s.value));
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MetricsRegistry;
    use std::time::Duration;

    #[test]
    fn renders_msk_names_and_labels() {
        let r = MetricsRegistry::new("orders", 1);
        r.topic("payments").record_produce(1000, 10);
        r.record_request(0, Duration::from_millis(3), false);
        r.set_consumer_lag("billing \"eu\"", "payments", 0, 5);
        let text = render(&r.collect());
        for want in [
            "# TYPE kafka_server_BrokerTopicMetrics_Count untyped\n",
            "kafka_server_BrokerTopicMetrics_Count{name=\"BytesInPerSec\"} 1000\n",
            "kafka_server_BrokerTopicMetrics_Count{name=\"BytesInPerSec\",topic=\"payments\"} 1000\n",
            "kafka_server_BrokerTopicMetrics_Count{name=\"MessagesInPerSec\",topic=\"payments\"} 10\n",
            "kafka_network_RequestMetrics_Count{name=\"RequestsPerSec\",request=\"Produce\"} 1\n",
            "kafka_network_RequestMetrics_Mean{name=\"TotalTimeMs\",request=\"Produce\"} 3\n",
            "kafka_consumer_group_ConsumerLagMetrics_Value{name=\"SumOffsetLag\",groupId=\"billing \\\"eu\\\"\",topic=\"payments\"} 5\n",
            "kafka_controller_KafkaController_Value{name=\"OfflinePartitionsCount\"} 0\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // One HELP and one TYPE per metric name.
        let types = text
            .lines()
            .filter(|l| l.starts_with("# TYPE kafka_server_BrokerTopicMetrics_Count "))
            .count();
        assert_eq!(types, 1);
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(escape_label("a\\b\nc\"d"), "a\\\\b\\nc\\\"d");
    }
}

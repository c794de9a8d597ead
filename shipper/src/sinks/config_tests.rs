//! The AWS sinks' configs: defaults, unknown keys and impossible values
//! named by key.

use crate::config::Config;

const HEAD: &str = r#"
data_dir = "/tmp/x"
[sources.broker]
type = "socket"
path = "/tmp/x.sock"
"#;

fn parse(sink: &str) -> Result<Config, String> {
    Config::from_toml(&format!("{HEAD}{sink}")).map_err(|e| e.to_string())
}

#[test]
fn defaults_parse() {
    let c = parse(
        r#"
[sinks.cwl]
type = "cloudwatch_logs"
inputs = ["broker"]
[sinks.fh]
type = "firehose"
inputs = ["broker"]
delivery_stream = "s"
[sinks.cw]
type = "cloudwatch_metrics"
inputs = ["broker"]
[sinks.emf]
type = "cloudwatch_metrics"
inputs = ["broker"]
mode = "emf"
"#,
    )
    .unwrap();
    assert_eq!(c.sinks.len(), 4);
    let cw = &c.sinks["cw"];
    assert_eq!(cw.kinds(), Some(&[crate::record::Kind::Metric][..]));
}

#[test]
fn unknown_keys_and_impossible_values_are_named() {
    let cases = [
        ("[sinks.c]\ntype = \"cloudwatch_logs\"\ninputs = [\"broker\"]\nbogus = 1", "bogus"),
        ("[sinks.c]\ntype = \"cloudwatch_logs\"\ninputs = [\"broker\"]\nbatch = { max_events = 10001 }", "sinks.c.batch.max_events"),
        ("[sinks.c]\ntype = \"cloudwatch_logs\"\ninputs = [\"broker\"]\nbatch = { max_bytes = \"2 MiB\" }", "sinks.c.batch.max_bytes"),
        ("[sinks.c]\ntype = \"cloudwatch_logs\"\ninputs = [\"broker\"]\nretention_days = 4", "sinks.c.retention_days"),
        ("[sinks.c]\ntype = \"cloudwatch_logs\"\ninputs = [\"broker\"]\ngroup = \"x{y\"", "sinks.c.group"),
        ("[sinks.c]\ntype = \"cloudwatch_logs\"\ninputs = [\"broker\"]\nkms_key_id = \"alias/x\"", "sinks.c.kms_key_id"),
        ("[sinks.f]\ntype = \"firehose\"\ninputs = [\"broker\"]\ndelivery_stream = \"s\"\nrecord_bytes = \"2 MiB\"", "sinks.f.record_bytes"),
        ("[sinks.f]\ntype = \"firehose\"\ninputs = [\"broker\"]\ndelivery_stream = \"a b\"", "sinks.f.delivery_stream"),
        ("[sinks.f]\ntype = \"firehose\"\ninputs = [\"broker\"]\ndelivery_stream = \"s\"\nwhat = 1", "what"),
        ("[sinks.m]\ntype = \"cloudwatch_metrics\"\ninputs = [\"broker\"]\nstorage_resolution = 5", "sinks.m.storage_resolution"),
        ("[sinks.m]\ntype = \"cloudwatch_metrics\"\ninputs = [\"broker\"]\nnamespace = \"AWS/Kafka\"", "sinks.m.namespace"),
        ("[sinks.m]\ntype = \"cloudwatch_metrics\"\ninputs = [\"broker\"]\nemf = { group = \"g\" }", "sinks.m.emf"),
        ("[sinks.m]\ntype = \"cloudwatch_metrics\"\ninputs = [\"broker\"]\nmode = \"emf\"\nemf = { batch = { max_events = 0 } }", "sinks.m.emf.batch.max_events"),
    ];
    for (sink, key) in cases {
        let e = parse(sink).expect_err(sink);
        assert!(e.contains(key), "{sink}: {e}");
    }
}

#[test]
fn the_example_file_is_valid() {
    let c = Config::from_toml(include_str!("../../../examples/shipper-aws-sinks.toml")).unwrap();
    assert_eq!(c.sinks.len(), 4);
}

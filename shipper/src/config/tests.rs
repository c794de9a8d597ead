//! Config: the example files parse; bad keys and values are named.

use super::*;

const GOOD: &str = r#"
data_dir = "/tmp/x"
[sources.broker]
type = "socket"
path = "/tmp/x.sock"
[sinks.local]
type = "file"
inputs = ["broker"]
directory = "/tmp/out"
[sinks.s3]
type = "s3"
inputs = ["broker"]
kinds = ["log", "audit"]
bucket = "wharf-logs"
key = "logs/cluster={cluster}/dt=%Y-%m-%d/{uuid}.{ext}"
batch = { max_bytes = "16 MiB", max_age = "30s" }
"#;

fn err(text: &str) -> String {
    Config::from_toml(text).unwrap_err().to_string()
}

#[test]
fn a_good_config_parses_with_defaults() {
    let c = Config::from_toml(GOOD).unwrap();
    assert_eq!(c.sinks.len(), 2);
    assert_eq!(c.buffer.max_bytes, ByteSize(1 << 30));
    let SinkConfig::S3(s3) = &c.sinks["s3"] else {
        panic!("s3 sink")
    };
    assert_eq!(s3.batch.max_bytes, ByteSize(16 << 20));
    assert_eq!(s3.part_bytes, ByteSize(8 << 20));
}

#[test]
fn the_example_files_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for f in ["shipper-embedded.toml", "shipper-localstack.toml"] {
        Config::from_figment(Figment::new().merge(Toml::file_exact(root.join(f))))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn unknown_keys_are_refused_naming_the_key() {
    let e = err(&GOOD.replace("directory =", "directry ="));
    assert!(e.contains("sinks.local.directry"), "{e}");
    let e = err(&format!("{GOOD}\n[buffer]\nmax_byte = 5\n"));
    assert!(e.contains("buffer.max_byte"), "{e}");
    let e = err(&GOOD.replace("type = \"file\"", "type = \"ftp\""));
    assert!(e.contains("sinks.local.type") && e.contains("ftp"), "{e}");
}

#[test]
fn impossible_values_are_refused_naming_the_key() {
    let cases = [
        (
            GOOD.replace("type = \"s3\"", "type = \"s3\"\ncompression_level = 12"),
            "sinks.s3.compression_level",
        ),
        (
            GOOD.replace("\"wharf-logs\"", "\"Bad_Bucket\""),
            "sinks.s3.bucket",
        ),
        (
            GOOD.replace(
                "inputs = [\"broker\"]\ndirectory",
                "inputs = [\"nope\"]\ndirectory",
            ),
            "sinks.local.inputs",
        ),
        (GOOD.replace("/{uuid}.{ext}", "/x.{ext}"), "sinks.s3.key"),
        (
            GOOD.replace("max_age = \"30s\"", "max_age = \"30\""),
            "max_age",
        ),
        (GOOD.replace("\"16 MiB\"", "\"16 parsecs\""), "max_bytes"),
        (
            format!("{GOOD}\n[buffer]\nmax_bytes = \"1 MiB\"\n"),
            "buffer.max_bytes",
        ),
        (
            GOOD.replace("type = \"s3\"", "type = \"s3\"\nencryption = \"sse-kms\""),
            "sinks.s3.sse_kms_key_id",
        ),
        (
            GOOD.replace(
                "type = \"file\"",
                "type = \"file\"\nencryption = \"sse-kms\"",
            ),
            "sinks.local.encryption",
        ),
        (
            GOOD.replace(
                "path = \"/tmp/x.sock\"",
                "path = \"/tmp/x.sock\"\nmax_line_bytes = 10",
            ),
            "sources.broker.max_line_bytes",
        ),
        (
            GOOD.replace(
                "path = \"/tmp/x.sock\"",
                "path = \"/tmp/x.sock\"\nmode = \"0999\"",
            ),
            "sources.broker.mode",
        ),
        (
            GOOD.replace("kinds = [\"log\", \"audit\"]", "kinds = [\"trace\"]"),
            "trace",
        ),
    ];
    for (text, key) in cases {
        let e = err(&text);
        assert!(e.contains(key), "expected `{key}` in: {e}");
    }
}

#[test]
#[allow(clippy::result_large_err)]
fn env_overrides_only_take_wharf_config_keys() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", GOOD)?;
        jail.set_env("WHARF_SINKS__S3__BUCKET", "other-bucket");
        jail.set_env("WHARF_BUFFER__WHEN_FULL", "drop_newest");
        jail.set_env("WHARF_BIN_DIR", "/somewhere");
        let c = Config::load(Path::new("c.toml")).map_err(|e| e.to_string())?;
        let SinkConfig::S3(s3) = &c.sinks["s3"] else {
            panic!()
        };
        assert_eq!(s3.bucket, "other-bucket");
        assert_eq!(c.buffer.when_full, WhenFull::DropNewest);
        jail.set_env("WHARF_BUFFER__MAX_BYTES", "1 KiB");
        let e = Config::load(Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("buffer.max_bytes"), "{e}");
        Ok(())
    });
}

//! `wharf up`: the broker and the shipper on embedded defaults under one
//! directory, until Ctrl-C.
//!
//! Both run as child processes of `wharf` itself (`wharf __broker ...`,
//! `wharf __shipper ...`: the `wharf` binary links both), so
//! `cargo run --release -p wharf -- up` works from a fresh clone without
//! building the other binaries first. Each child is in its own process
//! group: Ctrl-C reaches only `wharf up`, which stops the broker first
//! (its last telemetry reaches the shipper), then the shipper (which
//! writes what it holds to the file sink).
//!
//! Layout under `--dir` (default `./wharf-data`):
//!
//! ```text
//! master.key        local master key (0600): the shipper's objects, `wharf decrypt --key`
//! broker/           the broker's data (segments, its own master.key, telemetry spool)
//! shipper/          the shipper's durable buffer
//! shipper.sock      the shipper's socket, where the broker writes logs, metrics, audit
//! objects/          the file sink, laid out as the S3 bucket would be:
//!   logs/cluster=C/broker=B/dt=YYYY-MM-DD/hour=HH/UUID.ndjson.gz
//!   metrics/cluster=C/broker=B/dt=YYYY-MM-DD/hour=HH/UUID.ndjson.gz
//!   AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/UUID.ndjson.gz   (audit)
//! broker.toml, shipper.toml, broker.log, shipper.log, up.json
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

/// How long a child has to stop after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(40);
/// How long the children have to come up.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// `wharf up`'s options.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Directory for everything (created if missing).
    #[arg(long, default_value = "./wharf-data")]
    dir: PathBuf,
    /// Kafka plaintext listener.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka: String,
    /// The broker's Prometheus endpoint.
    #[arg(long, default_value = "127.0.0.1:11001")]
    prometheus: String,
    /// The shipper's /metrics and /health endpoint.
    #[arg(long, default_value = "127.0.0.1:9598")]
    shipper_api: String,
    /// Cluster name in records, metric dimensions and object keys.
    #[arg(long, default_value = "wharf")]
    cluster: String,
    /// Account id in the audit prefix `AWSLogs/<account>/CloudTrail/...`.
    #[arg(long, default_value = "000000000000")]
    account: String,
    /// Region in the audit prefix.
    #[arg(long, default_value = "local")]
    region: String,
    /// Longest time an event waits before it is written to the file sink.
    #[arg(long, default_value = "10s")]
    batch_age: String,
    /// Seconds between the broker's metric snapshots to the shipper.
    #[arg(long, default_value_t = 60)]
    snapshot_seconds: u64,
}

/// Runs `wharf __broker ARGS` / `wharf __shipper ARGS` (the children of
/// `wharf up`); `None` for any other command line.
pub(crate) fn child_main() -> Option<ExitCode> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let which = args.get(1)?.to_str()?.to_string();
    match which.as_str() {
        "__broker" => {
            args.remove(1);
            args[0] = "wharf-broker".into();
            Some(wharf_broker::app::main(args))
        }
        "__shipper" => {
            let config = args.get(2).map(PathBuf::from)?;
            Some(run_shipper(&config))
        }
        _ => None,
    }
}

fn run_shipper(config: &Path) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    wharf_shipper::app::run_config_file(config)
}

/// Paths under the `--dir`.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn toml_str(p: &Path) -> String {
    let s = p.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn shipper_config(l: &Layout, a: &UpArgs) -> String {
    let objects = toml_str(&l.p("objects"));
    let sink = |name: &str, kind: &str, key: &str| {
        format!(
            "[sinks.{name}]\ntype = \"file\"\ninputs = [\"broker\"]\nkinds = [\"{kind}\"]\n\
             directory = {objects}\nkey = \"{key}\"\ncompression = \"gzip\"\nencryption = \"envelope\"\n\n\
             [sinks.{name}.batch]\nmax_age = \"{age}\"\n\n",
            age = a.batch_age
        )
    };
    let hive = "cluster={cluster}/broker={broker}/dt=%Y-%m-%d/hour=%H/{uuid}.{ext}";
    format!(
        "# Written by `wharf up`.\ndata_dir = {data}\nshutdown_timeout = \"30s\"\n\n\
         [api]\naddress = \"{api}\"\n\n[key]\nprovider = \"local\"\npath = {key}\n\n\
         [sources.broker]\ntype = \"socket\"\npath = {sock}\nmode = \"0600\"\n\n{logs}{metrics}{audit}",
        data = toml_str(&l.p("shipper")),
        api = a.shipper_api,
        key = toml_str(&l.p("master.key")),
        sock = toml_str(&l.p("shipper.sock")),
        logs = sink("logs", "log", &format!("logs/{hive}")),
        metrics = sink("metrics", "metric", &format!("metrics/{hive}")),
        audit = sink(
            "audit",
            "audit",
            &format!(
                "AWSLogs/{}/CloudTrail/{}/%Y/%m/%d/{{uuid}}.{{ext}}",
                a.account, a.region
            )
        ),
    )
}

fn broker_config(l: &Layout, a: &UpArgs) -> String {
    format!(
        "# Written by `wharf up`.\nlisten = \"{kafka}\"\ndata_dir = {data}\ncluster_id = \"{cluster}\"\n\n\
         [telemetry]\nsocket = {sock}\nspool_dir = {spool}\nprometheus_address = \"{prom}\"\n\
         snapshot_period_seconds = {snap}\nmonitoring_level = \"PER_TOPIC_PER_PARTITION\"\n\
         aws_region = \"{region}\"\naws_account_id = \"{account}\"\n",
        kafka = a.kafka,
        data = toml_str(&l.p("broker")),
        cluster = a.cluster,
        sock = toml_str(&l.p("shipper.sock")),
        spool = toml_str(&l.p("broker/telemetry-spool")),
        prom = a.prometheus,
        snap = a.snapshot_seconds,
        region = a.region,
        account = a.account,
    )
}

/// A child in its own process group, stopped by SIGTERM.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(name: &'static str, args: &[OsString], log: &Path) -> Result<Proc> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().context("cannot find the wharf executable")?;
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start the {name}"))?;
        Ok(Proc { name, child })
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                eprintln!("wharf up: {} stopped ({status})", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "wharf up: {} did not stop within {}s; killing it",
            self.name,
            STOP_DEADLINE.as_secs()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker's addresses, read back from its JSON log lines.
fn broker_addresses(log: &Path) -> (Option<String>, Option<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut kafka, mut prom) = (None, None);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = &v["fields"];
        match f["message"].as_str() {
            Some("wharf-broker listening (plaintext)") => {
                kafka = f["listen"].as_str().map(String::from)
            }
            Some("telemetry started") => prom = f["prometheus"].as_str().map(String::from),
            _ => {}
        }
    }
    (kafka, prom)
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs `wharf up` until SIGINT or SIGTERM.
pub(crate) fn up(args: UpArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let l = Layout { dir };
    let (shipper_toml, broker_toml) = (l.p("shipper.toml"), l.p("broker.toml"));
    std::fs::write(&shipper_toml, shipper_config(&l, &args))?;
    std::fs::write(&broker_toml, broker_config(&l, &args))?;
    let _ = std::fs::remove_file(l.p("shipper/api.addr"));

    let stop = signals()?;
    let (shipper_log, broker_log) = (l.p("shipper.log"), l.p("broker.log"));
    let mut shipper = Proc::spawn(
        "shipper",
        &["__shipper".into(), shipper_toml.clone().into()],
        &shipper_log,
    )?;
    let started = Instant::now();
    while !l.p("shipper.sock").exists() || !l.p("shipper/api.addr").exists() {
        if let Some(status) = shipper.exited() {
            bail!(
                "the shipper exited ({status}):\n{}\n(full log: {})",
                tail(&shipper_log),
                shipper_log.display()
            );
        }
        if started.elapsed() > START_DEADLINE || stop.load() {
            shipper.stop();
            bail!(
                "the shipper did not open its socket:\n{}",
                tail(&shipper_log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let shipper_api = std::fs::read_to_string(l.p("shipper/api.addr"))?
        .trim()
        .to_string();

    let mut broker = Proc::spawn(
        "broker",
        &[
            "__broker".into(),
            "--config".into(),
            broker_toml.clone().into(),
        ],
        &broker_log,
    )?;
    let (kafka, prometheus) = loop {
        if let (Some(k), Some(p)) = broker_addresses(&broker_log) {
            break (k, p);
        }
        if let Some(status) = broker.exited() {
            shipper.stop();
            bail!(
                "the broker exited ({status}):\n{}\n(full log: {})",
                tail(&broker_log),
                broker_log.display()
            );
        }
        if started.elapsed() > START_DEADLINE || stop.load() {
            broker.stop();
            shipper.stop();
            bail!("the broker did not start:\n{}", tail(&broker_log));
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let up = serde_json::json!({
        "kafka": kafka,
        "prometheus_broker": prometheus,
        "prometheus_shipper": shipper_api,
        "objects": l.p("objects"),
        "master_key": l.p("master.key"),
        "socket": l.p("shipper.sock"),
        "broker_log": broker_log,
        "shipper_log": shipper_log,
    });
    std::fs::write(l.p("up.json"), serde_json::to_vec_pretty(&up)?)?;
    print_summary(&l, &args, &kafka, &prometheus, &shipper_api);

    let mut failed = None;
    while !stop.load() {
        if let Some(s) = broker.exited() {
            failed = Some(format!(
                "the broker exited ({s}); see {}",
                broker_log.display()
            ));
            break;
        }
        if let Some(s) = shipper.exited() {
            failed = Some(format!(
                "the shipper exited ({s}); see {}",
                shipper_log.display()
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("wharf up: stopping the broker, then the shipper");
    broker.stop();
    shipper.stop();
    match failed {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}

fn print_summary(l: &Layout, a: &UpArgs, kafka: &str, prom: &str, shipper_api: &str) {
    let key = l.p("master.key");
    let objects = l.p("objects");
    println!(
        "Wharf is up (cluster `{cluster}`). Ctrl-C stops it.\n\n\
         Kafka (plaintext)      {kafka}\n\
         \x20 produce:            echo hello | kcat -P -b {kafka} -t demo\n\
         \x20 consume:            kcat -C -b {kafka} -t demo -e\n\
         Prometheus, broker     http://{prom}/metrics\n\
         Prometheus, shipper    http://{shipper_api}/metrics   (health: http://{shipper_api}/health)\n\
         File sink (S3 layout)  {objects}\n\
         \x20 broker logs:        {objects}/logs/cluster={cluster}/broker=0/dt=.../hour=.../*.ndjson.gz\n\
         \x20 metrics:            {objects}/metrics/cluster={cluster}/...\n\
         \x20 audit (CloudTrail): {objects}/AWSLogs/{account}/CloudTrail/{region}/YYYY/MM/DD/*.ndjson.gz\n\
         \x20 objects appear within {age}; read one with:\n\
         \x20   wharf decrypt --key {key} --in FILE | gunzip\n\
         Master key             {key}\n\
         Logs of the processes  {dir}/broker.log, {dir}/shipper.log\n",
        cluster = a.cluster,
        key = key.display(),
        objects = objects.display(),
        account = a.account,
        region = a.region,
        age = a.batch_age,
        dir = l.dir.display(),
    );
}

/// Set once SIGINT or SIGTERM arrives.
struct StopFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl StopFlag {
    fn load(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn signals() -> Result<StopFlag> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            f.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    });
    // Give the signal handlers a moment to be installed.
    std::thread::sleep(Duration::from_millis(20));
    Ok(StopFlag(flag))
}

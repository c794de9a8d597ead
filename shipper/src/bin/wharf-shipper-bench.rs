//! Load generator and benchmark for `wharf-shipper`.
//!
//! Starts the built `wharf-shipper` on a temporary directory with a file
//! sink, writes N broker-log-shaped events (about 250 bytes of JSON each)
//! through its socket from C connections, and prints per run: events/s and
//! MiB/s from socket to durable buffer (last ack) and from socket to the
//! file sink (all events delivered), the shipper's CPU time and peak RSS,
//! and the latency from one socket write to its object being visible.
//!
//! ```text
//! cargo build --release -p wharf-shipper
//! target/release/wharf-shipper-bench --events 1000000 --connections 4
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Benchmarks wharf-shipper through its socket")]
struct Args {
    /// Events per run.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Concurrent socket connections.
    #[arg(long, default_value_t = 4)]
    connections: u64,
    /// The wharf-shipper binary (default: next to this one).
    #[arg(long)]
    shipper: Option<PathBuf>,
    /// Runs: compression/encryption pairs.
    #[arg(long, default_values_t = ["zstd/envelope".to_string(), "gzip/envelope".to_string(), "zstd/none".to_string()])]
    runs: Vec<String>,
}

fn event(i: u64) -> String {
    format!(
        concat!(
            r#"{{"kind":"log","ts":{},"level":"INFO","cluster":"prod-eu","broker":{},"#,
            r#""logger":"kafka.server.ReplicaFetcherThread","#,
            r#""message":"[ReplicaFetcher replicaId={}, leaderId=2, fetcherId=0] Truncating partition orders-{} to offset {}"}}"#
        ),
        1_767_322_800_000u64 + i,
        i % 3,
        i % 3,
        i % 12,
        i * 17
    )
}

struct Proc {
    child: Child,
    api: String,
    sock: PathBuf,
}

fn start(shipper: &Path, dir: &Path, compression: &str, encryption: &str) -> Result<Proc> {
    let cfg = format!(
        r#"
data_dir = "{d}/data"
[api]
address = "127.0.0.1:0"
[key]
provider = "local"
[buffer]
max_bytes = "4 GiB"
[sources.bench]
type = "socket"
path = "{d}/s.sock"
[sinks.file]
type = "file"
inputs = ["bench"]
directory = "{d}/out"
key = "logs/cluster={{cluster}}/broker={{broker}}/dt=%Y-%m-%d/hour=%H/{{uuid}}.{{ext}}"
compression = "{compression}"
encryption = "{encryption}"
batch = {{ max_bytes = "64 MiB", max_age = "1s" }}
"#,
        d = dir.display()
    );
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("c.toml"), cfg)?;
    let child = Command::new(shipper)
        .arg("--config")
        .arg(dir.join("c.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", shipper.display()))?;
    let sock = dir.join("s.sock");
    let addr = dir.join("data/api.addr");
    let t0 = Instant::now();
    while !(sock.exists() && addr.exists()) {
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("wharf-shipper did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Proc {
        child,
        api: std::fs::read_to_string(addr)?.trim().to_owned(),
        sock,
    })
}

fn metric(api: &str, name: &str) -> Result<f64> {
    let mut s = std::net::TcpStream::connect(api)?;
    write!(s, "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")?;
    let mut body = String::new();
    std::io::Read::read_to_string(&mut s, &mut body)?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// (utime + stime seconds, peak RSS bytes) of a process.
fn usage(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = (f[11].parse::<f64>()? + f[12].parse::<f64>()?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    Ok((cpu, hwm))
}

fn run(args: &Args, shipper: &Path, compression: &str, encryption: &str) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("wharf-bench-{}", uuid::Uuid::now_v7()));
    let p = start(shipper, &dir, compression, encryption)?;
    let per = args.events / args.connections;
    let total = per * args.connections;
    let bytes: u64 = (0..total).map(|i| event(i).len() as u64 + 1).sum();
    let (cpu0, _) = usage(p.child.id())?;
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for c in 0..args.connections {
        let sock = p.sock.clone();
        handles.push(std::thread::spawn(move || -> Result<()> {
            let mut w = UnixStream::connect(&sock)?;
            let r = w.try_clone()?;
            let reader = std::thread::spawn(move || -> Result<()> {
                for line in BufReader::new(r).lines() {
                    let line = line?;
                    if let Some(n) = line.strip_prefix("{\"ack\":") {
                        if n.trim_end_matches('}').parse::<u64>()? >= per {
                            return Ok(());
                        }
                    } else {
                        bail!("the shipper refused a line: {line}");
                    }
                }
                bail!("the connection closed before every line was acked")
            });
            let mut buf = Vec::with_capacity(1 << 20);
            for i in 0..per {
                buf.extend_from_slice(event(c * per + i).as_bytes());
                buf.push(b'\n');
                if buf.len() >= 256 << 10 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
            w.write_all(&buf)?;
            reader.join().expect("reader")?;
            Ok(())
        }));
    }
    for h in handles {
        h.join().expect("writer")?;
    }
    let durable = t0.elapsed();
    while metric(&p.api, "wharf_shipper_sink_events_delivered_total")? < total as f64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = t0.elapsed();
    let (cpu1, rss) = usage(p.child.id())?;

    // Latency: one event, until its object is visible.
    let out = dir.join("out/logs");
    let before = count_files(&out);
    let mut s = UnixStream::connect(&p.sock)?;
    let t1 = Instant::now();
    s.write_all(format!("{}\n", event(total + 1)).as_bytes())?;
    while count_files(&out) == before {
        std::thread::sleep(Duration::from_millis(5));
    }
    let latency = t1.elapsed();

    let _ = Command::new("kill").arg(p.child.id().to_string()).status();
    let mut child = p.child;
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let mib = bytes as f64 / (1 << 20) as f64;
    let cpu = cpu1 - cpu0;
    println!(
        "| {compression:>4} | {encryption:>8} | {total:>9} | {:>9.0} | {:>7.1} | {:>9.0} | {:>7.1} | {:>7.2} | {:>9.1} | {:>6.0} | {:>6.2} |",
        total as f64 / durable.as_secs_f64(),
        mib / durable.as_secs_f64(),
        total as f64 / delivered.as_secs_f64(),
        mib / delivered.as_secs_f64(),
        cpu,
        mib / cpu,
        rss as f64 / (1 << 20) as f64,
        latency.as_secs_f64(),
    );
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    fn walk(d: &Path, n: &mut usize) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, n);
                } else {
                    *n += 1;
                }
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

fn main() -> Result<()> {
    let args = Args::parse();
    let shipper = match &args.shipper {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .join("wharf-shipper"),
    };
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    println!(
        "wharf-shipper-bench: {} events (~{} bytes each), {} connections, {} ({} cores)",
        args.events,
        event(0).len(),
        args.connections,
        cpus,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| comp | encrypt  |    events | durable ev/s | MiB/s | file ev/s | MiB/s | CPU s | MiB/CPU-s | RSS MiB | latency s |");
    println!("|------|----------|-----------|-----------|---------|-----------|---------|---------|-----------|--------|--------|");
    for r in &args.runs {
        let (c, e) = r
            .split_once('/')
            .context("runs are COMPRESSION/ENCRYPTION")?;
        run(&args, &shipper, c, e)?;
    }
    Ok(())
}

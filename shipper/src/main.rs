//! `wharf-shipper`: run the sidecar, or check a config file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Ships NDJSON telemetry from a Unix socket to S3, files and more,
/// through a durable buffer.
#[derive(Parser)]
#[command(name = "wharf-shipper", version)]
struct Cli {
    /// The TOML configuration file (`WHARF_*` variables override it:
    /// `WHARF_SINKS__S3__BUCKET=...` sets `sinks.s3.bucket`).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a configuration file without running; exits 1 naming the bad key.
    Validate {
        /// The configuration file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::Validate { file }), _) => match wharf_shipper::app::validate(&file) {
            Ok(cfg) => {
                println!(
                    "{}: valid ({} source(s), {} sink(s))",
                    file.display(),
                    cfg.sources.len(),
                    cfg.sinks.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        (None, Some(file)) => wharf_shipper::app::run_config_file(&file),
        (None, None) => {
            eprintln!(
                "wharf-shipper: pass --config FILE to run, or `validate FILE` to check a file"
            );
            ExitCode::from(2)
        }
    }
}

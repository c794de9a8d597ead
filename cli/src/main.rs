//! `wharf`: the operator's CLI.
//!
//! - `wharf encrypt` / `wharf decrypt`: AWS Encryption SDK messages (and
//!   Wharf's at-rest files), stdin to stdout or `--in`/`--out` files, under
//!   a local key file or a KMS key ARN.
//! - `wharf keys rotate DIR --to KEY`: re-wrap at-rest files under another
//!   master key.
//! - `wharf up`: the broker and the shipper on embedded defaults.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crypt;
mod files;
mod keys;
mod keyspec;
mod up;

/// Wharf: a Kafka service with observability built in.
#[derive(Parser)]
#[command(name = "wharf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt into an AWS Encryption SDK message (suite 0x0478, readable
    /// by AWS's Encryption SDKs and CLI) or, with --format at-rest, a Wharf
    /// at-rest file.
    Encrypt(crypt::EncryptArgs),
    /// Decrypt an AWS Encryption SDK message (suites 0x0478 and 0x0578) or
    /// a Wharf at-rest file (detected by its magic).
    Decrypt(crypt::DecryptArgs),
    /// Run the broker and the shipper on embedded defaults (local master
    /// key, file sink in the S3 layout, Prometheus endpoints) until Ctrl-C.
    Up(up::UpArgs),
    /// Manage master keys: `wharf keys rotate DIR --to KEY`.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    if let Some(code) = up::child_main() {
        return code;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Encrypt(args) => crypt::encrypt(args).await,
            Command::Decrypt(args) => crypt::decrypt(args).await,
            Command::Up(args) => up::up(args),
            Command::Keys(args) => keys::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e:#}");
            ExitCode::FAILURE
        }
    }
}

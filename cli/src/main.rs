//! `wharf`: the operator's CLI.
//!
//! - `wharf encrypt` / `wharf decrypt`: AWS Encryption SDK messages (and
//!   Wharf's at-rest files), stdin to stdout or `--in`/`--out` files, under
//!   a local key file or a KMS key ARN.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crypt;
mod files;
mod keys;
mod keyspec;

/// Wharf: a Kafka service with observability built in.
#[derive(Parser)]
#[command(name = "wharf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt into an AWS Encryption SDK message (suite 0x0478), readable
    /// by AWS's Encryption SDKs and CLI.
    Encrypt(crypt::EncryptArgs),
    /// Decrypt an AWS Encryption SDK message (suites 0x0478 and 0x0578).
    Decrypt(crypt::DecryptArgs),
    /// Manage master keys: `wharf keys rotate DIR --to KEY`.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
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

//! `wharf encrypt` and `wharf decrypt`.

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use wharf_envelope::message::{
    Decryptor, EncryptOptions, Encryptor, DEFAULT_FRAME_LENGTH, FORMAT_VERSION,
};
use wharf_envelope::{EncryptionContext, Error};

use crate::files::{input, Output};
use crate::keyspec::{provider, KeySpec};

/// Arguments of `wharf encrypt`.
#[derive(Args)]
pub(crate) struct EncryptArgs {
    /// Master key: a local key file path or a KMS key ARN (arn:aws:kms:...).
    #[arg(long, value_name = "PATH|ARN")]
    key: String,
    /// Encryption context pair, repeated (e.g. --context cluster=prod).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Input file (default: stdin).
    #[arg(long = "in", value_name = "PATH")]
    input: Option<PathBuf>,
    /// Output file (default: stdout); written only when encryption succeeds.
    #[arg(long = "out", value_name = "PATH")]
    output: Option<PathBuf>,
    /// Plaintext bytes per frame (1 to 16 MiB).
    #[arg(long, default_value_t = DEFAULT_FRAME_LENGTH)]
    frame_length: u32,
}

/// Arguments of `wharf decrypt`.
#[derive(Args)]
pub(crate) struct DecryptArgs {
    /// Master key: a local key file path or a KMS key ARN. Without it, the
    /// KMS key ARN recorded in the message is used (discovery).
    #[arg(long, value_name = "PATH|ARN")]
    key: Option<String>,
    /// Required encryption context pair, repeated: decryption fails unless
    /// the message's context holds it.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Input file (default: stdin).
    #[arg(long = "in", value_name = "PATH")]
    input: Option<PathBuf>,
    /// Output file (default: stdout); written only when decryption succeeds.
    #[arg(long = "out", value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Parses repeated `KEY=VALUE` arguments.
pub(crate) fn parse_context(pairs: &[String]) -> Result<EncryptionContext> {
    let mut ctx = EncryptionContext::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--context `{pair}` is not KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--context `{pair}` has an empty key");
        }
        if ctx.insert(k.to_string(), v.to_string()).is_some() {
            bail!("--context key `{k}` is given twice");
        }
    }
    Ok(ctx)
}

/// Unwraps a crate error carried inside an `io::Error` so that its
/// sentence is what the user sees.
fn io_error(e: io::Error, doing: &str) -> anyhow::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        return anyhow::Error::from(*inner.downcast::<Error>().expect("checked above"));
    }
    anyhow::Error::from(e).context(doing.to_string())
}

pub(crate) async fn encrypt(args: EncryptArgs) -> Result<()> {
    let context = parse_context(&args.context)?;
    let key = KeySpec::parse(&args.key);
    let provider = provider(Some(&key)).await?;
    let mut reader = input(args.input.as_deref())?;
    let out = Output::open(args.output.as_deref())?;
    let options = EncryptOptions::default().frame_length(args.frame_length);
    let mut enc = Encryptor::new(out, provider.as_ref(), context, &options).await?;
    io::copy(&mut reader, &mut enc).map_err(|e| io_error(e, "cannot encrypt the input"))?;
    enc.finish()?.commit()
}

pub(crate) async fn decrypt(args: DecryptArgs) -> Result<()> {
    let context = parse_context(&args.context)?;
    let key = args.key.as_deref().map(KeySpec::parse);
    let mut reader = BufReader::with_capacity(256 * 1024, input(args.input.as_deref())?);
    let first = reader
        .fill_buf()
        .context("cannot read the input")?
        .first()
        .copied();
    match first {
        None => bail!("the input is empty: there is no message to decrypt"),
        Some(FORMAT_VERSION) => {}
        Some(0x01) => bail!("the input is an AWS Encryption SDK version 1 message; Wharf reads version 2 (re-encrypt with a committing suite, the SDKs' default since 2.0)"),
        Some(b) => bail!("the input is not an AWS Encryption SDK message (it starts with byte {b:#04x}, not 0x02)"),
    }
    let provider = provider(key.as_ref()).await?;
    let mut dec = Decryptor::new(reader, provider.as_ref(), &context).await?;
    let mut out = Output::open(args.output.as_deref())?;
    io::copy(&mut dec, &mut out).map_err(|e| io_error(e, "cannot decrypt the input"))?;
    let mut rest = dec.into_inner();
    let mut extra = [0u8; 1];
    if rest.read(&mut extra).context("cannot read the input")? != 0 {
        bail!("the input continues after the end of the message");
    }
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_pairs_are_parsed_and_checked() {
        let c = parse_context(&["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(c["a"], "1");
        assert_eq!(c["b"], "x=y");
        assert_eq!(c["c"], "");
        assert!(parse_context(&["a".into()])
            .unwrap_err()
            .to_string()
            .contains("not KEY=VALUE"));
        assert!(parse_context(&["=1".into()])
            .unwrap_err()
            .to_string()
            .contains("empty key"));
        assert!(parse_context(&["a=1".into(), "a=2".into()])
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}

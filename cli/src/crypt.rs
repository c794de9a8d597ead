//! `wharf encrypt` and `wharf decrypt`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use wharf_envelope::atrest::{
    is_sealed_file, SealedReader, SealedWriter, Tail, WriterOptions, DEFAULT_MAX_FRAME_LEN, MAGIC,
};
use wharf_envelope::kms::KmsProvider;
use wharf_envelope::message::{
    check_expected_context, read_header, Decryptor, EncryptOptions, Encryptor,
    DEFAULT_FRAME_LENGTH, FORMAT_VERSION,
};
use wharf_envelope::{EncryptionContext, Error, KeyProvider};

use crate::files::{input, Output};
use crate::keyspec::{for_decryption, for_encryption, KeySpec};

/// What `wharf encrypt` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// An AWS Encryption SDK message (v2, suite 0x0478), readable by AWS's
    /// Encryption SDKs and CLI.
    Sdk,
    /// Wharf's at-rest file format (docs/at-rest-format.md); needs --out.
    AtRest,
}

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
    /// Plaintext bytes per frame: 1 to 16 MiB for SDK messages (default
    /// 4096, the SDKs' default), up to 256 MiB for at-rest files (default
    /// 4 MiB).
    #[arg(long, value_name = "BYTES")]
    frame_length: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Sdk)]
    format: Format,
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
    let mut reader = input(args.input.as_deref())?;
    if args.format == Format::AtRest {
        let Some(out) = args.output.as_deref() else {
            bail!("--format at-rest writes a file: give it with --out PATH");
        };
        let provider = for_encryption(&key).await?;
        let frame_length = args.frame_length.unwrap_or(DEFAULT_MAX_FRAME_LEN);
        return encrypt_at_rest(&mut reader, out, provider.as_ref(), &context, frame_length).await;
    }
    let provider = for_encryption(&key).await?;
    let out = Output::open(args.output.as_deref())?;
    let options =
        EncryptOptions::default().frame_length(args.frame_length.unwrap_or(DEFAULT_FRAME_LENGTH));
    let mut enc = Encryptor::new(out, provider.as_ref(), context, &options).await?;
    io::copy(&mut reader, &mut enc).map_err(|e| io_error(e, "cannot encrypt the input"))?;
    enc.finish()?.commit()
}

/// Writes the input as an at-rest file, one frame per `frame_length` bytes.
async fn encrypt_at_rest(
    reader: &mut dyn Read,
    out: &Path,
    provider: &dyn KeyProvider,
    context: &EncryptionContext,
    frame_length: u32,
) -> Result<()> {
    let options = WriterOptions {
        max_frame_len: frame_length,
    };
    let mut writer = SealedWriter::create_with(out, provider, context, options).await?;
    let mut buf = vec![0u8; frame_length as usize];
    loop {
        let n = read_full(reader, &mut buf).context("cannot read the input")?;
        if n == 0 {
            break;
        }
        writer.append(&buf[..n])?;
    }
    writer.finish()?;
    Ok(())
}

/// Reads until `buf` is full or the input ends.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub(crate) async fn decrypt(args: DecryptArgs) -> Result<()> {
    let context = parse_context(&args.context)?;
    let key = args.key.as_deref().map(KeySpec::parse);
    let mut reader = BufReader::with_capacity(256 * 1024, input(args.input.as_deref())?);
    let head = reader.fill_buf().context("cannot read the input")?;
    if head.is_empty() {
        bail!("the input is empty: there is nothing to decrypt");
    }
    if is_sealed_file(head) {
        let Some(path) = args.input.as_deref() else {
            bail!("the input is a Wharf at-rest file, which is read by position: give it with --in PATH");
        };
        return decrypt_at_rest(path, key.as_ref(), &context, args.output.as_deref()).await;
    }
    match head[0] {
        FORMAT_VERSION => {}
        0x01 => bail!("the input is an AWS Encryption SDK version 1 message; Wharf reads version 2 (re-encrypt with a committing suite, the SDKs' default since 2.0)"),
        b => bail!(
            "the input is neither an AWS Encryption SDK message (first byte 0x02) nor a Wharf at-rest file (magic `{}`): it starts with byte {b:#04x}",
            String::from_utf8_lossy(MAGIC)
        ),
    }
    let header = read_header(&mut reader)?;
    let provider = for_decryption(key.as_ref(), &header.wrapped_keys).await?;
    let mut dec = Decryptor::with_header(reader, header, provider.as_ref(), &context).await?;
    let mut out = Output::open(args.output.as_deref())?;
    io::copy(&mut dec, &mut out).map_err(|e| io_error(e, "cannot decrypt the input"))?;
    let mut rest = dec.into_inner();
    let mut extra = [0u8; 1];
    if rest.read(&mut extra).context("cannot read the input")? != 0 {
        bail!("the input continues after the end of the message");
    }
    out.commit()
}

/// Decrypts every frame of an at-rest file. A file without its final frame
/// (still being written, or its writer stopped) or with a torn tail (a
/// crash mid-write) yields what it holds, with a warning naming what is
/// missing.
async fn decrypt_at_rest(
    path: &Path,
    key: Option<&KeySpec>,
    context: &EncryptionContext,
    output: Option<&Path>,
) -> Result<()> {
    // Without --key, KMS discovery; a file wrapped by a local key then
    // says so.
    let provider = match key {
        Some(k) => for_decryption(Some(k), &[]).await?,
        None => Box::new(KmsProvider::from_env(None).await?),
    };
    let reader = match SealedReader::open(path, provider.as_ref()).await {
        Ok(r) => r,
        Err(Error::WrongProvider { found, .. }) if key.is_none() => bail!(
            "{}: the data key is wrapped by provider `{found}`, not by KMS; give the key with --key PATH|ARN",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    check_expected_context(reader.context(), context)?;
    let mut out = Output::open(output)?;
    let mut frames = reader.frames();
    for frame in frames.by_ref() {
        out.write_all(&frame?.data)
            .context("cannot write the plaintext")?;
    }
    match frames.tail() {
        Some(Tail::Finished { .. }) | None => {}
        Some(Tail::Unfinished { end }) => eprintln!(
            "wharf: warning: {} has no final frame (it is still being written, or its writer stopped at byte {end}); wrote the {} frame(s) it holds",
            path.display(),
            frames.frames_read()
        ),
        Some(Tail::Torn { offset, len }) => eprintln!(
            "wharf: warning: {} has a torn tail: the {len} byte(s) from offset {offset} are an incomplete frame (a crash during a write) and were skipped; wrote the {} complete frame(s) before it",
            path.display(),
            frames.frames_read()
        ),
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

//! `wharf keys rotate DIR --to KEY [--from KEY]`: re-wrap the data key in
//! the header of every at-rest file under a directory, under another master
//! key, without rewriting the files' data (see docs/at-rest-format.md).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use wharf_envelope::atrest::{is_sealed_file, rotate_file, Rotation, MAGIC};
use wharf_envelope::kms::KmsProvider;
use wharf_envelope::{CacheLimits, DataKeyCache, Error, KeyProvider};

use crate::keyspec::{self, KeySpec};

/// `wharf keys ...`
#[derive(Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-wrap every at-rest file under DIR (broker segments, shipper
    /// buffer, spools) under another master key. Only headers change; the
    /// data and its positions stay. Safe to run again after an
    /// interruption.
    Rotate(RotateArgs),
}

#[derive(Args)]
struct RotateArgs {
    /// Directory searched at any depth; files that are not Wharf at-rest
    /// files are left alone.
    dir: PathBuf,
    /// The new master key: a local key file (created with mode 0600 if it
    /// does not exist) or a KMS key ARN.
    #[arg(long, value_name = "PATH|ARN")]
    to: String,
    /// The current master key: a local key file or a KMS key ARN. Without
    /// it, each file's data key is unwrapped with the KMS key ARN recorded
    /// in its header (discovery mode).
    #[arg(long, value_name = "PATH|ARN")]
    from: Option<String>,
}

/// Runs `wharf keys ...`.
pub(crate) async fn run(args: KeysArgs) -> Result<()> {
    match args.command {
        KeysCommand::Rotate(args) => rotate(args).await,
    }
}

/// What a rotation over a directory did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    rotated: usize,
    already: usize,
    skipped: usize,
    failed: usize,
}

async fn rotate(args: RotateArgs) -> Result<()> {
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    let from: Arc<dyn KeyProvider> = match &args.from {
        Some(spec) => Arc::from(keyspec::for_decryption(Some(&KeySpec::parse(spec)), &[]).await?),
        None => Arc::new(KmsProvider::from_env(None).await?),
    };
    // Files sealed under one cached data key need one unwrap between them.
    let from = DataKeyCache::new(from, CacheLimits::default());
    let to = keyspec::for_encryption(&KeySpec::parse(&args.to)).await?;
    let tally = rotate_dir(&args.dir, &from, to.as_ref(), args.from.is_none()).await?;
    println!(
        "{} rotated, {} already under the new key, {} other files left alone, {} failed",
        tally.rotated, tally.already, tally.skipped, tally.failed
    );
    if tally.failed > 0 {
        bail!(
            "{} file(s) could not be rotated (see above); fix them and run the command again",
            tally.failed
        );
    }
    Ok(())
}

async fn rotate_dir(
    dir: &Path,
    from: &dyn KeyProvider,
    to: &dyn KeyProvider,
    discovery: bool,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut files = vec![];
    collect_files(dir, &mut files)?;
    files.sort();
    for path in files {
        if !starts_with_magic(&path)? {
            tally.skipped += 1;
            continue;
        }
        match rotate_file(&path, from, to).await {
            Ok(Rotation::Rotated) => {
                tally.rotated += 1;
                println!("rotated {}", path.display());
            }
            Ok(Rotation::AlreadyRotated) => {
                tally.already += 1;
                println!("already rotated {}", path.display());
            }
            Err(e) => {
                tally.failed += 1;
                let hint = match &e {
                    Error::WrongProvider { .. } if discovery => {
                        " (give the current key with --from PATH|ARN)"
                    }
                    _ => "",
                };
                eprintln!("wharf: {}: {e}{hint}", path.display());
            }
        }
    }
    Ok(tally)
}

/// Regular files under `dir`, at any depth, not following symbolic links;
/// leaves out the temporary files of a file being created.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot list directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list directory {}", dir.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot inspect {}", entry.path().display()))?;
        let path = entry.path();
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if kind.is_file() && !path.to_string_lossy().ends_with(".creating") {
            out.push(path);
        }
    }
    Ok(())
}

fn starts_with_magic(path: &Path) -> Result<bool> {
    let mut head = [0u8; MAGIC.len()];
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(is_sealed_file(&head[..got]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_envelope::atrest::{SealedReader, SealedWriter};
    use wharf_envelope::{EncryptionContext, LocalKeyProvider};

    async fn sealed(path: &Path, keys: &dyn KeyProvider, data: &[u8]) {
        let ctx: EncryptionContext = [("purpose".to_string(), "test".to_string())].into();
        let mut w = SealedWriter::create(path, keys, &ctx).await.unwrap();
        w.append(data).unwrap();
        w.finish().unwrap();
    }

    async fn first_frame(path: &Path, keys: &dyn KeyProvider) -> Result<Vec<u8>, Error> {
        let r = SealedReader::open(path, keys).await?;
        Ok(r.read_at(r.data_start())?.unwrap().data)
    }

    fn args(dir: &Path, from: &Path, to: &Path) -> KeysArgs {
        KeysArgs {
            command: KeysCommand::Rotate(RotateArgs {
                dir: dir.to_path_buf(),
                to: to.display().to_string(),
                from: Some(from.display().to_string()),
            }),
        }
    }

    #[tokio::test]
    async fn rotates_every_sealed_file_under_the_directory_and_nothing_else() {
        let keydir = tempfile::tempdir().unwrap();
        let (old_path, new_path) = (keydir.path().join("old.key"), keydir.path().join("new.key"));
        let old = LocalKeyProvider::open_or_create(&old_path).unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::create_dir_all(data.path().join("topic-0")).unwrap();
        let files = [data.path().join("a.seg"), data.path().join("topic-0/b.seg")];
        for (i, f) in files.iter().enumerate() {
            sealed(f, &old, format!("file {i}").as_bytes()).await;
        }
        let plain = data.path().join("notes.txt");
        fs::write(&plain, b"not a wharf file").unwrap();

        // The new key file does not exist yet: it is created.
        run(args(data.path(), &old_path, &new_path)).await.unwrap();
        let new = LocalKeyProvider::open(&new_path).unwrap();
        for (i, f) in files.iter().enumerate() {
            assert_eq!(
                first_frame(f, &new).await.unwrap(),
                format!("file {i}").as_bytes()
            );
            assert!(matches!(
                first_frame(f, &old).await,
                Err(Error::Unwrap { .. })
            ));
        }
        assert_eq!(fs::read(&plain).unwrap(), b"not a wharf file");

        // Again: everything is already rotated.
        let from = DataKeyCache::new(Arc::new(old), CacheLimits::default());
        let tally = rotate_dir(data.path(), &from, &new, false).await.unwrap();
        assert_eq!(
            tally,
            Tally {
                rotated: 0,
                already: 2,
                skipped: 1,
                failed: 0
            }
        );
    }

    #[tokio::test]
    async fn a_file_the_old_key_cannot_open_fails_the_command_and_the_rest_is_done() {
        let keydir = tempfile::tempdir().unwrap();
        let (old_path, new_path) = (keydir.path().join("old.key"), keydir.path().join("new.key"));
        let old = LocalKeyProvider::open_or_create(&old_path).unwrap();
        let stranger = LocalKeyProvider::random();
        let data = tempfile::tempdir().unwrap();
        sealed(&data.path().join("mine"), &old, b"x").await;
        sealed(&data.path().join("theirs"), &stranger, b"y").await;

        let err = run(args(data.path(), &old_path, &new_path))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("1 file(s) could not be rotated"),
            "{err}"
        );
        let new = LocalKeyProvider::open(&new_path).unwrap();
        assert_eq!(
            first_frame(&data.path().join("mine"), &new).await.unwrap(),
            b"x"
        );
        assert_eq!(
            first_frame(&data.path().join("theirs"), &stranger)
                .await
                .unwrap(),
            b"y"
        );
    }

    #[tokio::test]
    async fn a_missing_directory_is_named() {
        let keydir = tempfile::tempdir().unwrap();
        let k = keydir.path().join("k");
        let err = run(args(Path::new("/nonexistent/wharf"), &k, &k))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/wharf is not a directory"),
            "{err}"
        );
    }
}

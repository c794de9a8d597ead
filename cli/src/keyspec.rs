//! `--key PATH|ARN`: which master key a command uses.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use wharf_envelope::kms::{KmsProvider, KMS_PROVIDER_ID};
use wharf_envelope::{KeyProvider, LocalKeyProvider, WrappedKey, LOCAL_KEY_NAMESPACE};

/// A `--key` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySpec {
    /// A KMS key ARN (`arn:...`).
    Kms(String),
    /// A local master key file.
    Local(PathBuf),
}

impl KeySpec {
    pub(crate) fn parse(s: &str) -> Self {
        if s.starts_with("arn:") {
            Self::Kms(s.to_string())
        } else {
            Self::Local(s.into())
        }
    }
}

/// The key provider to encrypt under. A local key file that does not exist
/// yet is created (mode 0600), and the user is told.
pub(crate) async fn for_encryption(key: &KeySpec) -> Result<Box<dyn KeyProvider>> {
    match key {
        KeySpec::Kms(arn) => Ok(Box::new(KmsProvider::from_env(Some(arn.clone())).await?)),
        KeySpec::Local(path) => {
            let existed = path.exists();
            let provider = LocalKeyProvider::open_or_create(path)?;
            if !existed {
                eprintln!("wharf: created a new local master key in {} (mode 0600); keep it: without it the output cannot be decrypted", path.display());
            }
            Ok(Box::new(provider))
        }
    }
}

/// The key provider to decrypt with: `--key`, or without it KMS discovery
/// (the key ARN recorded in the message), which needs an `aws-kms` wrapped
/// key in `wrapped`.
pub(crate) async fn for_decryption(
    key: Option<&KeySpec>,
    wrapped: &[WrappedKey],
) -> Result<Box<dyn KeyProvider>> {
    match key {
        Some(KeySpec::Kms(arn)) => Ok(Box::new(KmsProvider::from_env(Some(arn.clone())).await?)),
        Some(KeySpec::Local(path)) => Ok(Box::new(open_local(path)?)),
        None if wrapped.iter().any(|w| w.provider_id == KMS_PROVIDER_ID) => {
            Ok(Box::new(KmsProvider::from_env(None).await?))
        }
        None if wrapped.iter().any(|w| w.provider_id == LOCAL_KEY_NAMESPACE) => {
            bail!("the data key is wrapped by a local master key (`{LOCAL_KEY_NAMESPACE}`), not by KMS; give the key file with --key PATH")
        }
        None => {
            let ids: Vec<&str> = wrapped.iter().map(|w| w.provider_id.as_str()).collect();
            bail!(
                "the data key is wrapped by provider(s) {} that Wharf cannot discover; give the key with --key PATH|ARN",
                ids.join(", ")
            )
        }
    }
}

fn open_local(path: &Path) -> Result<LocalKeyProvider> {
    Ok(LocalKeyProvider::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_kms_and_the_rest_are_paths() {
        assert_eq!(
            KeySpec::parse("arn:aws:kms:us-east-1:0:key/a"),
            KeySpec::Kms("arn:aws:kms:us-east-1:0:key/a".into())
        );
        assert_eq!(
            KeySpec::parse("./master.key"),
            KeySpec::Local("./master.key".into())
        );
    }
}

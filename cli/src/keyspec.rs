//! `--key PATH|ARN`: which master key a command uses.

use anyhow::{bail, Result};
use wharf_envelope::kms::KmsProvider;
use wharf_envelope::KeyProvider;

/// A `--key` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySpec {
    /// A KMS key ARN (`arn:...`).
    Kms(String),
    /// A local master key file.
    Local(std::path::PathBuf),
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

/// The key provider for `--key`, or KMS discovery mode without one (decrypt
/// only: the key ARN recorded in the message is used).
pub(crate) async fn provider(key: Option<&KeySpec>) -> Result<Box<dyn KeyProvider>> {
    match key {
        Some(KeySpec::Kms(arn)) => Ok(Box::new(KmsProvider::from_env(Some(arn.clone())).await?)),
        None => Ok(Box::new(KmsProvider::from_env(None).await?)),
        Some(KeySpec::Local(path)) => local_provider(path),
    }
}

fn local_provider(path: &std::path::Path) -> Result<Box<dyn KeyProvider>> {
    bail!(
        "{}: local key files are not supported by this build yet; give a KMS key ARN (arn:aws:kms:...)",
        path.display()
    )
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

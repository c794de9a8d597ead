//! The `kms` key provider: data keys from AWS KMS, with the AWS Encryption
//! SDK's KMS keyring semantics, so AWS's SDKs and CLI can unwrap them.
//!
//! - generate: `GenerateDataKey` (32 bytes) under the key ARN, with the
//!   encryption context; the wrapped key is recorded as provider id
//!   `aws-kms`, provider info = the key ARN KMS answered with.
//! - unwrap: `Decrypt` with `KeyId` = the ARN recorded in the wrapped key
//!   (which must be this provider's key, unless in discovery mode) and the
//!   encryption context; the answer's key ARN must match.
//! - wrap: `Encrypt` under the key ARN with the encryption context.
//!
//! Endpoint, region and credentials come from the standard AWS chain
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles...). In discovery mode
//! (no key given) a wrapped key's own ARN is used, with a client for that
//! ARN's region. KMS checks the context; message and file headers are also
//! authenticated by Wharf itself, because LocalStack's KMS is lax about it.

use std::collections::HashMap;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;

use crate::{DataKey, EncryptionContext, Error, KeyProvider, WrappedKey, DATA_KEY_LEN};

/// Provider id of the SDK's KMS keyring.
pub const KMS_PROVIDER_ID: &str = "aws-kms";

/// AWS KMS as a master key: one key ARN, or discovery mode for decryption.
#[derive(Clone, Debug)]
pub struct KmsProvider {
    client: Client,
    key_arn: Option<String>,
}

/// The parts of a KMS key ARN Wharf needs.
struct KeyArn<'a> {
    region: &'a str,
}

/// Parses `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` (or `alias/NAME` when
/// `alias_ok`).
fn parse_arn(arn: &str, alias_ok: bool) -> Option<KeyArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, _partition, service, region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let resource_ok = resource
        .strip_prefix("key/")
        .is_some_and(|id| !id.is_empty())
        || (alias_ok
            && resource
                .strip_prefix("alias/")
                .is_some_and(|n| !n.is_empty()));
    (scheme == "arn" && service == "kms" && !region.is_empty() && resource_ok)
        .then_some(KeyArn { region })
}

impl KmsProvider {
    /// A provider for one KMS key, given by its key ARN (or alias ARN for
    /// encryption). Refuses anything else: the SDKs record the ARN in the
    /// message and need it to decrypt.
    pub fn new(client: Client, key_arn: impl Into<String>) -> Result<Self, Error> {
        let key_arn = key_arn.into();
        if parse_arn(&key_arn, true).is_none() {
            return Err(Error::InvalidOption {
                reason: format!(
                    "`{key_arn}` is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); key ids and aliases without an ARN cannot be recorded in a message"
                ),
            });
        }
        Ok(Self {
            client,
            key_arn: Some(key_arn),
        })
    }

    /// A provider that unwraps with whichever KMS key ARN a wrapped key
    /// records (the SDK's discovery mode). It cannot generate or wrap.
    pub fn discovery(client: Client) -> Self {
        Self {
            client,
            key_arn: None,
        }
    }

    /// A client from the standard AWS configuration chain, for `key_arn`
    /// or, with `None`, in discovery mode.
    pub async fn from_env(key_arn: Option<String>) -> Result<Self, Error> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = Client::new(&config);
        match key_arn {
            Some(arn) => Self::new(client, arn),
            None => Ok(Self::discovery(client)),
        }
    }

    /// The key ARN, or `None` in discovery mode.
    pub fn key_arn(&self) -> Option<&str> {
        self.key_arn.as_deref()
    }

    fn require_key(&self, operation: &'static str) -> Result<&str, Error> {
        self.key_arn.as_deref().ok_or_else(|| Error::Kms {
            operation,
            key: "discovery".into(),
            reason: "a KMS provider in discovery mode can only decrypt; give a key ARN to encrypt"
                .into(),
        })
    }

    /// The client for a key in `region`: ours, or one for that region.
    fn client_for(&self, region: &str) -> Client {
        let current = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string());
        if current.as_deref() == Some(region) {
            return self.client.clone();
        }
        let config = self
            .client
            .config()
            .to_builder()
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .build();
        Client::from_conf(config)
    }
}

fn to_map(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

/// Turns an SDK error into a sentence naming the problem.
/// A failed KMS call, with what the operator should look at.
fn kms_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    key: &str,
    err: &SdkError<E>,
) -> Error {
    Error::Kms {
        operation,
        key: key.to_string(),
        reason: classify(err),
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(err: &SdkError<E>) -> String {
    if let SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) = err {
        return format!(
            "cannot reach KMS ({}); check AWS_ENDPOINT_URL, the region and the network",
            DisplayErrorContext(err)
        );
    }
    let message = err.message().unwrap_or("no details").to_string();
    match err.code() {
        Some("AccessDeniedException") => format!("access denied: {message}"),
        Some("NotFoundException") => format!("key not found (check the ARN and the region): {message}"),
        Some("InvalidCiphertextException") => format!(
            "KMS refused the wrapped key: wrong encryption context, or the key was wrapped under another KMS key or damaged ({message})"
        ),
        Some("IncorrectKeyException") => format!("the data key was wrapped under another KMS key: {message}"),
        Some("DisabledException") => format!("the key is disabled: {message}"),
        Some("KMSInvalidStateException") => {
            format!("the key cannot be used in its current state (pending deletion or import?): {message}")
        }
        Some("InvalidKeyUsageException") => format!("the key is not an ENCRYPT_DECRYPT symmetric key: {message}"),
        Some("ThrottlingException" | "LimitExceededException") => {
            format!("KMS throttled the request; retry later: {message}")
        }
        Some(
            "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException"
            | "InvalidClientTokenId",
        ) => format!("the AWS credentials were rejected: {message}"),
        Some(code) => format!("{code}: {message}"),
        None => DisplayErrorContext(err).to_string(),
    }
}

fn data_key_from(
    plaintext: Option<&Blob>,
    operation: &'static str,
    key: &str,
) -> Result<DataKey, Error> {
    plaintext
        .and_then(|b| DataKey::from_slice(b.as_ref()))
        .ok_or_else(|| Error::Kms {
            operation,
            key: key.to_string(),
            reason: format!("KMS did not answer with a {DATA_KEY_LEN}-byte data key"),
        })
}

#[async_trait::async_trait]
impl KeyProvider for KmsProvider {
    fn describe(&self) -> String {
        match &self.key_arn {
            Some(arn) => format!("KMS key {arn}"),
            None => "KMS (discovery: the key ARN recorded in the message)".into(),
        }
    }

    async fn generate(&self, context: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error> {
        const OP: &str = "GenerateDataKey";
        let arn = self.require_key(OP)?;
        let out = self
            .client
            .generate_data_key()
            .key_id(arn)
            .number_of_bytes(DATA_KEY_LEN as i32)
            .set_encryption_context(to_map(context))
            .send()
            .await
            .map_err(|e| kms_error(OP, arn, &e))?;
        let key = data_key_from(out.plaintext(), OP, arn)?;
        let wrapped = WrappedKey {
            provider_id: KMS_PROVIDER_ID.into(),
            // The key ARN (not an alias), as the KMS keyring records it.
            provider_info: out.key_id().unwrap_or(arn).as_bytes().to_vec(),
            ciphertext: out
                .ciphertext_blob()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        };
        Ok((key, wrapped))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, Error> {
        const OP: &str = "Decrypt";
        if wrapped.provider_id != KMS_PROVIDER_ID {
            return Err(Error::WrongProvider {
                expected: KMS_PROVIDER_ID.into(),
                found: wrapped.provider_id.clone(),
            });
        }
        let recorded = std::str::from_utf8(&wrapped.provider_info).map_err(|_| Error::Unwrap {
            provider: self.describe(),
            reason: "the wrapped key's KMS key ARN is not UTF-8".into(),
        })?;
        let Some(arn) = parse_arn(recorded, false) else {
            return Err(Error::Unwrap {
                provider: self.describe(),
                reason: format!("the wrapped key records `{recorded}`, which is not a KMS key ARN"),
            });
        };
        if let Some(mine) = &self.key_arn {
            if mine != recorded {
                return Err(Error::Unwrap {
                    provider: self.describe(),
                    reason: format!("the data key was wrapped under KMS key {recorded}"),
                });
            }
        }
        let out = self
            .client_for(arn.region)
            .decrypt()
            .key_id(recorded)
            .ciphertext_blob(Blob::new(wrapped.ciphertext.clone()))
            .set_encryption_context(to_map(context))
            .send()
            .await
            .map_err(|e| kms_error(OP, recorded, &e))?;
        if out.key_id() != Some(recorded) {
            return Err(Error::Kms {
                operation: OP,
                key: recorded.to_string(),
                reason: format!(
                    "KMS answered for key {} instead",
                    out.key_id().unwrap_or("(none)")
                ),
            });
        }
        data_key_from(out.plaintext(), OP, recorded)
    }

    async fn wrap(&self, key: &DataKey, context: &EncryptionContext) -> Result<WrappedKey, Error> {
        const OP: &str = "Encrypt";
        let arn = self.require_key(OP)?;
        let out = self
            .client
            .encrypt()
            .key_id(arn)
            .plaintext(Blob::new(key.as_bytes().to_vec()))
            .set_encryption_context(to_map(context))
            .send()
            .await
            .map_err(|e| kms_error(OP, arn, &e))?;
        Ok(WrappedKey {
            provider_id: KMS_PROVIDER_ID.into(),
            provider_info: out.key_id().unwrap_or(arn).as_bytes().to_vec(),
            ciphertext: out
                .ciphertext_blob()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_client() -> Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .build();
        Client::from_conf(conf)
    }

    #[test]
    fn only_key_arns_are_accepted() {
        let c = offline_client();
        assert!(KmsProvider::new(c.clone(), "arn:aws:kms:us-east-1:000000000000:key/abc").is_ok());
        assert!(
            KmsProvider::new(c.clone(), "arn:aws:kms:us-east-1:000000000000:alias/wharf").is_ok()
        );
        for bad in [
            "abc",
            "alias/wharf",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:0:key/",
        ] {
            let e = KmsProvider::new(c.clone(), bad).unwrap_err();
            assert!(e.to_string().contains("is not a KMS key ARN"), "{e}");
        }
    }

    #[test]
    fn discovery_cannot_generate() {
        let p = KmsProvider::discovery(offline_client());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(p.generate(&EncryptionContext::new()))
            .unwrap_err();
        assert!(e.to_string().contains("discovery"), "{e}");
    }

    #[test]
    fn a_key_wrapped_elsewhere_is_refused_without_calling_kms() {
        let p =
            KmsProvider::new(offline_client(), "arn:aws:kms:us-east-1:000000000000:key/a").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let raw = WrappedKey {
            provider_id: "wharf-local".into(),
            provider_info: vec![],
            ciphertext: vec![],
        };
        let e = rt
            .block_on(p.unwrap(&raw, &EncryptionContext::new()))
            .unwrap_err();
        assert!(matches!(e, Error::WrongProvider { .. }), "{e}");
        let other = WrappedKey {
            provider_id: KMS_PROVIDER_ID.into(),
            provider_info: b"arn:aws:kms:us-east-1:000000000000:key/b".to_vec(),
            ciphertext: vec![1],
        };
        let e = rt
            .block_on(p.unwrap(&other, &EncryptionContext::new()))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("wrapped under KMS key arn:aws:kms:us-east-1:000000000000:key/b"),
            "{e}"
        );
    }
}

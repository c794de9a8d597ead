//! The `local` key provider: a 256-bit master key in a file, wrapping data
//! keys exactly as the AWS Encryption SDK's *raw AES keyring* does.
//!
//! # Key file
//!
//! The file holds exactly 32 raw bytes (the AES-256 master key) and nothing
//! else. [`LocalKeyProvider::open_or_create`] creates it with mode `0600`
//! (`O_CREAT | O_EXCL`, so two processes racing to create it cannot both
//! write a key: the loser reads the winner's). A key file readable or
//! writable by group or others is refused with [`Error::KeyFilePermissions`].
//!
//! # Wrapping (AWS Encryption SDK raw AES keyring)
//!
//! - key namespace (`provider_id`): [`KEY_NAMESPACE`] = `wharf-local`;
//! - key name: the first 8 bytes of `HMAC-SHA256(master key, "wharf-local key
//!   name v1")`, as 16 lowercase hex characters. It is derived from the key,
//!   so two local keys get different names (with overwhelming probability)
//!   and renaming the file does not change it. In Python:
//!   `hmac.new(key, b"wharf-local key name v1", hashlib.sha256).hexdigest()[:16]`;
//! - `provider_info` = key name bytes ‖ `u32` BE tag length in bits (128) ‖
//!   `u32` BE IV length (12) ‖ the 12-byte random IV;
//! - `ciphertext` = AES-256-GCM(data key) ‖ 16-byte tag, with AAD = the
//!   SDK's serialization of the encryption context ([`crate::serialize_context`]).
//!
//! So Python's `RawAESKeyring(key_namespace="wharf-local", key_name=<name>,
//! wrapping_key=<32 bytes>, wrapping_algorithm=AES_256_GCM_IV12_TAG16_NO_PADDING)`
//! (or a `RawMasterKey` with the same values) unwraps what this provider
//! wraps, and the other way round.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::{
    serialize_context, DataKey, EncryptionContext, Error, KeyProvider, WrappedKey, DATA_KEY_LEN,
};

/// The raw AES keyring key namespace (`provider_id`) of every local key.
pub const KEY_NAMESPACE: &str = "wharf-local";
/// GCM tag length in bytes (the SDK records it in bits: 128).
const TAG_LEN: usize = 16;
/// GCM IV length in bytes.
const IV_LEN: usize = 12;
/// The HMAC message that derives a key's name from the key.
const KEY_NAME_LABEL: &[u8] = b"wharf-local key name v1";

/// A master key held locally: in a file (the embedded default) or in memory
/// (unit tests).
pub struct LocalKeyProvider {
    key: Zeroizing<[u8; DATA_KEY_LEN]>,
    name: String,
    path: Option<PathBuf>,
}

impl LocalKeyProvider {
    /// Opens an existing key file. Fails if it is missing, does not hold
    /// exactly 32 bytes, or is accessible by group or others.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::read_key_file(path, file)
    }

    /// Opens the key file, creating it with a fresh random key and mode
    /// `0600` when it does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let key = DataKey::random();
                file.write_all(key.as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)?;
                }
                let provider = Self::from_key(*key.as_bytes());
                Ok(Self {
                    path: Some(path.to_path_buf()),
                    ..provider
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::open(path),
            Err(e) => Err(io_err(e)),
        }
    }

    /// A key held only in memory, for tests.
    pub fn from_key(key: [u8; DATA_KEY_LEN]) -> Self {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), KEY_NAME_LABEL);
        let name = tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            key: Zeroizing::new(key),
            name,
            path: None,
        }
    }

    /// A fresh random key held only in memory, for tests.
    pub fn random() -> Self {
        Self::from_key(*DataKey::random().as_bytes())
    }

    /// The raw AES keyring key namespace: always [`KEY_NAMESPACE`].
    pub fn key_namespace(&self) -> &str {
        KEY_NAMESPACE
    }

    /// The raw AES keyring key name (16 hex characters derived from the key).
    pub fn key_name(&self) -> &str {
        &self.name
    }

    /// The master key bytes, for interoperability tests that build the
    /// matching keyring in another SDK. Never log them.
    pub fn raw_key_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.key
    }

    /// The key file, when the key came from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn read_key_file(path: &Path, mut file: File) -> Result<Self, Error> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(Error::KeyFile {
                path: path.to_path_buf(),
                reason: "it is not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyFilePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(DATA_KEY_LEN + 1));
        // Read one byte more than a key so that a longer file is noticed.
        (&mut file)
            .take(DATA_KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        let key: [u8; DATA_KEY_LEN] = bytes.as_slice().try_into().map_err(|_| Error::KeyFile {
            path: path.to_path_buf(),
            reason: format!(
                "it must hold exactly {DATA_KEY_LEN} bytes, it holds {}{}",
                if bytes.len() > DATA_KEY_LEN {
                    "more than "
                } else {
                    ""
                },
                bytes.len().min(DATA_KEY_LEN)
            ),
        })?;
        let provider = Self::from_key(key);
        Ok(Self {
            path: Some(path.to_path_buf()),
            ..provider
        })
    }

    /// `provider_info` without the IV: key name ‖ tag bits ‖ IV length.
    fn info_prefix(&self) -> Vec<u8> {
        let mut info = self.name.as_bytes().to_vec();
        info.extend_from_slice(&((TAG_LEN * 8) as u32).to_be_bytes());
        info.extend_from_slice(&(IV_LEN as u32).to_be_bytes());
        info
    }

    fn aead_key(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, self.key.as_ref())
                .expect("a 32-byte key is a valid AES-256 key"),
        )
    }

    fn unwrap_error(&self, reason: impl Into<String>) -> Error {
        Error::Unwrap {
            provider: self.describe(),
            reason: reason.into(),
        }
    }
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

#[async_trait::async_trait]
impl KeyProvider for LocalKeyProvider {
    fn describe(&self) -> String {
        match &self.path {
            Some(path) => format!("local key {} (name {})", path.display(), self.name),
            None => format!("in-memory local key (name {})", self.name),
        }
    }

    async fn generate(&self, context: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error> {
        let key = DataKey::random();
        let wrapped = self.wrap(&key, context).await?;
        Ok((key, wrapped))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, Error> {
        if wrapped.provider_id != KEY_NAMESPACE {
            return Err(Error::WrongProvider {
                expected: KEY_NAMESPACE.into(),
                found: wrapped.provider_id.clone(),
            });
        }
        let prefix = self.info_prefix();
        let info = &wrapped.provider_info;
        if info.len() != prefix.len() + IV_LEN || !info.starts_with(&prefix) {
            return Err(self.unwrap_error(format!(
                "it was wrapped by another local key (named `{}`; this key is named `{}`)",
                String::from_utf8_lossy(&info[..info.len().saturating_sub(8 + IV_LEN)]),
                self.name
            )));
        }
        if wrapped.ciphertext.len() != DATA_KEY_LEN + TAG_LEN {
            return Err(self.unwrap_error(format!(
                "the wrapped key is {} bytes, expected {}",
                wrapped.ciphertext.len(),
                DATA_KEY_LEN + TAG_LEN
            )));
        }
        let iv: [u8; IV_LEN] = info[prefix.len()..]
            .try_into()
            .expect("length checked above");
        let aad = serialize_context(context).ok_or(Error::ContextTooLarge)?;
        let mut buf = Zeroizing::new(wrapped.ciphertext.clone());
        let plain = self
            .aead_key()
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(aad.as_slice()),
                &mut buf,
            )
            .map_err(|_| {
                self.unwrap_error(
                    "authentication failed: wrong encryption context or a damaged wrapped key",
                )
            })?;
        Ok(DataKey::from_slice(plain).expect("a 48-byte ciphertext opens to 32 bytes"))
    }

    async fn wrap(&self, key: &DataKey, context: &EncryptionContext) -> Result<WrappedKey, Error> {
        let aad = serialize_context(context).ok_or(Error::ContextTooLarge)?;
        let mut iv = [0u8; IV_LEN];
        aws_lc_rs::rand::fill(&mut iv).expect("the system random generator failed");
        let mut ciphertext = key.as_bytes().to_vec();
        self.aead_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(aad.as_slice()),
                &mut ciphertext,
            )
            .expect("AES-GCM sealing of 32 bytes cannot fail");
        let mut provider_info = self.info_prefix();
        provider_info.extend_from_slice(&iv);
        Ok(WrappedKey {
            provider_id: KEY_NAMESPACE.into(),
            provider_info,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn mode_of(path: &Path) -> io::Result<u32> {
        Ok(fs::metadata(path)?.permissions().mode() & 0o777)
    }

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn wraps_and_unwraps_under_the_same_context() {
        let p = LocalKeyProvider::random();
        let c = ctx(&[("purpose", "test")]);
        let (key, wrapped) = p.generate(&c).await.unwrap();
        assert_eq!(wrapped.provider_id, "wharf-local");
        assert_eq!(wrapped.provider_info.len(), 16 + 4 + 4 + 12);
        assert_eq!(&wrapped.provider_info[16..24], &[0, 0, 0, 128, 0, 0, 0, 12]);
        assert_eq!(wrapped.ciphertext.len(), 48);
        assert_eq!(
            p.unwrap(&wrapped, &c).await.unwrap().as_bytes(),
            key.as_bytes()
        );
    }

    #[tokio::test]
    async fn wrong_context_is_an_unwrap_error() {
        let p = LocalKeyProvider::random();
        let (_, wrapped) = p.generate(&ctx(&[("a", "1")])).await.unwrap();
        let err = p.unwrap(&wrapped, &ctx(&[("a", "2")])).await.unwrap_err();
        assert!(matches!(err, Error::Unwrap { .. }), "{err}");
        assert!(
            err.to_string().contains("wrong encryption context"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn wrong_key_is_an_unwrap_error_naming_both_keys() {
        let (a, b) = (LocalKeyProvider::random(), LocalKeyProvider::random());
        let (_, wrapped) = a.generate(&EncryptionContext::new()).await.unwrap();
        let err = b
            .unwrap(&wrapped, &EncryptionContext::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unwrap { .. }));
        assert!(
            err.to_string().contains(a.key_name()) && err.to_string().contains(b.key_name()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn other_provider_id_is_wrong_provider() {
        let p = LocalKeyProvider::random();
        let (_, mut wrapped) = p.generate(&EncryptionContext::new()).await.unwrap();
        wrapped.provider_id = "aws-kms".into();
        let err = p
            .unwrap(&wrapped, &EncryptionContext::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WrongProvider { .. }), "{err}");
    }

    /// Known-answer test: key name and wrap format match the SDK's
    /// raw AES keyring as computed independently (Python's hmac module).
    #[test]
    fn key_name_is_the_documented_hmac() {
        let p = LocalKeyProvider::from_key([7u8; 32]);
        // python3 -c 'import hmac,hashlib;print(hmac.new(bytes([7]*32),
        //   b"wharf-local key name v1",hashlib.sha256).hexdigest()[:16])'
        assert_eq!(p.key_name(), KNOWN_NAME_FOR_SEVENS);
    }
    const KNOWN_NAME_FOR_SEVENS: &str = "7e61cb82d854b727";

    #[test]
    fn creates_the_key_file_0600_and_reopens_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let a = LocalKeyProvider::open_or_create(&path).unwrap();
        assert_eq!(mode_of(&path).unwrap(), 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len(), 32);
        let b = LocalKeyProvider::open_or_create(&path).unwrap();
        assert_eq!(a.raw_key_bytes(), b.raw_key_bytes());
        assert_eq!(a.key_name(), b.key_name());
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        LocalKeyProvider::open_or_create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = LocalKeyProvider::open(&path).unwrap_err();
            assert!(matches!(err, Error::KeyFilePermissions { .. }), "{err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        LocalKeyProvider::open(&path).unwrap();
    }

    #[test]
    fn a_file_of_the_wrong_length_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        for len in [0usize, 31, 33, 64] {
            fs::write(&path, vec![1u8; len]).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = LocalKeyProvider::open(&path).unwrap_err();
            assert!(matches!(err, Error::KeyFile { .. }), "{err}");
        }
    }

    #[test]
    fn a_missing_key_file_is_an_io_error_naming_it() {
        let err = LocalKeyProvider::open("/nonexistent/wharf.key").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/wharf.key"), "{err}");
    }
}

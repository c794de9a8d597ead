//! Rotation of at-rest files between local keys and LocalStack's KMS keys.
//! Run by scripts/test-all.sh, or by hand: `eval "$(localstack/localstack.sh env)"`
//! then `cargo test -p wharf-envelope --test atrest_rotate_localstack -- --include-ignored`.

use std::fs;
use std::path::Path;

use wharf_envelope::atrest::{rotate_file, Rotation, SealedReader, SealedWriter};
use wharf_envelope::kms::{KmsProvider, KMS_PROVIDER_ID};
use wharf_envelope::{EncryptionContext, Error, KeyProvider, LocalKeyProvider};

fn key_arn(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start LocalStack with `localstack/localstack.sh start` and run `eval \"$(localstack/localstack.sh env)\"`, or run scripts/test-all.sh")
    })
}

async fn kms(arn: Option<String>) -> KmsProvider {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        panic!("AWS_ENDPOINT_URL is not set: `eval \"$(localstack/localstack.sh env)\"` to point the tests at LocalStack");
    }
    KmsProvider::from_env(arn).await.unwrap()
}

fn ctx() -> EncryptionContext {
    [
        ("cluster".to_string(), "rotate-test".to_string()),
        ("purpose".to_string(), "segment".to_string()),
    ]
    .into()
}

/// A file with two frames; returns the bytes after its header.
async fn make(path: &Path, keys: &dyn KeyProvider) -> Vec<u8> {
    let mut w = SealedWriter::create(path, keys, &ctx()).await.unwrap();
    w.append(b"first").unwrap();
    w.append(b"second").unwrap();
    w.finish().unwrap();
    data_region(path, keys).await
}

async fn data_region(path: &Path, keys: &dyn KeyProvider) -> Vec<u8> {
    let r = SealedReader::open(path, keys).await.unwrap();
    fs::read(path).unwrap()[r.data_start() as usize..].to_vec()
}

async fn frames(path: &Path, keys: &dyn KeyProvider) -> Result<Vec<Vec<u8>>, Error> {
    let r = SealedReader::open(path, keys).await?;
    r.frames()
        .require_finished()
        .map(|f| f.map(|f| f.data))
        .collect()
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn local_to_kms_keeps_the_frames_and_needs_kms_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let local = LocalKeyProvider::random();
    let arn = key_arn("WHARF_TEST_KMS_KEY_ARN");
    let to = kms(Some(arn.clone())).await;
    let before = make(&path, &local).await;

    assert_eq!(
        rotate_file(&path, &local, &to).await.unwrap(),
        Rotation::Rotated
    );
    let r = SealedReader::open(&path, &to).await.unwrap();
    assert_eq!(r.wrapped_key().provider_id, KMS_PROVIDER_ID);
    assert_eq!(r.wrapped_key().provider_info, arn.as_bytes());
    assert_eq!(data_region(&path, &to).await, before, "frames untouched");
    assert_eq!(
        frames(&path, &to).await.unwrap(),
        [b"first".to_vec(), b"second".to_vec()]
    );
    // Discovery mode finds the key from the header, as `wharf decrypt` does.
    let discovery = kms(None).await;
    assert_eq!(frames(&path, &discovery).await.unwrap().len(), 2);
    assert!(
        frames(&path, &local).await.is_err(),
        "the local key no longer opens it"
    );
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn kms_key_a_to_key_b_with_the_old_key_found_by_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let (arn_a, arn_b) = (
        key_arn("WHARF_TEST_KMS_KEY_ARN"),
        key_arn("WHARF_TEST_KMS_KEY_ARN_2"),
    );
    assert_ne!(arn_a, arn_b);
    let a = kms(Some(arn_a)).await;
    let b = kms(Some(arn_b.clone())).await;
    let before = make(&path, &a).await;

    let discovery = kms(None).await;
    assert_eq!(
        rotate_file(&path, &discovery, &b).await.unwrap(),
        Rotation::Rotated
    );
    let r = SealedReader::open(&path, &b).await.unwrap();
    assert_eq!(r.wrapped_key().provider_info, arn_b.as_bytes());
    assert_eq!(data_region(&path, &b).await, before);
    assert_eq!(
        frames(&path, &b).await.unwrap(),
        [b"first".to_vec(), b"second".to_vec()]
    );
    // Key A may no longer open it: KMS A cannot decrypt a blob of key B.
    assert!(frames(&path, &a).await.is_err());
    // And back to a local key.
    let local = LocalKeyProvider::random();
    assert_eq!(
        rotate_file(&path, &b, &local).await.unwrap(),
        Rotation::Rotated
    );
    assert_eq!(frames(&path, &local).await.unwrap().len(), 2);
}

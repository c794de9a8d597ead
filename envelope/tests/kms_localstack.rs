//! The `kms` provider against LocalStack's KMS. Run by scripts/test-all.sh,
//! or by hand: `eval "$(localstack/localstack.sh env)"` then
//! `cargo test -p wharf-envelope --test kms_localstack -- --include-ignored`.

use wharf_envelope::kms::{KmsProvider, KMS_PROVIDER_ID};
use wharf_envelope::message::{decrypt, encrypt};
use wharf_envelope::{EncryptionContext, Error, KeyProvider};

fn key_arn(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start LocalStack with `localstack/localstack.sh start` and run `eval \"$(localstack/localstack.sh env)\"`, or run scripts/test-all.sh")
    })
}

async fn provider(arn: Option<String>) -> KmsProvider {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        panic!("AWS_ENDPOINT_URL is not set: `eval \"$(localstack/localstack.sh env)\"` to point the tests at LocalStack");
    }
    KmsProvider::from_env(arn).await.unwrap()
}

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn generate_then_unwrap_round_trips_with_the_arn_recorded() {
    let arn = key_arn("WHARF_TEST_KMS_KEY_ARN");
    let kms = provider(Some(arn.clone())).await;
    let c = ctx(&[("cluster", "c1"), ("purpose", "test")]);
    let (key, wrapped) = kms.generate(&c).await.unwrap();
    assert_eq!(wrapped.provider_id, KMS_PROVIDER_ID);
    assert_eq!(wrapped.provider_info, arn.as_bytes());
    let back = kms.unwrap(&wrapped, &c).await.unwrap();
    assert_eq!(back.as_bytes(), key.as_bytes());
    let rewrapped = kms.wrap(&key, &c).await.unwrap();
    assert_eq!(
        kms.unwrap(&rewrapped, &c).await.unwrap().as_bytes(),
        key.as_bytes()
    );
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn messages_round_trip_and_decrypt_in_discovery_mode() {
    let arn = key_arn("WHARF_TEST_KMS_KEY_ARN");
    let kms = provider(Some(arn)).await;
    let c = ctx(&[("purpose", "discovery")]);
    let msg = encrypt(&kms, &c, b"hello kms").await.unwrap();
    assert_eq!(
        decrypt(&kms, &msg, &c).await.unwrap().plaintext,
        b"hello kms"
    );
    let discovery = provider(None).await;
    assert_eq!(
        decrypt(&discovery, &msg, &c).await.unwrap().plaintext,
        b"hello kms"
    );
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn another_key_cannot_decrypt_and_says_which_key_wrapped_it() {
    let a = key_arn("WHARF_TEST_KMS_KEY_ARN");
    let b = key_arn("WHARF_TEST_KMS_KEY_ARN_2");
    let msg = encrypt(
        &provider(Some(a.clone())).await,
        &EncryptionContext::new(),
        b"x",
    )
    .await
    .unwrap();
    let err = decrypt(&provider(Some(b)).await, &msg, &EncryptionContext::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("wrapped under KMS key {a}")),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn wrong_context_is_refused() {
    let kms = provider(Some(key_arn("WHARF_TEST_KMS_KEY_ARN"))).await;
    let msg = encrypt(&kms, &ctx(&[("purpose", "a")]), b"x")
        .await
        .unwrap();
    // Wharf's own check, before KMS is asked.
    let err = decrypt(&kms, &msg, &ctx(&[("purpose", "b")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongContext { .. }), "{err}");
    // KMS itself, asked to unwrap under another context.
    let (_, wrapped) = kms.generate(&ctx(&[("purpose", "a")])).await.unwrap();
    let err = kms
        .unwrap(&wrapped, &ctx(&[("purpose", "b")]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("wrong encryption context"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs LocalStack: run scripts/test-all.sh"]
async fn a_missing_key_is_named() {
    let arn = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000";
    let kms = provider(Some(arn.to_string())).await;
    let err = kms.generate(&EncryptionContext::new()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(arn) && text.contains("not found"), "{text}");
}

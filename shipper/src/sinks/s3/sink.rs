//! [`S3Store`]: objects in a bucket, small ones with PutObject, large ones
//! streamed as multipart uploads.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use super::uploads::{UploadState, Uploads};
use super::S3Service;
use crate::error::Result;
use crate::sinks::object::config::{Compression, Encryption};
use crate::sinks::object::encode::{ObjectWrite, SharedBuf};
use crate::sinks::object::store::{ObjectMeta, ObjectStore};

/// A bucket of objects.
pub struct S3Store {
    s3: S3Service,
    uploads: Uploads,
    part_bytes: usize,
    encryption: Encryption,
    sse_kms_key_id: Option<String>,
    compression: Compression,
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
    state: PathBuf,
}

/// An object being written.
pub struct S3Upload {
    key: String,
    buf: SharedBuf,
    multipart: Option<Multipart>,
    sent: u64,
}

impl S3Store {
    /// A store for `s3`, keeping upload state in `state_dir`; aborts the
    /// uploads a previous run left unfinished.
    pub async fn open(
        s3: S3Service,
        state_dir: &Path,
        part_bytes: u64,
        encryption: Encryption,
        sse_kms_key_id: Option<String>,
        compression: Compression,
    ) -> Result<S3Store> {
        let uploads = Uploads::open(state_dir)?;
        uploads.recover(&s3).await?;
        Ok(S3Store {
            s3,
            uploads,
            part_bytes: part_bytes as usize,
            encryption,
            sse_kms_key_id,
            compression,
        })
    }

    fn content_type(&self) -> &'static str {
        match (self.encryption, self.compression) {
            (Encryption::Envelope, _) => "application/octet-stream",
            (_, Compression::Gzip) => "application/gzip",
            (_, Compression::Zstd) => "application/zstd",
            (_, Compression::None) => "application/x-ndjson",
        }
    }

    fn compression_name(&self) -> &'static str {
        match self.compression {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    async fn start_multipart(&mut self, up: &mut S3Upload) -> Result<()> {
        let object = uuid::Uuid::now_v7();
        let state = self.uploads.path(&object);
        let mut st = UploadState {
            key: up.key.clone(),
            upload_id: None,
        };
        self.uploads.save(&state, &st)?;
        let s3 = self.s3.clone();
        let sse = self.encryption;
        let kms = self.sse_kms_key_id.clone();
        let ctype = self.content_type();
        let comp = self.compression_name();
        let key = up.key.clone();
        let out = s3
            .retry("CreateMultipartUpload", 0, || {
                let mut req = s3
                    .client
                    .create_multipart_upload()
                    .bucket(&s3.bucket)
                    .key(&key)
                    .content_type(ctype)
                    .metadata("wharf-encryption", sse.as_str())
                    .metadata("wharf-compression", comp)
                    .metadata("wharf-format", "ndjson");
                if sse == Encryption::SseKms {
                    req = req
                        .server_side_encryption(ServerSideEncryption::AwsKms)
                        .set_ssekms_key_id(kms.clone());
                }
                req.send()
            })
            .await?;
        let upload_id = out.upload_id().unwrap_or_default().to_owned();
        st.upload_id = Some(upload_id.clone());
        self.uploads.save(&state, &st)?;
        up.multipart = Some(Multipart {
            upload_id,
            parts: Vec::new(),
            state,
        });
        Ok(())
    }

    async fn send_part(&mut self, up: &mut S3Upload, bytes: Vec<u8>, events: u64) -> Result<()> {
        if up.multipart.is_none() {
            self.start_multipart(up).await?;
        }
        let mp = up.multipart.as_mut().expect("started above");
        let number = mp.parts.len() as i32 + 1;
        let len = bytes.len() as u64;
        let body = bytes::Bytes::from(bytes);
        let s3 = &self.s3;
        let (key, id) = (&up.key, &mp.upload_id);
        let out = s3
            .retry("UploadPart", events, || {
                s3.client
                    .upload_part()
                    .bucket(&s3.bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(number)
                    .body(ByteStream::from(body.clone()))
                    .send()
            })
            .await?;
        mp.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        up.sent += len;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    type Upload = S3Upload;

    async fn begin(&mut self, key: &str) -> Result<(Box<dyn ObjectWrite>, S3Upload)> {
        let buf = SharedBuf::default();
        Ok((
            Box::new(buf.clone()),
            S3Upload {
                key: key.to_owned(),
                buf,
                multipart: None,
                sent: 0,
            },
        ))
    }

    async fn progress(&mut self, up: &mut S3Upload, events: u64) -> Result<()> {
        if up.buf.len() >= self.part_bytes {
            let part = up.buf.take();
            self.send_part(up, part, events).await?;
        }
        Ok(())
    }

    async fn complete(&mut self, mut up: S3Upload, meta: &ObjectMeta) -> Result<u64> {
        let rest = up.buf.take();
        let events = meta.events;
        if up.multipart.is_some() {
            if !rest.is_empty() {
                self.send_part(&mut up, rest, events).await?;
            }
            let mp = up.multipart.take().expect("checked");
            let s3 = &self.s3;
            let done = CompletedMultipartUpload::builder()
                .set_parts(Some(mp.parts.clone()))
                .build();
            s3.retry("CompleteMultipartUpload", events, || {
                s3.client
                    .complete_multipart_upload()
                    .bucket(&s3.bucket)
                    .key(&up.key)
                    .upload_id(&mp.upload_id)
                    .multipart_upload(done.clone())
                    .send()
            })
            .await?;
            self.uploads.remove(&mp.state)?;
            return Ok(up.sent);
        }
        let len = rest.len() as u64;
        let body = bytes::Bytes::from(rest);
        let s3 = &self.s3;
        let (sse, kms) = (self.encryption, &self.sse_kms_key_id);
        let (ctype, comp) = (self.content_type(), self.compression_name());
        let (n, first) = (meta.events.to_string(), meta.first_seq.to_string());
        s3.retry("PutObject", events, || {
            let mut req = s3
                .client
                .put_object()
                .bucket(&s3.bucket)
                .key(&up.key)
                .content_type(ctype)
                .metadata("wharf-encryption", sse.as_str())
                .metadata("wharf-compression", comp)
                .metadata("wharf-format", "ndjson")
                .metadata("wharf-events", &n)
                .metadata("wharf-first-seq", &first)
                .body(ByteStream::from(body.clone()));
            if sse == Encryption::SseKms {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .set_ssekms_key_id(kms.clone());
            }
            req.send()
        })
        .await?;
        Ok(len)
    }
}

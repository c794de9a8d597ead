//! The file header: a fixed preamble and two key slots.
//!
//! Only rotation ever rewrites a slot, and it writes the slot that is not
//! in use, so at every instant one complete, authenticated slot exists.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use aws_lc_rs::hmac;

use super::crypto::{header_mac_key, FILE_ID_LEN, MAC_LEN};
use crate::{serialize_context, DataKey, EncryptionContext, Error, KeyProvider, WrappedKey};

/// The first eight bytes of every at-rest file.
pub const MAGIC: &[u8; 8] = b"WHARFENC";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Length of the fixed preamble.
pub(crate) const PREAMBLE_LEN: usize = 32;
/// Smallest slot: a multiple of 512 that holds a local key's header.
pub(crate) const MIN_SLOT_LEN: u32 = 2048;
/// Largest slot accepted when reading (bounds what a reader allocates).
pub(crate) const MAX_SLOT_LEN: u32 = 1 << 20;
/// Room left in each slot beyond the first header, for a bigger wrapped
/// key after rotation (a KMS ARN and ciphertext blob take ~300 bytes).
const SLOT_HEADROOM: usize = 1536;
/// Generation field + body length field.
const SLOT_FIXED: usize = 8;

/// The fixed part at offset 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Preamble {
    pub(crate) slot_len: u32,
    pub(crate) file_id: [u8; FILE_ID_LEN],
}

impl Preamble {
    pub(crate) fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut out = [0u8; PREAMBLE_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_be_bytes());
        out[12..16].copy_from_slice(&self.slot_len.to_be_bytes());
        out[16..32].copy_from_slice(&self.file_id);
        out
    }

    /// Parses the preamble; the error is (offset, reason).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, (u64, String)> {
        if bytes.len() < PREAMBLE_LEN || &bytes[..8] != MAGIC {
            return Err((0, "not a Wharf at-rest file (no `WHARFENC` magic)".into()));
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err((8, format!("format version {version} is not supported (this build reads version {VERSION})")));
        }
        if bytes[10..12] != [0, 0] {
            return Err((10, "reserved bytes are not zero".into()));
        }
        let slot_len = u32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if !(MIN_SLOT_LEN..=MAX_SLOT_LEN).contains(&slot_len) || slot_len % 512 != 0 {
            return Err((12, format!("header slot length {slot_len} is not a multiple of 512 between {MIN_SLOT_LEN} and {MAX_SLOT_LEN}")));
        }
        Ok(Self {
            slot_len,
            file_id: bytes[16..32].try_into().expect("16 bytes"),
        })
    }

    /// File offset of slot `i` (0 or 1).
    pub(crate) fn slot_offset(&self, i: usize) -> u64 {
        PREAMBLE_LEN as u64 + i as u64 * u64::from(self.slot_len)
    }

    /// Where the first record starts.
    pub(crate) fn data_start(&self) -> u64 {
        self.slot_offset(2)
    }
}

/// What a slot says.
#[derive(Clone, Debug)]
pub(crate) struct SlotBody {
    pub(crate) max_frame_len: u32,
    pub(crate) context: EncryptionContext,
    pub(crate) wrapped: WrappedKey,
}

impl SlotBody {
    fn encode(&self) -> Result<Vec<u8>, Error> {
        let ctx = serialize_context(&self.context).ok_or(Error::ContextTooLarge)?;
        let mut out = Vec::with_capacity(64 + ctx.len());
        out.extend_from_slice(&self.max_frame_len.to_be_bytes());
        out.extend_from_slice(&(ctx.len() as u32).to_be_bytes());
        out.extend_from_slice(&ctx);
        for field in [
            self.wrapped.provider_id.as_bytes(),
            &self.wrapped.provider_info,
            &self.wrapped.ciphertext,
        ] {
            let len = u16::try_from(field.len()).map_err(|_| Error::Unwrap {
                provider: self.wrapped.provider_id.clone(),
                reason: "a wrapped-key field exceeds 65,535 bytes".into(),
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
        Ok(out)
    }

    /// Parses a body; the error is (offset within the body, reason).
    fn parse(body: &[u8]) -> Result<Self, (usize, String)> {
        let mut r = Cursor {
            bytes: body,
            pos: 0,
        };
        let max_frame_len = r.u32()?;
        let ctx_len = r.u32()? as usize;
        let ctx_at = r.pos;
        let context = parse_context(r.take(ctx_len)?).map_err(|(o, why)| (ctx_at + o, why))?;
        let id_at = r.pos;
        let id_len = r.u16()? as usize;
        let provider_id = String::from_utf8(r.take(id_len)?.to_vec())
            .map_err(|_| (id_at, "the key provider id is not UTF-8".to_string()))?;
        let info_len = r.u16()? as usize;
        let provider_info = r.take(info_len)?.to_vec();
        let ct_len = r.u16()? as usize;
        let ciphertext = r.take(ct_len)?.to_vec();
        if r.pos != body.len() {
            return Err((
                r.pos,
                "bytes follow the wrapped key inside the slot body".into(),
            ));
        }
        Ok(Self {
            max_frame_len,
            context,
            wrapped: WrappedKey {
                provider_id,
                provider_info,
                ciphertext,
            },
        })
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], (usize, String)> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end =
            end.ok_or_else(|| (self.pos, format!("a field of {n} bytes runs past its end")))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, (usize, String)> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, (usize, String)> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

/// Parses the AWS Encryption SDK's context serialization, accepting only
/// its canonical form (keys unique and sorted), so that the bytes read are
/// the bytes the key was wrapped under.
pub(crate) fn parse_context(bytes: &[u8]) -> Result<EncryptionContext, (usize, String)> {
    let mut ctx = EncryptionContext::new();
    if bytes.is_empty() {
        return Ok(ctx);
    }
    let mut r = Cursor { bytes, pos: 0 };
    let count = r.u16()?;
    if count == 0 {
        return Err((
            0,
            "an empty encryption context must be written as no bytes".into(),
        ));
    }
    for _ in 0..count {
        let at = r.pos;
        let mut field = || -> Result<String, (usize, String)> {
            let len = r.u16()? as usize;
            String::from_utf8(r.take(len)?.to_vec())
                .map_err(|_| (at, "an encryption context entry is not UTF-8".into()))
        };
        let (k, v) = (field()?, field()?);
        if ctx.keys().next_back().is_some_and(|last| *last >= k) {
            return Err((
                at,
                "encryption context keys are not unique and sorted".into(),
            ));
        }
        ctx.insert(k, v);
    }
    if r.pos != bytes.len() {
        return Err((r.pos, "bytes follow the encryption context".into()));
    }
    Ok(ctx)
}

/// Encodes a whole slot of `preamble.slot_len` bytes: generation, body,
/// zero padding, and the MAC over the preamble and everything before it.
pub(crate) fn encode_slot(
    path: &Path,
    preamble: &Preamble,
    generation: u32,
    body: &SlotBody,
    mac_key: &hmac::Key,
) -> Result<Vec<u8>, Error> {
    let body = body.encode()?;
    let slot_len = preamble.slot_len as usize;
    let needed = SLOT_FIXED + body.len() + MAC_LEN;
    if needed > slot_len {
        return Err(Error::HeaderSlotTooSmall {
            path: path.to_path_buf(),
            needed,
            available: slot_len,
        });
    }
    let mut slot = vec![0u8; slot_len];
    slot[..4].copy_from_slice(&generation.to_be_bytes());
    slot[4..8].copy_from_slice(&(body.len() as u32).to_be_bytes());
    slot[8..8 + body.len()].copy_from_slice(&body);
    let mac = slot_mac(preamble, &slot[..slot_len - MAC_LEN], mac_key);
    slot[slot_len - MAC_LEN..].copy_from_slice(mac.as_ref());
    Ok(slot)
}

fn slot_mac(preamble: &Preamble, signed: &[u8], mac_key: &hmac::Key) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(mac_key);
    ctx.update(&preamble.encode());
    ctx.update(signed);
    ctx.sign()
}

/// The slot length for a new file whose first body encodes to `body_len`.
pub(crate) fn slot_len_for(body_len: usize) -> u32 {
    let want = (SLOT_FIXED + body_len + MAC_LEN + SLOT_HEADROOM).div_ceil(512) * 512;
    (want as u32).max(MIN_SLOT_LEN)
}

/// Size of a body once encoded.
pub(crate) fn body_len(body: &SlotBody) -> Result<usize, Error> {
    Ok(body.encode()?.len())
}

/// A slot read from disk but not yet authenticated.
#[derive(Clone, Debug)]
pub(crate) struct RawSlot {
    pub(crate) index: usize,
    pub(crate) offset: u64,
    pub(crate) bytes: Vec<u8>,
}

impl RawSlot {
    pub(crate) fn generation(&self) -> u32 {
        u32::from_be_bytes(self.bytes[..4].try_into().expect("4 bytes"))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.iter().all(|&b| b == 0)
    }

    /// Parses the body; the error is (file offset, reason).
    pub(crate) fn parse(&self) -> Result<SlotBody, (u64, String)> {
        let len = u32::from_be_bytes(self.bytes[4..8].try_into().expect("4 bytes")) as usize;
        if self.generation() == 0 {
            return Err((
                self.offset,
                "a header slot has generation 0 but is not empty".into(),
            ));
        }
        if len > self.bytes.len() - SLOT_FIXED - MAC_LEN {
            return Err((
                self.offset + 4,
                format!("header slot body length {len} exceeds the slot"),
            ));
        }
        SlotBody::parse(&self.bytes[SLOT_FIXED..SLOT_FIXED + len])
            .map_err(|(o, why)| (self.offset + (SLOT_FIXED + o) as u64, why))
    }

    /// Checks the slot's MAC under `data_key`.
    pub(crate) fn verify(&self, preamble: &Preamble, data_key: &DataKey) -> bool {
        let split = self.bytes.len() - MAC_LEN;
        let key = header_mac_key(data_key, &preamble.file_id);
        hmac::verify(
            &key,
            &[&preamble.encode()[..], &self.bytes[..split]].concat(),
            &self.bytes[split..],
        )
        .is_ok()
    }
}

/// The preamble and both slots as read from `file`.
pub(crate) fn read_raw(path: &Path, file: &File) -> Result<(Preamble, [RawSlot; 2]), Error> {
    let corrupt = |(offset, reason): (u64, String)| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut pre = [0u8; PREAMBLE_LEN];
    read_exact_or_short(path, file, &mut pre, 0)
        .map_err(|n| corrupt((n, "the file is shorter than a Wharf at-rest header".into())))??;
    let preamble = Preamble::parse(&pre).map_err(corrupt)?;
    let mut slots = Vec::with_capacity(2);
    for index in 0..2 {
        let offset = preamble.slot_offset(index);
        let mut bytes = vec![0u8; preamble.slot_len as usize];
        read_exact_or_short(path, file, &mut bytes, offset)
            .map_err(|n| {
                let why = format!(
                    "the file ends at byte {} inside its header, whose length field (here) says {} bytes",
                    offset + n,
                    preamble.data_start()
                );
                corrupt((12, why))
            })??;
        slots.push(RawSlot {
            index,
            offset,
            bytes,
        });
    }
    let [a, b]: [RawSlot; 2] = slots.try_into().expect("two slots");
    Ok((preamble, [a, b]))
}

/// Reads exactly `buf.len()` bytes at `offset`. `Err(n)` when the file ends
/// after `n` bytes; `Ok(Err(_))` on an I/O error.
pub(crate) fn read_exact_or_short(
    path: &Path,
    file: &File,
    buf: &mut [u8],
    offset: u64,
) -> Result<Result<(), Error>, u64> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(done as u64),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Ok(Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                }))
            }
        }
    }
    Ok(Ok(()))
}

/// An authenticated header.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) preamble: Preamble,
    pub(crate) body: SlotBody,
    pub(crate) data_key: DataKey,
    /// Index and generation of the slot in use.
    pub(crate) slot: usize,
    pub(crate) generation: u32,
}

/// Reads and authenticates the header: the slot with the highest
/// generation must parse, unwrap under `keys` and carry a valid MAC; the
/// other slot must be empty or an older slot that parses (one left behind
/// by an interrupted rotation).
pub(crate) async fn read_header(
    path: &Path,
    file: &File,
    keys: &dyn KeyProvider,
) -> Result<Header, Error> {
    let (preamble, slots) = read_raw(path, file)?;
    let corrupt = |(offset, reason): (u64, String)| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let [a, b] = &slots;
    let (newest, other) = if b.generation() > a.generation() {
        (b, a)
    } else {
        (a, b)
    };
    if newest.is_empty() {
        return Err(corrupt((
            newest.offset,
            "both header slots are empty".into(),
        )));
    }
    if other.is_empty() {
        return verify_slot(path, &preamble, newest, keys).await;
    }
    if other.generation() == newest.generation() {
        return Err(corrupt((
            other.offset,
            "both header slots have the same generation".into(),
        )));
    }
    other.parse().map_err(corrupt)?;
    match verify_slot(path, &preamble, newest, keys).await {
        Ok(header) => Ok(header),
        // Only a rotation writes a second slot: say so when the older one is intact.
        Err(e) => match verify_slot(path, &preamble, other, keys).await {
            Ok(_) => Err(corrupt((
                newest.offset,
                format!(
                    "the newest header slot (generation {}) is damaged and the older one is intact: \
                     a key rotation was interrupted; run `wharf keys rotate` again",
                    newest.generation()
                ),
            ))),
            Err(_) => Err(e),
        },
    }
}

/// Authenticates one slot with `keys`.
pub(crate) async fn verify_slot(
    path: &Path,
    preamble: &Preamble,
    slot: &RawSlot,
    keys: &dyn KeyProvider,
) -> Result<Header, Error> {
    let corrupt = |(offset, reason): (u64, String)| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let body = slot.parse().map_err(corrupt)?;
    let data_key = keys.unwrap(&body.wrapped, &body.context).await?;
    if !slot.verify(preamble, &data_key) {
        let why = format!(
            "the header (bytes 0 to {}) fails authentication (if a key rotation was interrupted, \
             run `wharf keys rotate` again)",
            slot.offset + slot.bytes.len() as u64
        );
        return Err(corrupt((0, why)));
    }
    Ok(Header {
        preamble: preamble.clone(),
        body,
        data_key,
        slot: slot.index,
        generation: slot.generation(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips_and_non_canonical_is_refused() {
        let ctx: EncryptionContext = [("a".into(), "1".into()), ("b".into(), "".into())].into();
        let bytes = serialize_context(&ctx).unwrap();
        assert_eq!(parse_context(&bytes).unwrap(), ctx);
        assert!(parse_context(&[0, 0]).is_err());
        // b before a
        let swapped = [0, 2, 0, 1, b'b', 0, 0, 0, 1, b'a', 0, 1, b'1'];
        assert!(parse_context(&swapped).is_err());
        assert!(parse_context(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn preamble_round_trips() {
        let p = Preamble {
            slot_len: 2048,
            file_id: [9; 16],
        };
        assert_eq!(Preamble::parse(&p.encode()).unwrap(), p);
        let mut bad = p.encode();
        bad[15] = 1;
        assert!(Preamble::parse(&bad).is_err());
    }
}

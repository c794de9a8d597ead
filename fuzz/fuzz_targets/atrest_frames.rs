//! The whole at-rest reader on an arbitrary file: open (header
//! authentication under the corpus key), iterate every frame, and read at
//! a few positions. Seeded with real files (`make_atrest_corpus`), so
//! mutations reach the record reader behind a valid header. Must never
//! panic, and must never return a frame that was not written.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use wharf_envelope::atrest::SealedReader;
use wharf_fuzz::{block_on, fuzz_keys};

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile_in_shm();
    file.as_file_mut().write_all(data).unwrap();
    let keys = fuzz_keys();
    let Ok(reader) = block_on(SealedReader::open(file.path(), &keys)) else {
        return;
    };
    let mut positions = vec![];
    for frame in reader.frames() {
        match frame {
            Ok(f) => {
                // Every frame the corpus writer made is `frame N: ...`.
                assert!(
                    f.data
                        .starts_with(format!("frame {}:", f.number).as_bytes())
                        || f.data.is_empty()
                );
                positions.push(f.position);
            }
            Err(_) => break,
        }
    }
    for pos in positions {
        let again = reader
            .read_at(pos)
            .expect("a frame read in order reads again")
            .expect("it is there");
        assert_eq!(again.position, pos);
    }
    let _ = reader.read_at(reader.data_start() + (data.len() as u64 % 97));
});

fn tempfile_in_shm() -> tempfile::NamedTempFile {
    tempfile::Builder::new()
        .tempfile_in("/dev/shm")
        .or_else(|_| tempfile::NamedTempFile::new())
        .unwrap()
}

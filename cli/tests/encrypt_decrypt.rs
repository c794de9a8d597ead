//! `wharf encrypt` / `wharf decrypt` end to end with local key files (no
//! services needed): round trips in both formats, and every failure exits
//! non-zero with a sentence naming the problem, never a panic.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn wharf(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fails_with(o: &Output, text: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected a failure, got success; stderr: {err}"
    );
    assert!(
        err.contains(text),
        "stderr `{err}` does not contain `{text}`"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sdk_messages_round_trip_through_stdin_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    let pt = data(200_000);
    let enc = wharf(
        &["encrypt", "--key", path(&key), "--context", "purpose=test"],
        &pt,
    );
    assert!(enc.status.success(), "{}", stderr(&enc));
    assert!(stderr(&enc).contains("created a new local master key"));
    assert_eq!(&enc.stdout[..3], &[0x02, 0x04, 0x78]);
    let dec = wharf(
        &["decrypt", "--key", path(&key), "--context", "purpose=test"],
        &enc.stdout,
    );
    assert!(dec.status.success(), "{}", stderr(&dec));
    assert_eq!(dec.stdout, pt);
}

#[test]
fn at_rest_files_round_trip_and_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    let (input, sealed, output) = (
        dir.path().join("in"),
        dir.path().join("f.wharf"),
        dir.path().join("out"),
    );
    fs::write(&input, data(100_000)).unwrap();
    let enc = wharf(
        &[
            "encrypt",
            "--key",
            path(&key),
            "--format",
            "at-rest",
            "--frame-length",
            "16384",
            "--in",
            path(&input),
            "--out",
            path(&sealed),
        ],
        b"",
    );
    assert!(enc.status.success(), "{}", stderr(&enc));
    assert!(fs::read(&sealed).unwrap().starts_with(b"WHARFENC"));
    let dec = wharf(
        &[
            "decrypt",
            "--key",
            path(&key),
            "--in",
            path(&sealed),
            "--out",
            path(&output),
        ],
        b"",
    );
    assert!(dec.status.success(), "{}", stderr(&dec));
    assert_eq!(fs::read(&output).unwrap(), data(100_000));
}

#[test]
fn failures_exit_non_zero_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    let other = dir.path().join("other.key");
    let enc = wharf(
        &["encrypt", "--key", path(&key), "--context", "purpose=a"],
        b"secret",
    );
    assert!(enc.status.success(), "{}", stderr(&enc));
    let msg = enc.stdout;
    wharf(&["encrypt", "--key", path(&other)], b"");

    fails_with(
        &wharf(
            &["decrypt", "--key", path(&key), "--context", "purpose=b"],
            &msg,
        ),
        "wrong encryption context",
    );
    fails_with(
        &wharf(&["decrypt", "--key", path(&other)], &msg),
        "cannot unwrap the data key",
    );
    fails_with(
        &wharf(&["decrypt"], &msg),
        "give the key file with --key PATH",
    );
    fails_with(
        &wharf(&["decrypt", "--key", path(&key)], &msg[..msg.len() - 5]),
        "truncated",
    );
    let mut bad = msg.clone();
    let last = bad.len() - 20;
    bad[last] ^= 1;
    fails_with(
        &wharf(&["decrypt", "--key", path(&key)], &bad),
        "failed authentication",
    );
    fails_with(
        &wharf(&["decrypt", "--key", path(&key)], b"hello"),
        "neither an AWS Encryption SDK message",
    );
    fails_with(
        &wharf(&["decrypt", "--key", path(&key)], b""),
        "the input is empty",
    );
    fails_with(
        &wharf(
            &["encrypt", "--key", path(&key), "--context", "nokey"],
            b"x",
        ),
        "not KEY=VALUE",
    );
    fails_with(
        &wharf(
            &["encrypt", "--key", path(&key), "--frame-length", "0"],
            b"x",
        ),
        "frame length 0",
    );
    fails_with(
        &wharf(
            &["decrypt", "--key", path(&dir.path().join("missing.key"))],
            &msg,
        ),
        "missing.key",
    );
    // A failed decryption to a file leaves no file behind.
    let out = dir.path().join("plain");
    fails_with(
        &wharf(&["decrypt", "--key", path(&key), "--out", path(&out)], &bad),
        "failed authentication",
    );
    assert!(!out.exists());
}

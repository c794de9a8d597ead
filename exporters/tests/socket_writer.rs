//! The socket writer against tiny in-test shippers on a real Unix socket:
//! one that acks, one that never acks, one that goes away and comes back,
//! one that stops reading.

mod common;

use std::time::Duration;

use common::{assert_lines, config, line, wait_for, Mode, Shipper};
use wharf_exporters::SocketWriter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acking_shipper_receives_every_line_in_order_and_acks_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let shipper = Shipper::start(&cfg.socket_path, Mode::Ack);
    let writer = SocketWriter::start(cfg).unwrap();
    let want: Vec<String> = (0..5000).map(line).collect();
    for l in &want {
        assert!(writer.try_send_line(l.clone()));
    }
    wait_for(|| writer.stats().acked == 5000).await;
    let stats = writer.stats();
    assert_lines(&shipper.lines(), &want, "received");
    assert_eq!(stats.acked, 5000);
    assert_eq!(stats.accepted, 5000);
    assert_eq!(stats.dropped(), 0);
    assert_eq!(stats.unacked, 0);
    assert_eq!(stats.connected, 1);
    writer.shutdown(Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_a_shipper_never_acks_are_kept_and_resent_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_unacked = 100;
    let path = cfg.socket_path.clone();
    let deaf = Shipper::start(&path, Mode::NeverAck);
    let writer = SocketWriter::start(cfg).unwrap();
    let want: Vec<String> = (0..300).map(line).collect();
    for l in &want {
        writer.try_send_line(l.clone());
    }
    wait_for(|| writer.stats().spool_pending == 300 && deaf.lines().len() == 100).await;
    let stats = writer.stats();
    assert_lines(&deaf.lines(), &want[..100], "only the ack window is sent");
    assert_eq!((stats.written, stats.acked, stats.unacked), (100, 0, 100));
    // The 200 lines beyond the window wait in the spool, behind the 100
    // unacknowledged ones, which moved there to keep the order.
    assert_eq!((stats.spooled, stats.spool_pending), (300, 300));
    deaf.stop().await;

    let good = Shipper::start(&path, Mode::Ack);
    wait_for(|| writer.stats().acked == 300).await;
    assert_lines(
        &good.lines(),
        &want,
        "everything unacknowledged is resent, in order",
    );
    let stats = writer.stats();
    assert_eq!(
        (stats.acked, stats.dropped(), stats.spool_pending),
        (300, 0, 0)
    );
    assert!(stats.reconnects >= 1);
    writer.shutdown(Duration::from_secs(1));
    let left = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert_eq!(left, 0, "acknowledged spool segments are deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipper_that_goes_away_and_comes_back_loses_nothing_while_the_spool_has_room() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.socket_path.clone();
    let first = Shipper::start(&path, Mode::Ack);
    let writer = SocketWriter::start(cfg).unwrap();
    let want: Vec<String> = (0..3000).map(line).collect();
    for l in &want[..1000] {
        writer.try_send_line(l.clone());
    }
    wait_for(|| first.lines().len() >= 500).await;
    let got_first = first.stop().await;
    // While it is away the broker keeps logging.
    for l in &want[1000..2000] {
        assert!(
            writer.try_send_line(l.clone()),
            "never refused while the spool has room"
        );
    }
    wait_for(|| writer.stats().connected == 0 && writer.stats().spool_pending >= 1000).await;
    assert!(writer.stats().spooled >= 1000, "{:?}", writer.stats());

    let second = Shipper::start(&path, Mode::Ack);
    for l in &want[2000..] {
        writer.try_send_line(l.clone());
    }
    wait_for(|| second.lines().last() == want.last()).await;
    let got_second = second.lines();
    // The second shipper gets one unbroken, ordered run: from the first
    // line the writer had no ack for, to the last line.
    let k = want.len() - got_second.len();
    assert_lines(&got_second, &want[k..], "second shipper");
    assert!(k <= got_first.len(), "no gap between the two shippers");
    assert_lines(&got_first, &want[..got_first.len()], "first shipper");
    assert_eq!(writer.stats().dropped(), 0);
    writer.shutdown(Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_and_counts_and_keeps_the_order_of_what_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.spool_max_bytes = 64 * 1024;
    let path = cfg.socket_path.clone();
    let writer = SocketWriter::start(cfg).unwrap();
    let want: Vec<String> = (0..2000).map(line).collect();
    for l in &want {
        writer.try_send_line(l.clone());
    }
    wait_for(|| {
        let s = writer.stats();
        s.spooled + s.dropped() == 2000
    })
    .await;
    let stats = writer.stats();
    assert!(stats.dropped_spool_full > 0, "{stats:?}");
    assert!(stats.spooled > 0, "{stats:?}");
    assert_eq!(stats.spooled + stats.dropped_spool_full, 2000);
    assert!(stats.spool_bytes <= 64 * 1024);

    let shipper = Shipper::start(&path, Mode::Ack);
    wait_for(|| writer.stats().acked == stats.spooled).await;
    let got = shipper.lines();
    assert_eq!(got.len() as u64, stats.spooled);
    assert_lines(
        &got,
        &want[..got.len()],
        "the oldest lines are kept, in order",
    );
    writer.shutdown(Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_shipper_never_blocks_the_caller_the_queue_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 100;
    cfg.ack_timeout = Duration::from_secs(60);
    let shipper = Shipper::start(&cfg.socket_path, Mode::NeverRead);
    let writer = SocketWriter::start(cfg).unwrap();
    wait_for(|| writer.stats().connected == 1).await;
    let big = "x".repeat(1024);
    let mut refused = 0;
    for i in 0..20_000 {
        if !writer.try_send_line(format!(r#"{{"kind":"log","i":{i},"pad":"{big}"}}"#)) {
            refused += 1;
        }
    }
    let stats = writer.stats();
    assert!(refused > 0, "the socket buffer must fill: {stats:?}");
    assert_eq!(stats.dropped_queue_full, refused);
    assert_eq!(stats.accepted + stats.dropped_queue_full, 20_000);
    drop(shipper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_spooled_before_a_restart_are_delivered_by_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.socket_path.clone();
    let want: Vec<String> = (0..50).map(line).collect();
    {
        let writer = SocketWriter::start(cfg.clone()).unwrap();
        for l in &want {
            writer.try_send_line(l.clone());
        }
        writer.shutdown(Duration::from_millis(100));
        assert_eq!(writer.stats().spooled, 50);
    }
    let shipper = Shipper::start(&path, Mode::Ack);
    let writer = SocketWriter::start(cfg).unwrap();
    wait_for(|| writer.stats().acked == 50).await;
    assert_lines(&shipper.lines(), &want, "after a restart");
    writer.shutdown(Duration::from_secs(1));
}

#[test]
fn impossible_settings_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 0;
    let err = SocketWriter::start(cfg).unwrap_err().to_string();
    assert!(err.contains("queue_capacity"), "{err}");
}

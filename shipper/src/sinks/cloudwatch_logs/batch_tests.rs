use super::*;
use crate::record::Kind;

const NOW: i64 = 1_800_000_000_000;

fn rec(seq: u64, ts: i64, msg_len: usize) -> Arc<Record> {
    let line = format!(r#"{{"kind":"log","m":"{}"}}"#, "x".repeat(msg_len));
    Arc::new(Record {
        seq,
        id: uuid::Uuid::now_v7(),
        kind: Kind::Log,
        ts_millis: ts,
        source: Arc::from("b"),
        line: line.into_bytes(),
    })
}

fn limits() -> Limits {
    Limits {
        max_bytes: MAX_BATCH_BYTES,
        max_events: MAX_BATCH_EVENTS,
        max_age: Duration::from_secs(5),
        max_event_age_ms: MAX_EVENT_AGE_MS,
        oversize: Oversize::Truncate,
    }
}

fn batcher(l: Limits) -> LogBatcher {
    let f: Format = Box::new(|r: &Record| {
        Ok((
            "g".into(),
            "s".into(),
            String::from_utf8(r.line.clone()).unwrap(),
        ))
    });
    LogBatcher::new(l, f).with_clock(|| NOW)
}

fn run(b: &mut LogBatcher, recs: Vec<Arc<Record>>) -> (Vec<LogBatch>, Vec<DeadEvent>) {
    let (mut ready, mut dead) = (Vec::new(), Vec::new());
    for r in recs {
        b.add(r, &mut ready, &mut dead);
    }
    b.take_all(&mut ready);
    (ready, dead)
}

fn check_rules(batches: &[LogBatch]) {
    for b in batches {
        assert!(
            b.counted_bytes() <= MAX_BATCH_BYTES,
            "{}",
            b.counted_bytes()
        );
        assert!(b.events.len() <= MAX_BATCH_EVENTS);
        assert!(b.events.windows(2).all(|w| w[0].ts <= w[1].ts), "sorted");
        let span = b.events.last().unwrap().ts - b.events[0].ts;
        assert!(span <= MAX_BATCH_SPAN_MS, "span {span}");
        assert!(b.events.iter().all(|e| e.message.len() <= MAX_EVENT_BYTES));
    }
}

#[test]
fn out_of_order_events_are_sorted_within_a_batch() {
    let mut b = batcher(limits());
    let recs = (0..100)
        .map(|i| rec(i, NOW - 1000 * ((i * 37) % 100) as i64, 10))
        .collect();
    let (batches, dead) = run(&mut b, recs);
    assert!(dead.is_empty());
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].events.len(), 100);
    check_rules(&batches);
    assert_eq!(batches[0].min_seq(), 0);
}

#[test]
fn ten_thousand_events_and_one_mebibyte_counting_26_bytes_each() {
    let mut b = batcher(limits());
    let recs: Vec<_> = (0..25_000).map(|i| rec(i, NOW, 1)).collect();
    let (batches, _) = run(&mut b, recs);
    check_rules(&batches);
    assert_eq!(
        batches.iter().map(|b| b.events.len()).sum::<usize>(),
        25_000
    );
    assert_eq!(batches[0].events.len(), 10_000);

    // 1000-byte messages: 1,048,576 / (msg + 26) events fit.
    let mut b = batcher(limits());
    let recs: Vec<_> = (0..3000).map(|i| rec(i, NOW, 1000)).collect();
    let msg = recs[0].line.len();
    let (batches, _) = run(&mut b, recs);
    check_rules(&batches);
    assert_eq!(
        batches[0].events.len(),
        MAX_BATCH_BYTES / (msg + EVENT_OVERHEAD)
    );
}

#[test]
fn a_batch_never_spans_more_than_24_hours() {
    let mut b = batcher(limits());
    let hour = 3600 * 1000;
    // 3 days, hour by hour, shuffled.
    let recs = (0..72u64)
        .map(|i| rec(i, NOW - 3 * 24 * hour + ((i * 29) % 72) as i64 * hour, 10))
        .collect();
    let (batches, dead) = run(&mut b, recs);
    assert!(dead.is_empty());
    assert!(batches.len() >= 3, "{}", batches.len());
    check_rules(&batches);
    assert_eq!(batches.iter().map(|b| b.events.len()).sum::<usize>(), 72);
}

#[test]
fn too_old_and_too_new_are_refused_before_sending() {
    let mut l = limits();
    let mut b = batcher(l.clone());
    let recs = vec![
        rec(0, NOW - MAX_EVENT_AGE_MS - 1, 1),
        rec(1, NOW + MAX_FUTURE_MS + 1, 1),
        rec(2, NOW - MAX_EVENT_AGE_MS + 60_000, 1),
        rec(3, NOW + MAX_FUTURE_MS - 60_000, 1),
    ];
    let (batches, dead) = run(&mut b, recs);
    let reasons: Vec<_> = dead
        .iter()
        .map(|d| (d.record.seq, d.reason.as_str()))
        .collect();
    assert_eq!(reasons, vec![(0, "too_old"), (1, "too_new")]);
    // The two kept events are 14 days apart: two batches.
    assert_eq!(batches.len(), 2);
    check_rules(&batches);

    // A 7-day retention refuses what is older than 7 days.
    l.max_event_age_ms = 7 * 24 * 3600 * 1000;
    let mut b = batcher(l);
    let (_, dead) = run(&mut b, vec![rec(0, NOW - 8 * 24 * 3600 * 1000, 1)]);
    assert_eq!(dead.len(), 1);
}

#[test]
fn oversize_events_are_truncated_with_a_marker_or_split() {
    let mut b = batcher(limits());
    let (batches, dead) = run(&mut b, vec![rec(0, NOW, 3 << 20)]);
    assert!(dead.is_empty());
    check_rules(&batches);
    let m = &batches[0].events[0].message;
    assert!(m.len() <= MAX_EVENT_BYTES);
    assert!(m.contains("…[wharf: truncated "), "visible marker");
    assert_eq!(b.oversize.get(), 1);

    let mut l = limits();
    l.oversize = Oversize::Split;
    let mut b = batcher(l);
    let r = rec(0, NOW, (3 << 20) + 5);
    let total = r.line.len();
    let (batches, _) = run(&mut b, vec![r]);
    check_rules(&batches);
    let events: Vec<_> = batches.iter().flat_map(|b| &b.events).collect();
    assert_eq!(events.len(), 4);
    let mut joined = String::new();
    for (i, e) in events.iter().enumerate() {
        let prefix_end = e.message.find("] ").unwrap() + 2;
        assert!(e.message.starts_with(&format!("[wharf: part {}/4 ", i + 1)));
        joined.push_str(&e.message[prefix_end..]);
    }
    assert_eq!(joined.len(), total, "parts rejoin to the whole event");
    assert_eq!(b.oversize.get(), 1);
}

#[test]
fn truncation_keeps_utf8_whole() {
    let s = "é".repeat(1000);
    let t = truncate(&s, 501);
    assert!(t.len() <= 501);
    assert!(t.contains("truncated"));
}

#[test]
fn streams_batch_separately_and_the_cursor_holds_the_oldest_open() {
    let f: Format = Box::new(|r: &Record| Ok(("g".into(), format!("s{}", r.seq % 2), "m".into())));
    let mut b = LogBatcher::new(limits(), f).with_clock(|| NOW);
    let (mut ready, mut dead) = (Vec::new(), Vec::new());
    for i in 5..9 {
        b.add(rec(i, NOW, 1), &mut ready, &mut dead);
    }
    assert_eq!(b.min_open_seq(), Some(5));
    b.take_all(&mut ready);
    assert_eq!(ready.len(), 2);
    assert_eq!(b.min_open_seq(), None);
    assert!(b.next_deadline().is_none());
}

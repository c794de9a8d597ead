use super::*;
use crate::record::Kind;
use crate::sinks::cloudwatch_metrics::parse::msk_dimensions;

const T0: i64 = 1_800_000_000_000; // a whole minute

fn rec(seq: u64, ts: i64, line: String) -> Arc<Record> {
    Arc::new(Record {
        seq,
        id: uuid::Uuid::now_v7(),
        kind: Kind::Metric,
        ts_millis: ts,
        source: Arc::from("b"),
        line: line.into_bytes(),
    })
}

fn sample(name: &str, broker: u32, value: f64) -> String {
    format!(
        r#"{{"kind":"metric","name":"{name}","value":{value},"unit":"Count","cluster":"c","broker":{broker}}}"#
    )
}

fn batcher() -> MetricBatcher {
    MetricBatcher::new(
        msk_dimensions(),
        Duration::from_secs(60),
        Duration::from_secs(10),
    )
}

fn run(b: &mut MetricBatcher, recs: Vec<Arc<Record>>) -> (Vec<MetricBatch>, Vec<DeadEvent>) {
    let (mut ready, mut dead) = (Vec::new(), Vec::new());
    for r in recs {
        b.add(r, &mut ready, &mut dead);
    }
    b.take_all(&mut ready);
    (ready, dead)
}

#[test]
fn same_metric_and_dimensions_in_a_period_become_one_datum_with_counts() {
    let mut b = batcher();
    let mut recs = Vec::new();
    for i in 0..100u64 {
        // Values 1..=10, ten times each, within one minute; broker 1 and 2.
        recs.push(rec(
            i,
            T0 + i as i64 * 100,
            sample("BytesInPerSec", 1 + (i % 2) as u32, (i % 10 + 1) as f64),
        ));
    }
    // The next minute is another datum.
    recs.push(rec(100, T0 + 60_000, sample("BytesInPerSec", 1, 5.0)));
    let (batches, dead) = run(&mut b, recs);
    assert!(dead.is_empty());
    assert_eq!(batches.len(), 1);
    let d = &batches[0].datums;
    assert_eq!(d.len(), 3);
    let first = &d[0];
    assert_eq!(first.timestamp_ms, T0);
    assert_eq!(first.dimensions["Cluster Name"], "c");
    let Values::Counts(c) = &first.values else {
        panic!("counts")
    };
    let n: f64 = c.iter().map(|(_, n)| n).sum();
    assert_eq!(n, 50.0);
    assert_eq!(batches[0].records.iter().map(Vec::len).sum::<usize>(), 101);
    assert_eq!(batches[0].min_seq(), 0);
}

#[test]
fn more_than_150_distinct_values_or_a_statistic_set_become_statistic_values() {
    let mut b = batcher();
    let recs = (0..400u64)
        .map(|i| rec(i, T0, sample("M", 1, i as f64)))
        .collect();
    let (batches, _) = run(&mut b, recs);
    let Values::Stats(s) = batches[0].datums[0].values else {
        panic!("stats")
    };
    assert_eq!(
        (s.count, s.min, s.max, s.sum),
        (400.0, 0.0, 399.0, (0..400).sum::<u64>() as f64)
    );

    let mut b = batcher();
    let recs = vec![
        rec(0, T0, sample("M", 1, 7.0)),
        rec(1, T0, r#"{"kind":"metric","name":"M","unit":"Count","cluster":"c","broker":1,"statistic_set":{"count":4,"sum":10,"min":1,"max":4}}"#.into()),
    ];
    let (batches, _) = run(&mut b, recs);
    assert_eq!(batches[0].datums.len(), 1);
    let Values::Stats(s) = batches[0].datums[0].values else {
        panic!("stats")
    };
    assert_eq!((s.count, s.min, s.max, s.sum), (5.0, 1.0, 7.0, 17.0));
}

#[test]
fn requests_hold_at_most_1000_datums_and_1_mb() {
    let mut b = batcher();
    let recs = (0..2500u64)
        .map(|i| rec(i, T0, sample(&format!("M{i}"), 1, 1.0)))
        .collect();
    let (batches, _) = run(&mut b, recs);
    assert_eq!(
        batches.iter().map(|b| b.datums.len()).collect::<Vec<_>>(),
        [1000, 1000, 500]
    );
    // Datums with 150 values each and long dimensions: the byte limit cuts first.
    let mut b = batcher();
    let mut recs = Vec::new();
    let mut seq = 0;
    for m in 0..200 {
        for v in 0..150 {
            recs.push(rec(seq, T0, format!(
                r#"{{"kind":"metric","name":"M{m}","value":{v},"dimensions":{{"topic":"{}"}}}}"#,
                "t".repeat(1000)
            )));
            seq += 1;
        }
    }
    let (batches, _) = run(&mut b, recs);
    assert!(batches.len() > 1);
    for b in &batches {
        let bytes: usize = b.datums.iter().map(Datum::estimated_bytes).sum();
        assert!(bytes <= MAX_REQUEST_BYTES);
        assert!(b.datums.len() <= MAX_DATUMS);
    }
}

#[test]
fn unreadable_metric_records_are_dead_lettered() {
    let mut b = batcher();
    let (batches, dead) = run(
        &mut b,
        vec![rec(0, T0, r#"{"kind":"metric","value":1}"#.into())],
    );
    assert!(batches.is_empty());
    assert_eq!(dead[0].reason, "metric_without_name");
}

//! Wire-level faults with the `clickhouse` crate's `test-util` mock server:
//! answers a real server seldom gives on demand (a 5xx, an exception in
//! the body) make the batch go to the spill file, acknowledged; the replay
//! sends the spilled rows as they were once the server takes them.

use clickhouse::test::{handlers, Mock};

use super::*;
use crate::store::NewReport;
use beacon::{MetricName, NavigationType};

fn beacons(n: usize) -> Vec<NewBeacon> {
    (0..n)
        .map(|i| NewBeacon {
            site: "shop.example".into(),
            page: "https://shop.example/".into(),
            form_factor: None,
            page_view_id: Some(format!("pv{i}")),
            session_id: None,
            received_at_ms: 1_700_000_000_000 + i as i64,
            reports: vec![NewReport {
                metric: MetricName::Lcp,
                report_id: format!("id{i}"),
                value: 1000.0 + i as f64,
                delta: 1000.0 + i as f64,
                navigation_type: NavigationType::Navigate,
                attribution: None,
            }],
        })
        .collect()
}

fn shared(mock: &Mock, dir: &std::path::Path) -> Arc<Shared> {
    let mut o = ClickHouseOptions::new(mock.url(), "vs", dir);
    o.insert_attempts = 2;
    o.insert_timeout = Duration::from_secs(5);
    // Plain RowBinary: the mock answers no schema queries.
    let client = clickhouse::Client::default().with_mock(mock).with_validation(false);
    Arc::new(Shared::new(o, client))
}

#[tokio::test]
async fn server_errors_spill_the_batch_and_the_replay_sends_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mock = Mock::new();
    let s = shared(&mock, dir.path());
    let rows = writer::rows_of(beacons(3), &s.seq);
    // Both attempts fail: a 503, then an exception in the body.
    mock.add(handlers::failure(clickhouse::test::status::SERVICE_UNAVAILABLE));
    mock.add(handlers::exception(252));
    writer::make_durable(&s, "tok-1".into(), rows.clone(), Vec::new())
        .await
        .unwrap();
    assert_eq!(s.insert_failures.load(Ordering::Relaxed), 2);
    assert_eq!(s.batches_spilled.load(Ordering::Relaxed), 1);
    let spilled = s.spill.read().unwrap();
    assert_eq!(spilled.len(), 1);
    assert_eq!(spilled[0].token, "tok-1");
    assert_eq!(spilled[0].rows, rows);
    // While the spill holds batches, new ones queue behind it (order).
    let more = writer::rows_of(beacons(1), &s.seq);
    writer::make_durable(&s, "tok-2".into(), more.clone(), Vec::new())
        .await
        .unwrap();
    assert_eq!(s.spill.read().unwrap().len(), 2);
    // The server fails the first replay: nothing is dropped.
    mock.add(handlers::failure(clickhouse::test::status::NOT_IMPLEMENTED));
    assert_eq!(writer::replay_once(&s).await, 0);
    assert_eq!(s.spill.read().unwrap().len(), 2);
    // Then takes both, oldest first, rows as spilled.
    let first = mock.add(handlers::record::<RawRow>());
    let second = mock.add(handlers::record::<RawRow>());
    assert_eq!(writer::replay_once(&s).await, 2);
    assert_eq!(first.collect::<Vec<RawRow>>().await, rows);
    assert_eq!(second.collect::<Vec<RawRow>>().await, more);
    assert!(s.spill.is_empty());
    assert!(!s.spill.path().exists());
}

#[tokio::test]
async fn a_batch_the_server_takes_is_not_spilled() {
    let dir = tempfile::tempdir().unwrap();
    let mock = Mock::new();
    let s = shared(&mock, dir.path());
    let rows = writer::rows_of(beacons(5), &s.seq);
    // The first attempt's answer is an error; the retry (same token) lands.
    mock.add(handlers::failure(clickhouse::test::status::INTERNAL_SERVER_ERROR));
    let recorded = mock.add(handlers::record::<RawRow>());
    writer::make_durable(&s, "tok".into(), rows.clone(), Vec::new())
        .await
        .unwrap();
    assert_eq!(recorded.collect::<Vec<RawRow>>().await, rows);
    assert_eq!(s.batches_inserted.load(Ordering::Relaxed), 1);
    assert_eq!(s.batches_spilled.load(Ordering::Relaxed), 0);
    assert!(!s.spill.path().exists());
}

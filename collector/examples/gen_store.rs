//! Fills a data directory with synthetic reports through the store's own
//! insert path, for the summary and start-up benchmarks.
//!
//! `gen_store DIR REPORTS PAGES DAYS [SITE]`: REPORTS reports spread over
//! PAGES pages of SITE (default bench.example), in page views of the five
//! metrics, the three form factors, and the last DAYS days; values from log-normal
//! distributions around typical medians. Prints the time taken.

use std::time::Instant;

use collector::beacon::{FormFactor, MetricName, NavigationType};
use collector::store::{NewBeacon, Report, Sqlite, SqliteOptions, Store};
use collector::time::{now_ms, DAY_MS};

#[path = "../src/testutil.rs"]
mod testutil;
use testutil::Rng;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: gen_store DIR REPORTS PAGES DAYS [SITE]");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(&args[0]);
    let reports: u64 = args[1].parse().expect("REPORTS");
    let pages: u64 = args[2].parse().expect("PAGES");
    let days: i64 = args[3].parse().expect("DAYS");
    let site = args.get(4).cloned().unwrap_or_else(|| "bench.example".into());
    let store = Sqlite::open_in_dir(
        &dir,
        SqliteOptions {
            max_pages_per_site: pages.max(1) as u32 + 1,
            ..Default::default()
        },
    )
    .expect("open store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let now = now_ms();
    let mut rng = Rng::new(0x5EED);
    let mut batch = Vec::with_capacity(5000);
    let medians = [1200.0, 1800.0, 0.04, 120.0, 400.0];
    // Page views of 5 reports (one per metric), as their beacons would
    // bring them: one page, form factor and time each.
    let (mut page, mut ff, mut at) = (0, FormFactor::Phone, now);
    for i in 0..reports {
        let m = (i % 5) as usize;
        if m == 0 {
            page = rng.next() % pages;
            ff = FormFactor::ALL[(rng.next() % 3) as usize];
            at = now - (rng.unit() * (days * DAY_MS) as f64) as i64;
        }
        let metric = MetricName::ALL[m];
        let mut value: f64 = if metric == MetricName::Cls && rng.next().is_multiple_of(3) {
            0.0
        } else {
            medians[m] * (0.8 * rng.normal()).exp()
        };
        value = (value * 10.0).round() / 10.0;
        if metric == MetricName::Cls {
            value = (value * 1000.0).round() / 10_000.0;
        }
        value = value.min(collector::validate::max_value(metric));
        batch.push(Report {
            site: site.clone(),
            page: format!("https://{site}/page/{page}"),
            metric,
            report_id: format!("v5-{now}-{i}"),
            value,
            delta: value,
            rating: metric.rate(value),
            navigation_type: NavigationType::Navigate,
            form_factor: Some(ff),
            page_view_id: Some(format!("pv-{}", i / 5)),
            session_id: Some(format!("s-{}", i / 20)),
            received_at_ms: at,
            attribution: None,
        });
        if batch.len() == batch.capacity() {
            rt.block_on(store.insert(NewBeacon::group(std::mem::take(&mut batch))))
                .expect("insert");
            batch.reserve(5000);
        }
    }
    if !batch.is_empty() {
        rt.block_on(store.insert(NewBeacon::group(batch))).expect("insert");
    }
    store.close().expect("close");
    println!(
        "generated {reports} reports over {pages} pages and {days} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

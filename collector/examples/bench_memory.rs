//! What the collector's memory grows by: per new page key (what a client
//! inventing URLs costs, before the page caps stop it) and per stored
//! report (what traffic costs), measured as live heap bytes through the
//! store's own insert path, against the heap of the open, empty store in
//! the same run. Prints what the default caps allow at most.
//!
//! ```text
//! cargo run --release -p vitalsign-collector --example bench_memory -- [pages] [reports]
//! ```
//!
//! Defaults: 20,000 new pages (one beacon of 5 metrics each, as a hostile
//! client would send), then 1,000,000 reports on 1,000 pages (beacons of 5
//! metrics, 3 form factors, today). SQLite's own page caches (8 MiB for the
//! writer, 16 MiB per reader) are outside the Rust heap and not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use collector::beacon::{FormFactor, MetricName, NavigationType};
use collector::config::{DEFAULT_MAX_PAGES, DEFAULT_MAX_PAGES_PER_SITE, DEFAULT_MAX_SITES};
use collector::store::{NewBeacon, NewReport, Sqlite, SqliteOptions, Store};

#[path = "../src/testutil.rs"]
mod testutil;
use testutil::Rng;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// One beacon of the five metrics on `page`.
fn beacon(page: String, ff: FormFactor, id: u64, now: i64, rng: &mut Rng) -> NewBeacon {
    NewBeacon {
        site: "mem.example".into(),
        page,
        form_factor: Some(ff),
        page_view_id: Some(format!("pv-{id}")),
        session_id: Some(format!("s-{}", id / 4)),
        received_at_ms: now,
        reports: MetricName::ALL
            .iter()
            .map(|&metric| {
                let value = match metric {
                    MetricName::Cls => rng.f64_log(0.001, 0.5),
                    _ => rng.f64_log(50.0, 8000.0),
                };
                NewReport {
                    metric,
                    report_id: format!("v5-{id}-{}", metric.as_str()),
                    value,
                    delta: value,
                    navigation_type: NavigationType::Navigate,
                    attribution: None,
                }
            })
            .collect(),
    }
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let pages = args.first().copied().unwrap_or(20_000);
    let reports = args.get(1).copied().unwrap_or(1_000_000);
    let dir = tempfile_dir();
    let store = Sqlite::open_in_dir(
        &dir,
        SqliteOptions {
            max_pages_per_site: u32::MAX,
            ..Default::default()
        },
    )
    .expect("open store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = collector::time::now_ms();
    let mut rng = Rng::new(7);
    let ffs = [FormFactor::Phone, FormFactor::Tablet, FormFactor::Desktop];
    let insert = |beacons: Vec<NewBeacon>| rt.block_on(store.insert(beacons)).expect("insert");

    let empty = live();
    let started = Instant::now();
    let mut id = 0u64;
    for chunk in 0..pages.div_ceil(500) {
        let beacons = (0..500.min(pages - chunk * 500))
            .map(|i| {
                id += 1;
                beacon(
                    format!("https://mem.example/new/{chunk}/{i}"),
                    ffs[(id % 3) as usize],
                    id,
                    now,
                    &mut rng,
                )
            })
            .collect();
        insert(beacons);
    }
    let with_pages = live();
    let per_page = (with_pages - empty) as f64 / pages as f64;
    println!(
        "new pages: {pages} pages of one 5-metric beacon each: {:.0} bytes per page ({:.1} s)",
        per_page,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let beacons_needed = reports / 5;
    for chunk in 0..beacons_needed.div_ceil(500) {
        let beacons = (0..500.min(beacons_needed - chunk * 500))
            .map(|_| {
                id += 1;
                let page = format!("https://mem.example/p/{}", rng.below(1000));
                beacon(page, ffs[(id % 3) as usize], id, now, &mut rng)
            })
            .collect();
        insert(beacons);
    }
    // The 1,000 pages themselves cost what the first phase measured.
    let per_report = ((live() - with_pages) as f64 - 1000.0 * per_page) / (beacons_needed * 5) as f64;
    println!(
        "reports: {} reports on 1,000 pages: {:.1} bytes per report ({:.1} s)",
        beacons_needed * 5,
        per_report,
        started.elapsed().as_secs_f64()
    );
    let cap_pages = DEFAULT_MAX_PAGES as f64;
    let per_site_caps = DEFAULT_MAX_PAGES_PER_SITE as f64 * DEFAULT_MAX_SITES as f64;
    println!(
        "page keys at the default caps: {:.0} MB with max_pages = {} ({:.2}x of 1 GB); without it, {} sites x {} pages: {:.1} GB",
        cap_pages * per_page / 1e6,
        DEFAULT_MAX_PAGES,
        cap_pages * per_page / 1e9,
        DEFAULT_MAX_SITES,
        DEFAULT_MAX_PAGES_PER_SITE,
        per_site_caps * per_page / 1e9
    );
    store.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vitalsign-bench-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

//! Microbenchmark of the SQLite writer's in-memory aggregation: `Cells::add`
//! and `Values::add` per report, and the read of a whole site's windows
//! (site and every page, 5 metrics) as `GET /v1/summary` does.
//!
//! `store::cells` and `store::values` are private modules of the library,
//! so their source files are compiled into this example (`#[path]`), on top
//! of the library's public `aggregate`, `sketch` and `time` modules: the
//! very code the collector runs, with the release profile.
//!
//! ```text
//! cargo run --release -p vitalsign-collector --example bench_aggregates -- [pages] [reports] [history_days] [all|many] [hours]
//! ```
//!
//! Defaults: 1,000 pages, 3,000,000 reports today, 7 days of history
//! (reports/3 a day, not timed). Reports come in beacons of 1 to 5 metrics
//! sharing page, form factor and time, in time order (as the writer sees
//! them), pages with a skewed (power-law) popularity.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use collector::beacon::MetricName;
use collector::time::{Resolution, DAY_MS, HOUR_MS};

/// What `store::cells` and `store::values` import from `crate::…`.
mod aggregate {
    pub use collector::aggregate::{Cell, Span};
}
mod time {
    pub use collector::time::{Resolution, DAY_MS};
}
mod sketch {
    pub use collector::sketch::bin_of;
}

#[path = "../src/store/cells.rs"]
mod cells;
#[path = "../src/store/values.rs"]
mod values;

use cells::{Cells, Place, Scope, FF_ALL};
use collector::aggregate::{Window, WindowName};
use values::{Select, Values};

/// Counts live heap bytes, to show what the aggregates take.
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

#[path = "../src/testutil.rs"]
mod testutil;
use testutil::Rng;

fn value(rng: &mut Rng, metric: MetricName) -> f64 {
    let tenth = |v: f64| (v * 10.0).round() / 10.0;
    match metric {
        MetricName::Lcp => tenth(rng.f64_log(300.0, 6000.0)),
        MetricName::Fcp => tenth(rng.f64_log(100.0, 3000.0)),
        MetricName::Ttfb => tenth(rng.f64_log(20.0, 2000.0)),
        MetricName::Inp => (rng.f64_log(16.0, 800.0) / 8.0).round() * 8.0,
        MetricName::Cls => {
            if rng.below(10) < 4 {
                0.0
            } else {
                rng.f64_log(0.0001, 0.4)
            }
        }
    }
}

/// `n` reports in beacons, times spread evenly over `from..to`.
fn reports(rng: &mut Rng, pages: u32, n: usize, from: i64, to: i64) -> Vec<(Place, f64)> {
    let mut out = Vec::with_capacity(n + 5);
    while out.len() < n {
        let at = from + ((to - from) as f64 * out.len() as f64 / n as f64) as i64;
        // Power law: a few pages get most of the traffic.
        let page = 1 + (pages as f64 * rng.unit().powi(3)) as u32;
        let ff = [0u8, 1, 1, 1, 2, 3, 3][rng.below(7) as usize];
        let k = 1 + rng.below(5) as usize;
        let first = rng.below(5) as usize;
        for i in 0..k {
            let metric = MetricName::ALL[(first + i) % 5];
            let place = Place {
                site: 1,
                page,
                metric,
                ff,
                received_at_ms: at,
            };
            out.push((place, value(rng, metric)));
        }
    }
    out.truncate(n);
    out
}

fn ns_per(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let pages = arg(0, 1000) as u32;
    let n = arg(1, 3_000_000) as usize;
    let history_days = arg(2, 7) as i64;
    // "many": only time `Cells::add_many`; "reads": mostly the reads (for
    // profiling).
    let only_many = args.get(3).is_some_and(|m| m == "many");
    let only_reads = args.get(3).is_some_and(|m| m == "reads");
    // Hours today's reports are spread over (up to now, 20:00).
    let hours = arg(4, 20).clamp(1, 20) as i64;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);

    // Today 20:00 UTC; today's reports run from 00:00 to now.
    let today = 20_000 * DAY_MS;
    let now = today + 20 * HOUR_MS;
    let horizon = today - 7 * DAY_MS;
    println!(
        "pages {pages}, reports today {n} over {hours} h, history days {history_days} × {}",
        n / 3
    );

    // History, not timed: previous days, then the rolling merges start.
    let base = live();
    let mut cells = Cells::new(horizon);
    let mut values = Values::new();
    let t = Instant::now();
    let mut hist = 0;
    for d in (1..=history_days).rev() {
        let day = today - d * DAY_MS;
        for (p, v) in reports(&mut rng, pages, n / 3, day, day + DAY_MS) {
            cells.add(&p, v);
            values.add(p.page, p.metric, p.ff, p.received_at_ms, v);
            hist += 1;
        }
    }
    if hist > 0 {
        println!("history: {hist} reports, cells+values {:.0} ns/report", ns_per(t, hist));
    }
    cells.start_rolling(today);
    let _ = cells.take_changed_base_cells();
    let _ = values.take_changed();

    let today_reports = reports(&mut rng, pages, n, now - hours * HOUR_MS, now);
    // [add_many
    if only_many {
        let t = Instant::now();
        for batch in today_reports.chunks(1000) {
            cells.advance(batch[0].0.received_at_ms);
            cells.add_many(batch);
        }
        println!("Cells::add_many (batches of 1000) {:7.1} ns/report", ns_per(t, n));
        return;
    }
    // add_many]

    // Into the aggregates holding the history: Cells::add alone, then
    // Values::add alone.
    let before = live();
    let t = Instant::now();
    for batch in today_reports.chunks(1000) {
        cells.advance(batch[0].0.received_at_ms);
        for (p, v) in batch {
            cells.add(p, *v);
        }
    }
    let cells_ns = ns_per(t, n);
    let cells_bytes = live() - before;
    let before = live();
    let t = Instant::now();
    for (p, v) in &today_reports {
        values.add(p.page, p.metric, p.ff, p.received_at_ms, *v);
    }
    let values_ns = ns_per(t, n);
    let values_bytes = live() - before;
    println!(
        "Cells::add   {cells_ns:7.1} ns/report   (+{:.1} MB)",
        cells_bytes as f64 / 1e6
    );
    println!(
        "Values::add  {values_ns:7.1} ns/report   (+{:.1} MB)",
        values_bytes as f64 / 1e6
    );
    cells.advance(now);

    if !only_reads {
        // Removes (re-reported values), 300,000 at random, then added back.
        let m = 300_000.min(n);
        let picks: Vec<usize> = (0..m).map(|_| rng.below(n as u64) as usize).collect();
        let t = Instant::now();
        let mut removed = Vec::with_capacity(m);
        for &i in &picks {
            let (p, v) = today_reports[i];
            if cells.remove(&p, v) {
                removed.push(i);
            }
        }
        let remove_ns = ns_per(t, m);
        for &i in &removed {
            let (p, v) = today_reports[i];
            cells.add(&p, v);
        }
        let t = Instant::now();
        for &i in &picks {
            let (p, v) = today_reports[i];
            values.remove(p.page, p.metric, p.ff, p.received_at_ms, v);
        }
        let vremove_ns = ns_per(t, m);
        for &i in &picks {
            let (p, v) = today_reports[i];
            values.add(p.page, p.metric, p.ff, p.received_at_ms, v);
        }
        println!("Cells::remove  {remove_ns:5.1} ns/report (random, cold)");
        println!("Values::remove {vremove_ns:5.1} ns/report (random, cold)");

        // Today only, into fresh aggregates, in write groups of 1,000 reports:
        // as the writer does now (add, one report at a time, both) ...
        let mut cells2 = Cells::new(horizon);
        let mut values2 = Values::new();
        cells2.start_rolling(today);
        let t = Instant::now();
        for batch in today_reports.chunks(1000) {
            cells2.advance(batch[0].0.received_at_ms);
            for (p, v) in batch {
                cells2.add(p, *v);
                values2.add(p.page, p.metric, p.ff, p.received_at_ms, *v);
            }
        }
        println!(
            "fresh: Cells::add + Values::add, interleaved {:7.1} ns/report",
            ns_per(t, n)
        );
        drop((cells2, values2));
        // [add_many
        // ... and batched.
        let mut cells3 = Cells::new(horizon);
        let mut values3 = Values::new();
        cells3.start_rolling(today);
        let t = Instant::now();
        for batch in today_reports.chunks(1000) {
            cells3.advance(batch[0].0.received_at_ms);
            cells3.add_many(batch);
            values3.add_many(batch);
        }
        println!(
            "fresh: Cells::add_many + Values::add_many    {:7.1} ns/report",
            ns_per(t, n)
        );
        drop((cells3, values3));
        let mut cells3 = Cells::new(horizon);
        cells3.start_rolling(today);
        let t = Instant::now();
        for batch in today_reports.chunks(1000) {
            cells3.advance(batch[0].0.received_at_ms);
            cells3.add_many(batch);
        }
        println!(
            "fresh: Cells::add_many alone                 {:7.1} ns/report",
            ns_per(t, n)
        );
        drop(cells3);
        // add_many]
        let mut cells4 = Cells::new(horizon);
        cells4.start_rolling(today);
        let t = Instant::now();
        for batch in today_reports.chunks(1000) {
            cells4.advance(batch[0].0.received_at_ms);
            for (p, v) in batch {
                cells4.add(p, *v);
            }
        }
        println!(
            "fresh: Cells::add alone                      {:7.1} ns/report",
            ns_per(t, n)
        );
        drop(cells4);
    }

    println!(
        "memory: cells+values {:.1} MB in all",
        (live() - base) as f64 / 1e6 - (today_reports.capacity() * std::mem::size_of::<(Place, f64)>()) as f64 / 1e6
    );

    // Reads: the site and every page, 5 metrics, all form factors, for each
    // standard window (as /v1/summary), with the sketch quantiles.
    let page_ids: Vec<u32> = (1..=pages).collect();
    // The best of a few runs (the machine may be busy).
    let runs = if only_reads { 500 } else { 5 };
    let mut total_ms = 0.0;
    // BENCH_WINDOW=24h: only that one (for profiling).
    let only = std::env::var("BENCH_WINDOW").ok();
    for name in WindowName::ALL {
        if only.as_deref().is_some_and(|w| w != name.as_str()) {
            continue;
        }
        let span = Window::ending_at(name, now).span;
        let mut best = f64::INFINITY;
        let mut sum = 0u64;
        for _ in 0..runs {
            let t = Instant::now();
            sum = 0;
            for metric in MetricName::ALL {
                for scope in std::iter::once(Scope::Site(1)).chain(page_ids.iter().map(|&p| Scope::Page(p))) {
                    let cell = cells.window(scope, metric, FF_ALL, &span);
                    sum += cell.count();
                    if let Some(q) = cell.sketch.quantile(75.0) {
                        sum += q as u64;
                    }
                    black_box(cell.sketch.quantile(95.0));
                }
            }
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        total_ms += best;
        println!(
            "window {:>3}: site + {pages} pages × 5 metrics: {best:6.2} ms  ({sum})",
            name.as_str()
        );
    }
    println!("windows total {total_ms:.2} ms");
    // A span that is not a standard window: merges the buckets.
    let span = collector::aggregate::Span {
        resolution: Resolution::Day,
        first: Resolution::Day.bucket(today) - 3,
        last: Resolution::Day.bucket(today),
    };
    let mut best = f64::INFINITY;
    let mut sum = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        sum = 0;
        for metric in MetricName::ALL {
            for scope in std::iter::once(Scope::Site(1)).chain(page_ids.iter().map(|&p| Scope::Page(p))) {
                let cell = cells.window(scope, metric, FF_ALL, &span);
                sum += cell.count();
                black_box(cell.sketch.quantile(75.0));
            }
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("custom span 4 days (bucket merges): {best:6.2} ms ({sum})");
    // The site's exact p75 look-up: the pages holding the p75 bin, and
    // their values of it.
    let t = Instant::now();
    let mut found = 0usize;
    let span = Window::ending_at(WindowName::Week, now).span;
    for metric in MetricName::ALL {
        let cell = cells.window(Scope::Site(1), metric, FF_ALL, &span);
        if let Some(collector::sketch::Located::Bin { key, .. }) = cell.sketch.locate(75.0) {
            let holding: Vec<u32> = page_ids
                .iter()
                .copied()
                .filter(|&p| cells.bin_count(Scope::Page(p), metric, FF_ALL, &span, key) > 0)
                .collect();
            let (lo, hi) = collector::sketch::bin_bounds(key);
            let s = Select {
                metric,
                ff: FF_ALL,
                from_ms: span.start_ms(),
                to_ms: now,
                lo,
                hi,
                hi_inclusive: false,
            };
            found += values.select(&holding, &s).len();
        }
    }
    println!(
        "site exact p75 bin look-up (7d, 5 metrics): {:6.2} ms ({found} values)",
        t.elapsed().as_secs_f64() * 1e3
    );
}

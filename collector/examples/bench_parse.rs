//! Microbenchmark of what an HTTP worker does with a beacon body before
//! handing it to the store: parse, validate and convert it
//! (`ingest::accept`), against a baseline run in the same process: a plain
//! `serde_json` pass over the same bytes that builds nothing
//! (`IgnoredAny`), the least any JSON parser must do. Also counts heap
//! allocations per body.
//!
//! ```text
//! cargo run --release -p vitalsign-collector --example bench_parse -- [metrics per beacon] [bodies]
//! ```
//!
//! Defaults: 10 metrics (the shape of `benches/beacon10.lua`: each of the
//! five metrics twice, own ids, about 1.3 KB), 20,000 distinct bodies,
//! each pass repeated 5 times; the best pass is printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use collector::ingest;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NAMES: [&str; 5] = ["FCP", "LCP", "CLS", "INP", "TTFB"];

/// A body like the wrk script's: `n` metrics cycling over the five names.
fn body(counter: u64, n: usize) -> Vec<u8> {
    let id = format!("1234567-{counter}");
    let mut metrics = Vec::new();
    for i in 1..=n {
        let value = if i % 5 == 3 {
            format!("0.{:02}", (counter + i as u64) % 40)
        } else {
            (100 + (counter * 37 + i as u64 * 11) % 3000).to_string()
        };
        metrics.push(format!(
            r#"{{"name":"{}","value":{value},"delta":{value},"id":"v5-{id}-{i}","rating":"good","navigationType":"navigate"}}"#,
            NAMES[(i - 1) % 5]
        ));
    }
    format!(
        r#"{{"schemaVersion":1,"page":"https://shop.example/products/{}","pageViewId":"v5-pv-{id}","formFactor":"phone","metrics":[{}]}}"#,
        counter % 50,
        metrics.join(",")
    )
    .into_bytes()
}

/// Best of 5 passes over `bodies`: (nanoseconds per body, allocations per body).
fn measure(bodies: &[Vec<u8>], f: impl Fn(&[u8])) -> (f64, f64) {
    let mut best = f64::MAX;
    let mut allocs = 0;
    for _ in 0..5 {
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let t = Instant::now();
        for b in bodies {
            f(b);
        }
        let ns = t.elapsed().as_nanos() as f64 / bodies.len() as f64;
        allocs = ALLOCS.load(Ordering::Relaxed) - a0;
        best = best.min(ns);
    }
    (best, allocs as f64 / bodies.len() as f64)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10, |a| a.parse().expect("metrics per beacon"));
    let count: u64 = args.next().map_or(20_000, |a| a.parse().expect("bodies"));
    let bodies: Vec<Vec<u8>> = (0..count).map(|c| body(c, n)).collect();
    let bytes = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    assert!(
        ingest::accept(&bodies[0], 0, 64).is_ok(),
        "the benchmark's body must be valid"
    );

    let (base, base_allocs) = measure(&bodies, |b| {
        black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(b)).unwrap());
    });
    let (accept, accept_allocs) = measure(&bodies, |b| {
        black_box(ingest::accept(black_box(b), 0, 64).unwrap());
    });
    println!("{count} distinct {n}-metric bodies of {bytes} bytes, best of 5 passes:");
    println!(
        "baseline, serde_json pass building nothing: {:.2} us/body, {:.1} allocations/body",
        base / 1e3,
        base_allocs
    );
    println!(
        "ingest::accept (parse, validate, convert): {:.2} us/body, {:.1} allocations/body",
        accept / 1e3,
        accept_allocs
    );
    println!("ratio accept / baseline: {:.2}", accept / base);
}

//! vitalsign agent: the Core Web Vitals measured exactly as the reference
//! (`web-vitals` 6.2) measures them.
//!
//! The decisions live in plain Rust modules (one per metric, plus `report`,
//! `navigation` and the delivery modules) that build and test natively.
//! `abi` is the wasm's interface: functions of numbers (and a few strings)
//! that the browser glue in `npm/src/agent.js` feeds with what the browser
//! reports, and that answer with these modules' decisions.
#![cfg_attr(all(target_arch = "wasm32", feature = "bundle"), no_std)]
extern crate alloc;

pub mod abi;
pub mod cls;
pub mod delivery;
pub mod fcp;
pub mod form_factor;
pub mod id;
pub mod inp;
pub mod lcp;
pub mod navigation;
pub mod page_key;
pub mod report;
pub mod session;
pub mod sort;
pub mod text;
pub mod ttfb;

pub use beacon::{MetricName, NavigationType, Rating};

// The shipped build (feature `bundle`, set by npm/build.mjs) has no std: no
// panic formatting code and no dlmalloc in the wasm. A panic is a bug; it
// traps, and the JS wrapper contains the error. Tests build with std.
#[cfg(all(target_arch = "wasm32", feature = "bundle"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(all(target_arch = "wasm32", feature = "bundle"))]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

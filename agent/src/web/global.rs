//! Module-level state without `thread_local!` (which needs std).

/// A global value. wasm32-unknown-unknown without the atomics feature runs
/// one thread, so sharing it is sound.
pub struct Global<T>(T);

// SAFETY: the agent is only built for single-threaded wasm32 (see `web`).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(value: T) -> Self {
        Global(value)
    }

    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0)
    }
}

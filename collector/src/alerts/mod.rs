//! Alerts: threshold and regression rules on a page's percentile (p75 by
//! default), evaluated on a fixed cadence against the metric store,
//! persisted per (rule, site, page, form factor), and delivered through a
//! durable outbox to webhooks, Slack and Alertmanager.
//!
//! - [`rule`]: the `[alerts]` config, its defaults and the built-in rules;
//! - [`evaluate`]: exact decisions from counts, behind [`AlertSource`];
//! - [`state`]: the `ok -> pending -> firing -> resolved` machine;
//! - [`engine`]: one evaluation of every rule, persisted atomically;
//! - [`store`]: state, history, silences and the outbox in SQLite;
//! - [`shared`]: that state shared among collectors (snapshots fenced by
//!   the lease epoch, commands from the API), behind [`SharedState`];
//! - [`outbox`] and [`receivers`]: delivery, retries, payloads;
//! - [`source`]: [`AlertSource`] over the metric store;
//! - [`api`]: the HTTP routes.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub mod api;
pub mod engine;
pub mod evaluate;
pub mod lease;
pub mod outbox;
pub mod receivers;
pub mod rule;
pub mod shared;
pub mod source;
pub mod state;
pub mod store;

pub use engine::Engine;
pub use evaluate::{AlertSource, PageStats, Period, SourceError};
pub use outbox::{Gate, Signal};
pub use rule::{AlertsConfig, AlertsFile, Receiver, Rule, RuleError, Severity};
pub use shared::SharedState;
pub use state::State;
pub use store::AlertStore;

use crate::time::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot open the alert tables in {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "alert database {path} has schema version {found}, newer than this collector knows ({known}); upgrade the collector"
    )]
    SchemaTooNew { path: PathBuf, found: i64, known: i64 },
    #[error("alert database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("shared alert state: {0}")]
    Shared(String),
    #[error("cannot start the {name} thread: {source}")]
    Thread { name: String, source: std::io::Error },
}

/// How often old alerts, history and delivered notifications are pruned.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The alerting subsystem: its settings and store, shared by the API
/// handlers and the background threads.
pub struct Alerts {
    pub config: Arc<AlertsConfig>,
    pub store: Arc<AlertStore>,
    /// Base of dashboard links, without a trailing slash; set once the
    /// listening address is known unless configured.
    public_url: OnceLock<String>,
    delivery: Arc<Signal>,
    /// With several collectors: evaluate only while holding it.
    lease: OnceLock<Arc<dyn lease::Lease>>,
    /// With several collectors: the state they share (see [`shared`]).
    shared: OnceLock<Arc<dyn SharedState>>,
    /// Who delivers: always alone; the holder, what is saved, when shared.
    gate: Arc<Gate>,
    /// Wakes the evaluator (to save a snapshot after an API write).
    eval_signal: Arc<Signal>,
    /// Failed reads and writes of the shared state.
    sync_failures: AtomicU64,
    /// Held while applying commands: the API's submit-then-apply on the
    /// holder is not interleaved with the evaluator's.
    commands: std::sync::Mutex<()>,
}

/// The running evaluator and delivery threads; [`Running::stop`] ends them.
pub struct Running {
    evaluator: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    eval_signal: Arc<Signal>,
    delivery: Arc<Signal>,
}

impl Alerts {
    /// Opens (creating if needed) `alerts.db` in `data_dir`, moving over
    /// the alert tables that older collectors kept in the metric store's
    /// file. `public_url`: the configured one, if any.
    pub fn open(config: AlertsConfig, data_dir: &Path, public_url: Option<&str>) -> Result<Alerts, AlertError> {
        let legacy = data_dir.join(crate::store::DB_FILE_NAME);
        let store = AlertStore::open(data_dir.join(store::FILE_NAME), Some(&legacy))?;
        let alerts = Alerts {
            config: Arc::new(config),
            store: Arc::new(store),
            public_url: OnceLock::new(),
            delivery: Arc::new(Signal::default()),
            lease: OnceLock::new(),
            shared: OnceLock::new(),
            gate: Arc::new(Gate::always()),
            eval_signal: Arc::new(Signal::default()),
            sync_failures: AtomicU64::new(0),
            commands: std::sync::Mutex::new(()),
        };
        if let Some(url) = public_url {
            alerts.set_public_url(url);
        }
        Ok(alerts)
    }

    /// Sets the base of dashboard links, unless already set.
    pub fn set_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_string());
    }

    /// Evaluates only while `lease` is held (collectors sharing a store);
    /// set before [`Alerts::start`].
    pub fn set_lease(&self, lease: Arc<dyn lease::Lease>) {
        let _ = self.lease.set(lease);
    }

    /// Shares the alert state with the other collectors holding `lease`
    /// (set with [`Alerts::set_lease`]); set before [`Alerts::start`].
    /// Until this collector holds the lease and has loaded the latest
    /// state, it delivers nothing.
    pub fn set_shared(&self, shared: Arc<dyn SharedState>) {
        if self.shared.set(shared).is_ok() {
            self.gate.close();
        }
    }

    /// The shared state, if any.
    pub fn shared(&self) -> Option<&Arc<dyn SharedState>> {
        self.shared.get()
    }

    /// Whether the state here is the one in force: alone, always; shared,
    /// while holding the lease with the latest state loaded. API writes
    /// elsewhere are handed to the holder as commands.
    pub fn is_authoritative(&self) -> bool {
        self.gate.is_open()
    }

    /// Held while submitting and applying a command.
    pub fn commands_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.commands.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the evaluator to save the state soon (after an API write).
    pub fn request_save(&self) {
        self.eval_signal.notify();
    }

    /// Whether this collector evaluates now.
    fn may_evaluate(&self) -> bool {
        let Some(lease) = self.lease.get() else {
            return true;
        };
        match lease.hold(now_ms()) {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the alert evaluation lease: not evaluating");
                false
            }
        }
    }

    pub fn public_url(&self) -> &str {
        self.public_url.get().map_or("", String::as_str)
    }

    pub fn engine(&self) -> Engine {
        Engine {
            config: self.config.clone(),
            store: self.store.clone(),
            public_url: self.public_url().to_string(),
        }
    }

    /// Prometheus text: alerts by state and notifications by receiver and
    /// delivery state (`dead`: dead-lettered).
    pub fn metrics_text(&self) -> Result<String, AlertError> {
        let mut out = String::new();
        let states = self.store.state_counts()?;
        out.push_str("# HELP vitalsign_alerts Alert series by state.\n# TYPE vitalsign_alerts gauge\n");
        for state in State::ALL {
            let n = states.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "vitalsign_alerts{{state=\"{}\"}} {n}", state.as_str());
        }
        out.push_str(
            "# HELP vitalsign_alert_notifications Alert notifications kept in the outbox, by receiver and \
             delivery state (dead: dead-lettered after the retry budget).\n\
             # TYPE vitalsign_alert_notifications gauge\n",
        );
        if self.shared.get().is_some() {
            let _ = writeln!(
                out,
                "# HELP vitalsign_alert_lease_held 1 while this collector holds the alert lease (and so \
                 evaluates and delivers), with the shared alert state loaded.\n\
                 # TYPE vitalsign_alert_lease_held gauge\n\
                 vitalsign_alert_lease_held {}\n\
                 # HELP vitalsign_alert_state_sync_failures_total Failed loads and saves of the alert state \
                 shared among collectors (each retried).\n\
                 # TYPE vitalsign_alert_state_sync_failures_total counter\n\
                 vitalsign_alert_state_sync_failures_total {}",
                u8::from(self.gate.is_open()),
                self.sync_failures.load(Ordering::Relaxed)
            );
        }
        let stats = self.store.delivery_stats()?;
        for r in &self.config.receivers {
            let s = stats.iter().find(|s| s.receiver == r.name).cloned().unwrap_or_default();
            for (delivery, n) in [("pending", s.pending), ("sent", s.sent), ("dead", s.dead)] {
                let _ = writeln!(
                    out,
                    "vitalsign_alert_notifications{{receiver=\"{}\",delivery=\"{delivery}\"}} {n}",
                    r.name
                );
            }
        }
        Ok(out)
    }

    /// One evaluation now, waking the delivery threads if it wrote
    /// notifications.
    pub fn evaluate(&self, source: &dyn AlertSource) -> Result<engine::EvalSummary, AlertError> {
        let summary = self.engine().evaluate(source, now_ms())?;
        if summary.notifications > 0 {
            self.delivery.notify();
        }
        Ok(summary)
    }

    /// Starts the evaluator (every `evaluation_interval`, the first at
    /// once) and one delivery thread per receiver. Deliveries left pending
    /// by an earlier run are sent first.
    pub fn start(self: &Arc<Self>, source: Box<dyn AlertSource + Send>) -> Result<Running, AlertError> {
        let eval_signal = self.eval_signal.clone();
        let mut running = Running {
            evaluator: None,
            workers: Vec::new(),
            eval_signal: eval_signal.clone(),
            delivery: self.delivery.clone(),
        };
        if !self.config.enabled {
            return Ok(running);
        }
        let names: Vec<String> = self.config.receivers.iter().map(|r| r.name.clone()).collect();
        match self.store.abandon_unknown_receivers(&names, now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                notifications = n,
                "dead-lettered notifications of receivers no longer configured"
            ),
            Err(e) => tracing::error!(error = %e, "checking the outbox for removed receivers failed"),
        }
        for receiver in &self.config.receivers {
            let (receiver, store, signal) = (receiver.clone(), self.store.clone(), self.delivery.clone());
            let gate = self.gate.clone();
            let name = format!("alerts-{}", receiver.name);
            let handle = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || outbox::run_worker(receiver, store, signal, gate))
                .map_err(|source| AlertError::Thread { name, source })?;
            running.workers.push(handle);
        }
        let alerts = self.clone();
        let handle = std::thread::Builder::new()
            .name("alerts-evaluator".into())
            .spawn(move || match alerts.shared.get().cloned() {
                Some(shared) => alerts.run_shared_evaluator(source.as_ref(), &eval_signal, shared.as_ref()),
                None => alerts.run_evaluator(source.as_ref(), &eval_signal),
            })
            .map_err(|source| AlertError::Thread {
                name: "alerts-evaluator".into(),
                source,
            })?;
        running.evaluator = Some(handle);
        tracing::info!(
            rules = self.config.rules.len(),
            receivers = self.config.receivers.len(),
            interval_ms = self.config.evaluation_interval_ms,
            "alert evaluation started"
        );
        Ok(running)
    }

    fn run_evaluator(&self, source: &dyn AlertSource, signal: &Signal) {
        let interval = Duration::from_millis(self.config.evaluation_interval_ms as u64);
        let mut last_prune: Option<i64> = None;
        while !signal.stopping() {
            let started = std::time::Instant::now();
            if !self.may_evaluate() {
                signal.wait(signal.generation(), interval.min(Duration::from_secs(1)));
                continue;
            }
            // A bug in one evaluation must not end alerting for good.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.evaluate(source)));
            match outcome {
                Ok(Ok(s)) if s.transitions > 0 || s.notifications > 0 => {
                    tracing::debug!(
                        series = s.series,
                        transitions = s.transitions,
                        notifications = s.notifications,
                        "evaluated alert rules"
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "alert evaluation failed"),
                Err(_) => tracing::error!("alert evaluation panicked"),
            }
            let now = now_ms();
            if last_prune.is_none_or(|at| now - at >= PRUNE_EVERY_MS) {
                last_prune = Some(now);
                match self.store.prune(now - self.config.history_retention_ms) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "pruned old alert history"),
                    Err(e) => tracing::error!(error = %e, "pruning alert history failed"),
                }
            }
            // A fixed cadence: the time evaluating counts toward the interval.
            signal.wait(signal.generation(), interval.saturating_sub(started.elapsed()));
        }
    }
}

/// What the evaluator knows of the shared state.
#[derive(Default)]
struct Sync {
    /// Holding the lease with the latest state loaded.
    holding: bool,
    /// The version of the state here (loaded or saved).
    known: Option<shared::Version>,
    /// [`AlertStore::changes`] when it was last saved or loaded.
    saved_changes: Option<u64>,
    /// This process's last snapshot sequence number.
    seq: u64,
}

impl Alerts {
    fn sync_failed(&self, what: &str, error: &str) {
        self.sync_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error, "{what} the shared alert state failed; retrying");
    }

    /// The evaluator when the state is shared: every tick (at most a
    /// second apart, to keep the lease), the holder applies the commands
    /// asked elsewhere, evaluates when due and saves a snapshot if anything
    /// changed (then lets delivery send what the snapshot holds); the
    /// others load each new snapshot.
    fn run_shared_evaluator(&self, source: &dyn AlertSource, signal: &Signal, sh: &dyn SharedState) {
        let interval = Duration::from_millis(self.config.evaluation_interval_ms as u64);
        let tick = interval.min(Duration::from_secs(1));
        let mut sync = Sync::default();
        let mut last_eval: Option<std::time::Instant> = None;
        let mut last_prune: Option<i64> = None;
        while !signal.stopping() {
            let started = std::time::Instant::now();
            let seen = signal.generation();
            // A bug in one tick must not end alerting for good.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.shared_tick(source, sh, &mut sync, &mut last_eval, &mut last_prune, interval)
            }));
            if outcome.is_err() {
                tracing::error!("alert evaluation panicked");
                // Start over from the shared state.
                self.gate.close();
                sync.holding = false;
                sync.known = None;
            }
            signal.wait(seen, tick.saturating_sub(started.elapsed()));
        }
    }

    fn shared_tick(
        &self,
        source: &dyn AlertSource,
        sh: &dyn SharedState,
        sync: &mut Sync,
        last_eval: &mut Option<std::time::Instant>,
        last_prune: &mut Option<i64>,
        interval: Duration,
    ) {
        let held = self.may_evaluate();
        let lease = self.lease.get();
        let epoch = lease.and_then(|l| l.epoch());
        let (true, Some(epoch)) = (held, epoch) else {
            if sync.holding {
                tracing::info!("lost the alert lease: following the holder's state");
            }
            sync.holding = false;
            self.gate.close();
            // Follow the holder: API reads show the shared state.
            match sh.latest(sync.known) {
                Ok(Some(snap)) => match self.store.restore(&snap.data) {
                    Ok(_) => {
                        sync.known = Some(snap.version);
                        sync.saved_changes = None;
                    }
                    Err(e) => self.sync_failed("loading", &e.to_string()),
                },
                Ok(None) => {}
                Err(e) => self.sync_failed("reading", &e),
            }
            return;
        };
        if !sync.holding {
            // Taking over: from the latest state, before any evaluation or
            // delivery.
            match sh.latest(sync.known) {
                Ok(Some(snap)) => match self.store.restore(&snap.data) {
                    Ok(max_id) => {
                        tracing::info!(holder = %snap.holder, epoch = snap.version.epoch, seq = snap.version.seq,
                            bytes = snap.data.len(), "took the alert lease: loaded the shared alert state");
                        sync.known = Some(snap.version);
                        sync.saved_changes = Some(self.store.changes());
                        self.gate.open_upto(max_id);
                    }
                    Err(e) => return self.sync_failed("loading", &e.to_string()),
                },
                Ok(None) => {
                    tracing::info!("took the alert lease: the state here is the latest");
                    // Saved below before anything is delivered.
                    sync.saved_changes = None;
                }
                Err(e) => return self.sync_failed("reading", &e),
            }
            sync.holding = true;
        }
        let now = now_ms();
        let commands = self.commands_lock();
        match sh.commands(now - shared::COMMANDS_WINDOW_MS) {
            Ok(commands) => {
                for c in &commands {
                    match shared::apply(&self.store, c) {
                        Ok(shared::Applied::Already) => {}
                        Ok(applied) => tracing::info!(command = %c.id, ?applied, "applied an alert command"),
                        Err(e) => tracing::error!(command = %c.id, error = %e, "applying an alert command failed"),
                    }
                }
            }
            Err(e) => self.sync_failed("reading commands of", &e),
        }
        drop(commands);
        if last_eval.is_none_or(|at| at.elapsed() >= interval) {
            *last_eval = Some(std::time::Instant::now());
            match self.evaluate(source) {
                Ok(s) if s.transitions > 0 || s.notifications > 0 => {
                    tracing::debug!(
                        series = s.series,
                        transitions = s.transitions,
                        notifications = s.notifications,
                        "evaluated alert rules"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "alert evaluation failed"),
            }
            if last_prune.is_none_or(|at| now - at >= PRUNE_EVERY_MS) {
                *last_prune = Some(now);
                match self.store.prune(now - self.config.history_retention_ms) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "pruned old alert history"),
                    Err(e) => tracing::error!(error = %e, "pruning alert history failed"),
                }
            }
        }
        if sync.saved_changes == Some(self.store.changes()) {
            return;
        }
        let (data, max_id, changes) = match self.store.snapshot() {
            Ok(s) => s,
            Err(e) => return tracing::error!(error = %e, "taking a snapshot of the alert state failed"),
        };
        sync.seq += 1;
        let snapshot = shared::Snapshot {
            version: shared::Version { epoch, seq: sync.seq },
            holder: lease.map_or("", |l| l.holder()).to_string(),
            taken_ms: now_ms(),
            data,
        };
        match sh.save(&snapshot) {
            Ok(()) => {
                sync.known = Some(snapshot.version);
                sync.saved_changes = Some(changes);
                // What the snapshot holds may go out now.
                self.gate.open_upto(max_id);
                self.delivery.notify();
            }
            Err(e) => self.sync_failed("saving", &e),
        }
    }
}

impl Running {
    /// Stops the threads: the evaluator after its current evaluation, each
    /// delivery thread after its current attempt (at most a receiver
    /// timeout). What is not delivered stays in the outbox for next time.
    pub fn stop(mut self) {
        self.eval_signal.stop();
        self.delivery.stop();
        if let Some(h) = self.evaluator.take() {
            let _ = h.join();
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

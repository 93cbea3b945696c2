//! Putting it together: open the store, bind, serve, shut down cleanly.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;

use crate::alerts::source::StoreSource;
use crate::alerts::{AlertError, Alerts};
use crate::config::{Config, ConfigError};
use crate::http::{self, AppState, Policy};
use crate::limit::RateLimits;
use crate::metrics::Metrics;
use crate::store::{Sqlite, Store, StoreError};

/// What the collector prints to stdout once it accepts connections,
/// followed by the bound address; scripts and tests wait for it.
pub const LISTENING_PREFIX: &str = "vitalsign collector listening on http://";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Alerts(#[from] AlertError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// The handlers' shared state for `config` and `store`.
pub fn state(config: &Config, store: Arc<dyn Store>) -> AppState {
    AppState {
        store,
        policy: Arc::new(Policy::from_config(config)),
        limits: Arc::new(RateLimits::new(&config.limits)),
        metrics: Arc::new(Metrics::new()),
        alerts: None,
    }
}

/// Binds `config.listen` and returns the (not yet polled) server with the
/// addresses actually bound (the real port when asked for port 0).
/// Must be called inside an actix system.
pub fn bind(config: &Config, state: AppState) -> Result<(actix_web::dev::Server, Vec<SocketAddr>), StartupError> {
    let (www_dir, agent_dir) = (config.www_dir.clone(), config.agent_dir.clone());
    // Warn about missing static directories once, not once per worker.
    for (dir, what) in [(&www_dir, "www"), (&agent_dir, "agent")] {
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "{what} directory not found, not serving it");
        }
    }
    let server = HttpServer::new(move || http::app(state.clone(), www_dir.clone(), agent_dir.clone()))
        .workers(config.workers)
        .backlog(4096)
        .shutdown_timeout(30)
        .bind(&config.listen)
        .map_err(|source| StartupError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// Runs the collector until SIGINT/SIGTERM: opens the store, binds, starts
/// the alert evaluator, prints [`LISTENING_PREFIX`] + address, serves, then
/// waits for in-flight requests, stops the alert threads and commits all
/// pending writes before returning.
pub fn run(config: &Config) -> Result<(), StartupError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    // Before the metric store: alert tables that older collectors kept in
    // its file move to the alerts' own file first.
    let alerts = Arc::new(Alerts::open(
        config.alerts.clone(),
        &config.data_dir,
        config.public_url.as_deref(),
    )?);
    let store = Arc::new(Sqlite::open_in_dir(&config.data_dir, config.store_options())?);
    tracing::info!(db = %store.path().display(), sites = config.sites.len(), "opened database");
    let mut state = state(config, store.clone());
    state.alerts = Some(alerts.clone());
    // Rate limiters forget idle clients once a minute.
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (limits, stop) = (state.limits.clone(), stop.clone());
        std::thread::Builder::new()
            .name("limit-sweeper".into())
            .spawn(move || {
                let mut ticks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    ticks += 1;
                    if ticks.is_multiple_of(240) {
                        limits.forget_idle();
                    }
                }
            })
            .ok()
    };
    let mut running_alerts = None;
    let served = actix_web::rt::System::new().block_on(async {
        let (server, addrs) = bind(config, state)?;
        // Dashboard links need the real address (port 0), so alerts start
        // once bound.
        alerts.set_public_url(&format!("http://{}", addrs[0]));
        let started = alerts.start(Box::new(StoreSource::new(store.clone())));
        match started {
            Ok(running) => running_alerts = Some(running),
            Err(e) => {
                server.handle().stop(true).await;
                return Err(e.into());
            }
        }
        let mut out = std::io::stdout().lock();
        // Bound before printing, so the printed port is the real one.
        let _ = writeln!(out, "{LISTENING_PREFIX}{}", addrs[0]);
        let _ = out.flush();
        drop(out);
        tracing::info!(addr = %addrs[0], workers = config.workers, "listening");
        server.await.map_err(StartupError::Serve)
    });
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = sweeper {
        let _ = s.join();
    }
    // Before the store closes: the evaluator reads it. Undelivered
    // notifications stay in the outbox for the next start.
    if let Some(running) = running_alerts {
        running.stop();
    }
    // Outside the runtime: closing blocks until the writer has committed.
    let closed = store.close();
    tracing::info!("stopped");
    served?;
    closed?;
    Ok(())
}

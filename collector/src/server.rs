//! Putting it together: open the store, bind, serve, shut down cleanly.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::HttpServer;

use crate::alerts::source::StoreSource;
use crate::alerts::{AlertError, Alerts};
use crate::config::StoreKind;
use crate::config::{Config, ConfigError};
use crate::http::{self, AppState, Policy};
use crate::limit::RateLimits;
use crate::metrics::Metrics;
use crate::store::{ClickHouse, Sqlite, Store, StoreError};

/// The engine the collector runs on.
#[derive(Clone)]
enum Engine {
    Sqlite(Arc<Sqlite>),
    ClickHouse(Arc<ClickHouse>),
}

impl Engine {
    fn start(config: &Config) -> Result<Engine, StoreError> {
        Ok(match config.store {
            StoreKind::Sqlite => {
                let store = Sqlite::start_in_dir(&config.data_dir, config.store_options())?;
                tracing::info!(db = %store.path().display(), sites = config.sites.len(), "opening the store");
                Engine::Sqlite(Arc::new(store))
            }
            StoreKind::ClickHouse => {
                let o = config.clickhouse_options();
                tracing::info!(url = %o.url, database = %o.database, sites = config.sites.len(), "opening the ClickHouse store");
                Engine::ClickHouse(Arc::new(ClickHouse::start(o)?))
            }
        })
    }

    fn store(&self) -> Arc<dyn Store> {
        match self {
            Engine::Sqlite(s) => s.clone(),
            Engine::ClickHouse(s) => s.clone(),
        }
    }

    fn wait_ready(&self) -> Result<(), StoreError> {
        match self {
            Engine::Sqlite(s) => s.wait_ready(),
            Engine::ClickHouse(s) => s.wait_ready(),
        }
    }
}

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

/// Binds `config.listen` (or takes the listening socket a supervisor
/// passed, see [`inherited_listener`]) and returns the (not yet polled)
/// server with the addresses actually bound (the real port when asked for
/// port 0). Must be called inside an actix system.
pub fn bind(config: &Config, state: AppState) -> Result<(actix_web::dev::Server, Vec<SocketAddr>), StartupError> {
    let (www_dir, agent_dir) = (config.www_dir.clone(), config.agent_dir.clone());
    // Warn about missing static directories once, not once per worker.
    for (dir, what) in [(&www_dir, "www"), (&agent_dir, "agent")] {
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "{what} directory not found, not serving it");
        }
    }
    let body_timeout = state.policy.body_timeout;
    let server = HttpServer::new(move || http::app(state.clone(), www_dir.clone(), agent_dir.clone()))
        .workers(config.workers)
        .backlog(4096)
        // Requests in flight finish within the body timeout (a trickling
        // body is cut then), and the answer takes a moment more.
        .shutdown_timeout(body_timeout.as_secs() + 5)
        // SIGTERM and SIGINT are handled by [`stop_on_signal`].
        .disable_signals();
    let bind_err = |source| StartupError::Bind {
        addr: config.listen.clone(),
        source,
    };
    let server = match inherited_listener().map_err(bind_err)? {
        Some(listener) => {
            tracing::info!(addr = ?listener.local_addr().ok(), "serving on the socket passed by the supervisor (LISTEN_FDS); --listen is not used");
            server.listen(listener).map_err(bind_err)?
        }
        None => server.bind(&config.listen).map_err(bind_err)?,
    };
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// How long the workers get to take the connections already accepted,
/// between pausing the accept loop and stopping.
const DRAIN: Duration = Duration::from_millis(200);

/// On SIGTERM or SIGINT: stops accepting, gives the workers a moment to
/// take the connections already accepted (actix closes, unanswered, those
/// still queued for a worker when it stops: a beacon sent then was reset),
/// then stops gracefully (requests in flight finish).
#[cfg(unix)]
async fn stop_on_signal(handle: actix_web::dev::ServerHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stop the collector with SIGKILL");
        return;
    };
    futures_util::future::select(Box::pin(term.recv()), Box::pin(int.recv())).await;
    tracing::info!("stopping: finishing the requests in flight");
    handle.pause().await;
    actix_web::rt::time::sleep(DRAIN).await;
    handle.stop(true).await;
}

#[cfg(not(unix))]
async fn stop_on_signal(handle: actix_web::dev::ServerHandle) {
    if tokio::signal::ctrl_c().await.is_ok() {
        handle.pause().await;
        actix_web::rt::time::sleep(DRAIN).await;
        handle.stop(true).await;
    }
}

/// The listening socket a supervisor passed as file descriptor 3, by
/// systemd's socket activation protocol (`LISTEN_FDS=1`, `LISTEN_PID` =
/// this process): connections made while the collector restarts wait in
/// the socket's backlog instead of being refused.
#[cfg(unix)]
fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    use std::os::fd::{FromRawFd, RawFd};
    const FIRST_FD: RawFd = 3;
    let for_us = std::env::var("LISTEN_PID").is_ok_and(|p| p.trim() == std::process::id().to_string());
    let count: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if !for_us || count == 0 {
        return Ok(None);
    }
    if count > 1 {
        tracing::warn!(count, "LISTEN_FDS passes several sockets; serving on the first only");
    }
    // SAFETY: by the protocol, descriptor 3 is a socket the supervisor
    // opened for this process, and nothing else here owns it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(FIRST_FD) };
    // Not a listening TCP socket (a mistaken setup): say so.
    listener.local_addr()?;
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

#[cfg(not(unix))]
fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    Ok(None)
}

/// Runs the collector until SIGINT/SIGTERM: starts the store (which opens
/// and loads in the background), binds at once, starts the alert
/// evaluator, prints [`LISTENING_PREFIX`] + address, serves, then waits
/// for in-flight requests, stops the alert threads and commits all pending
/// writes before returning. A store that cannot start (a newer schema, a
/// corrupt file) stops the server and is the error returned.
pub fn run(config: &Config) -> Result<(), StartupError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    // Before the metric store: alert tables that older collectors kept in
    // its file move to the alerts' own file first.
    let alerts = match Alerts::open(config.alerts.clone(), &config.data_dir, config.public_url.as_deref()) {
        Ok(alerts) => Some(Arc::new(alerts)),
        // Metrics are served without alerts rather than not at all.
        Err(e) if crate::store::space_low(&config.data_dir) => {
            tracing::error!(error = %e, "the disk is full: alerting is off until the collector restarts with space");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let engine = Engine::start(config)?;
    let store = engine.store();
    let mut state = state(config, store.clone());
    state.alerts = alerts.clone();
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
    let failure: Arc<Mutex<Option<StoreError>>> = Arc::default();
    let mut watcher = None;
    let served = actix_web::rt::System::new().block_on(async {
        let (server, addrs) = bind(config, state)?;
        // Dashboard links need the real address (port 0), so alerts start
        // once bound. Until the store has loaded, evaluations find it not
        // ready and change nothing.
        if let Some(alerts) = &alerts {
            alerts.set_public_url(&format!("http://{}", addrs[0]));
            if let Engine::ClickHouse(ch) = &engine {
                // One evaluation (and so one notification) across the
                // collectors sharing the database.
                let holder = format!("{}@{}", ch.instance_id(), addrs[0]);
                alerts.set_lease(Arc::new(ch.lease("alerts", holder, config.clickhouse.lease_term_ms)));
                // ... from the same state: a collector taking over goes on
                // from the last holder's (docs/clickhouse.md).
                alerts.set_shared(Arc::new(ch.alert_state()));
            }
            match alerts.start(Box::new(StoreSource::new(store.clone()))) {
                Ok(running) => running_alerts = Some(running),
                Err(e) => {
                    server.handle().stop(true).await;
                    return Err(e.into());
                }
            }
        }
        actix_web::rt::spawn(stop_on_signal(server.handle()));
        let (handle, engine, failure) = (server.handle(), engine.clone(), failure.clone());
        watcher = std::thread::Builder::new()
            .name("store-watch".into())
            .spawn(move || match engine.wait_ready() {
                Ok(()) | Err(StoreError::Closed) => {}
                Err(e) => {
                    *failure.lock().expect("failure lock poisoned") = Some(e);
                    // Sent at once; the server stops without this future.
                    drop(handle.stop(false));
                }
            })
            .ok();
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
    if let Some(w) = watcher {
        let _ = w.join();
    }
    tracing::info!("stopped");
    if let Some(e) = failure.lock().expect("failure lock poisoned").take() {
        return Err(e.into());
    }
    served?;
    closed?;
    Ok(())
}

//! Putting it together: open the store, bind, serve, shut down cleanly.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpServer};

use crate::config::{Config, ConfigError};
use crate::http::{self, AppState};
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
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds `config.listen` and returns the (not yet polled) server with the
/// addresses actually bound (the real port when asked for port 0).
/// Must be called inside an actix system.
pub fn bind(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<(actix_web::dev::Server, Vec<SocketAddr>), StartupError> {
    let state = AppState { store };
    let (www_dir, agent_dir) = (config.www_dir.clone(), config.agent_dir.clone());
    // Warn about missing static directories once, not once per worker.
    for (dir, what) in [(&www_dir, "www"), (&agent_dir, "agent")] {
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "{what} directory not found, not serving it");
        }
    }
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| http::configure_api(cfg, state.clone()))
            .configure(|cfg| http::configure_static(cfg, &www_dir, &agent_dir))
    })
    .bind(&config.listen)
    .map_err(|source| StartupError::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// Runs the collector until SIGINT/SIGTERM: opens the store, binds, prints
/// [`LISTENING_PREFIX`] + address, serves, then waits for in-flight
/// requests and commits all pending writes before returning.
pub fn run(config: &Config) -> Result<(), StartupError> {
    let store = Arc::new(Sqlite::open_in_dir(&config.data_dir)?);
    tracing::info!(db = %store.path().display(), "opened database");
    let served = actix_web::rt::System::new().block_on(async {
        let (server, addrs) = bind(config, store.clone())?;
        let mut out = std::io::stdout().lock();
        // Bound before printing, so the printed port is the real one.
        let _ = writeln!(out, "{LISTENING_PREFIX}{}", addrs[0]);
        let _ = out.flush();
        drop(out);
        server.await.map_err(StartupError::Serve)
    });
    // Outside the runtime: closing blocks until the writer has committed.
    let closed = store.close();
    tracing::info!("stopped");
    served?;
    closed?;
    Ok(())
}
